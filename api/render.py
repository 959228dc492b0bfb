"""JSON responses: response models dumped in JSON mode, or plain mappings made JSON-safe."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from orchestrator import jsoncodec


def iso_datetime(value: datetime) -> str:
    """ISO 8601 with a numeric offset, the one way every timestamp leaves the API."""
    # Postgres hands back aware datetimes; a naive one would be a bug upstream, and reading
    # it as UTC beats rendering a time clients cannot place.
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def _datetimes_to_iso(value: Any) -> Any:
    # pydantic would write UTC as "Z"; response models write "+00:00", and a client should
    # not see both styles from one API.
    if isinstance(value, datetime):
        return iso_datetime(value)
    if isinstance(value, Mapping):
        return {key: _datetimes_to_iso(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_datetimes_to_iso(item) for item in value]
    return value


def json_response(
    payload: BaseModel | Mapping[str, Any],
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    content_type: str = "application/json",
) -> web.Response:
    if isinstance(payload, BaseModel):
        body = payload.model_dump(mode="json")
    else:
        # Mappings come from the service (overview) or error extras and may hold datetimes,
        # UUIDs or enums; str() keeps an odd value from turning a reply into a 500.
        body = to_jsonable_python(_datetimes_to_iso(payload), fallback=str)
    return json_ready_response(body, status=status, headers=headers, content_type=content_type)


def json_ready_response(
    body: Any,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    content_type: str = "application/json",
) -> web.Response:
    """`body` made of JSON's own types already (the bodies of `api.views`)."""
    # Compact UTF-8 bytes straight into the response: aiohttp's json_response would take a
    # str and encode it again.
    return web.Response(
        body=jsoncodec.dumps(body),
        status=status,
        headers=headers,
        content_type=content_type,
        charset="utf-8",
    )
