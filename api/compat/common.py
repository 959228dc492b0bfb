"""What the compatibility APIs share: reading bodies that may be empty, and timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from api.body import read_json_object


async def read_optional_json(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object, or {} when there is none (Sequin's create is sent without
    a body). BadRequest for anything that is not a JSON object."""
    if not (await request.read()).strip():
        return {}
    return await read_json_object(request)


def utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
