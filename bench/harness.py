"""What the row scenarios share: scratch databases filled once per bench process, a worker to
run backfills with, and the reference measurements.

Data is kept for the whole `python -m bench` process (filling 10M rows takes longer than
measuring them) and dropped when the runner ends, through bench.session."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg

from bench.common import main_source, scratch
from bench.session import keep
from orchestrator.context import Context, open_context
from orchestrator.domain.models import Backfill, SinkSpec
from orchestrator.domain.specs import BackfillSpec, TableTargetSpec
from orchestrator.settings import Settings
from orchestrator.storage.migrate import SCHEMA
from workers.process import Worker

TEAM = 1
CHUNK = 10_000
MAX_ACTIVE = 4

# The table: bigint key, timestamptz, 64-char text, small jsonb; "wide" adds a text
# column so a row is about 1 KB.
_CREATE = """
CREATE TABLE {name} (
    id bigint PRIMARY KEY,
    at timestamptz NOT NULL,
    note text NOT NULL,
    payload jsonb NOT NULL{wide_col}
)"""
_FILL = """
INSERT INTO {name}
SELECT g, timestamptz '2024-01-01' + g * interval '1 second',
       rpad(md5(g::text), 64, 'x'), jsonb_build_object('g', g, 'even', g % 2 = 0){wide_val}
FROM generate_series($1::bigint, $2::bigint) g"""


@dataclass(frozen=True)
class Databases:
    main: str  # the orchestrator's database; source tables live here too
    other: str  # a second database on the same server, a destination
    prefix: str  # broker prefix


_dbs: Databases | None = None
_dbs_lock = asyncio.Lock()
_tables: set[tuple[str, int]] = set()


async def databases() -> Databases:
    global _dbs
    async with _dbs_lock:
        if _dbs is None:
            main, prefix = await keep(scratch("rows"))
            other, _ = await keep(scratch("rowsdest"))
            conn = await asyncpg.connect(main)
            try:
                # Team 1 may write to `other` as it may use `main` (bench.common.scratch).
                await conn.execute(
                    f"INSERT INTO {SCHEMA}.source_grants (team_id, source, read_tables,"
                    " write_tables, sql_handler) VALUES (1, 'other', '{public.*}',"
                    " '{public.*}', false)"
                )
            finally:
                await conn.close()
            _dbs = Databases(main, other, prefix)
        return _dbs


async def source_table(rows: int, *, wide: bool = False, key_only: bool = False) -> str:
    """A filled, vacuumed source table of `rows` rows in the main scratch database (made once
    per process), and an empty destination of the same shape in both databases."""
    dbs = await databases()
    kind = "key" if key_only else "wide" if wide else "narrow"
    name = f"src_{kind}_{rows}"
    if (name, rows) in _tables:
        return name
    conn = await asyncpg.connect(dbs.main)
    try:
        if key_only:
            await conn.execute(f"CREATE TABLE {name} (id bigint PRIMARY KEY, v int NOT NULL)")
            await conn.execute(
                f"INSERT INTO {name} SELECT g, g % 1000 FROM generate_series(1, $1::bigint) g",
                rows,
            )
        else:
            wide_col = ",\n    body text NOT NULL" if wide else ""
            wide_val = ", repeat(md5(g::text), 28)" if wide else ""
            await conn.execute(_CREATE.format(name=name, wide_col=wide_col))
            step = 500_000  # several statements: one huge one holds a lot of memory
            for first in range(1, rows + 1, step):
                await conn.execute(
                    _FILL.format(name=name, wide_val=wide_val), first, min(rows, first + step - 1)
                )
        await conn.execute(f"VACUUM ANALYZE {name}")
        ddl = await conn.fetchval(
            "SELECT string_agg(format('%I %s NOT NULL', attname, format_type(atttypid, "
            "atttypmod)), ', ' ORDER BY attnum) FROM pg_attribute "
            "WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped",
            name,
        )
        for dsn in (dbs.main, dbs.other):
            dest = await asyncpg.connect(dsn)
            try:
                await dest.execute(f"CREATE TABLE dst_{name} ({ddl}, PRIMARY KEY (id))")
            finally:
                await dest.close()
    finally:
        await conn.close()
    _tables.add((name, rows))
    return name


def sources() -> dict[str, dict[str, object]]:
    """Both scratch databases as sources, through the superuser that made them (hence
    `unsafe`: throwaway databases only the benchmark touches)."""
    assert _dbs is not None
    return {**main_source(_dbs.main), "other": {"dsn": _dbs.other, "unsafe": True}}


def settings(**overrides: Any) -> Settings:
    assert _dbs is not None
    values: dict[str, Any] = {
        "database_url": _dbs.main,
        "amqp_prefix": _dbs.prefix,
        "sources": sources(),
        "dispatch_sweep_seconds": 0.5,
        "log_level": "WARNING",
        **overrides,
    }
    return Settings(**values)


@asynccontextmanager
async def running_worker(**overrides: Any) -> AsyncIterator[Context]:
    """One process with API-side service and a worker, as `make run` has."""
    async with open_context(settings(**overrides)) as ctx:
        worker = Worker(ctx)
        task = asyncio.create_task(worker.run())
        try:
            yield ctx
        finally:
            worker.stop()
            await task


async def wait_done(ctx: Context, backfill_id: int, within: float = 1800) -> Backfill:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        b = await ctx.usecases.backfills.get(backfill_id, team_id=None)
        if b.state in ("completed", "failed", "cancelled"):
            if b.state != "completed":
                raise RuntimeError(f"backfill {backfill_id} ended {b.state}")
            return b
        await asyncio.sleep(0.02)
    raise TimeoutError(f"backfill {backfill_id} not done in {within}s")


_names = iter(range(1, 1_000_000))


async def table_target(
    ctx: Context, table: str, sink: str, options: dict[str, Any], *, chunk: int = CHUNK
) -> int:
    target = await ctx.usecases.targets.create(
        TableTargetSpec(
            name=f"bench-{sink}-{next(_names)}",
            tables=[table],
            chunk_size=chunk,
            max_active_runs=MAX_ACTIVE,
            sink=SinkSpec(type=sink, options=options),
        ),
        team_id=TEAM,
    )
    return target.id


async def backfill_seconds(ctx: Context, target_id: int) -> tuple[float, Backfill]:
    """From the request to the backfill's completion, planning included."""
    start = time.monotonic()
    b = await ctx.usecases.backfills.create(BackfillSpec(target=target_id), team_id=TEAM)
    b = await wait_done(ctx, b.id)
    return time.monotonic() - start, b


