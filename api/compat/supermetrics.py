"""Supermetrics' Data Transfers backfill API: `/v1/teams/{team_id}/...`.

A Supermetrics transfer is a `date_range` target (transfer_id = target id); its backfills are
this service's date-range backfills with one run per UTC day, newest day first. They are
shown with the fields of Supermetrics' `Backfill` schema inside its envelope
(`{"meta": {"request_id"}, "data"}`), and errors come in its shape
(`{"meta", "error": {"code", "message", "description"}}`) with its codes.

What Supermetrics cannot show is not found here: drafts (Mage's not-yet-started backfills),
table backfills (Sequin's) and another team's objects all answer 404, exactly as a backfill
that does not exist."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from http import HTTPStatus
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, ConfigDict, PlainSerializer

from api.auth import principal_of, team_of
from api.body import read_json_object
from api.compat.common import utc
from api.compat.dialect import Dialect
from api.compat.failure import Failure
from api.keys import SERVICE_KEY
from api.render import json_response
from api.request_id import request_id_of
from orchestrator.domain.models import Backfill, IntervalType, RunOrder, Target, TargetKind
from orchestrator.domain.specs import BIGINT_MAX, BackfillSpec
from orchestrator.domain.states import BackfillState
from orchestrator.errors import Conflict, InvalidTransition, NotFound, OrchestratorError
from orchestrator.service import BackfillService

routes = web.RouteTableDef()

_TEAM = "/v1/teams/{team_id}"
_TRANSFER_BACKFILLS = _TEAM + "/transfers/{transfer_id}/backfills"
_BACKFILLS = _TEAM + "/backfills"

# The seed documents this header on every response, success or error.
_CORS = {"Access-Control-Allow-Origin": "*"}

# The schema's limits on strings.
_TEXT_MAX = 255
_RUN_ERROR_MAX = 1000

B = BackfillState
Status = Literal["CREATED", "SCHEDULED", "RUNNING", "FAILED", "COMPLETED", "CANCELLED"]

# Drafts have no Supermetrics status: they are not Supermetrics objects (see module doc).
# Paused has none either; it is waiting, and nothing new starts until it is resumed, so it
# reads as SCHEDULED: still incomplete, still listed, still cancellable.
_STATUS_OF: dict[BackfillState, Status] = {
    B.CREATED: "CREATED",
    B.SCHEDULED: "SCHEDULED",
    B.RUNNING: "RUNNING",
    B.PAUSED: "SCHEDULED",
    B.FAILED: "FAILED",
    B.COMPLETED: "COMPLETED",
    B.CANCELLED: "CANCELLED",
}
# What `GET /backfills` lists: Supermetrics' incomplete statuses, paused included.
_INCOMPLETE = [B.CREATED, B.SCHEDULED, B.RUNNING, B.PAUSED, B.FAILED]


# ------------------------------------------------------------------------------- models


def _utc_seconds(value: datetime) -> str:
    # The seed's timestamps are whole-second UTC with a Z: "2024-02-01T09:00:00Z".
    return utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


UtcTime = Annotated[datetime, PlainSerializer(_utc_seconds, return_type=str)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TransferBackfillRunError(_Model):
    transfer_run_date: date
    error: str


class SupermetricsBackfill(_Model):
    """The seed's `Backfill` schema, field for field."""

    transfer_backfill_id: int
    transfer_id: int
    range_start_date: date
    range_end_date: date
    created_time: UtcTime
    # None only for a backfill no API key created (a `command.create` from the queue, or the
    # native API): Supermetrics has no such backfills, and no user id is invented for them.
    created_user_id: int | None
    removed_time: UtcTime | None
    removed_user_id: int | None
    start_time: UtcTime | None
    end_time: UtcTime | None
    status: Status
    transfer_runs_total: int
    transfer_runs_created: int
    transfer_runs_completed: int
    transfer_runs_failed: int
    error_report: list[TransferBackfillRunError]


class ResponseMeta(_Model):
    request_id: str | None


class BackfillResponse(_Model):
    meta: ResponseMeta
    data: SupermetricsBackfill


class BackfillListResponse(_Model):
    meta: ResponseMeta
    data: list[SupermetricsBackfill]


class ErrorDetail(_Model):
    code: str
    message: str
    description: str


class ErrorResponse(_Model):
    meta: ResponseMeta
    error: ErrorDetail


# ------------------------------------------------------------------------------ mapping


def is_transfer_backfill(backfill: Backfill) -> bool:
    """Whether Supermetrics can show it: a started date-range backfill."""
    return (
        backfill.kind == TargetKind.DATE_RANGE
        and backfill.state in _STATUS_OF
        and backfill.range_start is not None
        and backfill.range_end is not None
    )


