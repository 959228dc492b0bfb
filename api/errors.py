"""The error middleware: every failure leaves the API as one problem+json shape.

Domain errors carry their own status and code; aiohttp's HTTP exceptions (no route, wrong
method, body too large) are mapped onto the same shape; anything else is a bug, logged with
its traceback and answered with a generic 500 that names the request id."""

from __future__ import annotations

from http import HTTPStatus

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from api.compat.dialect import dialect_of
from api.compat.failure import Failure, Renderer
from api.problems import problem_response
from api.request_id import request_id_of
from orchestrator.errors import DatabaseUnavailable, OrchestratorError, RateLimited, Unauthorized

log = structlog.get_logger(__name__)

RETRY_AFTER_SECONDS = 5

# Codes for the HTTP errors aiohttp raises itself; the rest fall back to the status phrase.
_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except OrchestratorError as exc:
        failure = _from_orchestrator_error(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects and the like are answers, not errors
        failure = _from_http_exception(request, exc)
    except Exception as exc:
        if isinstance(exc, DatabaseUnavailable):
            # The database is down or restarting: say so, and when to try again, rather
            # than a 500 (nothing is wrong with the request) or a hang.
            log.warning("database_unavailable", error=repr(exc))
            failure = Failure(
                status=503,
                code="service_unavailable",
                title="Service unavailable",
                detail="The database cannot be reached right now; retry shortly.",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
            return renderer_for(request)(request, failure)
        log.exception("unhandled_error", method=request.method, path=request.path)
        failure = Failure(
            status=500,
            code="internal_error",
            title="Internal error",
            detail="An unexpected error occurred. Quote the request id when reporting it.",
        )
    # The compatibility APIs answer in their own systems' error shapes.
    return renderer_for(request)(request, failure)


def render_problem(request: web.Request, failure: Failure) -> web.Response:
    return problem_response(
        headers=failure.headers,
        status=failure.status,
        code=failure.code,
        title=failure.title,
        detail=failure.detail,
        request_id=request_id_of(request),
        errors=failure.errors,
        extra=failure.extra,
    )


def renderer_for(request: web.Request) -> Renderer:
    dialect = dialect_of(request)
    return render_problem if dialect is None else dialect.render_error


def _from_orchestrator_error(exc: OrchestratorError) -> Failure:
    if exc.status >= 500:
        # Server-side trouble (a dependency down) is ours to look into, not the client's.
        log.warning("request_failed", code=exc.code, status=exc.status, exc_info=True)
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="backfill"'
    elif exc.status == 503:
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    elif isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
        headers["X-RateLimit-Limit"] = str(exc.limit)
        headers["X-RateLimit-Remaining"] = "0"
    return Failure(
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        errors=exc.errors,
        extra=exc.extra or {},
        headers=headers,
    )


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> Failure:
    status = exc.status
    phrase = _phrase(status)
    headers: dict[str, str] = {}
    if isinstance(exc, web.HTTPNotFound):
        detail = "No resource exists at this path."
    elif isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = sorted(exc.allowed_methods)
        headers["Allow"] = ", ".join(allowed)
        detail = f"{exc.method} is not allowed here; allowed: {', '.join(allowed)}."
    elif isinstance(exc, web.HTTPRequestEntityTooLarge):
        detail = f"The request body is larger than {request.client_max_size} bytes."
    else:
        detail = phrase + "."
    return Failure(
        status=status,
        code=_HTTP_CODES.get(status) or phrase.lower().replace(" ", "_").replace("-", "_"),
        title=phrase,
        detail=detail,
        headers=headers,
        from_http=True,
    )


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
