"""Progress from counters and the last minute's activity: pure, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from orchestrator.domain.models import Backfill, TargetKind
from orchestrator.domain.progress import WINDOW_SECONDS, Activity, progress_of
from orchestrator.domain.states import BackfillState

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def backfill(**fields: Any) -> Backfill:
    values: dict[str, Any] = {
        "id": 1,
        "uuid": uuid4(),
        "target_id": 1,
        "kind": TargetKind.TABLE,
        "state": BackfillState.RUNNING,
        "max_active_runs": 4,
        "max_attempts": 3,
        "created_at": NOW - timedelta(hours=1),
        "updated_at": NOW,
        "started_at": NOW - timedelta(hours=1),
    }
    values.update(fields)
    return Backfill(**values)


def activity(rows: float = 0.0, runs: int = 0) -> Activity:
    return Activity(rows=rows, runs=runs, at=NOW)


def test_a_table_backfill_is_measured_in_rows_with_an_eta_at_the_current_rate() -> None:
    b = backfill(rows_initial_count=10_000, rows_processed_count=4_000, runs_total=10)

    p = progress_of(b, activity(rows=6_000, runs=6))

    assert p.fraction == 0.4
    assert p.rows_per_second == 100.0
    assert p.runs_per_minute == 6.0
    assert p.eta_seconds == 60.0  # 6,000 rows left at 100 rows/s
    assert p.eta == NOW + timedelta(seconds=60)
    assert p.window_seconds == WINDOW_SECONDS


def test_a_date_range_backfill_is_measured_in_runs() -> None:
    b = backfill(kind=TargetKind.DATE_RANGE, runs_total=100, runs_completed=40, runs_failed=10)

    p = progress_of(b, activity(runs=30))

    assert p.fraction == 0.5
    assert p.runs_per_minute == 30.0
    assert p.eta_seconds == 100.0  # 50 runs left at half a run per second


def test_a_young_backfill_is_measured_over_its_own_life() -> None:
    b = backfill(kind=TargetKind.DATE_RANGE, runs_total=100, started_at=NOW - timedelta(seconds=10))

    p = progress_of(b, activity(rows=50, runs=5))

    assert p.runs_per_minute == 30.0
    assert p.rows_per_second == 5.0


def test_unknown_totals_and_unstarted_backfills_say_null_not_zero() -> None:
    planning = backfill(rows_initial_count=None, runs_total=3, planning_done=False)
    created = backfill(state=BackfillState.CREATED, started_at=None, rows_initial_count=None)

    p = progress_of(planning, activity(runs=3))
    q = progress_of(created, activity())

    assert p.fraction is None
    assert p.eta_seconds is None
    assert p.runs_per_minute == 3.0
    assert (q.rows_per_second, q.runs_per_minute, q.eta_seconds) == (None, None, None)


def test_no_eta_without_movement_or_once_stopped() -> None:
    counted = {"rows_initial_count": 100, "rows_processed_count": 50}

    idle = progress_of(backfill(**counted), activity())
    paused = progress_of(backfill(state=BackfillState.PAUSED, **counted), activity(rows=30))

    assert idle.rows_per_second == 0.0
    assert idle.eta_seconds is None
    assert paused.eta_seconds is None
    assert paused.fraction == 0.5


@pytest.mark.parametrize(
    ("state", "expected"),
    [(BackfillState.COMPLETED, 1.0), (BackfillState.CANCELLED, 0.2)],
)
def test_a_cancelled_backfill_shows_how_far_it_got(state: BackfillState, expected: float) -> None:
    b = backfill(
        kind=TargetKind.DATE_RANGE,
        state=state,
        runs_total=10,
        runs_completed=2,
        runs_cancelled=8,
        planning_done=True,
    )

    assert progress_of(b, activity()).fraction == expected


def test_more_rows_than_counted_at_the_start_stays_at_one() -> None:
    b = backfill(rows_initial_count=100, rows_processed_count=130)

    assert progress_of(b, activity()).fraction == 1.0


def test_an_empty_table_is_done() -> None:
    assert progress_of(backfill(rows_initial_count=0), activity()).fraction == 1.0
