"""Fault 2: a worker process is frozen (SIGSTOP) mid-run until its lease is taken: the reaper
returns the run to pending and another worker claims it. Thawed (SIGCONT), the first worker
is fenced: its heartbeat, checkpoint or completion matches zero rows, it logs that it lost the
lease and stops the run, and the backfill still ends exactly once.

The worker is frozen at a chosen point, between two batches (see freeze_between_batches).
Two more tests freeze it at harder points; both failed until e42ad9e fixed what they found:
a worker resumed after losing its lease delivered the batch it had read before the pause, and
a worker frozen inside a transaction held its backfill's row lock, stalling the reaper."""

from __future__ import annotations

import contextlib
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
from tests.helpers import wait_until

pytestmark = pytest.mark.integration


async def freeze_on_a_lock(proc: WorkerProcess, db: Any, what: str, within: float = 15) -> Any:
    """Waits until one of the process's sessions waits on a lock the test holds, then freezes
    the process there; the waiting session."""

    async def waiting() -> Any:
        sessions = await proc.sessions(db)
        return next((s for s in sessions if s["wait_event_type"] == "Lock"), None)

    session = await until(waiting, within=within, what=f"{proc.name} blocked on {what}")
    proc.freeze()
    return session


async def freeze_between_batches(
    proc: WorkerProcess, db: Any, source: str = "src", tries: int = 20
) -> None:
    """Freezes the process at its next read of `source`, outside any transaction, with the
    rows it read waiting in its socket.

    Where a process is frozen matters: frozen inside a transaction that locked the backfill's
    row (a checkpoint, a dispatch sweep) it would keep that lock, which the reaper needs, for
    as long as it is frozen (that case is
    test_a_worker_frozen_inside_a_transaction_does_not_stall_its_backfill). So the test holds
    the source table until the worker's next read waits for it, freezes the worker there and
    lets the read finish; if another of its sessions was inside a transaction just then, it
    thaws the worker and tries again at the next batch."""
    still: list[dict[str, Any]] = []

    async def settled() -> bool:
        # The read finishes once the lock is gone; other sessions are what they were. A
        # session can also stay "active" waiting on the frozen client (ClientRead): the
        # lock was taken while the statement was being parsed (the same-database range
        # statement, INSERT ... SELECT FROM src, is parsed on its first use) and the rest
        # of the protocol exchange waits for the client. Nothing more runs server-side
        # there, and it is inside a transaction, so the check below thaws and retries.
        still[:] = [
            dict(s)
            for s in await proc.sessions(db)
            if s["state"] == "active" and s["wait_event"] != "ClientRead"
        ]
        return not still

    for _ in range(tries):
        async with db.transaction():
            await db.execute(f"LOCK TABLE {source} IN ACCESS EXCLUSIVE MODE")
            await freeze_on_a_lock(proc, db, f"its read of {source}")

        try:
            await wait_until(settled, what=f"the frozen {proc.name}'s statements to finish")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; still active: {still}") from None
        if not await proc.in_transaction(db):
            return
        proc.thaw()
    raise AssertionError(f"{proc.name} was inside a transaction at each of {tries} batches")


async def test_a_frozen_worker_loses_its_run_and_is_fenced_when_thawed(
    ctx: Context, db: Any, workers: Workers
) -> None:
    await make_source(db, 6000)
    await make_dest(db, statement_delay=0.03)
    await record_run_history(db)
    await table_target(ctx, chunk_size=3000, max_active_runs=1)
    await workers.start_ready(db, "a", "b", read_batch_rows=100)
    backfill = await start_backfill(ctx, "copy")

    run = await until(
        lambda: running_run(db, backfill.id, max_rows=2000), within=30, what="a run delivering rows"
    )
    victim = workers.by_worker_id(run["worker_id"])
    assert victim is not None
    rescuer = next(p for p in workers.started if p is not victim)
    await freeze_between_batches(victim, db)

    async def taken() -> Any:
        return await db.fetchrow(
            """SELECT * FROM transfer_runs
               WHERE id = $1 AND worker_id = $2 AND state IN ('running', 'completed')""",
            run["id"],
            rescuer.worker_id,
        )

    # The lease (2 s) runs out, the rescuer's reaper returns the run, the rescuer claims it.
    claimed = await until(taken, within=20, what="the rescuer to take the frozen run")
    assert claimed["attempt"] == 2
    reaped = await db.fetchval(
        """SELECT error FROM run_history WHERE run_id = $1 AND old_state = 'running'
           AND new_state = 'pending' ORDER BY n LIMIT 1""",
        run["id"],
    )
    assert reaped is not None
    assert "lease expired" in reaped, reaped
    thawed_at = await db.fetchval("SELECT clock_timestamp()")
    victim.thaw()

    lost = await victim.wait_event("run_lease_lost", within=15, run_id=run["id"])
    found = await check_table_backfill(db, backfill.id, within=60)

    final = next(r for r in found.runs if r["id"] == run["id"])
    assert final["worker_id"] == rescuer.worker_id
    assert final["attempt"] == 2
    assert not victim.events("run_completed", run_id=run["id"]), lost
    # After the thaw the run changed state only by the rescuer completing it: the victim's
    # heartbeat, checkpoint, completion, failure or hand-back all matched nothing.
    changes = await db.fetch(
        "SELECT old_state, new_state FROM run_history WHERE run_id = $1 AND at > $2",
        run["id"],
        thawed_at,
    )
    assert {tuple(c) for c in changes} <= {("running", "completed")}, changes
    assert victim.returncode is None, "the fenced worker carries on with other work"
    # Nor did it deliver anything of that run after the thaw (its source and sink sessions
    # carry its name): the heartbeat, or the lease check before a delivery once the run's
    # lease clock is stale, found the lease gone first (the harder case, a slow heartbeat, is
    # test_a_fenced_worker_never_delivers_after_losing_its_lease).
    delivered_late = await db.fetchval(
        """SELECT count(*) FROM dst_audit WHERE app = $1 AND at > $2
           AND id > coalesce(($3::text[])[1]::bigint, 0) AND id <= ($4::text[])[1]::bigint""",
        victim.name,
        thawed_at,
        final["lower_key"],
        final["upper_key"],
    )
    assert delivered_late == 0, f"the fenced worker delivered {delivered_late} rows of the run"


