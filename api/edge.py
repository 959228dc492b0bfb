"""The outermost middleware of the API: what every request gets whatever it asked, in one
layer rather than five (each layer is a coroutine and a call per request, and together they
cost a sixth of a `GET /v1/backfills/{id}`).

In the order a request meets them, as the five middlewares had it:
- metrics (api/metrics_middleware.py): every request counted by route template and status,
  a redirect or an unexpected exception included;
- request id (api/request_id.py): taken or made, bound to the log context, echoed on the
  answer;
- access log (api/access_log.py): one line with the final status;
- CORS (api/cors.py): preflights answered here, before auth (they carry no key); the
  origin header on every answer, errors included;
- rate-limit headers (api/rate_headers.py): on every counted answer, errors included.

The error middleware and auth sit inside this one, so whatever they answer arrives here as
a response."""

from __future__ import annotations

import time

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from api.access_log import log_request
from api.cors import add_origin_headers, preflight
from api.keys import REQUEST_ID_KEY
from api.metrics_middleware import observe
from api.rate_headers import add_rate_limit_headers
from api.request_id import HEADER, incoming_or_new


@web.middleware
async def edge_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    request_id = incoming_or_new(request)
    request[REQUEST_ID_KEY] = request_id
    bound = structlog.contextvars.bind_contextvars(request_id=request_id)
    # Stays None only when no response was made: the handler was cancelled because the
    # client went away (a cancelled request is logged, and not counted).
    status: int | None = None
    try:
        try:
            answer = preflight(request) if request.method == "OPTIONS" else None
            response = answer if answer is not None else await handler(request)
        except web.HTTPException as exc:  # redirects: the error middleware lets them through
            observe(request, exc.status, started)
            raise
        except Exception:
            observe(request, 500, started)
            raise
        status = response.status
        add_rate_limit_headers(request, response)
        add_origin_headers(request, response)
        response.headers[HEADER] = request_id
    finally:
        log_request(request, status, started)
        structlog.contextvars.reset_contextvars(**bound)
    observe(request, response.status, started)
    return response
