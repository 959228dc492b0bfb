"""One structured line per request, in place of aiohttp's text access log (written by the
edge middleware, api/edge.py)."""

from __future__ import annotations

import time

import structlog
from aiohttp import web

log = structlog.get_logger(__name__)


def log_request(request: web.Request, status: int | None, started: float) -> None:
    """`status` None: no response was made, the handler was cancelled because the client
    went away (everything else has become a response in the error middleware)."""
    # The path only: query strings may carry tokens, and bodies are never logged.
    log.info(
        "http_request",
        method=request.method,
        path=request.path,
        status=status,
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
    )
