"""Reading BACKFILL_* for the CLI: invalid values become one line naming the variable and what
it accepts (exit 2), and variables that match no setting are pointed out with the closest
name, since pydantic-settings ignores them without a word."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping

from pydantic import ValidationError
from pydantic_settings import SettingsError

from orchestrator.cli.client import TOKEN_ENV, URL_ENV
from orchestrator.cli.errors import UsageError
from orchestrator.settings import Settings

PREFIX = "BACKFILL_"
# Read by the CLI's REST commands rather than by Settings.
CLIENT_VARIABLES = frozenset({URL_ENV, TOKEN_ENV})


def variable_of(field: str) -> str:
    return f"{PREFIX}{field.upper()}"


def known_variables() -> frozenset[str]:
    return frozenset(variable_of(name) for name in Settings.model_fields) | CLIENT_VARIABLES


# Settings whose values hold DSNs or secrets inside a structure (a JSON object of sources).
SECRET_SETTINGS = frozenset({"sources", "signing_secrets", "sink_brokers"})


def _is_secret(field: str) -> bool:
    info = Settings.model_fields.get(field)
    return field in SECRET_SETTINGS or (info is not None and "Secret" in str(info.annotation))


def describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        message = str(error["msg"]).removeprefix("Value error, ")
        # A DSN or secret never reaches the terminal or a log.
        shown = "" if _is_secret(field) else f"={error.get('input')!r}"
        parts.append(f"{variable_of(field)}{shown}: {message}")
    return "; ".join(parts)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise UsageError(describe(exc)) from None
    except SettingsError as exc:
        # pydantic-settings failing to decode a complex value before validation.
        raise UsageError(str(exc).replace('"', "")) from None


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[tuple[str, str | None]]:
    """(variable, closest known name or None) for each BACKFILL_* variable no setting reads."""
    env = os.environ if environ is None else environ
    known = known_variables()
    found = []
    for name in sorted(env):
        upper = name.upper()
        if not upper.startswith(PREFIX) or upper in known:
            continue
        # Compared without the prefix every name shares, which would make anything "close".
        close = difflib.get_close_matches(
            upper.removeprefix(PREFIX), sorted(k.removeprefix(PREFIX) for k in known), n=1,
            cutoff=0.6,
        )  # fmt: skip
        found.append((name, PREFIX + close[0] if close else None))
    return found


def unknown_variable_lines(environ: Mapping[str, str] | None = None) -> list[str]:
    return [
        f"{name} matches no setting and is ignored"
        + (f"; did you mean {closest}?" if closest else "")
        for name, closest in unknown_variables(environ)
    ]
