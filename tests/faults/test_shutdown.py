"""Fault 3: SIGTERM during a run. The worker stops taking messages, lets its running run finish
within the grace period, or (grace too short) hands it back at once, pending with the attempt
not counted, so another worker claims it immediately rather than after a lease timeout; then
it exits 0. A second SIGTERM exits at once."""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest

from orchestrator.context import Context
from tests.faults.checker import check_table_backfill
from tests.faults.processes import WorkerProcess, Workers
from tests.faults.scenario import (
    make_dest,
    make_source,
    record_run_history,
    running_run,
    start_backfill,
    table_target,
    until,
)

pytestmark = pytest.mark.integration


async def victim_and_other(
    db: Any, workers: Workers, backfill_id: int, max_rows: int
) -> tuple[Any, WorkerProcess, WorkerProcess]:
    run = await until(
        lambda: running_run(db, backfill_id, max_rows=max_rows),
        within=30,
        what="a run delivering rows",
    )
    victim = workers.by_worker_id(run["worker_id"])
    assert victim is not None
    return run, victim, next(p for p in workers.started if p is not victim)


async def claims_by(db: Any, worker_id: str | None, after: Any) -> list[Any]:
    rows: list[Any] = await db.fetch(
        """SELECT * FROM run_history WHERE worker_id = $1 AND old_state = 'queued'
           AND new_state = 'running' AND at > $2""",
        worker_id,
        after,
    )
    return rows


async def test_sigterm_lets_the_running_run_finish_then_exits_0(
    ctx: Context, db: Any, workers: Workers
) -> None:
    await make_source(db, 6000)
    await make_dest(db, statement_delay=0.03)  # ~1 s per run of 1500 rows
    await record_run_history(db)
    await table_target(ctx, chunk_size=1500, max_active_runs=3)
    await workers.start_ready(db, "a", "b", read_batch_rows=100, shutdown_grace_seconds=15)
    backfill = await start_backfill(ctx, "copy")
    run, victim, other = await victim_and_other(db, workers, backfill.id, max_rows=1000)

    term_at = await db.fetchval("SELECT clock_timestamp()")
    started = time.monotonic()
    victim.terminate()
    assert await victim.wait_exit(within=15) == 0
    took = time.monotonic() - started

    ended = await db.fetchrow("SELECT * FROM transfer_runs WHERE id = $1", run["id"])
    assert ended["state"] == "completed", dict(ended)
    assert ended["worker_id"] == victim.worker_id, "the run was finished by the stopping worker"
    assert ended["attempt"] == 1
    assert took < 15, f"took {took:.1f}s, longer than the grace period"
    assert await claims_by(db, victim.worker_id, term_at) == [], "it claimed after SIGTERM"
    assert not victim.events("run_released")
    for event in ("shutdown_requested", "worker_stopped"):
        assert victim.events(event), event
    stopped = await db.fetchval("SELECT stopped_at FROM workers WHERE id = $1", victim.worker_id)
    assert stopped is not None

    await check_table_backfill(db, backfill.id, within=60)
    assert other.returncode is None


async def test_sigterm_with_a_short_grace_hands_the_run_back_at_once(
    ctx: Context, db: Any, workers: Workers
) -> None:
    lease = 10.0
    await make_source(db, 3000)
    await make_dest(db, statement_delay=0.1)  # 30 batches: ~3 s for the one run
    await record_run_history(db)
    await table_target(ctx, chunk_size=3000, max_active_runs=1)
    await workers.start_ready(
        db,
        "a",
        "b",
        read_batch_rows=100,
        shutdown_grace_seconds=0.3,
        lease_seconds=lease,
        heartbeat_seconds=1,
    )
    backfill = await start_backfill(ctx, "copy")
    run, victim, other = await victim_and_other(db, workers, backfill.id, max_rows=2000)

    term_at = await db.fetchval("SELECT clock_timestamp()")
    victim.terminate()
    assert await victim.wait_exit(within=10) == 0
    assert victim.events("run_released", run_id=run["id"])

    async def claimed_by_other() -> Any:
        return await db.fetchrow(
            """SELECT * FROM run_history WHERE run_id = $1 AND worker_id = $2
               AND old_state = 'queued' AND new_state = 'running'""",
            run["id"],
            other.worker_id,
        )

    claim = await until(claimed_by_other, within=lease / 2, what="the other worker's claim")
    handed_back = await db.fetchrow(
        """SELECT * FROM run_history WHERE run_id = $1 AND old_state = 'running'
           AND new_state = 'pending'""",
        run["id"],
    )
    assert handed_back is not None
    assert handed_back["attempt"] == 0, "a handed-back attempt does not count"
    assert handed_back["error"] is None, "a hand-back is not a failure"
    assert handed_back["at"] > term_at
    waited = (claim["at"] - term_at).total_seconds()
    assert waited < lease / 2, (
        f"claimed {waited:.1f}s after SIGTERM: a lease timeout, not a hand-back"
    )
    assert claim["attempt"] == 1

    found = await check_table_backfill(db, backfill.id, within=60)
    assert found.runs[0]["attempt"] == 1
    assert found.runs[0]["worker_id"] == other.worker_id


async def test_a_second_sigterm_exits_at_once(ctx: Context, db: Any, workers: Workers) -> None:
    await make_source(db, 3000)
    await make_dest(db, statement_delay=0.1)
    await table_target(ctx, chunk_size=3000, max_active_runs=1)
    await workers.start_ready(db, "a", "b", read_batch_rows=100, shutdown_grace_seconds=60)
    backfill = await start_backfill(ctx, "copy")
    run, victim, other = await victim_and_other(db, workers, backfill.id, max_rows=2000)

    victim.terminate()
    await victim.wait_event("shutdown_requested", within=5)
    started = time.monotonic()
    victim.send(signal.SIGTERM)
    assert await victim.wait_exit(within=5) == 128 + signal.SIGTERM
    assert time.monotonic() - started < 2, "the second SIGTERM did not exit at once"
    assert victim.events("second_signal_exiting_now")
    assert not victim.events("worker_stopped")

    # It left its run behind with a lease: the reaper returns it and the other finishes it.
    found = await check_table_backfill(db, backfill.id, within=60)
    final = next(r for r in found.runs if r["id"] == run["id"])
    assert final["worker_id"] == other.worker_id
    assert final["attempt"] == 2
