"""CORS for browser clients of every API: a preflight (`OPTIONS`) is answered by the edge
middleware (api/edge.py), without a key, with the methods the path takes and the headers a
client may send; every answer then names the allowed origin.

Origins come from BACKFILL_CORS_ORIGINS. Unset, the compatibility APIs allow `*` (the pages
of the systems they copy show `Access-Control-Allow-Origin: *` on every answer) and the
native API allows no origin: it is for services and scripts, and an operator who wants a
browser app on it names that app's origin. This middleware has the last word on the
origin header, so a configured list also narrows what the compatibility modules set.

Hand-written rather than aiohttp-cors: that library is configured route by route and
answers preflights with routes of its own, which clash with Mage's documented `OPTIONS`
routes; the policy here is per API, decided by the path."""

from __future__ import annotations

from aiohttp import web

from api.compat.dialect import DIALECTS_KEY, Dialect, dialect_of
from api.keys import SETTINGS_KEY
from orchestrator.settings import Settings

ALLOW_ORIGIN = "Access-Control-Allow-Origin"
# What this service's clients send: the key, JSON, and the optional ones; plus the header
# each dialect takes its key in (allowed_headers).
REQUEST_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID")
# What a browser script may read from an answer besides the simple headers.
EXPOSED_HEADERS = "Location, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-Request-ID"
MAX_AGE_SECONDS = 600


def origins_for(settings: Settings, dialect: Dialect | None) -> list[str]:
    """`dialect` None: the native API."""
    if settings.cors_origins is not None:
        return settings.cors_origins
    return [] if dialect is None else ["*"]


def allowed_headers(dialects: tuple[Dialect, ...]) -> str:
    keys = {dialect.key_header for dialect in dialects if dialect.key_header is not None}
    return ", ".join(sorted({*REQUEST_HEADERS, *keys}))


def allowed_origin(origins: list[str], origin: str | None) -> str | None:
    """The value for Access-Control-Allow-Origin, or None when this origin is not allowed."""
    if "*" in origins:
        return "*"
    if origin is not None and origin in origins:
        return origin
    return None


def preflight(request: web.Request) -> web.Response | None:
    """204 with the path's methods, for a path that exists and has no OPTIONS route of its
    own (Mage's answer theirs as Mage does); None to let routing answer (404, Mage)."""
    error = request.match_info.http_exception
    if not isinstance(error, web.HTTPMethodNotAllowed):
        return None
    methods = ", ".join(sorted({*error.allowed_methods, "OPTIONS"}))
    asked = request.headers.get("Access-Control-Request-Headers", "").strip()
    return web.Response(
        status=204,
        headers={
            "Allow": methods,
            "Access-Control-Allow-Methods": methods,
            # Echoing what the browser asks for admits any header, as Mage's "*" does; keys
            # travel in headers, never cookies, so no header is a credential by accident.
            "Access-Control-Allow-Headers": asked
            or allowed_headers(request.app.get(DIALECTS_KEY, ())),
            "Access-Control-Max-Age": str(MAX_AGE_SECONDS),
        },
    )


def add_origin_headers(request: web.Request, response: web.StreamResponse) -> None:
    """The origin header on an answer (errors and preflights included), or its removal."""
    if response.prepared:
        return
    origins = origins_for(request.app[SETTINGS_KEY], dialect_of(request))
    allowed = allowed_origin(origins, request.headers.get("Origin"))
    if allowed is None:
        response.headers.pop(ALLOW_ORIGIN, None)
    else:
        response.headers[ALLOW_ORIGIN] = allowed
        response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    if allowed != "*" and origins:
        # The answer depends on the Origin header: caches must keep one per origin.
        response.headers.add("Vary", "Origin")
