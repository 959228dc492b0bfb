"""Table backfills: rows moved per second by each sink, beside the same work done by the
reference in the same run, and what planning and memory cost."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import aio_pika
import asyncpg

from bench import harness
from bench.common import AMQP
from bench.scenario import Measurement, scenario
from orchestrator.context import open_context


def _size(quick: bool, full: int, small: int) -> int:
    return small if quick else full


async def _postgres_sink(quick: bool, source: str) -> Measurement:
    rows = _size(quick, 1_000_000, 50_000)
    table = await harness.source_table(rows)
    dbs = await harness.databases()
    dest_dsn = dbs.main if source == "main" else dbs.other
    reference = await harness.in_database_upsert(table)
    async with harness.running_worker() as ctx:
        target = await harness.table_target(
            ctx, table, "postgres", {"source": source, "table": f"dst_{table}"}
        )
        seconds, b = await harness.backfill_seconds(ctx, target)
    conn = await asyncpg.connect(dest_dsn)
    try:
        landed = await conn.fetchval(f"SELECT count(*) FROM dst_{table}")
    finally:
        await conn.close()
    await harness.truncate(dest_dsn, f"dst_{table}")
    if landed != rows or b.rows_processed_count != rows:
        raise RuntimeError(f"{landed} rows landed, {b.rows_processed_count} counted, of {rows}")
    return Measurement(
        figure=rows / seconds,
        unit="rows/s",
        reference=reference,
        reference_name="in-database upsert",
        extra={"rows": rows, "seconds": round(seconds, 2), "runs": b.runs_total},
    )


@scenario(
    "table_postgres_same_db",
    "table → postgres sink in the same database, empty destination",
    ">= 0.60 of the in-database upsert",
)
async def table_postgres_same_db(quick: bool) -> Measurement:
    return await _postgres_sink(quick, "main")


@scenario(
    "table_postgres_other_db",
    "table → postgres sink in another database on the same server",
    ">= 0.50 of the in-database upsert",
)
async def table_postgres_other_db(quick: bool) -> Measurement:
    return await _postgres_sink(quick, "other")


@scenario(
    "table_null",
    "table → null sink (read and count)",
    ">= 0.50 of binary COPY read by asyncpg",
)
async def table_null(quick: bool) -> Measurement:
    rows = _size(quick, 1_000_000, 50_000)
    table = await harness.source_table(rows)
    reference = await harness.copy_out_binary(table)
    async with harness.running_worker() as ctx:
        target = await harness.table_target(ctx, table, "null", {})
        seconds, b = await harness.backfill_seconds(ctx, target)
    if b.rows_processed_count != rows:
        raise RuntimeError(f"{b.rows_processed_count} rows counted of {rows}")
    return Measurement(
        figure=rows / seconds,
        unit="rows/s",
        reference=reference,
        reference_name="COPY … TO STDOUT (FORMAT binary) by asyncpg",
        extra={"rows": rows, "seconds": round(seconds, 2)},
    )


async def _exchange(prefix: str) -> tuple[aio_pika.abc.AbstractConnection, str]:
    """A topic exchange with one queue bound to everything. The queue keeps only the newest
    messages (x-max-length), so the broker routes and confirms every message without the
    benchmark filling its memory."""
    connection = await aio_pika.connect(AMQP)
    channel = await connection.channel()
    # Beside the orchestrator's names, not under them: `<prefix>.*` on the main broker is
    # the orchestrator's own, which a rabbitmq sink may not publish to.
    name = f"{prefix}-rows"
    exchange = await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, auto_delete=True)
    queue = await channel.declare_queue(
        f"{name}.sink", auto_delete=True, arguments={"x-max-length": 10_000}
    )
    await queue.bind(exchange, "#")
    return connection, name


async def _raw_publish(exchange_name: str, bodies: list[bytes], window: int) -> float:
    """The reference: aio-pika alone publishing prepared bodies, persistent and mandatory,
    confirms pipelined `window` at a time (msg/s)."""
    connection = await aio_pika.connect(AMQP)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(exchange_name, ensure=True)
        start = time.monotonic()
        for first in range(0, len(bodies), window):
            await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(
                            body,
                            content_type="application/json",
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        ),
                        "public.rows",
                        mandatory=True,
                    )
                    for body in bodies[first : first + window]
                )
            )
        return len(bodies) / (time.monotonic() - start)
    finally:
        await connection.close()


async def _rabbitmq(quick: bool, rows: int, batch_size: int) -> Measurement:
    table = await harness.source_table(rows)
    dbs = await harness.databases()
    keeper, exchange = await _exchange(dbs.prefix)
    try:
        reference: float | None = None
        if batch_size == 1:
            conn = await asyncpg.connect(dbs.main)
            try:
                bodies = [
                    r[0].encode()
                    for r in await conn.fetch(f"SELECT row_to_json(t)::text FROM {table} t")
                ]
            finally:
                await conn.close()
            reference = await _raw_publish(exchange, bodies, window=1000)
        async with harness.running_worker() as ctx:
            target = await harness.table_target(
                ctx,
                table,
                "rabbitmq",
                {"exchange": exchange, "batch_size": batch_size},
                chunk=harness.CHUNK,
            )
            seconds, b = await harness.backfill_seconds(ctx, target)
        if b.rows_processed_count != rows:
            raise RuntimeError(f"{b.rows_processed_count} rows counted of {rows}")
    finally:
        await keeper.close()
    return Measurement(
        figure=rows / seconds,
        unit="rows/s",
        reference=reference,
        reference_name="raw aio-pika, pipelined confirms" if reference else None,
        extra={"rows": rows, "seconds": round(seconds, 2), "batch_size": batch_size},
    )


@scenario(
    "rabbitmq_per_row",
    "table → rabbitmq sink, one message per row",
    ">= 0.90 of raw aio-pika with pipelined confirms",
)
async def rabbitmq_per_row(quick: bool) -> Measurement:
    return await _rabbitmq(quick, _size(quick, 50_000, 5_000), 1)


@scenario(
    "rabbitmq_batched",
    "table → rabbitmq sink, 100 rows per message",
    ">= 100,000 rows/s",
)
async def rabbitmq_batched(quick: bool) -> Measurement:
    return await _rabbitmq(quick, _size(quick, 500_000, 20_000), 100)


def _peak_rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


async def _worker_process_run(table: str) -> tuple[float, float, float]:
    """Backfills `table` into the other database with `backfill worker` in a process of its
    own; returns (peak RSS MiB of that process, rows/s, seconds)."""
    dbs = await harness.databases()
    env = {
        **os.environ,
        "BACKFILL_DATABASE_URL": dbs.main,
        "BACKFILL_AMQP_PREFIX": dbs.prefix,
        "BACKFILL_SOURCES": json.dumps(harness.sources()),
        "BACKFILL_LOG_LEVEL": "WARNING",
        "BACKFILL_LOG_JSON": "true",
        "BACKFILL_DISPATCH_SWEEP_SECONDS": "0.5",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "orchestrator.cli", "worker", env=env
    )
    try:
        async with open_context(harness.settings()) as ctx:
            target = await harness.table_target(
                ctx, table, "postgres", {"source": "other", "table": f"dst_{table}"}
            )
            seconds, b = await harness.backfill_seconds(ctx, target)
            peak = _peak_rss_mib(process.pid)
    finally:
        process.terminate()
        await process.wait()
    await harness.truncate(dbs.other, f"dst_{table}")
    if peak is None:
        raise RuntimeError("could not read the worker's peak RSS")
    return peak, b.rows_processed_count / seconds, seconds


@scenario(
    "memory_wide_rows",
    "worker peak RSS backfilling rows of ~1 KB into another database, 1/4 and all the rows",
    "<= 200 MB, flat as the table grows",
)
async def memory_wide_rows(quick: bool) -> Measurement:
    rows = _size(quick, 2_000_000, 40_000)
    small = await harness.source_table(rows // 4, wide=True)
    large = await harness.source_table(rows, wide=True)
    small_peak, _, _ = await _worker_process_run(small)
    large_peak, rate, seconds = await _worker_process_run(large)
    reference = await harness.in_database_upsert(large)
    return Measurement(
        figure=large_peak,
        unit="MiB",
        reference=small_peak,
        reference_name=f"peak RSS with {rows // 4:,} rows",
        higher_is_better=False,
        extra={
            "rows": rows,
            "rows_per_second": round(rate),
            "seconds": round(seconds, 2),
            "in_database_upsert_rows_per_second": round(reference),
        },
    )


@scenario(
    "planning",
    "planning a table into chunks of 10,000 (the key walk alone, no runs executing)",
    ">= 0.25 of SELECT count(*) rows/s, progress visible in the API",
)
async def planning(quick: bool) -> Measurement:
    from api.schemas import BackfillOut
    from orchestrator.domain.specs import BackfillSpec
    from workers.planner import Planner

    rows = _size(quick, 10_000_000, 500_000)
    table = await harness.source_table(rows, key_only=True)
    reference = await harness.count_rows(table)
    async with open_context(harness.settings()) as ctx:
        target = await harness.table_target(ctx, table, "null", {})
        b = await ctx.usecases.backfills.create(BackfillSpec(target=target), team_id=harness.TEAM)
        planner = Planner(ctx.settings, ctx.storage, ctx.sources)
        seen: list[object] = []

        async def watch() -> None:
            # What an API client polling the backfill would see while planning goes on.
            while True:
                current = await ctx.usecases.backfills.get(b.id, team_id=None)
                progress = (await ctx.usecases.ops.progress([current]))[current.id]
                shown = BackfillOut.from_domain(current, progress)
                seen.append(json.dumps(shown.model_dump(mode="json").get("planning")))
                await asyncio.sleep(0.1)

        watcher = asyncio.create_task(watch())
        start = time.monotonic()
        try:
            await planner.plan(b.id)
        finally:
            watcher.cancel()
        seconds = time.monotonic() - start
        done = await ctx.usecases.backfills.get(b.id, team_id=None)
    if not done.planning_done:
        raise RuntimeError("planning did not finish")
    return Measurement(
        figure=rows / seconds,
        unit="rows/s",
        reference=reference,
        reference_name="SELECT count(*)",
        extra={
            "rows": rows,
            "seconds": round(seconds, 2),
            "runs": done.runs_total,
            "distinct_progress_views": len(set(seen)),
        },
    )
