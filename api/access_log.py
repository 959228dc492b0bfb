"""One structured line per request, in place of aiohttp's text access log."""

from __future__ import annotations

import time

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

log = structlog.get_logger(__name__)


@web.middleware
async def access_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    # Stays None only when no response was made: the handler was cancelled because the
    # client went away (everything else has become a response in the error middleware).
    status: int | None = None
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        # The path only: query strings may carry tokens, and bodies are never logged.
        log.info(
            "http_request",
            method=request.method,
            path=request.path,
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
        )
