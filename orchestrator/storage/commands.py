"""Commands applied at most once, and the outbox: every message leaves through it, written
in the same transaction as the change it announces."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from orchestrator.domain.outbox import OutboxMessage
from orchestrator.storage.database import Conn, Pool
from orchestrator.storage.queries import q


def backfill_event(event: str, row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    """The payload of a backfill.* event: enough to act on without reading the API."""
    return {
        "type": event,
        "event_id": str(uuid4()),
        "backfill_id": row["id"],
        "backfill_uuid": str(row["uuid"]),
        "command_id": str(row["command_id"]),
        "target_id": row["target_id"],
        "state": row["state"],
        "rows_processed_count": row["rows_processed_count"],
        "rows_ingested_count": row["rows_ingested_count"],
        "runs_total": row["runs_total"],
        "runs_completed": row["runs_completed"],
        "runs_failed": row["runs_failed"],
        "runs_cancelled": row["runs_cancelled"],
        # The database's clock, like every other timestamp of the system.
        "occurred_at": row["updated_at"].isoformat(),
    }


async def enqueue(conn: Conn, routing_key: str, payload: dict[str, Any]) -> None:
    await conn.execute(q("enqueue"), routing_key, payload)


async def record_command(conn: Conn, command_id: UUID, kind: str, backfill_id: int | None) -> bool:
    """True if this command had not been applied before (and now counts as applied)."""
    return await conn.fetchval(q("record_command"), command_id, kind, backfill_id) is not None


class CommandStore:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def record(self, command_id: UUID, kind: str, backfill_id: int | None) -> bool:
        """True if this command had not been applied before (and now counts as applied)."""
        got = await self.pool.fetchval(q("record_command"), command_id, kind, backfill_id)
        return got is not None

    async def applied(self, command_id: UUID) -> bool:
        return bool(await self.pool.fetchval(q("command_applied"), command_id))


class Outbox:
    """The relay's side of the outbox: unsent messages, published and marked sent."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def relay(
        self, batch: int, publish: Callable[[list[OutboxMessage]], Awaitable[None]]
    ) -> int:
        """Hands up to `batch` unsent messages to `publish` and marks them sent once it
        returns, in one transaction: a relay that dies half-way leaves them unsent, and
        another relay skips the ones this one holds. Returns how many were sent."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(q("fetch_outbox"), batch)
            if not rows:
                return 0
            await publish(
                [
                    OutboxMessage(r["id"], r["routing_key"], r["message_id"], r["payload"])
                    for r in rows
                ]
            )
            await conn.execute(q("mark_outbox_sent"), [r["id"] for r in rows])
            return len(rows)
