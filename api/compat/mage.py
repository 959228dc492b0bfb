"""Mage's pipeline backfill API: `/api/pipelines/{pipeline_uuid}/backfills` and `/api/backfills`.

A Mage pipeline is a `date_range` target, addressed by name; its backfills are this service's
date-range backfills, addressed by their integer id. Mage creates a backfill unstarted (a
draft here) and starts it when it is PUT with `status: "initial"`. Its runs are Mage's: one per
`interval_units` x `interval_type` from `start_datetime` while the run's date is at or before
`end_datetime` (an inclusive end), in UTC.

Answers are Mage's: `{"backfill": {...}}`, `{"backfills": [...], "metadata": {...}}`, and errors
as `{"error": {"code", "message", "type", "errors"}, "status": 200}` sent with HTTP 200 unless the
query asks for `_http_error_codes`. Every answer carries the CORS headers Mage's BaseHandler
sets."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from api.auth import principal_of, team_of
from api.body import RequestBody
from api.compat.common import read_optional_json, utc
from api.compat.dialect import Dialect
from api.compat.failure import Failure
from api.keys import SERVICE_KEY
from api.render import json_response
from orchestrator.domain.keys import Principal
from orchestrator.domain.models import Backfill, IntervalType, RunOrder, Target, TargetKind
from orchestrator.domain.specs import NAME_RE, BackfillSpec, DraftSpec
from orchestrator.domain.states import BACKFILL_TERMINAL, BackfillState, RunState
from orchestrator.domain.windows import WindowPlan
from orchestrator.errors import InvalidTransition, NotFound, ValidationFailed
from orchestrator.service import BackfillService, draft_of

routes = web.RouteTableDef()

_PIPELINE_BACKFILLS = "/api/pipelines/{pipeline}/backfills"
_PIPELINE_BACKFILL = _PIPELINE_BACKFILLS + "/{backfill}"
_ALL_BACKFILLS = "/api/backfills"
_ONE_BACKFILL = _ALL_BACKFILLS + "/{backfill}"

# Mage's BaseHandler.set_default_headers, on every answer (errors included).
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "DELETE, GET, PATCH, POST, PUT, OPTIONS",
    "Access-Control-Allow-Headers": "*",
}

# BackfillPresenter's default attributes, as the documented response shows them.
FIELDS = (
    "id",
    "block_uuid",
    "completed_at",
    "created_at",
    "end_datetime",
    "failed_at",
    "interval_type",
    "interval_units",
    "metrics",
    "name",
    "pipeline_schedule_id",
    "pipeline_uuid",
    "start_datetime",
    "started_at",
    "status",
    "updated_at",
    "variables",
)
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# Mage's DatabaseResource.DEFAULT_LIMIT; the cap keeps one preview page from being millions
# of dicts (Mage has none).
DEFAULT_LIMIT = 40
MAX_LIMIT = 10_000
_BIGINT_MAX = 2**63 - 1
# ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
_DIGITS = re.compile(r"[0-9]+")

B = BackfillState

# Mage has no state for "stored but not started" (status null) nor for paused.
_STATUS_OF: dict[BackfillState, str | None] = {
    B.DRAFT: None,
    B.CREATED: "initial",
    B.SCHEDULED: "initial",
    B.RUNNING: "running",
    B.PAUSED: "running",
    B.COMPLETED: "completed",
    B.FAILED: "failed",
    B.CANCELLED: "cancelled",
}
MAGE_STATUSES = ("initial", "running", "completed", "failed", "cancelled")

# What a body's `backfill` object may carry: the attributes the update page lists ...
_WRITABLE = (
    "block_uuid",
    "end_datetime",
    "interval_type",
    "interval_units",
    "name",
    "start_datetime",
    "status",
    "variables",
)
# ... and what a GET shows but nobody sets, accepted and ignored so that a script can PUT
# back the object it read.
_READ_ONLY = (
    "id",
    "completed_at",
    "created_at",
    "failed_at",
    "metrics",
    "pipeline_schedule_id",
    "pipeline_uuid",
    "started_at",
    "updated_at",
    "total_run_count",
    "run_status_counts",
    "pipeline_run_dates",
)
_WINDOW_FIELDS = frozenset({"start", "end", "interval_type", "interval_units", "variables"})
# This service's field names -> Mage's, for error messages.
_MAGE_FIELD = {"start": "start_datetime", "end": "end_datetime", "target": "pipeline_uuid"}

_DRAFT = RequestBody[DraftSpec](DraftSpec)
_SPEC = RequestBody[BackfillSpec](BackfillSpec)

# --------------------------------------------------------------------------- mapping


def mage_status(state: BackfillState) -> str | None:
    return _STATUS_OF[state]


def format_datetime(value: datetime | None) -> str | None:
    return utc(value).strftime(DATETIME_FORMAT) if value is not None else None


def to_mage(backfill: Backfill, pipeline_uuid: str) -> dict[str, Any]:
    """The 17 attributes of Mage's BackfillPresenter, in the documented order."""
    return {
        "id": backfill.id,
        "block_uuid": None,  # block backfills are not supported; every one runs the pipeline
        "completed_at": format_datetime(backfill.completed_at),
        "created_at": format_datetime(backfill.created_at),
        "end_datetime": format_datetime(backfill.range_end),
        "failed_at": format_datetime(backfill.failed_at),
        "interval_type": backfill.interval_type.value if backfill.interval_type else None,
        "interval_units": backfill.interval_units,
        "metrics": None,  # Mage leaves it null too; run_status_counts carries the numbers
        "name": backfill.name,
        "pipeline_schedule_id": None,  # no schedules here: runs belong to the backfill
        "pipeline_uuid": pipeline_uuid,
        "start_datetime": format_datetime(backfill.range_start),
        "started_at": format_datetime(backfill.started_at),
        "status": mage_status(backfill.state),
        "updated_at": format_datetime(backfill.updated_at),
        # Mage keeps null until variables are set; an empty object reads the same to a run.
        "variables": dict(backfill.variables) or None,
    }


