"""What a backfill stores, built from what was asked and its target, with the checks that
need nothing but the two: which fields apply to which kind, the range and its run count,
the table chosen. Errors point at the request field to blame."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from orchestrator.domain.models import (
    Backfill,
    IntervalType,
    Reprocess,
    RunOrder,
    Target,
    TargetKind,
)
from orchestrator.domain.specs import BackfillSpec, DraftSpec
from orchestrator.domain.states import BackfillState, valid_actions
from orchestrator.domain.windows import WindowPlan, window_plan
from orchestrator.errors import InvalidTransition, ValidationFailed

# What a backfill may change at any time.
SETTINGS_FIELDS = frozenset(
    {"name", "max_active_runs", "max_runs_per_minute", "max_rows_per_second", "priority"}
)

# An inclusive end's plan bound is one microsecond past the end itself.
_MICROSECOND = timedelta(microseconds=1)


def field_error(pointer: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[{"pointer": pointer, "message": message}])


def checked_plan(
    start: date | datetime,
    end: date | datetime,
    interval_type: IntervalType,
    interval_units: int,
    time_zone: str,
    order: str,
    *,
    end_inclusive: bool = False,
) -> WindowPlan:
    """The windows of a range, or a 422 on `/end` for a range no plan can be made of."""
    try:
        return window_plan(
            start,
            end,
            interval_type,
            interval_units,
            time_zone,
            RunOrder(order),
            end_inclusive=end_inclusive,
        )
    except ValueError as exc:
        raise field_error("/end", str(exc)) from None


def check_run_count(plan: WindowPlan, limit: int) -> None:
    if plan.count == 0:
        raise field_error("/end", "the range is empty: end must be after start")
    if plan.count > limit:
        raise field_error(
            "/interval_type",
            f"the range makes {plan.count} runs, more than the limit of {limit}; "
            "use a larger interval or split the range",
        )


def backfill_values(
    spec: BackfillSpec, target: Target, command_id: UUID, created_by: int | None
) -> dict[str, Any]:
    """The columns every new backfill has, whatever its kind."""
    return {
        "target_id": target.id,
        "team_id": target.team_id,
        "kind": target.kind.value,
        "name": spec.name,
        "command_id": command_id,
        "max_active_runs": spec.max_active_runs or target.max_active_runs,
        "max_attempts": spec.max_attempts or target.max_attempts,
        "max_runs_per_minute": spec.max_runs_per_minute,
        "max_rows_per_second": spec.max_rows_per_second,
        "priority": spec.priority,
        "created_by": created_by,
    }


def table_of(spec: BackfillSpec, target: Target) -> str:
    """The table a table backfill copies, once the fields it was given fit a table target."""
    wrong = [f for f in ("start", "end", "interval_type", "interval_units") if getattr(spec, f)]
    if spec.reprocess != Reprocess.ALL:
        wrong.append("reprocess")
    if wrong:
        raise ValidationFailed(
            "date-range fields do not apply to a table target",
            errors=[
                {"pointer": f"/{f}", "message": "not allowed for a table target"} for f in wrong
            ],
        )
    if spec.table is None:
        if len(target.tables) != 1:
            raise field_error(
                "/table", f"the target has several tables; name one of {target.tables}"
            )
        return target.tables[0]
    if spec.table not in target.tables:
        raise field_error("/table", f"{spec.table} is not a table of this target {target.tables}")
    return spec.table


def check_table_run_count(estimate: int | None, chunk_size: int, limit: int) -> None:
    """A table's estimated row count must not make more runs than a backfill may have."""
    if estimate is not None and estimate / chunk_size > limit:
        raise field_error(
            "/chunk_size",
            f"about {estimate} rows in chunks of {chunk_size} make more than the limit of "
            f"{limit} runs; use a larger chunk_size",
        )


