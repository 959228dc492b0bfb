"""Sequin's sink backfill API: `/api/sinks/{sink_id_or_name}/backfills`.

A Sequin sink is a table target; its backfills are this service's table backfills, shown
with Sequin's fields (uuid ids, `active` for anything not yet finished) and Sequin's error
shapes: `{"summary": ...}`, plus `validation_errors` (field -> messages) on a 422, and
Phoenix's `{"errors": {"detail": ...}}` for a path or method that does not exist."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from api.auth import principal_of, team_of
from api.body import RequestBody
from api.compat.common import read_optional_json, utc
from api.compat.dialect import Dialect
from api.compat.failure import Failure
from api.keys import SERVICE_KEY
from api.render import json_response
from orchestrator.domain.keys import Principal
from orchestrator.domain.models import Backfill, Target, TargetKind
from orchestrator.domain.specs import BackfillSpec
from orchestrator.domain.states import BackfillState
from orchestrator.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from orchestrator.service import BackfillService

routes = web.RouteTableDef()

_BASE = "/api/sinks/{sink}/backfills"
_SPEC = RequestBody[BackfillSpec](BackfillSpec)

B = BackfillState

# Sequin has one state for "not finished and not paused".
_STATE_OF = {
    B.CREATED: "active",
    B.SCHEDULED: "active",
    B.RUNNING: "active",
    B.PAUSED: "paused",
    B.COMPLETED: "completed",
    B.FAILED: "failed",
    B.CANCELLED: "cancelled",
}
# What a PATCH may ask for, from each Sequin state, and the action that does it.
_MOVES: dict[str, dict[str, str]] = {
    "active": {"paused": "pause", "cancelled": "cancel"},
    "paused": {"active": "resume", "cancelled": "cancel"},
    "completed": {},
    "failed": {},
    "cancelled": {},
}
_SETTABLE = ("active", "paused", "cancelled")


class SequinBackfill(BaseModel):
    """A backfill as Sequin renders it (Sequin.Transforms.to_external), field for field."""

    model_config = ConfigDict(extra="forbid")

    id: str
    state: str
    table: str | None
    inserted_at: str
    updated_at: str
    canceled_at: str | None
    completed_at: str | None
    sink_consumer: str
    rows_initial_count: int
    rows_processed_count: int
    rows_ingested_count: int
    sort_column: str | None


def _seconds(value: datetime) -> str:
    # Sequin's inserted_at/updated_at are second-precision UTC ("2025-04-09T04:06:23Z") ...
    return utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micros(value: datetime | None) -> str | None:
    # ... and its completed_at/canceled_at carry microseconds ("...T04:06:28.000000Z").
    return utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value is not None else None


def sequin_state(state: BackfillState) -> str:
    return _STATE_OF[state]


def to_sequin(backfill: Backfill, sink: Target) -> SequinBackfill:
    return SequinBackfill(
        id=str(backfill.uuid),
        state=sequin_state(backfill.state),
        table=backfill.table_name,
        inserted_at=_seconds(backfill.created_at),
        updated_at=_seconds(backfill.updated_at),
        canceled_at=_micros(backfill.cancelled_at),
        completed_at=_micros(backfill.completed_at),
        sink_consumer=sink.name,
        # Counted beside planning; Sequin shows 0 until the count is in.
        rows_initial_count=backfill.rows_initial_count or 0,
        rows_processed_count=backfill.rows_processed_count,
        rows_ingested_count=backfill.rows_ingested_count,
        sort_column=backfill.sort_column,
    )


# ------------------------------------------------------------------------------- lookups


def _not_found(entity: str) -> NotFound:
    return NotFound(f"Not found: No `{entity}` found matching the provided ID or name")


def _sink_ref(raw: str) -> int | uuid.UUID | str:
    """Sequin takes a sink's id or name: digits are an id, a uuid is a uuid, else a name."""
    if raw.isdigit():
        return int(raw)
    try:
        return uuid.UUID(raw)
    except ValueError:
        return raw


async def _sink(request: web.Request) -> Target:
    service = request.app[SERVICE_KEY]
    raw = request.match_info["sink"]
    ref = _sink_ref(raw)
    if isinstance(ref, int) and ref > 2**63 - 1:
        raise _not_found("sink consumer")
    try:
        target = await service.get_target(ref, team_id=team_of(request))
    except NotFound:
        raise _not_found("sink consumer") from None
    if target.kind != TargetKind.TABLE:
        raise _not_found("sink consumer")  # date-range targets are not sinks
    return target


async def _backfill(request: web.Request, sink: Target) -> Backfill:
    service = request.app[SERVICE_KEY]
    try:
        ref = uuid.UUID(request.match_info["backfill"])
        backfill = await service.get_backfill(ref, team_id=team_of(request))
    except (ValueError, NotFound):
        raise _not_found("backfill") from None
    if backfill.target_id != sink.id:
        raise _not_found("backfill")
    return backfill


def _refuse_unknown(body: Mapping[str, Any], known: Sequence[str]) -> None:
    for key in body:
        if key not in known:
            # Sequin's own words (Sequin.Transforms.from_external_backfill).
            raise ValidationFailed(f"Unknown field: {key}")


# -------------------------------------------------------------------------------- routes


