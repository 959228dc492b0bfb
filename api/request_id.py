"""Request ids: taken from the caller when sane, otherwise made up; on every log line and
every response, so a client's report can be matched to the server's logs."""

from __future__ import annotations

import random
import re

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from api.keys import REQUEST_ID_KEY

HEADER = "X-Request-ID"
# Ids end up in logs and headers; anything else (spaces, newlines, huge values) is replaced
# rather than trusted.
_SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


def incoming_or_new(request: web.Request) -> str:
    given = request.headers.get(HEADER)
    if given is not None and _SANE_ID.fullmatch(given):
        return given
    # 32 hex digits as before (a uuid4's), from the process's own generator: an id matches
    # lines of a log and guards nothing, so it need not cost a system call per request.
    return f"{random.getrandbits(128):032x}"


def request_id_of(request: web.Request) -> str | None:
    return request.get(REQUEST_ID_KEY)


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The ops app's request ids; the API's come with its edge middleware (api/edge.py)."""
    request_id = incoming_or_new(request)
    request[REQUEST_ID_KEY] = request_id
    # bind/reset rather than the bound_contextvars context manager: the same, without a
    # generator made and driven per request.
    bound = structlog.contextvars.bind_contextvars(request_id=request_id)
    try:
        # The error middleware sits inside this one, so errors arrive here as responses too.
        response = await handler(request)
    finally:
        structlog.contextvars.reset_contextvars(**bound)
    response.headers[HEADER] = request_id
    return response