def range_values(spec: BackfillSpec, target: Target, *, max_runs: int) -> dict[str, Any]:
    """The columns of a date-range backfill, its range checked and planned."""
    if spec.table is not None or spec.chunk_size is not None:
        raise ValidationFailed(
            "table fields do not apply to a date_range target",
            errors=[
                {"pointer": f"/{f}", "message": "not allowed for a date_range target"}
                for f in ("table", "chunk_size")
                if getattr(spec, f) is not None
            ],
        )
    missing = [f for f in ("start", "end") if getattr(spec, f) is None]
    if missing:
        raise ValidationFailed(
            "a date-range backfill needs start and end",
            errors=[{"pointer": f"/{f}", "message": "required"} for f in missing],
        )
    assert spec.start is not None
    assert spec.end is not None
    interval_type = spec.interval_type or target.interval_type
    interval_units = spec.interval_units or target.interval_units
    plan = checked_plan(
        spec.start,
        spec.end,
        interval_type,
        interval_units,
        spec.time_zone,
        spec.order.value,
        end_inclusive=spec.end_inclusive,
    )
    check_run_count(plan, max_runs)
    first, last = plan.window_at(0), plan.window_at(plan.count - 1)
    lo, hi = min(first.start, last.start), max(first.end, last.end)
    end_is_date = not isinstance(spec.end, datetime)
    return {
        "range_start": plan.start,
        # A date end is shown as that date's local midnight; the windows include its day.
        "range_end": (
            datetime.combine(spec.end, time(), ZoneInfo(spec.time_zone))
            if end_is_date
            else plan.bound - (_MICROSECOND if spec.end_inclusive else timedelta())
        ),
        "end_is_date": end_is_date,
        "end_inclusive": spec.end_inclusive and not end_is_date,
        "range_input": {"start": spec.start.isoformat(), "end": spec.end.isoformat()},
        "covered_from": lo,
        "covered_to": hi,
        "interval_type": interval_type.value,
        "interval_units": interval_units,
        "time_zone": spec.time_zone,
        "run_order": spec.order.value,
        "reprocess": spec.reprocess.value,
        "variables": target.variables | spec.variables,
        # With a reprocess filter the total is known only once planning has looked.
        "runs_total": plan.count if spec.reprocess == Reprocess.ALL else 0,
        "runs_planned": plan.count if spec.reprocess == Reprocess.ALL else None,
    }


def _as_shown(value: date | datetime | None, zone: ZoneInfo) -> datetime | None:
    """A draft's start or end as an instant: a date is its local midnight, a naive datetime
    wall time in the zone."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        return datetime.combine(value, time(), zone)
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


def draft_values(draft: DraftSpec, target: Target, *, max_runs: int) -> dict[str, Any]:
    """The columns a draft keeps. With both ends known, the range is checked as a start
    would check it."""
    interval_type = draft.interval_type or target.interval_type
    interval_units = draft.interval_units or target.interval_units
    if draft.start is not None and draft.end is not None:
        plan = checked_plan(
            draft.start,
            draft.end,
            interval_type,
            interval_units,
            draft.time_zone,
            draft.order.value,
            end_inclusive=draft.end_inclusive,
        )
        check_run_count(plan, max_runs)
    zone = ZoneInfo(draft.time_zone)
    return {
        "name": draft.name,
        "range_start": _as_shown(draft.start, zone),
        "range_end": _as_shown(draft.end, zone),
        "end_is_date": draft.end is not None and not isinstance(draft.end, datetime),
        "end_inclusive": draft.end_inclusive,
        "range_input": {
            "start": draft.start.isoformat() if draft.start is not None else None,
            "end": draft.end.isoformat() if draft.end is not None else None,
        },
        "interval_type": draft.interval_type.value if draft.interval_type else None,
        "interval_units": draft.interval_units,
        "time_zone": draft.time_zone,
        "run_order": draft.order.value,
        "variables": draft.variables,
    }


def new_draft_values(
    draft: DraftSpec,
    target: Target,
    command_id: UUID,
    created_by: int | None,
    *,
    max_runs: int,
) -> dict[str, Any]:
    """The columns of a new draft: a date-range backfill that starts later."""
    if target.kind != TargetKind.DATE_RANGE:
        raise field_error("/target", "drafts are date-range backfills; this is a table target")
    return {
        "target_id": target.id,
        "team_id": target.team_id,
        "kind": target.kind.value,
        "state": BackfillState.DRAFT.value,
        "command_id": command_id,
        "max_active_runs": target.max_active_runs,
        "max_attempts": target.max_attempts,
        "created_by": created_by,
        **draft_values(draft, target, max_runs=max_runs),
    }


def check_draft(backfill: Backfill, action: str) -> None:
    """Only a draft may be started or have its definition changed as a draft."""
    if backfill.state != BackfillState.DRAFT:
        raise InvalidTransition(
            "backfill", backfill.state.value, action, valid_actions(backfill.state), action=True
        )
