"""A date-range backfill's definition, as given and as stored: the draft it can be edited as,
the spec it is planned from, and the windows its stored columns make."""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import TypeAdapter

from orchestrator.domain.models import Backfill, IntervalType, Reprocess, RunOrder
from orchestrator.domain.specs import BackfillSpec, DateOrDatetime, DraftSpec
from orchestrator.domain.windows import WindowPlan, window_plan

_RANGE_VALUE: TypeAdapter[Any] = TypeAdapter(DateOrDatetime)


class StoredColumns(Protocol):
    """A stored backfill's columns by name (a database row)."""

    def __getitem__(self, key: str, /) -> Any: ...


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


def plan_of(stored: StoredColumns) -> WindowPlan:
    """A date-range backfill's windows, rebuilt from what it stored: the planner and the
    executor compute the same ones."""
    given = stored["range_input"]
    return window_plan(
        _RANGE_VALUE.validate_python(given["start"]),
        _RANGE_VALUE.validate_python(given["end"]),
        IntervalType(stored["interval_type"]),
        stored["interval_units"],
        stored["time_zone"],
        RunOrder(stored["run_order"]),
        end_inclusive=stored["end_inclusive"],
    )
