"""Pure parts of the row path: the adaptive page size and the planning progress the API shows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from api.schemas import PlanningOut
from orchestrator.domain.models import Backfill
from orchestrator.sources.pacing import PageSize
from orchestrator.sources.placement import same_database


def test_pages_grow_while_fast_up_to_the_ceiling() -> None:
    pace = PageSize(1000, 5000, budget_seconds=1.0)
    for _ in range(5):
        pace.took(0.01, full=True)
    assert pace.size == 5000


def test_growth_aims_at_a_quarter_of_the_budget_at_least_doubling_at_most_sixteenfold() -> None:
    pace = PageSize(1000, 1_000_000, budget_seconds=1.0)
    pace.took(0.025, full=True)  # ten times faster than a quarter of the budget
    assert pace.size == 10_000
    pace.took(0.2, full=True)  # close to a quarter: doubles still
    assert pace.size == 20_000
    pace.took(0.0001, full=True)
    assert pace.size == 320_000
    pace.took(0.3, full=True)  # past a quarter, within the budget: stays
    assert pace.size == 320_000


def test_a_short_page_says_nothing_about_a_full_one() -> None:
    pace = PageSize(1000, 5000, budget_seconds=1.0)
    pace.took(0.01, full=False)
    assert pace.size == 1000


def test_a_slow_page_halves_and_a_timeout_quarters_until_the_floor() -> None:
    pace = PageSize(1000, 5000, budget_seconds=1.0, floor=100)
    pace.took(1.5, full=True)
    assert pace.size == 500
    assert pace.timed_out()
    assert pace.size == 125
    assert pace.timed_out()
    assert pace.size == 100
    assert not pace.timed_out()  # at the floor: the caller gives up and fails the attempt


def test_only_the_same_named_source_is_one_database() -> None:
    assert same_database("main", "main")
    assert not same_database("main", "other")


def _backfill(**values: Any) -> Backfill:
    now = datetime.now(UTC)
    defaults: dict[str, Any] = {
        "id": 1,
        "uuid": uuid4(),
        "target_id": 1,
        "kind": "table",
        "state": "running",
        "max_active_runs": 4,
        "max_attempts": 3,
        "chunk_size": 1000,
        "created_at": now,
        "updated_at": now,
    }
    return Backfill(**(defaults | values))


def test_table_planning_progress_is_rows_planned_of_the_initial_count() -> None:
    view = PlanningOut.from_domain(_backfill(runs_created=3, rows_initial_count=10_000))
    assert (view.done, view.runs_created, view.rows_planned, view.fraction) == (
        False,
        3,
        3000,
        0.3,
    )


def test_table_planning_progress_before_the_count_has_no_fraction() -> None:
    view = PlanningOut.from_domain(_backfill(runs_created=3))
    assert view.rows_planned == 3000
    assert view.fraction is None


def test_finished_planning_is_whole() -> None:
    view = PlanningOut.from_domain(
        _backfill(runs_created=11, rows_initial_count=10_500, planning_done=True)
    )
    assert (view.done, view.rows_planned, view.fraction) == (True, 10_500, 1.0)


def test_date_range_planning_progress_is_runs_of_the_total() -> None:
    view = PlanningOut.from_domain(
        _backfill(kind="date_range", chunk_size=None, runs_created=25, runs_total=100)
    )
    assert (view.rows_planned, view.fraction) == (None, 0.25)
