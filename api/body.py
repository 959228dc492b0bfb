"""Request bodies: read JSON, validate it against a request model, and turn pydantic's errors
into JSON-pointer field errors.

Validation runs on the decoded document (not the raw bytes) because the pointers are built by
walking that document alongside each error's `loc`."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, Generic, TypeVar

from aiohttp import web
from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from orchestrator.errors import BadRequest, ValidationFailed

MAX_BODY_BYTES = 1024 * 1024

T = TypeVar("T")


class RequestBody(Generic[T]):
    """A request model (a class or an annotated union) that bodies are parsed into."""

    def __init__(self, schema: Any) -> None:
        self._adapter: TypeAdapter[T] = TypeAdapter(schema)
        self._discriminators = frozenset(_walk_discriminators(self._adapter.core_schema))

    async def parse(self, request: web.Request) -> T:
        return self.validate(await read_json_object(request))

    def validate(self, document: dict[str, Any]) -> T:
        try:
            return self._adapter.validate_python(document)
        except ValidationError as exc:
            raise ValidationFailed(
                "The request body is invalid; see errors.",
                errors=self.field_errors(exc, document),
            ) from None

    def field_errors(self, exc: ValidationError, document: Any) -> list[dict[str, Any]]:
        # include_input=False: the offending value is never echoed back (it may be a secret
        # pasted into the wrong field).
        return [
            {
                "pointer": _pointer(error, document, self._discriminators),
                "message": _message(error),
            }
            for error in exc.errors(include_url=False, include_input=False)
        ]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; BadRequest otherwise. Oversized bodies raise aiohttp's 413
    from `read()`."""
    raw = await request.read()
    if not raw.strip():
        raise BadRequest("The request body must be a JSON object; it is empty.")
    try:
        # NaN and Infinity are Python extensions, not JSON; other clients could not send them.
        document = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(document, dict):
        raise BadRequest("The request body must be a JSON object.")
    return document


def _pointer(error: ErrorDetails, document: Any, discriminators: frozenset[str]) -> str:
    """Walk `loc` through the document, keeping only the steps that are places in it.

    pydantic also puts schema steps into `loc`: a discriminated union's tag ("table") and a
    plain union's member label ("int", "constrained-str"). Those are not in the document, so
    a pointer that kept them would name a field the client never sent."""
    loc = error["loc"]
    steps: list[str | int] = []
    node: Any = document
    tag_seen = False
    for index, step in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(node, Mapping):
            # A tagged union's tag comes first at its object, and equals the value of the
            # discriminator field in it; checked before keys so a field of the same name as
            # the tag still resolves.
            if not tag_seen and any(
                field in node and str(node[field]) == step for field in discriminators
            ):
                tag_seen = True
                continue
            if step in node:
                steps.append(step)
                node = node[step]
                tag_seen = False
            elif last and error["type"] == "missing":
                steps.append(step)
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            steps.append(step)
            node = node[step]
            tag_seen = False
        # Anything else is a schema step below a value that has no children.
    if error["type"] in ("union_tag_not_found", "union_tag_invalid"):
        field = _quoted_field(error.get("ctx", {}).get("discriminator"))
        if field is not None:
            steps.append(field)
    return "".join("/" + _escape(step) for step in steps)


def _message(error: ErrorDetails) -> str:
    if error["type"] == "union_tag_not_found":
        return "Field required"
    if error["type"] == "union_tag_invalid":
        # pydantic's own message quotes the rejected tag; name the accepted ones instead.
        expected = error.get("ctx", {}).get("expected_tags", "one of the documented values")
        return f"Input should be one of {expected}"
    return error["msg"]


def _quoted_field(discriminator: object) -> str | None:
    # pydantic reports a field discriminator as "'kind'"; a callable one has no quotes.
    if isinstance(discriminator, str) and len(discriminator) > 2 and discriminator[0] == "'":
        return discriminator.strip("'")
    return None


def _escape(step: str | int) -> str:
    # RFC 6901: "~" first, so the "~1" made for "/" is not escaped again.
    return str(step).replace("~", "~0").replace("/", "~1")


def _walk_discriminators(schema: Any) -> Iterator[str]:
    """The field names that tagged unions in a core schema switch on (e.g. "kind")."""
    if isinstance(schema, Mapping):
        if schema.get("type") == "tagged-union" and isinstance(schema.get("discriminator"), str):
            yield schema["discriminator"]
        for value in schema.values():
            yield from _walk_discriminators(value)
    elif isinstance(schema, list | tuple):
        for value in schema:
            yield from _walk_discriminators(value)
