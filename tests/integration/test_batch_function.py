"""A batch of completions in one statement (pg_temp.complete_batch, batches.sql): what it
declines it leaves untouched for the transaction path, and what it does counts, fences and
claims as that path does."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from orchestrator.context import Context
from orchestrator.domain.claims import ClaimedRun
from orchestrator.storage.batches import Batches, Claim, Completion
from tests.faults.scenario import date_range_target
from tests.integration.test_batches import claim, planned

pytestmark = pytest.mark.integration

Result = tuple[dict[int, tuple[int, int]], list[ClaimedRun], bool]


async def running(batches: Batches, db: Any, backfill: int) -> list[ClaimedRun]:
    """The backfill's queued runs claimed, as their dispatch messages would."""
    out: list[ClaimedRun] = []
    for row in await db.fetch(
        "SELECT id FROM transfer_runs WHERE backfill_id = $1 AND state = 'queued' ORDER BY seq",
        backfill,
    ):
        out += await batches.claim_runs(backfill, claim(1, named=row["id"]))
    return out


def ended(runs: list[ClaimedRun], rows: int = 3) -> list[Completion]:
    return [
        Completion(c.run.id, c.run.backfill_id, c.run.lease_token or uuid4(), rows, rows - 1)
        for c in runs
    ]


async def in_one(batches: Batches, completions: list[Completion], wanted: Claim) -> Result | None:
    async with batches.pool.acquire() as conn:
        return await batches._complete_in_one(conn, completions, wanted)


async def in_transaction(batches: Batches, completions: list[Completion], wanted: Claim) -> Result:
    async with batches.pool.acquire() as conn, conn.transaction():
        return await batches._complete_runs(conn, completions, wanted)


async def snapshot(db: Any, backfill: int) -> tuple[Any, ...]:
    """What a batch changes on a backfill and its runs, without ids and timestamps."""
    b = await db.fetchrow(
        """SELECT state, runs_completed, runs_failed, runs_cancelled, rows_processed_count,
                  rows_ingested_count, started_at IS NOT NULL AS started
           FROM backfills WHERE id = $1""",
        backfill,
    )
    runs = await db.fetch(
        """SELECT seq, state, attempt, rows_processed, rows_ingested, worker_id,
                  lease_token IS NOT NULL AS leased
           FROM transfer_runs WHERE backfill_id = $1 ORDER BY seq""",
        backfill,
    )
    outbox = await db.fetchval(
        "SELECT count(*) FROM outbox WHERE (payload->>'backfill_id')::bigint = $1", backfill
    )
    return tuple(b), [tuple(r) for r in runs], outbox


@pytest.mark.parametrize("capacity", [None, 16])
async def test_the_one_statement_and_the_transaction_move_the_same_counters(
    ctx: Context, db: Any, capacity: int | None
) -> None:
    ids = {}
    for name in ("fast", "slow"):
        await date_range_target(ctx, name, {"type": "noop"}, max_active_runs=3)
        ids[name] = await planned(ctx, name, "2024-01-01", "2024-01-08")
    batches = Batches(ctx.pool, capacity=capacity)
    runs = {name: await running(batches, db, b) for name, b in ids.items()}
    assert [len(r) for r in runs.values()] == [3, 3]
    # One run of each lost its lease (a stale token): neither path counts it.
    for name in runs:
        stale = runs[name][0]
        completions = [
            *ended(runs[name][1:]),
            Completion(stale.run.id, stale.run.backfill_id, uuid4(), 9, 9),
        ]
        # queued_first=False: claim_queued_anywhere would take the other backfill's runs.
        wanted = Claim(3, 30.0, "tester", announce=False)
        if name == "fast":
            got = await in_one(batches, completions, wanted)
            assert got is not None, "the common case is not declined"
        else:
            got = await in_transaction(batches, completions, wanted)
        done, refill, _ = got
        assert set(done) == {c.run.id for c in runs[name][1:]}
        assert set(done.values()) == {(3, 2)}
        assert sorted(c.run.seq for c in refill) == [3, 4]
        assert all(c.run.state == "running" and c.run.lease_token for c in refill)
        assert all(c.backfill.id == ids[name] and c.target is not None for c in refill)
    assert await snapshot(db, ids["fast"]) == await snapshot(db, ids["slow"])


async def test_a_throttled_backfill_in_the_batch_is_left_to_the_transaction(
    ctx: Context, db: Any
) -> None:
    await date_range_target(ctx, "free", {"type": "noop"}, max_active_runs=2)
    await date_range_target(ctx, "slowed", {"type": "noop"}, max_active_runs=2)
    free = await planned(ctx, "free", "2024-01-01", "2024-01-08")
    slowed = await planned(ctx, "slowed", "2024-01-01", "2024-01-08", max_runs_per_minute=60)
    batches = Batches(ctx.pool, capacity=16)
    # The throttle's bucket starts empty: one of its runs queued by hand.
    await db.execute(
        "UPDATE transfer_runs SET state = 'queued', queued_at = now()"
        " WHERE backfill_id = $1 AND seq = 0",
        slowed,
    )
    runs = await running(batches, db, free) + await running(batches, db, slowed)
    assert {c.run.backfill_id for c in runs} == {free, slowed}
    before = (await snapshot(db, free), await snapshot(db, slowed))
    wanted = Claim(4, 30.0, "tester", queued_first=True, own=4)
    assert await in_one(batches, ended(runs), wanted) is None
    assert (await snapshot(db, free), await snapshot(db, slowed)) == before, "nothing written"
    # complete_runs takes the transaction: every run counted, the throttle's bucket spent.
    done, _, _ = await batches.complete_runs(ended(runs), wanted)
    assert set(done) == {c.run.id for c in runs}
    counted = await db.fetch("SELECT id, runs_completed FROM backfills ORDER BY id")
    assert [tuple(r) for r in counted] == [(free, 2), (slowed, 1)]


