"""What the maintenance loop sweeps (expired leases, stale queued runs, the pending runs of
cancelled backfills, due dispatches, the sent outbox), the registry of workers, and the
operations overview read from all of it."""

from __future__ import annotations

from typing import Any

from orchestrator.domain.overview import Overview, PendingRun, WorkerSeen
from orchestrator.domain.states import BACKFILL_ACTIVE
from orchestrator.storage.commands import enqueue
from orchestrator.storage.database import Pool
from orchestrator.storage.lifecycle import dispatch, end_attempt, lock_backfill
from orchestrator.storage.queries import q


class MaintenanceStore:
    def __init__(self, pool: Pool, *, capacity: int | None = None) -> None:
        self.pool = pool
        # The dispatch capacity shared out by priority (see lifecycle.dispatch).
        self.capacity = capacity

    async def reap_expired(self, limit: int) -> int:
        """Runs whose lease expired go back to pending (attempt already counted at claim) or
        fail once their attempts are used up."""
        reaped = 0
        for r in await self.pool.fetch(q("expired_leases"), limit):
            async with self.pool.acquire() as conn, conn.transaction():
                backfill = await lock_backfill(conn, r["backfill_id"])
                run = await conn.fetchrow(q("lock_expired_run"), r["id"])
                if run is None:
                    continue
                error = f"lease expired (worker {run['worker_id']} stopped heartbeating)"
                retry_in = 0.0 if run["attempt"] < backfill["max_attempts"] else None
                await end_attempt(
                    conn, backfill, run["id"], run["lease_token"], error, retry_in, self.capacity
                )
                reaped += 1
        return reaped

    async def sweep_cancelled_runs(self, chunk: int) -> int:
        """Marks the pending runs of cancelled backfills cancelled (their cancel counted
        them), a chunk per transaction; returns how many."""
        swept = 0
        while True:
            n = len(await self.pool.fetch(q("sweep_cancelled_runs"), chunk))
            swept += n
            if n < chunk:
                return swept

    async def dispatch_due(self, limit: int) -> int:
        queued = 0
        for backfill_id in [
            r["id"] for r in await self.pool.fetch(q("dispatchable_backfills"), limit)
        ]:
            async with self.pool.acquire() as conn, conn.transaction():
                queued += await dispatch(
                    conn, await lock_backfill(conn, backfill_id), self.capacity
                )
        return queued

    async def redispatch_stale(self, older_than: float, limit: int) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(q("stale_queued"), older_than, limit)
            for r in rows:
                await enqueue(
                    conn,
                    "run.dispatch",
                    {
                        "type": "run.dispatch",
                        "run_id": r["id"],
                        "backfill_id": r["backfill_id"],
                    },
                )
            return len(rows)

    async def prune_outbox(self, older_than: float) -> None:
        await self.pool.execute(q("prune_outbox"), older_than)

    async def worker_seen(
        self,
        worker_id: str,
        hostname: str,
        pid: int,
        roles: list[str],
        concurrency: int | None,
        live_for: float,
    ) -> None:
        """`concurrency`: the runs this process executes at once (None: it executes none),
        counted in the dispatch capacity for `live_for` seconds unless seen again."""
        await self.pool.execute(
            q("worker_seen"), worker_id, hostname, pid, roles, concurrency, live_for
        )

    async def worker_stopped(self, worker_id: str) -> None:
        await self.pool.execute(q("worker_stopped"), worker_id)

    async def overview(self, stale_after_seconds: float = 30.0) -> Overview:
        """Backfills and runs by state, the oldest pending run, the workers, the outbox."""
        async with self.pool.acquire() as conn:
            backfills = {r["state"]: r["n"] for r in await conn.fetch(q("overview_backfills"))}
            runs = {r["state"]: r["n"] for r in await conn.fetch(q("overview_runs"))}
            oldest = await conn.fetchrow(q("overview_oldest_pending"))
            workers = await conn.fetch(q("overview_workers"), stale_after_seconds)
            outbox = await conn.fetchrow(q("overview_outbox"))
            capacity = (
                None
                if self.capacity is None
                else await conn.fetchval(q("dispatch_capacity"), self.capacity)
            )
        assert outbox is not None
        return Overview(
            backfills=backfills,
            runs=runs,
            oldest_pending_run=PendingRun(**oldest) if oldest is not None else None,
            workers=[WorkerSeen(**w) for w in workers],
            outbox_unsent=outbox["unsent"],
            outbox_oldest_unsent_at=outbox["oldest"],
            dispatch_capacity=capacity,
            dispatch_capacity_pinned=bool(self.capacity),
        )

    async def active_backfill_progress(self, limit: int) -> list[dict[str, Any]]:
        """The counters of up to `limit` active backfills, oldest first (for the metrics)."""
        rows = await self.pool.fetch(
            q("active_backfill_progress"), sorted(s.value for s in BACKFILL_ACTIVE), limit
        )
        return [dict(r) for r in rows]