def supermetrics_status(state: BackfillState) -> Status:
    return _STATUS_OF[state]


def end_time(backfill: Backfill) -> datetime | None:
    """When it reached its final (or failed) status; none while it is still going. A failed
    backfill that is cancelled ends at the cancellation, as the seed says."""
    return {
        B.COMPLETED: backfill.completed_at,
        B.FAILED: backfill.failed_at,
        B.CANCELLED: backfill.cancelled_at,
    }.get(backfill.state)


def range_dates(backfill: Backfill) -> tuple[date, date]:
    """The first and last day covered, inclusive, in the backfill's time zone."""
    assert backfill.range_start is not None
    assert backfill.range_end is not None
    zone = ZoneInfo(backfill.time_zone or "UTC")
    last = backfill.range_end
    if not backfill.end_is_date and not backfill.end_inclusive:
        # An exclusive datetime end: the last day is the one holding the last instant
        # before it (an end at midnight does not cover that day).
        last -= timedelta(microseconds=1)
    # A date end is stored as that date's local midnight and includes its whole day.
    return backfill.range_start.astimezone(zone).date(), last.astimezone(zone).date()


def _run_errors(backfill: Backfill) -> list[TransferBackfillRunError]:
    zone = ZoneInfo(backfill.time_zone or "UTC")
    return [
        TransferBackfillRunError(
            transfer_run_date=entry.window_start.astimezone(zone).date(),
            error=entry.error[:_RUN_ERROR_MAX],
        )
        for entry in backfill.error_report
        if entry.window_start is not None
    ]


def to_supermetrics(backfill: Backfill) -> SupermetricsBackfill:
    start, end = range_dates(backfill)
    return SupermetricsBackfill(
        transfer_backfill_id=backfill.id,
        transfer_id=backfill.target_id,
        range_start_date=start,
        range_end_date=end,
        created_time=backfill.created_at,
        created_user_id=backfill.created_by,
        removed_time=backfill.cancelled_at,
        removed_user_id=backfill.cancelled_by,
        start_time=backfill.started_at,
        end_time=end_time(backfill),
        status=supermetrics_status(backfill.state),
        transfer_runs_total=backfill.runs_total,
        transfer_runs_created=backfill.runs_created,
        transfer_runs_completed=backfill.runs_completed,
        transfer_runs_failed=backfill.runs_failed,
        error_report=_run_errors(backfill),
    )


# ------------------------------------------------------------------------------- errors