@routes.post(_BASE)
async def create_backfill(request: web.Request) -> web.Response:
    sink = await _sink(request)
    body = await read_optional_json(request)
    _refuse_unknown(body, ("table",))
    document: dict[str, Any] = {"target": sink.id}
    if body.get("table") is not None:
        document["table"] = body["table"]
    spec = _SPEC.validate(document)
    try:
        backfill = await request.app[SERVICE_KEY].create_backfill(
            spec, team_id=team_of(request), created_by=principal_of(request).key_id
        )
    except Conflict as exc:
        raise _still_active(exc) from None
    # Sequin answers a create with 200 (its controller renders show.json).
    return json_response(to_sequin(backfill, sink))


@routes.get(_BASE)
async def list_backfills(request: web.Request) -> web.Response:
    sink = await _sink(request)
    backfills = await request.app[SERVICE_KEY].all_backfills(
        team_id=team_of(request), target_id=sink.id, states=None
    )
    return json_response({"data": [to_sequin(b, sink).model_dump() for b in backfills]})


@routes.get(_BASE + "/{backfill}")
async def get_backfill(request: web.Request) -> web.Response:
    sink = await _sink(request)
    return json_response(to_sequin(await _backfill(request, sink), sink))


@routes.patch(_BASE + "/{backfill}")
async def update_backfill(request: web.Request) -> web.Response:
    sink = await _sink(request)
    backfill = await _backfill(request, sink)
    body = await read_optional_json(request)
    _refuse_unknown(body, ("state",))
    if "state" not in body:
        return json_response(to_sequin(backfill, sink))  # nothing to change
    requested = body["state"]
    if requested not in _SETTABLE:
        raise _state_error(f"must be one of {', '.join(_SETTABLE)}")
    updated = await _move(request.app[SERVICE_KEY], backfill, requested, principal_of(request))
    return json_response(to_sequin(updated, sink))


async def _move(
    service: BackfillService, backfill: Backfill, requested: str, who: Principal
) -> Backfill:
    current = sequin_state(backfill.state)
    if requested == current:
        return backfill  # Sequin changes nothing when the state is unchanged
    action = _MOVES[current].get(requested)
    if action is None:
        raise _transition_error(current, requested)
    try:
        if action == "cancel":
            return await service.cancel_backfill(backfill.id, team_id=who.team_id, by=who.key_id)
        if action == "pause":
            return await service.pause_backfill(backfill.id, team_id=who.team_id)
        return await service.resume_backfill(backfill.id, team_id=who.team_id)
    except InvalidTransition as exc:
        # It moved between the read and the change (it finished, say): answer from where it
        # is now, in Sequin's words.
        now = sequin_state(BackfillState(exc.current))
        if now == requested:
            return await service.get_backfill(backfill.id, team_id=who.team_id)
        raise _transition_error(now, requested) from None


def _still_active(exc: Conflict) -> ValidationFailed:
    """One active backfill per (sink, table), refused in Sequin's `Validation failed` shape
    and naming the other backfill by the id Sequin shows: its uuid."""
    other = exc.extra.get("conflicting_backfill_uuid")
    if other is None:
        return ValidationFailed("Validation failed", errors=[{"message": exc.detail}])
    message = f"has an active backfill ({other}); cancel it or wait for it to finish"
    return ValidationFailed(
        "Validation failed",
        errors=[{"pointer": "/table", "message": message}],
        extra={"conflicting_backfill_id": other},
    )


def _transition_error(current: str, requested: str) -> ValidationFailed:
    valid = sorted(_MOVES[current])
    valid_text = ", ".join(valid) if valid else f"none ({current} is final)"
    return _state_error(
        f"invalid state transition from {current} to {requested}; valid: {valid_text}",
        extra={"current_state": current, "valid_states": valid},
    )


def _state_error(message: str, extra: dict[str, Any] | None = None) -> ValidationFailed:
    return ValidationFailed(
        "Validation failed", errors=[{"pointer": "/state", "message": message}], extra=extra
    )


# -------------------------------------------------------------------------------- errors


def _validation_errors(errors: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """JSON-pointer field errors as Sequin's `{field: [messages]}` (Ecto's errors_on)."""
    out: dict[str, list[str]] = {}
    for error in errors:
        pointer = str(error.get("pointer") or error.get("parameter") or "")
        field = pointer.strip("/").split("/")[0] or "base"
        out.setdefault(field, []).append(str(error["message"]))
    return out


def render_error(request: web.Request, failure: Failure) -> web.Response:
    headers = dict(failure.headers)
    if failure.from_http and failure.status in (404, 405):
        # No such route: Phoenix's default error view, as Sequin serves it.
        return json_response(
            {"errors": {"detail": failure.title}}, status=failure.status, headers=headers
        )
    if failure.status in (409, 422):
        # Sequin refuses a clash (one active backfill per table) as a validation error.
        body: dict[str, Any] = {
            # Field errors come as Ecto's changeset errors do, under "Validation failed".
            "summary": "Validation failed" if failure.errors else failure.detail,
            "validation_errors": _validation_errors(failure.errors),
        }
        return json_response(body, status=422, headers=headers)
    return json_response({"summary": failure.detail}, status=failure.status, headers=headers)


DIALECT = Dialect(
    name="sequin", prefixes=("/api/sinks/",), paths=(), routes=routes, render_error=render_error
)