async def test_a_fenced_worker_never_delivers_after_losing_its_lease(
    ctx: Context, db: Any, workers: Workers
) -> None:
    """The victim read its next batch (v1) and was frozen past its lease; the rows changed (v2)
    and the rescuer delivered v2. When the victim resumes, its heartbeat is slow to answer (the
    test holds a lock on transfer_runs, as a slow database round trip would). It must not
    deliver v1 over v2 meanwhile: its lease clock is stale, so it checks the lease, fenced,
    before delivering. (Before e42ad9e it delivered, and only its checkpoint afterwards found
    the lease gone: the destination kept the stale rows.)"""
    await make_source(db, 3000)
    await make_dest(db, statement_delay=0.02)
    await table_target(ctx, chunk_size=3000, max_active_runs=1)  # one run
    await workers.start_ready(db, "a", "b", read_batch_rows=100)
    backfill = await start_backfill(ctx, "copy")
    run = await until(
        lambda: running_run(db, backfill.id, max_rows=2000), within=30, what="run under way"
    )
    victim = workers.by_worker_id(run["worker_id"])
    assert victim is not None
    rescuer = next(p for p in workers.started if p is not victim)

    # The rows it will deliver when it wakes are in its socket, as they are now (v1).
    await freeze_between_batches(victim, db)
    cursor = await db.fetchval("SELECT cursor FROM transfer_runs WHERE id = $1", run["id"])
    await db.execute(
        "UPDATE src SET name = name || ' v2' WHERE id > ($1::text[])[1]::bigint",
        cursor,
    )

    async def rescued() -> bool:
        state = await db.fetchval("SELECT state FROM transfer_runs WHERE id = $1", run["id"])
        return bool(state == "completed")

    await wait_until(rescued, within=20, what="the rescuer to finish the run with the new rows")
    thawed_at = await db.fetchval("SELECT clock_timestamp()")
    async with db.transaction():
        # Every write to transfer_runs now waits: the victim's heartbeat is slow to answer.
        await db.execute("LOCK TABLE transfer_runs IN SHARE MODE")
        victim.thaw()

        async def victim_wrote() -> bool:
            return bool(
                await db.fetchval(
                    "SELECT count(*) FROM dst_audit WHERE app = $1 AND at > $2",
                    victim.name,
                    thawed_at,
                )
            )

        # Before the fix it delivered within milliseconds; now it waits for the lease check.
        with contextlib.suppress(AssertionError):
            await wait_until(victim_wrote, within=2, what="the victim to deliver")
    await victim.wait_event("run_lease_lost", within=15, run_id=run["id"])
    assert rescuer.returncode is None
    late = await db.fetchval(
        "SELECT count(*) FROM dst_audit WHERE app = $1 AND at > $2", victim.name, thawed_at
    )
    await check_table_backfill(db, backfill.id, within=30, static_source=False)
    assert late == 0, f"the fenced worker wrote {late} rows after it lost its lease"


async def test_a_worker_frozen_inside_a_transaction_does_not_stall_its_backfill(
    ctx: Context, db: Any, workers: Workers
) -> None:
    """The victim is frozen inside a transaction holding its backfill's row lock, which the
    reaper takes before returning a run: the run must still be taken within about a lease.
    (Before e42ad9e nothing could take it until the victim was thawed or killed; now Postgres
    ends an orchestrator session idle in a transaction for half a lease.)"""
    await make_source(db, 3000)
    await make_dest(db, statement_delay=0.02)
    await table_target(ctx, chunk_size=3000, max_active_runs=1)
    await workers.start_ready(db, "a", "b", read_batch_rows=100)
    backfill = await start_backfill(ctx, "copy")
    run = await until(
        lambda: running_run(db, backfill.id, max_rows=2000), within=30, what="run under way"
    )
    victim = workers.by_worker_id(run["worker_id"])
    assert victim is not None
    rescuer = next(p for p in workers.started if p is not victim)

    # Hold the backfill's row lock until the victim waits for it (its next checkpoint, or its
    # dispatch sweep), freeze the victim, and let it take the lock: it is now frozen inside a
    # transaction that holds the backfill's row lock.
    async with db.transaction():
        await db.execute("SELECT 1 FROM backfills WHERE id = $1 FOR UPDATE", backfill.id)
        await freeze_on_a_lock(victim, db, "the backfill's row lock")

    async def holding() -> bool:
        return bool(await victim.in_transaction(db))

    await wait_until(holding, what="the frozen victim to hold the lock")

    async def taken() -> bool:
        worker = await db.fetchval("SELECT worker_id FROM transfer_runs WHERE id = $1", run["id"])
        return bool(worker == rescuer.worker_id)

    # Lease 2 s + reaper 0.2 s + redispatch 1 s: 6 s is plenty for the run to be taken.
    await wait_until(taken, within=6, what="the rescuer to take the frozen worker's run")
    victim.thaw()
    await check_table_backfill(db, backfill.id, within=30)
