"""One error family. Each error carries a stable machine-readable code and an HTTP status,
so the API renders every one of them the same way and workers can tell them apart."""

from __future__ import annotations

from abc import ABC
from typing import Any


class OrchestratorError(Exception):
    code = "internal_error"
    status = 500
    title = "Internal error"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.extra = extra or {}


class BadRequest(OrchestratorError):
    code = "bad_request"
    status = 400
    title = "Bad request"


class ValidationFailed(OrchestratorError):
    code = "validation_failed"
    status = 422
    title = "Validation failed"


class NotFound(OrchestratorError):
    code = "not_found"
    status = 404
    title = "Not found"


class Conflict(OrchestratorError):
    code = "conflict"
    status = 409
    title = "Conflict"


class InvalidTransition(OrchestratorError):
    """A state change that the state machine does not allow from the current state."""

    code = "invalid_state_transition"
    status = 422
    title = "Invalid state transition"

    def __init__(
        self, entity: str, current: str, requested: str, valid: list[str], *, action: bool = False
    ) -> None:
        valid_text = ", ".join(valid) if valid else "none (the state is final)"
        if action:
            detail = f"cannot {requested} a {entity} that is {current}; valid actions: {valid_text}"
            extra = {
                "current_state": current,
                "requested_action": requested,
                "valid_actions": valid,
            }
        else:
            detail = f"cannot move {entity} from {current!r} to {requested!r}; valid: {valid_text}"
            extra = {"current_state": current, "requested_state": requested, "valid_states": valid}
        super().__init__(detail, extra=extra)
        self.current = current
        self.requested = requested
        self.valid = valid


class SourceError(OrchestratorError):
    """A problem with a source table detected while validating or planning (no key, etc.)."""

    code = "invalid_source"
    status = 422
    title = "Invalid source"


class Unavailable(OrchestratorError):
    code = "service_unavailable"
    status = 503
    title = "Service unavailable"


class DatabaseUnavailable(ABC):  # noqa: B024 (a marker: nothing to implement)
    """The database could not be reached or dropped the connection, as opposed to refusing a
    statement. Storage registers the driver's failures as virtual subclasses
    (`orchestrator.storage.database`), so the layers above recognise them with `isinstance`
    without importing the driver; the API answers them 503 with Retry-After."""


class Unauthorized(OrchestratorError):
    """No credentials, or credentials that are not (or no longer) valid."""

    code = "unauthorized"
    status = 401
    title = "Unauthorized"


class Forbidden(OrchestratorError):
    """A valid key without the scope the operation needs."""

    code = "forbidden"
    status = 403
    title = "Forbidden"


class RateLimited(OrchestratorError):
    code = "rate_limited"
    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, *, limit: int, retry_after: int) -> None:
        super().__init__(detail, extra={"limit": limit, "retry_after": retry_after})
        self.limit = limit
        self.retry_after = retry_after


class NotGranted(Forbidden):
    """A source, table or statement outside what an operator granted the team. The same
    words whether or not the source or table exists, so a refusal reveals neither."""

    code = "not_granted"
    title = "Not granted"
    retryable = False  # a run refused for it is refused again until an operator grants it


class SourceRefused(OrchestratorError):
    """A source whose database role breaks the least-privilege rules (docs/security.md) and
    is not marked unsafe. The reasons go to the operator's log, not to API users."""

    code = "source_refused"
    status = 503
    title = "Source refused"
    retryable = False
