"""Reading a message body into its schema, or the reason it is poison.

Every way a body can be bad (not UTF-8, not JSON, nested deeper than the parser goes, not
the schema) is the body's fault and the same on every delivery, so the consumers
dead-letter it at once with this reason instead of requeueing it until the delivery
limit."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

T = TypeVar("T")


@dataclass(frozen=True)
class Poison:
    """Why a body cannot be read; what goes in the dead letter's reason header."""

    reason: str


def describe_validation(exc: ValidationError, what: str = "command") -> str:
    parts = ["/".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in exc.errors()[:10]]
    return f"invalid {what}: " + "; ".join(parts)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def read_body(body: bytes, schema: TypeAdapter[Any], what: str) -> Any | Poison:
    """The body validated by `schema`, or Poison saying what is wrong with it."""
    try:
        # NaN and Infinity are Python extensions, refused as the API refuses them.
        payload = json.loads(body, parse_constant=_reject_constant)
    except RecursionError:
        # json raises it (not a ValueError) for nesting deeper than the interpreter's limit.
        return Poison("not JSON this service reads: nested too deeply")
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return Poison(f"not JSON: {exc}")
    try:
        return schema.validate_python(payload)
    except ValidationError as exc:
        return Poison(describe_validation(exc, what))
    except RecursionError:
        return Poison(f"invalid {what}: nested too deeply")