def preview_plan(backfill: Backfill) -> WindowPlan | None:
    """The runs the backfill makes (or made), in date order; None unless start, end, interval
    type and units are all set, which is when Mage's presenter counts runs."""
    if (
        backfill.range_start is None
        or backfill.range_end is None
        or backfill.interval_type is None
        or backfill.interval_units is None
    ):
        return None
    definition = draft_of(backfill)
    if definition.start is None or definition.end is None:
        return None
    try:
        return BackfillService.plan_for(
            definition.start,
            definition.end,
            backfill.interval_type,
            backfill.interval_units,
            definition.time_zone,
            RunOrder.OLDEST_FIRST.value,
            end_inclusive=definition.end_inclusive,
        )
    except ValidationFailed:
        return None  # a range no plan can be made of has no runs to preview


def preview_dates(plan: WindowPlan, *, offset: int, limit: int) -> list[dict[str, Any]]:
    """Mage's `pipeline_run_dates` for one page: the variables each run receives about its
    window (the same values workers/executor.py hands the run)."""
    out: list[dict[str, Any]] = []
    if offset >= plan.count:
        return out
    for _, window in plan.windows(offset):
        if len(out) == limit:
            break
        start, end = window.start, window.end
        out.append(
            {
                "ds": start.strftime("%Y-%m-%d"),
                "execution_date": start.isoformat(),
                "hr": start.strftime("%H"),
                "interval_end_datetime": end.isoformat(),
                "interval_seconds": (end - start).total_seconds(),
                "interval_start_datetime": start.isoformat(),
            }
        )
    return out


def run_status_counts(backfill: Backfill, running: int) -> dict[str, int]:
    """Runs by Mage run status, from the backfill's counters and the number running now.
    Windows not planned yet count as `initial` while the backfill is active (Mage makes every
    run when it starts); once it is over they never will be runs, so they are not counted."""
    if backfill.state == B.DRAFT:
        return {}
    ended = backfill.runs_completed + backfill.runs_failed + backfill.runs_cancelled
    waiting = max(0, backfill.runs_created - ended - running)
    if backfill.state not in BACKFILL_TERMINAL:
        waiting += max(0, backfill.runs_total - backfill.runs_created)
    counts = {
        "initial": waiting,
        "running": running,
        "completed": backfill.runs_completed,
        "failed": backfill.runs_failed,
        "cancelled": backfill.runs_cancelled,
    }
    return {status: n for status, n in counts.items() if n > 0}


