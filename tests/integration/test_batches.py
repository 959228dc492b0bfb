"""Runs claimed, completed and dispatched in batches, and a cancel too big to mark every
run in its own transaction: the counters, the lease fencing and the cancel's promise hold
as they do one run at a time."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import uuid4

import pytest

from orchestrator.context import Context
from orchestrator.settings import Settings
from orchestrator.storage.batches import Batches, Claim, Completion
from orchestrator.storage.queries import q
from tests.conftest import RunningWorker, make_settings
from tests.faults.checker import check_date_range_backfill
from tests.faults.scenario import date_range_target, start_backfill
from tests.helpers import wait_until
from workers.maintenance import Maintenance
from workers.planner import Planner

pytestmark = pytest.mark.integration


async def planned(ctx: Context, name: str, start: str, end: str, **fields: Any) -> int:
    """A backfill of daily windows planned here (no worker): its first runs queued."""
    backfill = await start_backfill(ctx, name, start=start, end=end, **fields)
    await Planner(ctx.settings, ctx.storage, ctx.sources).plan(backfill.id)
    return backfill.id


async def prioritised(ctx: Context, prefix: str) -> list[int]:
    """Four planned backfills with work, of priorities 5, 5, 5 and 1, oldest first."""
    ids = []
    for suffix, priority in (("a", 5), ("b", 5), ("c", 5), ("d", 1)):
        name = prefix + suffix
        await date_range_target(ctx, name, {"type": "noop"}, max_active_runs=8)
        ids.append(await planned(ctx, name, "2024-01-01", "2024-01-20", priority=priority))
    return ids


def claim(want: int, named: int = 0) -> Claim:
    return Claim(want, 30.0, "tester", named)


async def test_a_completion_batch_spans_backfills_fences_each_run_and_refills(
    ctx: Context, db: Any
) -> None:
    await date_range_target(ctx, "a", {"type": "noop"}, max_active_runs=2)
    await date_range_target(ctx, "b", {"type": "noop"}, max_active_runs=2)
    first = await planned(ctx, "a", "2024-01-01", "2024-01-05")
    second = await planned(ctx, "b", "2024-01-01", "2024-01-05")
    batches = Batches(ctx.pool)
    queued = await db.fetch("SELECT id, backfill_id FROM transfer_runs WHERE state = 'queued'")
    assert len(queued) == 4
    runs = []
    for row in queued:
        got = await batches.claim_runs(row["backfill_id"], claim(5, named=row["id"]))
        assert [c.run.id for c in got] == [row["id"]]
        assert got[0].target is not None
        runs.append(got[0].run)
    # The same message again claims nothing.
    assert await batches.claim_runs(runs[0].backfill_id, claim(5, named=runs[0].id)) == []

    stale = runs[0]
    completions = [
        Completion(r.id, r.backfill_id, r.lease_token or uuid4(), 1, 1) for r in runs[1:]
    ]
    completions.append(Completion(stale.id, stale.backfill_id, uuid4(), 1, 1))  # lost lease
    done, refill, _ = await batches.complete_runs(completions, claim(10))
    assert set(done) == {r.id for r in runs[1:]}
    assert set(done.values()) == {(1, 1)}, "each run's row totals"
    # Each backfill's ended runs are replaced one for one by pending ones.
    assert len(refill) == 3
    assert all(c.run.state == "running" and c.run.lease_token for c in refill)
    counts = {
        r["id"]: (r["runs_completed"], r["rows_processed_count"])
        for r in await db.fetch("SELECT * FROM backfills")
    }
    ended = {b: sum(1 for r in runs[1:] if r.backfill_id == b) for b in (first, second)}
    assert counts == {b: (n, n) for b, n in ended.items()}
    still = await db.fetchval("SELECT state FROM transfer_runs WHERE id = $1", stale.id)
    assert still == "running", "a completion with another lease's token changed the run"


async def test_a_batch_with_messages_waiting_claims_queued_runs_oldest_first(
    ctx: Context, db: Any
) -> None:
    for name in ("qa", "qb", "qc"):
        await date_range_target(ctx, name, {"type": "noop"}, max_active_runs=2)
    first = await planned(ctx, "qa", "2024-01-01", "2024-01-05")
    second = await planned(ctx, "qb", "2024-01-01", "2024-01-05")
    gone = await planned(ctx, "qc", "2024-01-01", "2024-01-05")
    # The second backfill's runs were queued first; the cancelled one's are cancelled.
    await db.execute(
        "UPDATE transfer_runs SET queued_at = queued_at - interval '1 minute'"
        " WHERE backfill_id = $1 AND state = 'queued'",
        second,
    )
    await ctx.usecases.backfills.cancel(gone, team_id=1)
    batches = Batches(ctx.pool)
    first_queued = await db.fetch(
        "SELECT id FROM transfer_runs WHERE backfill_id = $1 AND state = 'queued' ORDER BY seq",
        first,
    )
    (running,) = await batches.claim_runs(first, claim(1, named=first_queued[0]["id"]))
    assert running.run.lease_token is not None
    ended = Completion(running.run.id, first, running.run.lease_token, 0, 0)
    wanted = Claim(2, 30.0, "tester", queued_first=True, own=0)
    done, refill, _ = await batches.complete_runs([ended], wanted)
    assert set(done) == {running.run.id}
    taken = {(c.run.backfill_id, c.run.seq) for c in refill}
    # Oldest queued first: both of the second backfill's, not the first's younger one; no
    # pending run of the ended run's backfill (`own` is 0), none of the cancelled one.
    assert taken == {(second, 0), (second, 1)}
    assert all(c.run.state == "running" and c.run.lease_token for c in refill)
    assert all(c.target is not None and c.backfill.id == c.run.backfill_id for c in refill)
    # The first backfill was dispatched again within its limit: its third run is queued.
    states = dict(
        await db.fetch(
            "SELECT seq, state FROM transfer_runs WHERE backfill_id = $1 AND seq <= 3", first
        )
    )
    assert states == {0: "completed", 1: "queued", 2: "queued", 3: "pending"}
    late = await db.fetchval(
        "SELECT count(*) FROM transfer_runs WHERE backfill_id = $1 AND started_at IS NOT NULL",
        gone,
    )
    assert late == 0


async def test_a_message_whose_run_was_taken_claims_nothing_and_takes_no_lock(
    ctx: Context, db: Any
) -> None:
    await date_range_target(ctx, "qm", {"type": "noop"}, max_active_runs=2)
    backfill = await planned(ctx, "qm", "2024-01-01", "2024-01-05")
    batches = Batches(ctx.pool)
    # A batch took both queued runs; their messages are still on their way.
    taken = await batches.claim_queued(claim(2))
    assert len(taken) == 2
    async with ctx.pool.acquire() as holder, holder.transaction():
        # Whatever holds the backfill's row (a batch, a cancel) does not hold up a moot
        # message: the locked path would wait here until the deadline.
        await holder.execute("SELECT 1 FROM backfills WHERE id = $1 FOR UPDATE", backfill)
        for c in taken:
            late = batches.claim_runs(backfill, claim(4, named=c.run.id))
            assert await asyncio.wait_for(late, timeout=5) == []
    # Nothing else was claimed meanwhile: pending runs stay pending.
    states = await db.fetch(
        "SELECT state, count(*) FROM transfer_runs WHERE backfill_id = $1 GROUP BY state",
        backfill,
    )
    assert dict(states) == {"running": 2, "pending": 3}


async def test_free_slots_take_queued_runs_without_a_batch(ctx: Context, db: Any) -> None:
    await date_range_target(ctx, "qs", {"type": "noop"}, max_active_runs=2)
    backfill = await planned(ctx, "qs", "2024-01-01", "2024-01-05")
    # Queued without a message (as a worker behind the queue leaves them): a worker with
    # free slots takes them oldest first, each under a lease of its own.
    taken = await Batches(ctx.pool).claim_queued(claim(5))
    assert sorted((c.run.backfill_id, c.run.seq) for c in taken) == [(backfill, 0), (backfill, 1)]
    assert all(c.run.state == "running" and c.run.lease_token for c in taken)
    assert await Batches(ctx.pool).claim_queued(claim(5)) == []


async def test_the_capacity_rounding_down_leaves_goes_to_the_largest_remainders(
    ctx: Context, db: Any
) -> None:
    ids = await prioritised(ctx, "r")
    # A capacity of 10 over priorities 5, 5, 5, 1: 3.125 each and 0.625, rounded down to
    # 3, 3, 3 and 0; the one run left goes to the largest remainder, the smallest backfill,
    # which would get at least one anyway. Ten runs at once, as the capacity says.
    shares = [await db.fetchval(q("share_of_capacity"), i, 10) for i in ids]
    assert shares == [3, 3, 3, 1]
    # 11: 3.4375 three times and 0.6875, rounded down to 9; of the two runs left, one goes
    # to the largest remainder (the smallest backfill), one to the oldest of the equal ones.
    shares = [await db.fetchval(q("share_of_capacity"), i, 11) for i in ids]
    assert shares == [4, 3, 3, 1]


async def test_an_unpinned_capacity_is_the_slots_of_the_workers_up_now(
    ctx: Context, db: Any
) -> None:
    ids = await prioritised(ctx, "l")

    async def shares() -> list[int]:
        # 0: the capacity BACKFILL_DISPATCH_CAPACITY left unset stands for.
        return [await db.fetchval(q("share_of_capacity"), i, 0) for i in ids]

    # A worker's heartbeat says how many runs it executes at once.
    planner = Planner(ctx.settings, ctx.storage, ctx.sources)
    await Maintenance(ctx.settings, ctx.storage, planner, "w1", ["planner", "executor"]).heartbeat()
    assert await db.fetchval("SELECT concurrency FROM workers WHERE id = 'w1'") == (
        ctx.settings.worker_concurrency
    )
    sweeps = ctx.storage.maintenance
    await sweeps.worker_seen("w1", "h", 1, ["planner", "executor"], 4, 30.0)
    await sweeps.worker_seen("w2", "h", 2, ["planner", "executor"], 6, 30.0)
    await sweeps.worker_seen("api", "h", 3, ["relay"], None, 30.0)
    # 4 + 6 slots: the shares of a capacity of 10 (see the test above).
    assert await shares() == [3, 3, 3, 1]
    # A worker that stops takes its slots away: 1.25 three times and 0.25, rounded down to
    # 1, 1, 1 and 0; the run left goes to the oldest of the equal remainders.
    await sweeps.worker_stopped("w2")
    assert await shares() == [2, 1, 1, 1]
    # So does one whose heartbeat is overdue (it died without saying so).
    await sweeps.worker_seen("w1", "h", 1, ["planner", "executor"], 4, 0.0)
    # With no worker up, one default worker's 16: 5, 5, 5 and 1.
    assert await shares() == [5, 5, 5, 1]


async def test_nothing_is_claimed_for_a_cancelled_backfill(ctx: Context, db: Any) -> None:
    await date_range_target(ctx, "c", {"type": "noop"}, max_active_runs=2)
    backfill = await planned(ctx, "c", "2024-01-01", "2024-01-10")
    batches = Batches(ctx.pool)
    queued = await db.fetchval(
        "SELECT id FROM transfer_runs WHERE backfill_id = $1 AND state = 'queued' LIMIT 1",
        backfill,
    )
    (running,) = await batches.claim_runs(backfill, claim(4, named=queued))
    await ctx.usecases.backfills.cancel(backfill, team_id=1)
    assert await batches.claim_runs(backfill, claim(4, named=queued)) == []
    assert running.run.lease_token is not None
    completion = Completion(running.run.id, backfill, running.run.lease_token, 0, 0)
    done, refill, _ = await batches.complete_runs([completion], claim(4))
    assert set(done) == {running.run.id}, "a run running at the cancel still finishes"
    assert refill == []
    late = await db.fetchval(
        """SELECT count(*) FROM transfer_runs r JOIN backfills b ON b.id = r.backfill_id
           WHERE r.started_at > b.cancelled_at"""
    )
    assert late == 0


@pytest.fixture
def settings(database: str, prefix: str) -> Settings:
    # Small enough that the tests' backfills take the cancel's deferred path.
    return make_settings(database, prefix, cancel_inline_runs=5)


async def test_a_big_cancel_counts_pending_runs_at_once_and_the_sweep_marks_them(
    ctx: Context, db: Any
) -> None:
    await date_range_target(ctx, "big", {"type": "noop"}, max_active_runs=3)
    backfill = await planned(ctx, "big", "2024-01-01", "2024-03-01")
    cancelled = await ctx.usecases.backfills.cancel(backfill, team_id=1)
    assert cancelled.state == "cancelled"
    assert cancelled.runs_cancelled == cancelled.runs_total == 61
    pending = await db.fetchval(
        "SELECT count(*) FROM transfer_runs WHERE backfill_id = $1 AND state = 'pending'",
        backfill,
    )
    assert pending == 58, "queued runs are cancelled at once, the rest later"
    # Nothing claims a counted run in between.
    assert await Batches(ctx.pool).claim_runs(backfill, claim(10)) == []
    assert await ctx.storage.maintenance.sweep_cancelled_runs(20) == 58
    found = await check_date_range_backfill(db, backfill, state="cancelled", within=5)
    assert found.backfill["runs_cancelled"] == 61


async def test_a_run_handed_back_after_a_big_cancel_is_counted_once(ctx: Context, db: Any) -> None:
    await date_range_target(ctx, "back", {"type": "noop"}, max_active_runs=2)
    backfill = await planned(ctx, "back", "2024-01-01", "2024-01-20")
    queued = await db.fetchval(
        "SELECT id FROM transfer_runs WHERE backfill_id = $1 AND state = 'queued' LIMIT 1",
        backfill,
    )
    (running,) = await Batches(ctx.pool).claim_runs(backfill, claim(1, named=queued))
    await ctx.usecases.backfills.cancel(backfill, team_id=1)
    assert running.run.lease_token is not None
    assert await ctx.storage.runs.release(running.run.id, backfill, running.run.lease_token)
    await ctx.storage.maintenance.sweep_cancelled_runs(100)
    found = await check_date_range_backfill(db, backfill, state="cancelled", within=5)
    assert found.backfill["runs_cancelled"] == 20


async def test_a_worker_sweeps_a_big_cancel_and_finishes_what_ran(
    ctx: Context, db: Any, worker: RunningWorker
) -> None:
    await date_range_target(
        ctx, "live", {"type": "noop"}, max_active_runs=4, interval_type="minute"
    )
    created = await start_backfill(
        ctx,
        "live",
        start="2024-01-01T00:00:00Z",
        end="2024-01-01T12:00:00Z",
        interval_type="minute",
    )

    async def some_ended() -> bool:
        b = await ctx.usecases.backfills.get(created.id, team_id=1)
        return b.runs_completed >= 5

    await wait_until(some_ended, what="runs flowing")
    await ctx.usecases.backfills.cancel(created.id, team_id=1)
    found = await check_date_range_backfill(db, created.id, state="cancelled", within=30)
    late = [
        r
        for r in found.runs
        if r["started_at"] and r["started_at"] > found.backfill["cancelled_at"]
    ]
    assert late == []
