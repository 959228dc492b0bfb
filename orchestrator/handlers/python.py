"""Runs an async Python function for each window, so a team ships its transfers as a
package installed beside the service.

The function is `async def f(window: WindowRun) -> int | None` (the rows it wrote, if it
knows); `window.variables` holds the backfill's variables and the window's. It runs in the
worker's event loop, so it must not block (use asyncio.to_thread for blocking work), and,
like every handler, must be safe to run again for the same window.

It is named either by import path, `callable: "package.module:function"`, allowed only for
modules under BACKFILL_PYTHON_HANDLER_MODULES (an API user must not be able to import and
call whatever is installed), or by the name a package registered under the entry point group
`backfill_orchestrator.handlers` (installing the package is the operator's consent)."""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Awaitable, Callable
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.errors import ValidationFailed
from orchestrator.handlers.base import Handler, WindowRun
from orchestrator.plugins.resources import Resources
from orchestrator.settings import Settings

ENTRY_POINT_GROUP = "backfill_orchestrator.handlers"
POINTER = "/handler/options"
_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"
_PATH = f"^{_DOTTED}:{_DOTTED}$"

WindowFunction = Callable[[WindowRun], Awaitable[int | None]]


class PythonOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    callable: str | None = Field(
        default=None, pattern=_PATH, max_length=300, description='"package.module:function"'
    )
    entry_point: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description=f"Name registered under the {ENTRY_POINT_GROUP!r} entry point group",
    )

    @model_validator(mode="after")
    def _one(self) -> PythonOptions:
        if (self.callable is None) == (self.entry_point is None):
            raise ValueError("give exactly one of callable and entry_point")
        return self


def _refuse(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(
        f"python handler: {message}", errors=[{"pointer": f"{POINTER}/{field}", "message": message}]
    )


@lru_cache(maxsize=8)
def _registered(path: tuple[str, ...]) -> dict[str, EntryPoint]:
    # Keyed by sys.path: scanning every installed distribution for each window would cost
    # more than the window, and what is installed changes only when sys.path does.
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def registered_handlers() -> dict[str, EntryPoint]:
    return _registered(tuple(sys.path))


def _module_allowed(module: str, settings: Settings) -> bool:
    return any(module == p or module.startswith(p + ".") for p in settings.python_handler_modules)


def _import(path: str) -> object:
    module_name, _, attributes = path.partition(":")
    try:
        found: object = importlib.import_module(module_name)
    except ImportError as exc:
        raise _refuse("callable", f"cannot import {module_name!r}: {exc}") from None
    except Exception as exc:
        raise _refuse(
            "callable", f"importing {module_name!r} raised {type(exc).__name__}: {exc}"
        ) from None
    for attribute in attributes.split("."):
        try:
            found = getattr(found, attribute)
        except AttributeError:
            raise _refuse("callable", f"{path!r}: no attribute {attribute!r}") from None
    return found


def _load(options: PythonOptions, settings: Settings) -> tuple[str, object]:
    if options.callable is not None:
        module = options.callable.partition(":")[0]
        if not _module_allowed(module, settings):
            allowed = ", ".join(settings.python_handler_modules) or "none"
            raise _refuse(
                "callable",
                f"module {module!r} is not under BACKFILL_PYTHON_HANDLER_MODULES "
                f"(allowed: {allowed}); register the function under the entry point group "
                f"{ENTRY_POINT_GROUP!r} or ask an operator to allow the module",
            )
        found = _import(options.callable)
        # The path may walk attributes (Class.method), but not out of the allowed modules
        # into whatever they imported (allowed.module:asyncio.sleep).
        defined_in = getattr(found, "__module__", None) or ""
        if not _module_allowed(defined_in, settings):
            raise _refuse(
                "callable",
                f"{options.callable!r} is defined in {defined_in or 'an unknown module'!r}, "
                "outside BACKFILL_PYTHON_HANDLER_MODULES",
            )
        return "callable", found
    assert options.entry_point is not None
    registered = registered_handlers()
    entry = registered.get(options.entry_point)
    if entry is None:
        known = ", ".join(sorted(registered)) or "none"
        raise _refuse(
            "entry_point",
            f"no handler {options.entry_point!r} in entry point group {ENTRY_POINT_GROUP!r} "
            f"(registered: {known})",
        )
    try:
        return "entry_point", entry.load()
    except Exception as exc:
        raise _refuse(
            "entry_point", f"loading {entry.value!r} raised {type(exc).__name__}: {exc}"
        ) from None


def window_function(options: PythonOptions, settings: Settings) -> WindowFunction:
    """The function the options name, checked to be an async callable taking one window."""
    field, found = _load(options, settings)
    call = getattr(found, "__call__", None)  # noqa: B004 - an async __call__ counts too
    if not (inspect.iscoroutinefunction(found) or inspect.iscoroutinefunction(call)):
        raise _refuse(field, f"{found!r} is not an async function (async def f(window))")
    try:
        inspect.signature(cast(Callable[..., Any], found)).bind(object())
    except TypeError:
        raise _refuse(field, f"{found!r} must take exactly one argument, the window") from None
    except ValueError:
        pass  # no signature to read (some builtins); the call will tell
    return cast(WindowFunction, found)


class _PythonHandler:
    def __init__(self, function: WindowFunction) -> None:
        self._function = function

    async def run(self, window: WindowRun) -> int | None:
        result = await self._function(window)
        if result is None or (isinstance(result, int) and not isinstance(result, bool)):
            return result
        raise TypeError(f"the handler returned {result!r}; it must return an int or None")

    async def close(self) -> None:
        return None


class PythonHandlerType:
    name = "python"
    options_model: type[BaseModel] = PythonOptions

    async def validate(self, options: BaseModel, resources: Resources) -> None:
        assert isinstance(options, PythonOptions)
        window_function(options, resources.settings)

    async def open(self, options: BaseModel, resources: Resources) -> Handler:
        assert isinstance(options, PythonOptions)
        return _PythonHandler(window_function(options, resources.settings))