async def test_a_batch_that_may_finish_its_backfill_is_left_to_the_transaction(
    ctx: Context, db: Any
) -> None:
    await date_range_target(ctx, "short", {"type": "noop"}, max_active_runs=4)
    backfill = await planned(ctx, "short", "2024-01-01", "2024-01-03")
    batches = Batches(ctx.pool, capacity=16)
    runs = await running(batches, db, backfill)
    total = await db.fetchval("SELECT runs_total FROM backfills WHERE id = $1", backfill)
    assert len(runs) == total
    # One lease lost: the batch may finish the backfill (all its runs end) though it will
    # not; that is decided before anything is written.
    stale = [Completion(runs[0].run.id, backfill, uuid4(), 1, 1), *ended(runs[1:])]
    before = await snapshot(db, backfill)
    assert await in_one(batches, stale, claim(2)) is None
    assert await snapshot(db, backfill) == before
    done, _, _ = await batches.complete_runs(ended(runs), claim(2))
    assert set(done) == {c.run.id for c in runs}
    row = await db.fetchrow("SELECT state, runs_completed FROM backfills WHERE id = $1", backfill)
    assert tuple(row) == ("completed", total)
    events = await db.fetchval(
        "SELECT count(*) FROM outbox WHERE routing_key = 'event.backfill.completed'"
    )
    assert events == 1


async def test_a_lost_lease_in_a_one_statement_batch_counts_nothing_twice(
    ctx: Context, db: Any
) -> None:
    await date_range_target(ctx, "lease", {"type": "noop"}, max_active_runs=2)
    backfill = await planned(ctx, "lease", "2024-01-01", "2024-01-10")
    batches = Batches(ctx.pool, capacity=16)
    first, second = await running(batches, db, backfill)
    # The first run's lease went to another worker (the reaper requeued it, say).
    await db.execute(
        "UPDATE transfer_runs SET lease_token = gen_random_uuid() WHERE id = $1", first.run.id
    )
    got = await in_one(batches, ended([first, second]), claim(2))
    assert got is not None
    done, refill, _ = got
    assert set(done) == {second.run.id}
    assert len(refill) == 1
    assert await db.fetchval("SELECT state FROM transfer_runs WHERE id = $1", first.run.id) == (
        "running"
    )
    # The same completions again: the second run is no longer running, nothing moves.
    again = await in_one(batches, ended([first, second]), claim(2))
    assert again is not None
    assert again[0] == {}
    assert again[1] == []
    counted = await db.fetchrow(
        "SELECT runs_completed, rows_processed_count FROM backfills WHERE id = $1", backfill
    )
    assert tuple(counted) == (1, 3)


async def test_a_cancel_committed_between_batches_lets_the_next_one_claim_nothing(
    ctx: Context, db: Any
) -> None:
    await date_range_target(ctx, "gone", {"type": "noop"}, max_active_runs=2)
    await date_range_target(ctx, "other", {"type": "noop"}, max_active_runs=2)
    gone = await planned(ctx, "gone", "2024-01-01", "2024-01-10")
    batches = Batches(ctx.pool, capacity=16)
    first, second = await running(batches, db, gone)
    got = await in_one(batches, ended([first]), claim(1))
    assert got is not None
    assert len(got[1]) == 1, "before the cancel, a run took the slot"
    # Runs of another backfill wait queued, and so do the cancelled one's, until the cancel.
    other = await planned(ctx, "other", "2024-01-01", "2024-01-10")
    await ctx.usecases.backfills.cancel(gone, team_id=1)
    wanted = Claim(4, 30.0, "tester", queued_first=True, own=4)
    got = await in_one(batches, ended([second]), wanted)
    assert got is not None
    done, refill, _ = got
    assert set(done) == {second.run.id}, "a run running at the cancel still finishes"
    assert {c.run.backfill_id for c in refill} == {other}, "only the other's queued runs"
    late = await db.fetchval(
        """SELECT count(*) FROM transfer_runs r JOIN backfills b ON b.id = r.backfill_id
           WHERE b.id = $1 AND r.started_at > b.cancelled_at""",
        gone,
    )
    assert late == 0
    state = await db.fetchval("SELECT state FROM backfills WHERE id = $1", gone)
    assert state == "cancelled"
    # The other backfill started with the runs the batch took (mark_backfill_started_once),
    # and the claimed runs carry it as the batch left it.
    started = await db.fetchrow("SELECT state, started_at FROM backfills WHERE id = $1", other)
    assert started["state"] == "running"
    assert started["started_at"] is not None
    assert {(c.backfill.state, c.backfill.started_at) for c in refill} == {
        (started["state"], started["started_at"])
    }
