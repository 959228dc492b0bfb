"""A date-range backfill's definition, as given and as stored: the draft it can be edited as,
the spec it is planned from, and the windows its stored columns make."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from orchestrator.domain.models import Backfill, Reprocess, RunOrder
from orchestrator.domain.specs import BackfillSpec, DateOrDatetime, DraftSpec
from orchestrator.domain.windows import WindowPlan, window_plan

_RANGE_VALUE: TypeAdapter[Any] = TypeAdapter(DateOrDatetime)


def draft_of(backfill: Backfill) -> DraftSpec:
    """A date-range backfill's definition as a draft: what re-planning starts from."""
    given = backfill.range_input or {}
    return DraftSpec(
        name=backfill.name,
        start=_RANGE_VALUE.validate_python(given["start"]) if given.get("start") else None,
        end=_RANGE_VALUE.validate_python(given["end"]) if given.get("end") else None,
        end_inclusive=backfill.end_inclusive,
        interval_type=backfill.interval_type,
        interval_units=backfill.interval_units,
        time_zone=backfill.time_zone or "UTC",
        order=backfill.run_order or RunOrder.OLDEST_FIRST,
        variables=backfill.variables,
    )


def spec_of(
    draft: DraftSpec, target_id: int, *, reprocess: Reprocess = Reprocess.ALL
) -> BackfillSpec:
    """The backfill a draft (or a re-planned definition) describes, to plan as a new one.
    Its variables are taken as they are: merged over the target's when it is planned, as
    at creation."""
    return BackfillSpec(
        target=target_id,
        name=draft.name,
        start=draft.start,
        end=draft.end,
        end_inclusive=draft.end_inclusive,
        interval_type=draft.interval_type,
        interval_units=draft.interval_units,
        time_zone=draft.time_zone,
        order=draft.order,
        reprocess=reprocess,
        variables=draft.variables,
    )


def plan_of(backfill: Backfill) -> WindowPlan:
    """A date-range backfill's windows, rebuilt from what it stored: the planner and the
    executor compute the same ones."""
    given = backfill.range_input
    assert given is not None
    assert backfill.interval_type is not None
    assert backfill.run_order is not None
    assert backfill.interval_units is not None
    assert backfill.time_zone is not None
    return window_plan(
        _RANGE_VALUE.validate_python(given["start"]),
        _RANGE_VALUE.validate_python(given["end"]),
        backfill.interval_type,
        backfill.interval_units,
        backfill.time_zone,
        backfill.run_order,
        end_inclusive=backfill.end_inclusive,
    )
