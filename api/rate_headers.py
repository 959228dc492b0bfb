"""X-RateLimit-Limit and X-RateLimit-Remaining on every answer to a counted request.

The auth middleware counts the request and notes the figures on it; the edge middleware
(api/edge.py) sets them outside the error middleware, so the headers reach error answers of
every API (a 404, a 422, Mage's errors sent as 200) as well as successes. A 429 carries its
own, set where the limit is refused."""

from __future__ import annotations

from aiohttp import web

from api.keys import RATE_LIMIT_KEY

LIMIT_HEADER = "X-RateLimit-Limit"
REMAINING_HEADER = "X-RateLimit-Remaining"


def note_rate_limit(request: web.Request, limit: int, remaining: int) -> None:
    request[RATE_LIMIT_KEY] = (limit, remaining)


def add_rate_limit_headers(request: web.Request, response: web.StreamResponse) -> None:
    counted = request.get(RATE_LIMIT_KEY)
    if counted is not None and not response.prepared:
        limit, remaining = counted
        response.headers.setdefault(LIMIT_HEADER, str(limit))
        response.headers.setdefault(REMAINING_HEADER, str(remaining))
