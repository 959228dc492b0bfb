"""Planning: a planner's lease on a backfill, the runs it inserts batch by batch and the
cursor it resumes from. The lease token fences every write, so a planner that lost its
lease stores nothing more."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from orchestrator.domain.models import BackfillRow
from orchestrator.domain.states import BACKFILL_TERMINAL
from orchestrator.storage.database import Pool
from orchestrator.storage.lifecycle import dispatch, lock_backfill, maybe_finish, one
from orchestrator.storage.queries import q


class PlanningStore:
    def __init__(self, pool: Pool, *, capacity: int | None = None) -> None:
        self.pool = pool
        # The dispatch capacity shared out by priority (see lifecycle.dispatch).
        self.capacity = capacity

    async def claim(self, backfill_id: int, token: UUID, lease: float) -> BackfillRow | None:
        """The backfill under this planner's lease, or None if it needs no planning or
        another live planner holds it."""
        row = await self.pool.fetchrow(q("claim_planning"), backfill_id, token, lease)
        return None if row is None else BackfillRow.from_row(row)

    async def candidates(self, limit: int) -> list[int]:
        return [r["id"] for r in await self.pool.fetch(q("planning_candidates"), limit)]

    async def earlier_outcomes(
        self, target_id: int, backfill_id: int, starts: list[datetime]
    ) -> dict[tuple[datetime, datetime], str]:
        """(window_start, window_end) -> the state of that window's latest finished run in
        the target's other backfills, for the windows starting at `starts`."""
        rows = await self.pool.fetch(q("earlier_window_outcomes"), target_id, backfill_id, starts)
        return {(r["window_start"], r["window_end"]): r["state"] for r in rows}

    async def set_upper_bound(self, backfill_id: int, token: UUID, upper: list[str]) -> None:
        await self.pool.execute(q("set_upper_bound"), backfill_id, token, upper)

    async def set_initial_count(self, backfill_id: int, count: int) -> None:
        await self.pool.execute(q("set_initial_count"), backfill_id, count)

    async def add_runs(
        self,
        backfill_id: int,
        token: UUID,
        runs: list[dict[str, Any]],
        *,
        cursor: list[str] | None,
        next_seq: int,
        done: bool,
        total: int | None,
        lease: float,
    ) -> BackfillRow | None:
        """Inserts a batch of planned runs, stores the planning cursor and tops up dispatch,
        in one transaction. None means stop planning: the backfill ended (a cancel), or the
        lease was lost."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await lock_backfill(conn, backfill_id)
            if row["planner_token"] != token or row["state"] in BACKFILL_TERMINAL:
                return None
            status = await conn.execute(q("insert_runs"), backfill_id, runs)
            inserted = int(status.rsplit(" ", 1)[1])
            row = await one(
                conn,
                "advance_planning",
                backfill_id,
                token,
                cursor,
                next_seq,
                done,
                total,
                lease,
                inserted,
            )
            row = await maybe_finish(conn, row)
            await dispatch(conn, row, self.capacity)
            return BackfillRow.from_row(row)