# ---------------------------------------------------------------------------- input


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(
        f"{field}: {message}", errors=[{"pointer": f"/{field}", "message": message}]
    )


def parse_datetime(value: object, field: str) -> datetime | None:
    """Mage's `2023-07-17 23:56:05`, or ISO 8601 (`T`, fractions, a zone, a bare date). Read
    as UTC when no zone is given; a bare date is its midnight, not its whole day, because
    Mage's end is compared as an instant."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid(field, "must be a datetime string such as 2023-07-17 23:56:05")
    try:
        # utc() can overflow: 0001-01-01 with a positive offset is before year 1 in UTC.
        return utc(datetime.fromisoformat(value.strip()))
    except (ValueError, OverflowError):
        raise _invalid(field, f"{value!r} is not a datetime such as 2023-07-17 23:56:05") from None


def parse_interval_type(value: object) -> IntervalType | None:
    if value is None:
        return None
    if value == "custom":
        raise _invalid(
            "interval_type",
            "custom intervals are not supported here; use minute, hour, day, week, month or "
            "year with interval_units",
        )
    if value == "second":
        raise _invalid("interval_type", "the smallest interval here is a minute")
    if isinstance(value, str) and value in {t.value for t in IntervalType}:
        return IntervalType(value)
    allowed = ", ".join(t.value for t in IntervalType)
    raise _invalid("interval_type", f"must be one of {allowed}")


def parse_interval_units(value: object) -> int | None:
    # A form field sends "2"; a bool is an int to Python but not a count.
    if value is None:
        return None
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()) and len(value) < 10:
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid("interval_units", "must be a whole number of intervals")
    return value


@dataclass(frozen=True)
class BackfillInput:
    """A create or update body, in this service's terms: the definition fields it gives (a
    DraftSpec's names) and the status it asks for, if any."""

    fields: Mapping[str, Any]
    status: str | None = None
    status_given: bool = False


def read_input(document: Mapping[str, Any]) -> BackfillInput:
    """Mage wraps the attributes as `{"backfill": {...}}`. Unknown keys are refused rather
    than ignored, so a typo is not a silent no-op."""
    unknown = sorted(set(document) - {"backfill"})
    if unknown:
        raise _invalid(unknown[0], 'unknown key; the body is {"backfill": {...}}')
    given = document.get("backfill")
    if given is None:
        return BackfillInput(fields={})
    if not isinstance(given, dict):
        raise _invalid("backfill", "must be an object")
    for key in sorted(given):
        if key not in _WRITABLE and key not in _READ_ONLY:
            raise _invalid(key, "unknown attribute; accepted: " + ", ".join(_WRITABLE))
    if given.get("block_uuid") is not None:
        raise _invalid(
            "block_uuid", "block backfills are not supported here; a backfill runs its pipeline"
        )
    status_given = "status" in given
    status = given.get("status")
    if status is not None and status not in MAGE_STATUSES:
        raise _invalid("status", "must be one of " + ", ".join(MAGE_STATUSES))
    return BackfillInput(fields=_definition_fields(given), status=status, status_given=status_given)


