"""Table and date-range backfill throughput against the real services.

Creates a throwaway database, fills a source table, runs one in-process worker (the same
Worker class `backfill worker` runs), and times each backfill from POST to completed.
Prints one line per case with rows/s, runs/s and the process's peak RSS.

    python -m bench --rows 1000000 --chunk 10000 --sinks postgres,null
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time
from typing import Any

import asyncpg

from bench.common import main_source, scratch
from orchestrator.context import open_context
from orchestrator.domain.models import HandlerSpec, SinkSpec
from orchestrator.domain.specs import BackfillSpec, DateRangeTargetSpec, TableTargetSpec
from orchestrator.logs import configure_logging
from orchestrator.settings import Settings
from workers.process import Worker


async def wait_done(ctx: Any, backfill_id: int, within: float) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        b = await ctx.service.get_backfill(backfill_id, team_id=None)
        if b.state in ("completed", "failed", "cancelled"):
            return b
        await asyncio.sleep(0.05)
    raise TimeoutError(f"backfill {backfill_id} not done in {within}s")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main(args: argparse.Namespace) -> None:
    configure_logging("WARNING", json_output=True)
    async with scratch("throughput") as (dsn, prefix):
        await measure(args, dsn, prefix)


async def measure(args: argparse.Namespace, dsn: str, prefix: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        t0 = time.monotonic()
        await conn.execute(
            """CREATE TABLE src (id bigint PRIMARY KEY, customer uuid NOT NULL, amount numeric,
                   note text, payload jsonb, placed_at timestamptz NOT NULL);
               CREATE TABLE dst (LIKE src INCLUDING ALL);"""
        )
        await conn.execute(
            """INSERT INTO src SELECT g, md5(g::text)::uuid, g * 1.25, 'note ' || g,
                   jsonb_build_object('g', g), now() - g * interval '1 second'
               FROM generate_series(1, $1) g""",
            args.rows,
        )
        await conn.execute("VACUUM ANALYZE src")
        print(f"setup: {args.rows} source rows in {time.monotonic() - t0:.1f}s")
        settings = Settings(
            database_url=dsn,
            sources=main_source(dsn),
            amqp_prefix=prefix,
            worker_concurrency=args.concurrency,
            dispatch_sweep_seconds=0.5,
            log_level="WARNING",
        )
        async with open_context(settings) as ctx:
            worker = Worker(ctx)
            task = asyncio.create_task(worker.run())
            try:
                for sink in args.sinks.split(","):
                    options = {"table": "dst"} if sink == "postgres" else {}
                    await conn.execute("TRUNCATE dst")
                    target = await ctx.service.create_target(
                        TableTargetSpec(
                            name=f"bench-{sink}",
                            tables=["src"],
                            chunk_size=args.chunk,
                            max_active_runs=args.concurrency,
                            sink=SinkSpec(type=sink, options=options),
                        ),
                        team_id=1,
                    )
                    start = time.monotonic()
                    b = await ctx.service.create_backfill(BackfillSpec(target=target.id), team_id=1)
                    b = await wait_done(ctx, b.id, args.timeout)
                    took = time.monotonic() - start
                    print(
                        f"table sink={sink:<8} rows={b.rows_processed_count:>9} "
                        f"runs={b.runs_total:>5} time={took:6.2f}s "
                        f"rows/s={b.rows_processed_count / took:>10,.0f} "
                        f"state={b.state} peak_rss={peak_rss_mib():.0f}MiB"
                    )
                target = await ctx.service.create_target(
                    DateRangeTargetSpec(
                        name="bench-noop",
                        handler=HandlerSpec(type="noop"),
                        max_active_runs=args.concurrency,
                    ),
                    team_id=1,
                )
                start = time.monotonic()
                b = await ctx.service.create_backfill(
                    BackfillSpec.model_validate(
                        {
                            "target": target.id,
                            "start": "2020-01-01T00:00:00Z",
                            "end": "2020-01-08T00:00:00Z",
                            "interval_type": "minute",
                            "interval_units": 5,
                        }
                    ),
                    team_id=1,
                )
                b = await wait_done(ctx, b.id, args.timeout)
                took = time.monotonic() - start
                print(
                    f"date_range handler=noop runs={b.runs_total:>5} time={took:6.2f}s "
                    f"runs/s={b.runs_total / took:,.0f} state={b.state}"
                )
            finally:
                worker.stop()
                await task
    finally:
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--sinks", default="postgres,null")
    parser.add_argument("--timeout", type=float, default=600)
    asyncio.run(main(parser.parse_args()))
