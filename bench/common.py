"""What every benchmark needs: a throwaway database and broker namespace, removed after."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aio_pika
import asyncpg

from orchestrator.storage.migrate import migrate

ADMIN = "postgresql://root@127.0.0.1:5432/postgres"
AMQP = "amqp://guest:guest@127.0.0.1:5672/"


def main_source(dsn: str) -> dict[str, dict[str, object]]:
    """The scratch database as the source `main`. Through the superuser that made it, so
    marked unsafe: a throwaway database that only the benchmark touches."""
    return {"main": {"dsn": dsn, "unsafe": True}}


@asynccontextmanager
async def scratch(kind: str) -> AsyncIterator[tuple[str, str]]:
    """Yields (database DSN, amqp prefix); drops both afterwards."""
    suffix = uuid.uuid4().hex[:8]
    name, prefix = f"bf_{kind}_{suffix}", f"bench-{kind}-{suffix}"
    admin = await asyncpg.connect(ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        conn = await asyncpg.connect(dsn)
        try:
            await migrate(conn)
            # Team 1 may use the source `main` (main_source) as the benchmarks do.
            await conn.execute(
                "INSERT INTO source_grants (team_id, source, read_tables, write_tables,"
                " sql_handler) VALUES (1, 'main', '{public.*}', '{public.*}', true)"
            )
        finally:
            await conn.close()
        yield dsn, prefix
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        connection = await aio_pika.connect(AMQP)
        channel = await connection.channel()
        for queue in ("commands", "runs", "dead"):
            await channel.queue_delete(f"{prefix}.{queue}")
        for exchange in (prefix, f"{prefix}.dead"):
            await channel.exchange_delete(exchange)
        await connection.close()