def _definition_fields(given: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if "name" in given:
        if given["name"] is not None and not isinstance(given["name"], str):
            raise _invalid("name", "must be a string")
        fields["name"] = given["name"]
    if "start_datetime" in given:
        fields["start"] = parse_datetime(given["start_datetime"], "start_datetime")
    if "end_datetime" in given:
        fields["end"] = parse_datetime(given["end_datetime"], "end_datetime")
    if "interval_type" in given:
        fields["interval_type"] = parse_interval_type(given["interval_type"])
    if "interval_units" in given:
        fields["interval_units"] = parse_interval_units(given["interval_units"])
    if "variables" in given:
        variables = given["variables"]
        if variables is not None and not isinstance(variables, dict):
            raise _invalid("variables", "must be an object")
        fields["variables"] = variables or {}
    return fields


def _comparable(field: str, value: Any) -> Any:
    """A field's value as a GET shows it, so unchanged values in a PUT are seen as such."""
    if field in ("start", "end"):
        return format_datetime(value)
    if field == "interval_type":
        return value.value if value is not None else None
    if field == "variables":
        return dict(value or {})
    return value


def changed_fields(current: Backfill, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The given fields whose value differs from the backfill's: a script that PUTs back
    what it read changes nothing, even on a backfill that has started."""
    shown = {
        "name": current.name,
        "start": current.range_start,
        "end": current.range_end,
        "interval_type": current.interval_type,
        "interval_units": current.interval_units,
        "variables": current.variables,
    }
    return {
        field: value
        for field, value in fields.items()
        if _comparable(field, value) != _comparable(field, shown[field])
    }


def _mage_definition(fields: Mapping[str, Any]) -> dict[str, Any]:
    # Mage's rule: runs while date <= end_datetime, in UTC.
    return {**fields, "end_inclusive": True, "time_zone": "UTC"}


# ---------------------------------------------------------------------------- query


@dataclass(frozen=True)
class Presentation:
    """What a GET asks to be added: Mage's include_* query and its `_limit`/`_offset` meta."""

    preview_runs: bool = False
    run_count: bool = False
    limit: int = DEFAULT_LIMIT
    offset: int = 0


def truthy(value: str | None) -> bool:
    """Mage's get_bool_argument: yes, true, t or 1 (any case) is true."""
    return value is not None and value.strip().lower() in ("yes", "true", "t", "1")


def _count_param(query: MultiMapping[str], name: str, default: int, *, minimum: int) -> int:
    raw = query.get(name)
    if raw is None or not raw.strip():
        return default
    raw = raw.strip()
    if not _DIGITS.fullmatch(raw) or len(raw) > 18 or int(raw) < minimum:
        raise ValidationFailed(
            f"{name}: must be a whole number of at least {minimum}",
            errors=[{"parameter": name, "message": f"must be a whole number >= {minimum}"}],
        )
    return int(raw)


def read_presentation(query: MultiMapping[str]) -> Presentation:
    """Other query parameters are ignored, as Mage ignores them."""
    limit = _count_param(query, "_limit", DEFAULT_LIMIT, minimum=1)
    return Presentation(
        preview_runs=truthy(query.get("include_preview_runs")),
        run_count=truthy(query.get("include_run_count")),
        limit=min(limit, MAX_LIMIT),
        offset=_count_param(query, "_offset", 0, minimum=0),
    )


# -------------------------------------------------------------------------- lookups


def _no_pipeline(name: str) -> NotFound:
    return NotFound(f"Pipeline {name} does not exist.")


def _no_backfill(ref: str) -> NotFound:
    return NotFound(f"Backfill {ref} does not exist.")


async def _pipeline(request: web.Request) -> Target:
    return await _pipeline_named(request, request.match_info["pipeline"])


async def _pipeline_named(request: web.Request, name: str) -> Target:
    # Names follow NAME_RE; anything else names nothing (and never reaches the database).
    if not NAME_RE.fullmatch(name) or name.isdigit():
        raise _no_pipeline(name)
    try:
        target = await request.app[SERVICE_KEY].get_target(name, team_id=team_of(request))
    except NotFound:
        raise _no_pipeline(name) from None
    if target.kind != TargetKind.DATE_RANGE:
        raise _no_pipeline(name)  # a table target is a Sequin sink, not a pipeline
    return target


async def _backfill(request: web.Request, pipeline: Target | None) -> tuple[Backfill, Target]:
    """The backfill in the path, and its pipeline; a table backfill or one of another
    pipeline is not found."""
    service = request.app[SERVICE_KEY]
    raw = request.match_info["backfill"]
    if not _DIGITS.fullmatch(raw) or len(raw) > 19 or int(raw) > _BIGINT_MAX:
        raise _no_backfill(raw)
    try:
        backfill = await service.get_backfill(int(raw), team_id=team_of(request))
    except NotFound:
        raise _no_backfill(raw) from None
    if backfill.kind != TargetKind.DATE_RANGE:
        raise _no_backfill(raw)
    if pipeline is None:
        pipeline = await service.get_target(backfill.target_id, team_id=team_of(request))
    elif backfill.target_id != pipeline.id:
        raise _no_backfill(raw)
    return backfill, pipeline


async def _running_runs(service: BackfillService, backfill: Backfill, team_id: int) -> int:
    count, after = 0, None
    while True:
        page = await service.list_runs(
            backfill.id, team_id=team_id, states=[RunState.RUNNING], after=after, limit=500
        )
        count += len(page.items)
        if page.next_after is None:
            return count
        after = page.next_after


async def present(
    request: web.Request, backfill: Backfill, pipeline_uuid: str, view: Presentation
) -> dict[str, Any]:
    """The backfill as Mage's presenter shows it, with the counts and preview it asks for."""
    data = to_mage(backfill, pipeline_uuid)
    if not (view.preview_runs or view.run_count):
        return data
    plan = preview_plan(backfill)
    if plan is None:
        return data
    running = 0
    if backfill.state != B.DRAFT:
        running = await _running_runs(request.app[SERVICE_KEY], backfill, team_of(request))
    data["total_run_count"] = plan.count
    data["run_status_counts"] = run_status_counts(backfill, running)
    if view.preview_runs:
        data["pipeline_run_dates"] = preview_dates(plan, offset=view.offset, limit=view.limit)
    return data


def _ok(payload: Mapping[str, Any]) -> web.Response:
    return json_response(payload, headers=CORS_HEADERS)


async def _one(request: web.Request, backfill: Backfill, pipeline: Target) -> web.Response:
    view = read_presentation(request.query)
    return _ok({"backfill": await present(request, backfill, pipeline.name, view)})


async def _many(
    request: web.Request, target_id: int | None, pipeline: Target | None
) -> web.Response:
    """One page of a list, as Mage's DatabaseResource.process_collection answers it: the
    team's date-range backfills, newest first (Mage orders by created_at desc), paged and
    counted by the database."""
    view = read_presentation(request.query)
    page, total = await request.app[SERVICE_KEY].offset_page(
        team_id=team_of(request),
        target_id=target_id,
        kind=TargetKind.DATE_RANGE,
        offset=view.offset,
        limit=view.limit,
    )
    names = {pipeline.id: pipeline.name} if pipeline else await _names(request, page)
    shown = [await present(request, b, names[b.target_id], view) for b in page]
    more = total > view.offset + len(page)
    return _ok({"backfills": shown, "metadata": {"count": total, "next": more}})


async def _names(request: web.Request, backfills: Sequence[Backfill]) -> dict[int, str]:
    service = request.app[SERVICE_KEY]
    names: dict[int, str] = {}
    for target_id in {b.target_id for b in backfills}:
        target = await service.get_target(target_id, team_id=team_of(request))
        names[target_id] = target.name
    return names


# ---------------------------------------------------------------------------- changes


def _started_error(fields: Sequence[str]) -> ValidationFailed:
    names = sorted(_MAGE_FIELD.get(f, f) for f in fields)
    message = (
        "cannot change once the backfill has started or been cancelled (name always can); "
        "create a new backfill for another range"
    )
    return ValidationFailed(
        f"{', '.join(names)}: {message}",
        errors=[{"pointer": f"/{name}", "message": message} for name in names],
    )


async def _apply_changes(
    service: BackfillService, backfill: Backfill, changes: Mapping[str, Any], who: Principal
) -> Backfill:
    window = sorted(set(changes) & _WINDOW_FIELDS)
    if window and backfill.state != B.DRAFT:
        raise _started_error(window)
    document = _mage_definition(changes) if window else dict(changes)
    try:
        return await service.update_draft(
            backfill.id, _DRAFT.validate(document), team_id=who.team_id
        )
    except InvalidTransition:
        raise _started_error(window) from None  # it was started meanwhile


def _status_error(message: str) -> ValidationFailed:
    return _invalid("status", message)


async def _apply_status(
    service: BackfillService, backfill: Backfill, requested: str | None, who: Principal
) -> Backfill:
    """`initial` starts a backfill that has not started, `cancelled` cancels it; asking for
    the status it has changes nothing. Mage's other statuses are its own to set."""
    current = mage_status(backfill.state)
    if requested == current:
        return backfill
    if requested == "initial":
        return await _start(service, backfill, who)
    if requested == "cancelled":
        return await _cancel(service, backfill, who)
    raise _status_error(
        f"the backfill is {current or 'not started'}; status can be set to initial (to start "
        "it) or cancelled (to cancel it)"
    )


async def _start(service: BackfillService, backfill: Backfill, who: Principal) -> Backfill:
    if backfill.state == B.CANCELLED:
        raise _status_error("a cancelled backfill cannot start again; create a new one")
    if backfill.state != B.DRAFT:
        return backfill  # already started: starting it again changes nothing
    try:
        return await service.start_draft(backfill.id, team_id=who.team_id)
    except InvalidTransition:
        # Started (or cancelled) meanwhile: answer with where it is now.
        now = await service.get_backfill(backfill.id, team_id=who.team_id)
        if now.state == B.CANCELLED:
            raise _status_error("a cancelled backfill cannot start again") from None
        return now


async def _cancel(service: BackfillService, backfill: Backfill, who: Principal) -> Backfill:
    try:
        return await service.cancel_backfill(backfill.id, team_id=who.team_id, by=who.key_id)
    except InvalidTransition as exc:
        if exc.current == B.CANCELLED.value:
            return await service.get_backfill(backfill.id, team_id=who.team_id)
        raise _status_error(f"a {exc.current} backfill cannot be cancelled") from None


# ----------------------------------------------------------------------------- routes


@routes.post(_PIPELINE_BACKFILLS)
async def create_backfill(request: web.Request) -> web.Response:
    """Mage's create stores the backfill unstarted. `status: "initial"` in the body (an
    extension) creates it started, in one step, so a refused start leaves nothing behind."""
    pipeline = await _pipeline(request)
    given = read_input(await read_optional_json(request))
    if given.status not in (None, "initial"):
        raise _status_error("a new backfill is either not started (null) or started (initial)")
    service, who = request.app[SERVICE_KEY], principal_of(request)
    definition = _mage_definition(given.fields)
    if given.status == "initial":
        spec = _SPEC.validate({"target": pipeline.id, **definition})
        backfill = await service.create_backfill(spec, team_id=who.team_id, created_by=who.key_id)
    else:
        backfill = await service.create_draft(
            pipeline.id, _DRAFT.validate(definition), team_id=who.team_id, created_by=who.key_id
        )
    return await _one(request, backfill, pipeline)


@routes.get(_PIPELINE_BACKFILLS)
async def list_pipeline_backfills(request: web.Request) -> web.Response:
    pipeline = await _pipeline(request)
    return await _many(request, pipeline.id, pipeline)


@routes.get(_ALL_BACKFILLS)
async def list_backfills(request: web.Request) -> web.Response:
    """Every pipeline's backfills; `?pipeline_uuid=` narrows to one (none if it names no
    pipeline, as Mage's filter would)."""
    name = request.query.get("pipeline_uuid")
    target_id: int | None = None
    if name:
        try:
            target_id = (await _pipeline_named(request, name)).id
        except NotFound:
            return _ok({"backfills": [], "metadata": {"count": 0, "next": False}})
    return await _many(request, target_id, None)


@routes.get(_PIPELINE_BACKFILL)
async def get_pipeline_backfill(request: web.Request) -> web.Response:
    backfill, pipeline = await _backfill(request, await _pipeline(request))
    return await _one(request, backfill, pipeline)


@routes.get(_ONE_BACKFILL)
async def get_backfill(request: web.Request) -> web.Response:
    backfill, pipeline = await _backfill(request, None)
    return await _one(request, backfill, pipeline)


async def _update(request: web.Request, pipeline: Target | None) -> web.Response:
    backfill, pipeline = await _backfill(request, pipeline)
    given = read_input(await read_optional_json(request))
    service, who = request.app[SERVICE_KEY], principal_of(request)
    changes = changed_fields(backfill, given.fields)
    if changes:
        backfill = await _apply_changes(service, backfill, changes, who)
    if given.status_given:
        backfill = await _apply_status(service, backfill, given.status, who)
    return await _one(request, backfill, pipeline)


@routes.put(_PIPELINE_BACKFILL)
async def update_pipeline_backfill(request: web.Request) -> web.Response:
    return await _update(request, await _pipeline(request))


@routes.put(_ONE_BACKFILL)
async def update_backfill(request: web.Request) -> web.Response:
    return await _update(request, None)


async def _delete(request: web.Request, pipeline: Target | None) -> web.Response:
    """Cancels the backfill if it is active (running runs finish), hides it from every API,
    and answers with the record as it was before the delete, as Mage does (its resource
    presents the model it has just deleted): a draft stays `null`, not `cancelled`."""
    backfill, pipeline = await _backfill(request, pipeline)
    who = principal_of(request)
    await request.app[SERVICE_KEY].delete_backfill(backfill.id, team_id=who.team_id, by=who.key_id)
    return _ok({"backfill": to_mage(backfill, pipeline.name)})


@routes.delete(_PIPELINE_BACKFILL)
async def delete_pipeline_backfill(request: web.Request) -> web.Response:
    return await _delete(request, await _pipeline(request))


@routes.delete(_ONE_BACKFILL)
async def delete_backfill(request: web.Request) -> web.Response:
    return await _delete(request, None)


async def preflight(request: web.Request) -> web.Response:
    """Mage's BaseHandler.options: 204 with the CORS headers."""
    return web.Response(status=204, headers=CORS_HEADERS)


for _path in (_PIPELINE_BACKFILLS, _PIPELINE_BACKFILL, _ALL_BACKFILLS, _ONE_BACKFILL):
    routes.route("OPTIONS", _path)(preflight)


# ----------------------------------------------------------------------------- errors

# Mage's ApiError constants, by the status this service would answer with.
_MAGE_ERRORS: dict[int, tuple[str, str]] = {
    400: ("Record is invalid.", "record_invalid"),
    401: ("Invalid API key.", "invalid_api_key"),
    403: ("Unauthorized access.", "unauthorized_access"),
    404: ("Record not found.", "record_not_found"),
    500: ("Internal server error.", "internal_server_error"),
}
# Statuses Mage has no constant for.
_OTHER_ERRORS: dict[int, tuple[str, str]] = {
    429: ("Too many requests.", "rate_limited"),
    503: ("Service unavailable.", "service_unavailable"),
}
_RESOURCE_ERROR = ("API resource error.", "api_resource_error")


def mage_error(failure: Failure) -> dict[str, Any]:
    """A failure as Mage's ApiError.to_dict: code, message, type, and errors (strings)."""
    code = failure.status
    if code in (409, 422):
        code = 400  # Mage refuses invalid records and clashes alike as record_invalid
    if failure.code == "bad_request" or (code not in _MAGE_ERRORS and code < 500):
        message, kind = _OTHER_ERRORS.get(code, _RESOURCE_ERROR)
    else:
        message, kind = _MAGE_ERRORS.get(code) or _OTHER_ERRORS.get(code, _MAGE_ERRORS[500])
    return {"code": code, "message": message, "type": kind, "errors": _messages(failure)}


def _messages(failure: Failure) -> list[str]:
    out = [failure.detail]
    for error in failure.errors:
        place = str(error.get("pointer") or error.get("parameter") or "").strip("/")
        head, _, rest = place.partition("/")
        field = "/".join(p for p in (_MAGE_FIELD.get(head, head), rest) if p)
        line = f"{field}: {error.get('message')}" if field else str(error.get("message"))
        if line not in out and line != failure.detail:
            out.append(line)
    return out


def render_error(request: web.Request, failure: Failure) -> web.Response:
    """Mage answers errors with HTTP 200 and `"status": 200` in the body; with
    `_http_error_codes` in the query, with the error's own code in both. A missing or unknown
    key is the exception: Mage's OAuthMiddleware sets HTTP 401 itself (the body still says
    200 unless real codes were asked for)."""
    error = mage_error(failure)
    real_codes = truthy(request.query.get("_http_error_codes"))
    body_status = error["code"] if real_codes else 200
    status = 401 if error["code"] == 401 else body_status
    headers = {**CORS_HEADERS, **failure.headers}
    if status != 401:
        headers.pop("WWW-Authenticate", None)  # a challenge belongs only on a real 401
    return json_response({"error": error, "status": body_status}, status=status, headers=headers)


DIALECT = Dialect(
    name="mage",
    prefixes=("/api/pipelines/", _ALL_BACKFILLS + "/"),
    paths=(_ALL_BACKFILLS,),
    routes=routes,
    render_error=render_error,
    # Mage's clients send their key this way.
    key_header="X-API-KEY",
)
