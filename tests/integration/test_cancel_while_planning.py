"""A backfill cancelled while its planner is still making runs: `runs_total` is the runs
that exist, `runs_planned` keeps what the plan would have made."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.settings import Settings
from tests.conftest import make_settings
from tests.helpers import api, make_target, start_backfill, wait_until

pytestmark = pytest.mark.integration

WINDOWS = 20_000  # days from 1970-01-01: planned a few at a time, far from done when cancelled


@pytest.fixture
def settings(database: str, prefix: str) -> Settings:
    return make_settings(database, prefix, planner_batch_runs=5)


async def test_cancelled_while_planning_counts_the_runs_that_exist(client: Any, db: Any) -> None:
    target = await make_target(client, "slow", max_active_runs=1)
    created = await start_backfill(
        client, "slow", start="1970-01-01", end="2024-10-03", interval_type="day"
    )
    assert created["runs_total"] == created["runs_planned"] == WINDOWS
    assert created["runs_created"] == 0
    assert created["planning_done"] is False
    bid = created["id"]

    async def planning() -> Any:
        body = await api(client, "GET", f"/v1/backfills/{bid}", 200)
        return body if body["runs_created"] >= 20 else None

    before = await wait_until(planning, what="planning under way")
    assert before["planning_done"] is False

    cancelled = await api(client, "POST", f"/v1/backfills/{bid}/cancel", 200)
    existing = await db.fetchval("SELECT count(*) FROM transfer_runs WHERE backfill_id = $1", bid)
    assert cancelled["runs_created"] == existing < WINDOWS
    assert cancelled["runs_total"] == existing
    assert cancelled["runs_planned"] == WINDOWS
    assert cancelled["planning_done"] is False

    # The planner stops at its next batch: the counts hold, and they add up.
    async def settled() -> Any:
        body = await api(client, "GET", f"/v1/backfills/{bid}", 200)
        ended = body["runs_completed"] + body["runs_failed"] + body["runs_cancelled"]
        return body if ended == body["runs_total"] else None

    final = await wait_until(settled, what="every run ended")
    assert final["runs_total"] == final["runs_created"] == existing
    assert (
        await db.fetchval("SELECT count(*) FROM transfer_runs WHERE backfill_id = $1", bid)
        == existing
    )

    # Supermetrics shows the same: total runs = runs created.
    shown = await api(client, "GET", f"/v1/teams/1/backfills/{bid}", 200)
    assert (
        shown["data"]["transfer_runs_total"] == shown["data"]["transfer_runs_created"] == existing
    )
    assert target["id"] == shown["data"]["transfer_id"]