async def truncate(dsn: str, table: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"TRUNCATE {table}")
        await conn.execute(f"VACUUM ANALYZE {table}")
    finally:
        await conn.close()


async def in_database_upsert(table: str) -> float:
    """The reference for postgres sinks: the whole upsert as one statement inside Postgres,
    into an empty destination (rows/s)."""
    dbs = await databases()
    dest = f"dst_{table}"
    await truncate(dbs.main, dest)
    conn = await asyncpg.connect(dbs.main)
    try:
        cols = await conn.fetchval(
            "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute "
            "WHERE attrelid = $1::regclass AND attnum > 1 AND NOT attisdropped",
            table,
        )
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols.split(", "))
        start = time.monotonic()
        status = await conn.execute(
            f"INSERT INTO {dest} SELECT * FROM {table} ON CONFLICT (id) DO UPDATE SET {updates}"
        )
        took = time.monotonic() - start
    finally:
        await conn.close()
    await truncate(dbs.main, dest)
    return int(status.rsplit(" ", 1)[1]) / took


async def copy_out_binary(table: str) -> float:
    """The reference for the null sink: the table read by asyncpg as binary COPY (rows/s)."""
    dbs = await databases()
    conn = await asyncpg.connect(dbs.main)
    try:
        received = 0

        async def discard(data: bytes) -> None:
            nonlocal received
            received += len(data)

        start = time.monotonic()
        status = await conn.copy_from_query(
            f"SELECT * FROM {table}", output=discard, format="binary"
        )
        took = time.monotonic() - start
    finally:
        await conn.close()
    return int(status.rsplit(" ", 1)[1]) / took


async def count_rows(table: str) -> float:
    """The reference for planning: SELECT count(*) over the table (rows/s)."""
    dbs = await databases()
    conn = await asyncpg.connect(dbs.main)
    try:
        start = time.monotonic()
        n = await conn.fetchval(f"SELECT count(*) FROM {table}")
        took = time.monotonic() - start
    finally:
        await conn.close()
    return int(n) / took
