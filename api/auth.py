"""Bearer-key authentication, scopes and per-key rate limits for the API.

Every /v1 route needs a key: reads need `read`, writes need `write`, /v1/keys needs
`admin`. Another team's objects are answered exactly as if they did not exist (404), by
scoping every query to the caller's team. /ops/health is always open; /ops/ready,
/ops/overview and /metrics are open unless BACKFILL_OPS_AUTH is set; so are `/`, /docs and
/ui/ with their static files, which hold no data."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from api import key_cache
from api.compat.dialect import dialect_of
from api.keys import ACCESS_KEY, PRINCIPAL_KEY, SETTINGS_KEY
from api.rate_headers import note_rate_limit
from orchestrator.domain.keys import Principal, Scope
from orchestrator.errors import Unauthorized

_OPEN = ("/ops/health", "/openapi.json", "/docs", "/", "/ui")
# Pages and their static files hold no data; what they show comes from keyed API calls.
_OPEN_PREFIXES = ("/ui/", "/docs/")
# Any valid key may ask what it is (the dashboard decides which buttons to show from it).
_ANY_SCOPE = ("/v1/whoami",)
_OPS = ("/ops/", "/metrics")
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def key_header(request: web.Request) -> str | None:
    """The header besides Authorization that the request's dialect takes its key in (Mage's
    clients send `X-API-KEY`), if any."""
    dialect = dialect_of(request)
    return None if dialect is None else dialect.key_header


def presented_key(request: web.Request) -> str | None:
    """The key a request carries: a bearer token, or its dialect's key header."""
    token = bearer_token(request)
    if token is None:
        header = key_header(request)
        if header is not None:
            token = request.headers.get(header, "").strip() or None
    return token


def missing_key_detail(request: web.Request) -> str:
    """What to send, in the words of the header the request's API takes the key in."""
    header = key_header(request)
    if header is not None:
        return f"missing API key: send '{header}: <key>' (or 'Authorization: Bearer <key>')"
    return "missing bearer token: send 'Authorization: Bearer <key>'"


def needs_key(request: web.Request) -> bool:
    path = request.path
    if path in _OPEN or path.startswith(_OPEN_PREFIXES):
        return False
    if path.startswith(_OPS):
        return request.app[SETTINGS_KEY].ops_auth
    return True


def scope_for(request: web.Request) -> Scope:
    if request.path == "/v1/keys" or request.path.startswith("/v1/keys/"):
        return Scope.ADMIN  # managing keys is its own right, whatever the method
    return Scope.READ if request.method in _READ_METHODS else Scope.WRITE


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not needs_key(request) or (request.method == "OPTIONS" and dialect_of(request) is not None):
        # A browser's CORS preflight carries no key; the compatibility APIs answer it as
        # their systems do (Mage: 204 with its CORS headers), and it reads nothing.
        return await handler(request)
    access = request.app[ACCESS_KEY]
    token = presented_key(request)
    if token is None:
        raise Unauthorized(missing_key_detail(request))
    principal = await key_cache.authenticate(request.app, token)
    # Counted before the scope check: a known key's refused requests use its budget too,
    # and their answers carry the figures like any other.
    limit, remaining = await access.count_request(principal)
    if limit:
        # Set on the answer by the edge middleware (api/edge.py), errors included.
        note_rate_limit(request, limit, remaining)
    if request.path not in _ANY_SCOPE:
        access.require(principal, scope_for(request))
    request[PRINCIPAL_KEY] = principal
    return await handler(request)


def principal_of(request: web.Request) -> Principal:
    return request[PRINCIPAL_KEY]


def team_of(request: web.Request) -> int:
    return request[PRINCIPAL_KEY].team_id


def require(request: web.Request, scope: Scope) -> Principal:
    """For routes that need more than the method implies (key management needs admin)."""
    principal = request[PRINCIPAL_KEY]
    request.app[ACCESS_KEY].require(principal, scope)
    return principal
