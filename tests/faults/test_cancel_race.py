"""Fault 8: cancel racing with claims. 200 trials: a busy backfill of many tiny runs, claimed as
fast as two workers (8 slots each) can, is cancelled at a random moment after its first runs
started. No run may start after the cancel committed: the claim stamps `started_at` and the
cancel stamps `cancelled_at`, both with clock_timestamp() under the backfill's row lock, so
their order is the commit order. The checker then finds every run ended and counted."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestrator.context import Context
from orchestrator.handlers.registry import HANDLER_TYPES
from orchestrator.settings import Settings
from tests.conftest import RunningWorker, make_settings
from tests.faults.checker import check_date_range_backfill
from tests.faults.plugins import Counting, registered
from tests.faults.scenario import date_range_target, start_backfill
from tests.helpers import wait_until

pytestmark = pytest.mark.integration

TRIALS = 200
WAVE = 40  # backfills racing at once
WINDOWS = 120  # 5-minute windows: far more than can finish before the cancel
ACTIVE = 4  # max_active_runs: runs queued or running at the cancel, whose claims race it


@pytest.fixture
def settings(database: str, prefix: str) -> Settings:
    return make_settings(database, prefix, worker_concurrency=8, amqp_prefetch=16)


async def run_wave(ctx: Context, db: Any, first: int, rng: random.Random) -> list[tuple[int, int]]:
    """Starts WAVE backfills and cancels each once `k` of its runs have started (k random in
    1..ACTIVE) and one has ended (so runs are ending and starting as the cancel lands);
    returns (backfill id, k) of each."""
    day0 = datetime(2000, 1, 1, tzinfo=UTC)
    starts = [day0 + timedelta(days=n) for n in range(first, first + WAVE)]
    created = await asyncio.gather(
        *(
            start_backfill(
                ctx,
                "race",
                start=start.isoformat(),
                end=(start + timedelta(minutes=5 * WINDOWS)).isoformat(),
                interval_type="minute",
                interval_units=5,
            )
            for start in starts
        )
    )
    ids = {backfill.id: rng.randint(1, ACTIVE) for backfill in created}
    waiting = dict(ids)

    async def cancel_the_ready() -> bool:
        started = dict(
            await db.fetch(
                """SELECT backfill_id, count(*) FROM transfer_runs
                   WHERE backfill_id = ANY($1::bigint[]) AND started_at IS NOT NULL
                   GROUP BY backfill_id
                   HAVING count(*) FILTER (WHERE state = 'completed') > 0""",
                list(waiting),
            )
        )
        ready = [b for b, k in waiting.items() if started.get(b, 0) >= k]
        for b in ready:
            del waiting[b]
        cancelled = await asyncio.gather(
            *(ctx.usecases.backfills.cancel(b, team_id=1) for b in ready)
        )
        assert all(c.state == "cancelled" for c in cancelled)
        return not waiting

    await wait_until(cancel_the_ready, within=60, what="every backfill of the wave cancelled")
    return list(ids.items())


async def test_no_run_starts_after_a_cancel_in_200_races(
    ctx: Context, db: Any, worker: RunningWorker, second_worker: RunningWorker
) -> None:
    rng = random.Random(20240805)
    with registered(HANDLER_TYPES, Counting()) as counting:
        await date_range_target(
            ctx, "race", {"type": "counting"}, max_active_runs=ACTIVE, interval_type="minute"
        )
        trials: list[tuple[int, int]] = []
        for first in range(0, TRIALS, WAVE):
            trials += await run_wave(ctx, db, first, rng)
        assert len(trials) == TRIALS

        late = await db.fetch(
            """SELECT b.id, r.id AS run_id, r.started_at, b.cancelled_at
               FROM backfills b JOIN transfer_runs r ON r.backfill_id = b.id
               WHERE r.started_at > b.cancelled_at"""
        )
        assert late == [], f"runs started after their backfill's cancel: {late[:5]}"
        for backfill_id, _ in trials:
            found = await check_date_range_backfill(
                db,
                backfill_id,
                state="cancelled",
                within=30,
                executions={
                    r["id"]: counting.finished.get(r["id"], 0)
                    for r in await db.fetch(
                        "SELECT id FROM transfer_runs WHERE backfill_id = $1", backfill_id
                    )
                },
                exactly_once=True,
            )
            b = found.backfill
            assert b["runs_completed"] >= 1, "cancelled before any run ended: not a race"
            assert b["runs_cancelled"] >= 1
            assert all(
                r["attempt"] == 0 and r["started_at"] is None
                for r in found.runs
                if r["state"] == "cancelled"
            ), "a cancelled run had been claimed"
        # Some cancels caught a run while it ran: it finished afterwards and still rolled up.
        finished_after = await db.fetchval(
            """SELECT count(DISTINCT b.id) FROM backfills b
               JOIN transfer_runs r ON r.backfill_id = b.id
               WHERE r.state = 'completed' AND r.finished_at > b.cancelled_at"""
        )
        print(f"{finished_after} of {TRIALS} cancels caught a run while it ran")
        assert finished_after > 0