class SupermetricsError(OrchestratorError):
    """A refusal in Supermetrics' own words: the error middleware carries `code`, `title`
    (the message) and `detail` (the description) through to `render_error` unchanged."""

    def __init__(self, status: int, code: str, message: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.code = code
        self.title = message


def invalid_parameter(description: str) -> SupermetricsError:
    return SupermetricsError(400, "INVALID_PARAMETER", "Invalid Parameter", description)


def not_found(resource: str) -> SupermetricsError:
    # The seed's wording; the same whether it is missing or another team's.
    return SupermetricsError(
        404,
        "NOT_FOUND",
        "Not Found",
        f"The requested {resource} could not be found or you do not have access to it.",
    )


# Native failures (auth, the router, the service) by status: Supermetrics' code and message.
_BY_STATUS: dict[int, tuple[str, str]] = {
    400: ("INVALID_PARAMETER", "Invalid Parameter"),
    401: ("API_KEY_INVALID", "Invalid API key"),
    403: ("ACCESS_DENIED", "Access Denied"),
    404: ("NOT_FOUND", "Not Found"),
    405: ("METHOD_NOT_ALLOWED", "Method Not Allowed"),
    # Supermetrics documents no 409; a clash is answered as unprocessable (see render_error).
    409: ("CONFLICT", "Conflict"),
    413: ("PAYLOAD_TOO_LARGE", "Payload Too Large"),
    422: ("UNPROCESSABLE_ENTITY", "Unprocessable Entity"),
    429: ("TOO_MANY_REQUESTS", "Too Many Requests"),
    500: ("INTERNAL_SERVER_ERROR", "Internal Server Error"),
    503: ("SERVICE_UNAVAILABLE", "Service Unavailable"),
}
_INTERNAL = "An unexpected error occurred. Please try again later or contact support."
# The seed page's own descriptions, where it gives one for a status.
_SEED_DESCRIPTIONS = {
    401: "Provided API key was invalid.",
    403: "You do not have permission to perform this operation.",
}


def _clip(text: str, limit: int = _TEXT_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _code_and_message(failure: Failure) -> tuple[str, str]:
    if failure.code.isupper():  # raised by this module as a SupermetricsError
        return failure.code, failure.title
    known = _BY_STATUS.get(failure.status)
    if known is not None:
        return known
    phrase = _phrase(failure.status)
    return phrase.upper().replace(" ", "_").replace("-", "_"), phrase


def _description(failure: Failure) -> str:
    if failure.status >= 500 and failure.status != 503:
        return _INTERNAL  # never a server-side detail; meta.request_id is quoted instead
    if failure.status in _SEED_DESCRIPTIONS:
        return _SEED_DESCRIPTIONS[failure.status]
    if failure.errors:
        # A service validation error: its field messages say more than its summary.
        return "; ".join(
            f"{str(e.get('pointer') or e.get('parameter') or '').strip('/') or 'body'}: "
            f"{e.get('message', '')}"
            for e in failure.errors
        )
    return failure.detail


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def render_error(request: web.Request, failure: Failure) -> web.Response:
    code, message = _code_and_message(failure)
    body = ErrorResponse(
        meta=_meta(request),
        error=ErrorDetail(
            code=code, message=_clip(message), description=_clip(_description(failure))
        ),
    )
    # Rate-limit, Retry-After, Allow and WWW-Authenticate headers are kept as they came.
    status = 422 if failure.status == 409 else failure.status
    return json_response(body, status=status, headers={**failure.headers, **_CORS})


# ------------------------------------------------------------------------------ requests

_DIGITS = re.compile(r"[0-9]{1,19}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def path_id(request: web.Request, name: str) -> int:
    """An id from the path: an integer from 1 to 2^63-1, else 400 (the seed's path
    parameters are int64 with minimum 1, and 400 is its answer to malformed parameters)."""
    raw = request.match_info[name]
    if _DIGITS.fullmatch(raw) and 1 <= int(raw) <= BIGINT_MAX:
        return int(raw)
    raise invalid_parameter(f"{name} must be an integer from 1 to {BIGINT_MAX}.")


def own_team(request: web.Request, resource: str) -> int:
    """The path's team id, which must be the key's: another team's is not found, in the
    same words as a missing `resource`, so nothing tells the two apart."""
    team_id = path_id(request, "team_id")
    if team_id != team_of(request):
        raise not_found(resource)
    return team_id


def check_fields(body: dict[str, Any], fields: tuple[str, ...]) -> None:
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise invalid_parameter(
            f"Unknown field(s): {', '.join(unknown)[:100]}. "
            f"This request takes {' and '.join(fields)}."
        )
    for name in fields:
        if name not in body:
            raise invalid_parameter(f"{name} is required.")


def parse_date(body: dict[str, Any], name: str) -> date:
    value = body[name]
    if isinstance(value, str) and _DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass  # the right shape but no such day (2024-02-30)
    raise invalid_parameter(f"{name} must be a date as YYYY-MM-DD.")


def parse_range(body: dict[str, Any]) -> tuple[date, date]:
    """The create body: both dates required and inclusive, start not after end."""
    check_fields(body, ("range_start", "range_end"))
    start, end = parse_date(body, "range_start"), parse_date(body, "range_end")
    if start > end:
        raise invalid_parameter(f"range_start ({start}) must not be after range_end ({end}).")
    return start, end


def parse_status(body: dict[str, Any]) -> None:
    """The update body: `{"status": "CANCELLED"}`, the only change Supermetrics offers."""
    check_fields(body, ("status",))
    if body["status"] != "CANCELLED":
        raise invalid_parameter('status must be "CANCELLED", the only status that can be set.')


def daily_spec(transfer: Target, start: date, end: date) -> BackfillSpec:
    # Date ends are inclusive; one run per UTC day, the newest day first, as Supermetrics
    # runs a backfill.
    return BackfillSpec(
        target=transfer.id,
        start=start,
        end=end,
        interval_type=IntervalType.DAY,
        interval_units=1,
        time_zone="UTC",
        order=RunOrder.NEWEST_FIRST,
    )


def _check_run_limit(service: BackfillService, start: date, end: date) -> None:
    # The service refuses too many runs too, but in terms of intervals, which this API does
    # not let the caller choose; say it in days.
    days = (end - start).days + 1
    limit = service.settings.max_runs_per_backfill
    if days > limit:
        raise SupermetricsError(
            422,
            "UNPROCESSABLE_ENTITY",
            "Unprocessable Entity",
            f"The range spans {days} days, more than the limit of {limit} transfer runs per "
            "backfill; split it into smaller ranges.",
        )


# ------------------------------------------------------------------------------ lookups


async def _transfer(service: BackfillService, transfer_id: int, team_id: int) -> Target:
    try:
        target = await service.get_target(transfer_id, team_id=team_id)
    except NotFound:
        raise not_found("transfer") from None
    if target.kind != TargetKind.DATE_RANGE:
        raise not_found("transfer")  # a table target is Sequin's sink, not a transfer
    return target


async def _backfill(service: BackfillService, backfill_id: int, team_id: int) -> Backfill:
    try:
        backfill = await service.get_backfill(backfill_id, team_id=team_id)
    except NotFound:
        raise not_found("backfill") from None
    if not is_transfer_backfill(backfill):
        raise not_found("backfill")
    return backfill


# ----------------------------------------------------------------------------- responses


def _meta(request: web.Request) -> ResponseMeta:
    return ResponseMeta(request_id=request_id_of(request))


def _one(request: web.Request, backfill: Backfill) -> web.Response:
    body = BackfillResponse(meta=_meta(request), data=to_supermetrics(backfill))
    return json_response(body, headers=_CORS)


# -------------------------------------------------------------------------------- routes


@routes.post(_TRANSFER_BACKFILLS)
async def create_backfill(request: web.Request) -> web.Response:
    team_id = own_team(request, "transfer")
    transfer_id = path_id(request, "transfer_id")
    start, end = parse_range(await read_json_object(request))
    service = request.app[SERVICE_KEY]
    transfer = await _transfer(service, transfer_id, team_id)
    _check_run_limit(service, start, end)
    try:
        backfill = await service.create_backfill(
            daily_spec(transfer, start, end),
            team_id=team_id,
            created_by=principal_of(request).key_id,
        )
    except Conflict as exc:
        raise _overlap(exc, transfer) from None
    # Supermetrics answers a create with 200, not 201.
    return _one(request, backfill)


def _overlap(exc: Conflict, transfer: Target) -> SupermetricsError:
    other = exc.extra.get("conflicting_backfill_id")
    which = f"backfill {other}" if other is not None else "an active backfill"
    return SupermetricsError(
        422,
        "BACKFILL_OVERLAP",
        "Backfill overlaps an active backfill",
        f"The range overlaps {which} of transfer {transfer.id}, which is not finished; "
        "cancel it or wait for it to finish.",
    )


@routes.get(_TRANSFER_BACKFILLS + "/latest")
async def latest_backfill(request: web.Request) -> web.Response:
    team_id = own_team(request, "transfer")
    transfer_id = path_id(request, "transfer_id")
    service = request.app[SERVICE_KEY]
    transfer = await _transfer(service, transfer_id, team_id)
    # The newest one Supermetrics can show: a draft made later through Mage is skipped.
    newest = await service.all_backfills(
        team_id=team_id, target_id=transfer.id, states=list(_STATUS_OF), cap=1
    )
    if not newest:
        raise not_found("backfill")
    return _one(request, newest[0])


@routes.get(_BACKFILLS)
async def list_backfills(request: web.Request) -> web.Response:
    team_id = own_team(request, "team")
    backfills = await request.app[SERVICE_KEY].all_backfills(
        team_id=team_id, target_id=None, states=_INCOMPLETE
    )
    body = BackfillListResponse(
        meta=_meta(request),
        data=[to_supermetrics(b) for b in backfills if is_transfer_backfill(b)],
    )
    return json_response(body, headers=_CORS)


@routes.get(_BACKFILLS + "/{backfill_id}")
async def get_backfill(request: web.Request) -> web.Response:
    team_id = own_team(request, "backfill")
    backfill_id = path_id(request, "backfill_id")
    return _one(request, await _backfill(request.app[SERVICE_KEY], backfill_id, team_id))


@routes.patch(_BACKFILLS + "/{backfill_id}")
async def update_backfill(request: web.Request) -> web.Response:
    team_id = own_team(request, "backfill")
    backfill_id = path_id(request, "backfill_id")
    parse_status(await read_json_object(request))
    service = request.app[SERVICE_KEY]
    backfill = await _backfill(service, backfill_id, team_id)
    try:
        # Supermetrics documents a 422 for a backfill already final, cancelled included.
        cancelled = await service.cancel_backfill(
            backfill.id, team_id=team_id, by=principal_of(request).key_id, repeat_ok=False
        )
    except InvalidTransition as exc:
        raise _not_cancellable(exc.current) from None
    return _one(request, cancelled)


def _not_cancellable(current: str) -> SupermetricsError:
    status = _STATUS_OF.get(BackfillState(current), current.upper())
    return SupermetricsError(
        422,
        "BACKFILL_NOT_CANCELLABLE",
        "Backfill cannot be cancelled",
        f"The backfill is {status}, a final status; only CREATED, SCHEDULED, RUNNING and "
        "FAILED backfills can be cancelled.",
    )


DIALECT = Dialect(
    name="supermetrics",
    prefixes=("/v1/teams/",),
    paths=(),
    routes=routes,
    render_error=render_error,
)
