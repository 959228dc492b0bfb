"""The planner: chunks a backfill into transfer runs.

Runs are inserted in batches while the scan goes on (each batch also tops up dispatch, so the
first runs execute before planning ends), and the cursor is stored with every batch under a
planning lease: a planner that dies is replaced by another that resumes from the cursor."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import structlog

from orchestrator.domain.chunking import chunk_page
from orchestrator.domain.definitions import plan_of
from orchestrator.domain.models import BackfillRow, Reprocess, TargetKind, Window
from orchestrator.settings import Settings
from orchestrator.sources.pools import SourcePools
from orchestrator.sources.tables import KeysetSql, table_sql
from orchestrator.storage.stores import Storage

log = structlog.get_logger(__name__)
# How far a date-range planner's batches grow past BACKFILL_PLANNER_BATCH_RUNS.
_GROWTH = 50


class Planner:
    def __init__(self, settings: Settings, storage: Storage, sources: SourcePools) -> None:
        self._settings = settings
        self._planning = storage.planning
        self._targets = storage.targets
        self._sources = sources
        self._active: dict[int, asyncio.Task[None]] = {}
        self._side_tasks: set[asyncio.Task[None]] = set()

    @property
    def busy(self) -> int:
        return len(self._active)

    def kick(self, backfill_id: int) -> None:
        """Plans the backfill in the background unless this process already is."""
        if backfill_id in self._active:
            return
        task = asyncio.create_task(self._plan_logged(backfill_id), name=f"plan-{backfill_id}")
        self._active[backfill_id] = task
        task.add_done_callback(lambda _: self._active.pop(backfill_id, None))

    async def _plan_logged(self, backfill_id: int) -> None:
        with structlog.contextvars.bound_contextvars(backfill_id=backfill_id):
            try:
                await self.plan(backfill_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The planning lease expires and the sweep hands the backfill to a planner
                # again, which resumes from the stored cursor.
                log.exception("planning_failed")

    async def plan(self, backfill_id: int) -> None:
        token = uuid4()
        row = await self._planning.claim(backfill_id, token, self._settings.lease_seconds)
        if row is None:
            return  # planned already, finished, or another planner holds it
        log.info("planning_started", kind=row.kind)
        if row.kind == TargetKind.TABLE:
            await self._plan_table(row, token)
        else:
            await self._plan_range(row, token)

    async def _add(
        self, row: BackfillRow, token: UUID, runs: list[dict[str, Any]], **kw: Any
    ) -> bool:
        result = await self._planning.add_runs(
            row.id, token, runs, lease=self._settings.lease_seconds, **kw
        )
        if result is None:
            log.info("planning_stopped", reason="cancelled or lease lost")
            return False
        return True

    async def _plan_range(self, row: BackfillRow, token: UUID) -> None:
        plan = plan_of(row)
        reprocess = row.reprocess
        # With a reprocess filter the total is what survives it: counted as runs are added.
        total = plan.count if reprocess == Reprocess.ALL else None
        batch: list[Window] = []
        first_seq = row.planning_seq
        size = self._settings.planner_batch_runs
        for seq, window in plan.windows(from_seq=first_seq):
            batch.append(window)
            if len(batch) >= size and seq + 1 < plan.count:
                runs = await self._window_runs(row, reprocess, first_seq, batch)
                if not await self._add(
                    row, token, runs, cursor=None, next_seq=seq + 1, done=False, total=total
                ):
                    return
                batch, first_seq = [], seq + 1
                # The first batch is small so runs start at once; later ones grow, so a
                # long range costs few transactions (each also stores the cursor).
                size = min(size * 2, self._settings.planner_batch_runs * _GROWTH)
        # Always end with a batch marked done (possibly empty), which may finish the backfill.
        runs = await self._window_runs(row, reprocess, first_seq, batch)
        if not await self._add(
            row, token, runs, cursor=None, next_seq=plan.count, done=True, total=total
        ):
            return
        log.info("planning_done", windows=plan.count)

    async def _window_runs(
        self, row: BackfillRow, reprocess: Reprocess, first_seq: int, windows: list[Window]
    ) -> list[dict[str, Any]]:
        """Runs for consecutive windows from `first_seq`, less those `reprocess` skips. A
        skipped window keeps its seq unused, so seq stays the window's place in the plan."""
        keep = [True] * len(windows)
        if reprocess != Reprocess.ALL and windows:
            outcomes = await self._planning.earlier_outcomes(
                row.target_id, row.id, [w.start for w in windows]
            )
            keep = [reprocess.keeps(outcomes.get((w.start, w.end))) for w in windows]
        return [
            {
                "seq": first_seq + i,
                "window_start": w.start.isoformat(),
                "window_end": w.end.isoformat(),
            }
            for i, w in enumerate(windows)
            if keep[i]
        ]

    async def _plan_table(self, row: BackfillRow, token: UUID) -> None:
        target = await self._targets.get(row.target_id, None)
        assert target.source is not None
        pool = await self._sources.get(target.source)
        keyset = KeysetSql.build(
            table_sql(row.table.table_name), row.table.key_columns, row.table.key_types
        )
        upper: list[str] | None = row.upper_bound
        async with pool.acquire() as conn:
            if upper is None:
                top = await conn.fetchrow(keyset.max_key())
                if top is None:
                    await self._planning.set_initial_count(row.id, 0)
                    await self._add(row, token, [], cursor=None, next_seq=0, done=True, total=None)
                    log.info("planning_done", runs=0, reason="empty table")
                    return
                upper = [str(v) for v in top.values()]
                await self._planning.set_upper_bound(row.id, token, upper)
        if row.rows_initial_count is None:
            self._spawn(self._count(row.id, pool, keyset, upper))

        cursor: list[str] | None = row.planning_cursor
        seq: int = row.planning_seq
        chunk: int = row.table.chunk_size
        # The first page holds as many runs as the backfill may run at once: they start
        # after a short walk rather than a whole batch's (100 chunks of 10,000 rows take
        # most of a second on a loaded source). Pages then double up to the batch size,
        # each walked while the runs of the one before execute.
        ceiling = self._settings.planner_batch_runs
        per_batch = max(1, min(ceiling, row.max_active_runs))
        while True:
            params: list[Any] = [*(cursor or []), *upper, chunk * per_batch, chunk]
            async with pool.acquire() as conn:
                bounds = await conn.fetch(keyset.boundaries(cursor is not None), *params)
            page = chunk_page(
                cursor, [[str(v) for v in b.values()] for b in bounds], upper, per_batch
            )
            runs: list[dict[str, Any]] = [
                {"seq": seq + i, "lower_key": c.lower_key, "upper_key": c.upper_key}
                for i, c in enumerate(page.chunks)
            ]
            cursor, seq, done = page.cursor, seq + len(page.chunks), page.done
            if not await self._add(
                row, token, runs, cursor=cursor, next_seq=seq, done=done, total=None
            ):
                return
            if done:
                log.info("planning_done", runs=seq)
                return
            per_batch = min(ceiling, per_batch * 2)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    async def _count(
        self, backfill_id: int, pool: asyncpg.Pool[Any], keyset: KeysetSql, upper: list[str]
    ) -> None:
        # Counted apart from planning, so the first runs do not wait for a full scan.
        try:
            async with pool.acquire() as conn:
                n = await conn.fetchval(keyset.count_upto(), *upper)
            await self._planning.set_initial_count(backfill_id, int(n))
        except Exception:
            log.exception("initial_count_failed", backfill_id=backfill_id)

    async def stop(self) -> None:
        tasks = [*self._active.values(), *self._side_tasks]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
