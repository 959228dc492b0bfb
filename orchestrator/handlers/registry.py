"""Handler types by name. A new kind of transfer is one module and one line here."""

from __future__ import annotations

from orchestrator.errors import ValidationFailed
from orchestrator.handlers.base import HandlerType
from orchestrator.handlers.http import HttpHandlerType
from orchestrator.handlers.noop import NoopHandlerType
from orchestrator.handlers.python import PythonHandlerType
from orchestrator.handlers.sql import SqlHandlerType

HANDLER_TYPES: dict[str, HandlerType] = {
    t.name: t for t in (NoopHandlerType(), SqlHandlerType(), HttpHandlerType(), PythonHandlerType())
}


def handler_type(name: str) -> HandlerType:
    found = HANDLER_TYPES.get(name)
    if found is None:
        raise ValidationFailed(
            f"unknown handler type {name!r}",
            errors=[
                {"pointer": "/handler/type", "message": f"must be one of {sorted(HANDLER_TYPES)}"}
            ],
        )
    return found
