"""One run's life on a worker: claimed under a lease, kept alive by heartbeats, checkpointed
after each delivered batch, then completed, failed (retried or for good) or handed back.
Every write is fenced by the run's lease token and taken under the backfill's row lock, the
order every transaction keeps. (Claims and completions by the batch: batches.py.)"""

from __future__ import annotations

from uuid import UUID

from orchestrator.domain.claims import Checkpointed, ClaimedRun
from orchestrator.domain.models import BackfillRow, TransferRun
from orchestrator.domain.states import BACKFILL_DISPATCHABLE, BackfillState, RunState
from orchestrator.storage.database import Pool
from orchestrator.storage.lifecycle import dispatch, end_attempt, lock_backfill, maybe_finish, one
from orchestrator.storage.queries import q


class RunStore:
    def __init__(self, pool: Pool, *, capacity: int | None = None) -> None:
        self.pool = pool
        # The dispatch capacity shared out by priority (see lifecycle.dispatch).
        self.capacity = capacity

    async def page(
        self, backfill_id: int, states: list[str] | None, after: int | None, limit: int
    ) -> list[TransferRun]:
        rows = await self.pool.fetch(q("list_runs"), backfill_id, states, after, limit)
        return [TransferRun.from_row(r) for r in rows]

    async def claim(
        self, run_id: int, backfill_id: int, token: UUID, lease: float, worker_id: str
    ) -> ClaimedRun | None:
        async with self.pool.acquire() as conn, conn.transaction():
            backfill = await conn.fetchrow(q("lock_backfill"), backfill_id)
            if backfill is None or backfill["state"] not in BACKFILL_DISPATCHABLE:
                return None
            run = await conn.fetchrow(q("claim_run"), run_id, token, lease, worker_id)
            if run is None:
                return None
            await conn.execute(q("mark_backfill_started"), backfill_id)
            return ClaimedRun(TransferRun.from_row(run), BackfillRow.from_row(backfill))

    async def heartbeat(self, run_id: int, token: UUID, lease: float) -> bool:
        return await self.pool.fetchval(q("heartbeat_run"), run_id, token, lease) is not None

    async def checkpoint(
        self,
        run_id: int,
        backfill_id: int,
        token: UUID,
        cursor: list[str],
        processed: int,
        ingested: int,
        lease: float,
    ) -> Checkpointed | None:
        """Stores progress after a delivered batch and rolls the rows up, fenced by the lease:
        None means this worker lost the run and must stop writing. Safe to retry: a
        checkpoint whose commit went through but whose answer was lost finds its cursor
        stored already (cursors only move forward) and adds nothing twice. The answer
        carries the backfill's current rows-per-second throttle, read under the lock this
        takes anyway, so a change made while the run works reaches it at no extra cost."""
        async with self.pool.acquire() as conn, conn.transaction():
            backfill = await lock_backfill(conn, backfill_id)
            done = Checkpointed(max_rows_per_second=backfill["max_rows_per_second"])
            stored = await conn.fetchrow(q("owned_run_cursor"), run_id, token)
            if stored is None:
                return None
            if stored["cursor"] == cursor:
                return done
            ok = await conn.fetchval(
                q("checkpoint_run"), run_id, token, cursor, processed, ingested, lease
            )
            if ok is None:
                return None
            await conn.execute(q("add_rows"), backfill_id, processed, ingested)
            return done

    async def complete(
        self, run_id: int, backfill_id: int, token: UUID, processed: int, ingested: int
    ) -> TransferRun | None:
        """The completed run, with its row totals over every attempt and checkpoint; None
        if the lease was lost. `processed`/`ingested` are rows not checkpointed yet."""
        async with self.pool.acquire() as conn, conn.transaction():
            await lock_backfill(conn, backfill_id)
            run = await conn.fetchrow(q("complete_run"), run_id, token, processed, ingested)
            if run is None:
                return None
            await conn.execute(q("add_rows"), backfill_id, processed, ingested)
            row = await one(conn, "count_run_end", backfill_id, 1, 0)
            row = await maybe_finish(conn, row)
            await dispatch(conn, row, self.capacity)
            return TransferRun.from_row(run)

    async def fail_attempt(
        self,
        run_id: int,
        backfill_id: int,
        token: UUID,
        error: str,
        *,
        retry_in: float | None,
    ) -> RunState | None:
        """Ends a failed attempt: back to pending after `retry_in` seconds, or failed for good
        when `retry_in` is None (attempts used up). None if the lease was lost."""
        async with self.pool.acquire() as conn, conn.transaction():
            backfill = await lock_backfill(conn, backfill_id)
            return await end_attempt(conn, backfill, run_id, token, error, retry_in, self.capacity)

    async def release(self, run_id: int, backfill_id: int, token: UUID) -> bool:
        """A worker shutting down hands its run back; this attempt does not count."""
        async with self.pool.acquire() as conn, conn.transaction():
            backfill = await lock_backfill(conn, backfill_id)
            released = await conn.fetchval(q("release_run"), run_id, token)
            if released is None:
                return False
            if backfill["state"] == BackfillState.CANCELLED:
                # Cancelled meanwhile: the handed-back run must not wait for a dispatch.
                n = await conn.fetchval(q("cancel_pending_run"), run_id)
                await one(conn, "add_cancelled_runs", backfill_id, n)
            else:
                await dispatch(conn, backfill, self.capacity)
            return True

    async def take_rows(self, backfill_id: int, rows: int) -> float:
        """Seconds to wait before delivering `rows` under the backfill's rows-per-second
        throttle (0 without one)."""
        # One statement, alone in its transaction: the lock it takes is the only one held.
        got = await self.pool.fetchrow(q("take_row_tokens"), backfill_id, rows)
        if got is None or got["row_tokens"] >= 0:
            return 0.0
        return float(-got["row_tokens"] / got["max_rows_per_second"])
