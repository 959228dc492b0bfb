"""Response bodies written straight from domain objects, for the reads clients poll.

Building a `BackfillOut` from a backfill validates every field again (the backfill was
validated when it was read) and dumping it walks the model once more: together they cost
several times the rest of a `GET /v1/backfills/{id}`. These functions write the same
members with the same values (`api/schemas.py` stays the contract: the OpenAPI document is
made from it, and tests/unit/api/test_views.py holds every function here to its model's
`model_dump(mode="json")`). Only what the model declares is written, so a field added to a
domain object is still not published until someone declares it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from api.render import iso_datetime
from orchestrator.domain.models import Backfill, ErrorEntry, TargetKind
from orchestrator.domain.progress import Progress
from orchestrator.usecases.paging import Page


def _time(value: datetime | None) -> str | None:
    return None if value is None else iso_datetime(value)


def planning_figures(b: Backfill) -> tuple[int | None, float | None]:
    """(rows_planned, fraction) of `PlanningOut`: how far planning has got."""
    rows: int | None = None
    fraction: float | None = None
    if b.planning_done:
        fraction = 1.0
    if b.kind == TargetKind.TABLE and b.chunk_size:
        rows = b.runs_created * b.chunk_size
        if b.rows_initial_count is not None:
            rows = min(rows, b.rows_initial_count)
            if not b.planning_done and b.rows_initial_count > 0:
                fraction = min(1.0, rows / b.rows_initial_count)
    elif not b.planning_done and b.runs_total > 0:
        fraction = min(1.0, b.runs_created / b.runs_total)
    return rows, fraction


def error_entry_body(e: ErrorEntry) -> dict[str, Any]:
    """`ErrorEntryOut`."""
    return {
        "run_id": e.run_id,
        "window_start": _time(e.window_start),
        "window_end": _time(e.window_end),
        "lower_key": e.lower_key,
        "upper_key": e.upper_key,
        "attempt": e.attempt,
        "error": e.error,
    }


def progress_body(p: Progress) -> dict[str, Any]:
    """`ProgressOut`."""
    return {
        "fraction": p.fraction,
        "rows_per_second": p.rows_per_second,
        "runs_per_minute": p.runs_per_minute,
        "eta_seconds": p.eta_seconds,
        "eta": _time(p.eta),
        "window_seconds": p.window_seconds,
    }


def backfill_body(b: Backfill, progress: Progress) -> dict[str, Any]:
    """`BackfillOut`, members in its order."""
    rows_planned, planned_fraction = planning_figures(b)
    return {
        "id": b.id,
        "uuid": str(b.uuid),
        "command_id": None if b.command_id is None else str(b.command_id),
        "target_id": b.target_id,
        "kind": b.kind.value,
        "name": b.name,
        "state": b.state.value,
        "table": b.table_name,
        "sort_column": b.sort_column,
        "chunk_size": b.chunk_size,
        "start": _time(b.range_start),
        "end": _time(b.range_end),
        "end_inclusive": b.end_inclusive,
        "reprocess": b.reprocess.value,
        "max_runs_per_minute": b.max_runs_per_minute,
        "max_rows_per_second": b.max_rows_per_second,
        "priority": b.priority,
        "interval_type": None if b.interval_type is None else b.interval_type.value,
        "interval_units": b.interval_units,
        "time_zone": b.time_zone,
        "order": None if b.run_order is None else b.run_order.value,
        "variables": b.variables,
        "max_active_runs": b.max_active_runs,
        "max_attempts": b.max_attempts,
        "rows_initial_count": b.rows_initial_count,
        "planning": {
            "done": b.planning_done,
            "runs_created": b.runs_created,
            "rows_planned": rows_planned,
            "fraction": planned_fraction,
        },
        "rows_processed_count": b.rows_processed_count,
        "rows_ingested_count": b.rows_ingested_count,
        "runs_total": b.runs_total,
        "runs_created": b.runs_created,
        "runs_planned": b.runs_planned,
        "planning_done": b.planning_done,
        "runs_completed": b.runs_completed,
        "runs_failed": b.runs_failed,
        "runs_cancelled": b.runs_cancelled,
        "error_report": [error_entry_body(e) for e in b.error_report],
        "progress": progress_body(progress),
        "created_at": iso_datetime(b.created_at),
        "started_at": _time(b.started_at),
        "updated_at": iso_datetime(b.updated_at),
        "completed_at": _time(b.completed_at),
        "cancelled_at": _time(b.cancelled_at),
        "failed_at": _time(b.failed_at),
        "paused_at": _time(b.paused_at),
    }


def backfills_page_body(page: Page[Backfill], progress: dict[int, Progress]) -> dict[str, Any]:
    """`PageOut[BackfillOut]`."""
    return {
        "data": [backfill_body(b, progress[b.id]) for b in page.items],
        "next_after": page.next_after,
    }
