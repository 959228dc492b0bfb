"""Reads for progress and rates, and the periodic backfill.progress events. Nothing here
writes per row or per batch: rates come from the runs' own timestamps and counters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from orchestrator.domain.models import Backfill
from orchestrator.domain.progress import WINDOW_SECONDS, Activity, Progress, progress_of
from orchestrator.storage.commands import enqueue
from orchestrator.storage.database import Conn, Pool
from orchestrator.storage.queries import q

PROGRESS_EVENT = "backfill.progress"


async def _activity(conn: Conn, ids: Sequence[int] | None) -> tuple[datetime, dict[int, Activity]]:
    rows = await conn.fetch(
        q("recent_activity"), None if ids is None else list(ids), WINDOW_SECONDS
    )
    at = rows[0]["at"] if rows else await conn.fetchval(q("database_now"))
    return at, {
        r["backfill_id"]: Activity(rows=r["rows"], runs=r["runs"], seconds=WINDOW_SECONDS, at=at)
        for r in rows
    }


def _progress(
    backfills: Sequence[Backfill], at: datetime, found: dict[int, Activity]
) -> dict[int, Progress]:
    return {b.id: progress_of(b, found.get(b.id) or Activity(at=at)) for b in backfills}


class ProgressStore:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def progress(self, backfills: Sequence[Backfill]) -> dict[int, Progress]:
        """For the API, on every read of a backfill: at most one round trip, often none."""
        started = [b.id for b in backfills if b.started_at is not None]
        if not started:
            # Rates are measured only from a backfill's start (`progress_of`), so for one
            # that has not started there is nothing to read.
            return _progress(backfills, datetime.now(UTC), {})
        rows = await self.pool.fetch(q("recent_activity"), started, WINDOW_SECONDS)
        # Without recent activity the clock does not enter the result (zero rows over any
        # span is zero, and no rate means no ETA), so the database's is not asked for.
        at = rows[0]["at"] if rows else datetime.now(UTC)
        found = {
            r["backfill_id"]: Activity(
                rows=r["rows"], runs=r["runs"], seconds=WINDOW_SECONDS, at=at
            )
            for r in rows
        }
        return _progress(backfills, at, found)

    async def overview(self, limit: int = 100) -> dict[str, Any]:
        """Progress of the backfills that may still move, and the whole system's rates."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(q("active_backfills"), limit)
            at, found = await _activity(conn, None)
        backfills = [Backfill.from_row(r) for r in rows]
        progress = _progress(backfills, at, found)
        rows_total = sum(a.rows for a in found.values())
        runs_total = sum(a.runs for a in found.values())
        return {
            "active_backfills": [
                {
                    "id": b.id,
                    "team_id": b.team_id,
                    "target_id": b.target_id,
                    "kind": b.kind.value,
                    "name": b.name,
                    "state": b.state.value,
                    "progress": progress[b.id].model_dump(),
                }
                for b in backfills
            ],
            "throughput": {
                "rows_per_second": round(rows_total / WINDOW_SECONDS, 3),
                "runs_per_minute": round(runs_total * 60.0 / WINDOW_SECONDS, 3),
                "window_seconds": WINDOW_SECONDS,
            },
        }

    async def publish_progress_events(self, period: float, limit: int = 100) -> int:
        """One backfill.progress event per running backfill per `period`, however many
        workers call this: the claim and the outbox rows commit together."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(q("claim_progress_events"), period, limit)
            if not rows:
                return 0
            backfills = [Backfill.from_row(r) for r in rows]
            at, found = await _activity(conn, [b.id for b in backfills])
            progress = _progress(backfills, at, found)
            for backfill in backfills:
                await enqueue(
                    conn,
                    f"event.{PROGRESS_EVENT}",
                    progress_event(backfill, progress[backfill.id], at),
                )
        return len(rows)


def progress_event(backfill: Backfill, progress: Progress, at: datetime) -> dict[str, Any]:
    return {
        "type": PROGRESS_EVENT,
        "event_id": str(uuid4()),
        "backfill_id": backfill.id,
        "backfill_uuid": str(backfill.uuid),
        "target_id": backfill.target_id,
        "state": backfill.state.value,
        "rows_initial_count": backfill.rows_initial_count,
        "rows_processed_count": backfill.rows_processed_count,
        "rows_ingested_count": backfill.rows_ingested_count,
        "runs_total": backfill.runs_total,
        "runs_completed": backfill.runs_completed,
        "runs_failed": backfill.runs_failed,
        "runs_cancelled": backfill.runs_cancelled,
        "progress": {
            **progress.model_dump(),
            "eta": None if progress.eta is None else progress.eta.isoformat(),
        },
        "occurred_at": at.isoformat(),
    }
