"""Per-run overhead: how long a date-range run spends between being queued, claimed and
finished when its handler does nothing. One worker, max_active_runs=1, so each number is
one run's path through outbox, broker, claim and completion.

    python -m bench.latency --runs 60
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import asyncpg

from bench.common import scratch
from orchestrator.context import open_context
from orchestrator.domain.models import HandlerSpec
from orchestrator.domain.specs import BackfillSpec, DateRangeTargetSpec
from orchestrator.logs import configure_logging
from orchestrator.settings import Settings
from workers.process import Worker


async def main(args: argparse.Namespace) -> None:
    configure_logging("WARNING", json_output=True)
    async with scratch("latency") as (dsn, prefix):
        await measure(args, dsn, prefix)


async def measure(args: argparse.Namespace, dsn: str, prefix: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        settings = Settings(database_url=dsn, amqp_prefix=prefix, log_level="WARNING")
        async with open_context(settings) as ctx:
            worker = Worker(ctx)
            task = asyncio.create_task(worker.run())
            try:
                target = await ctx.usecases.targets.create(
                    DateRangeTargetSpec(
                        name="noop", handler=HandlerSpec(type="noop"), max_active_runs=1
                    ),
                    team_id=1,
                )
                minutes = 5 * args.runs
                backfill = await ctx.usecases.backfills.create(
                    BackfillSpec.model_validate(
                        {
                            "target": target.id,
                            "start": "2020-01-01T00:00:00Z",
                            "end": f"2020-01-01T{minutes // 60:02d}:{minutes % 60:02d}:00Z",
                            "interval_type": "minute",
                            "interval_units": 5,
                        }
                    ),
                    team_id=1,
                )
                deadline = time.monotonic() + 300
                while (await ctx.usecases.backfills.get(backfill.id, team_id=None)).state not in (
                    "completed",
                    "failed",
                ):
                    if time.monotonic() > deadline:
                        raise TimeoutError("backfill did not finish in 300 s")
                    await asyncio.sleep(0.05)
            finally:
                worker.stop()
                await task
        rows = await conn.fetch(
            "SELECT queued_at, started_at, finished_at FROM transfer_runs ORDER BY seq"
        )
        queued_to_started = [(r["started_at"] - r["queued_at"]).total_seconds() for r in rows]
        started_to_done = [(r["finished_at"] - r["started_at"]).total_seconds() for r in rows]
        total = [a + b for a, b in zip(queued_to_started, started_to_done, strict=True)]
        print(
            f"runs={len(rows)} median ms: queued->started "
            f"{statistics.median(queued_to_started) * 1000:.1f}, started->finished "
            f"{statistics.median(started_to_done) * 1000:.1f}, total "
            f"{statistics.median(total) * 1000:.1f}"
        )
    finally:
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=60)
    asyncio.run(main(parser.parse_args()))
