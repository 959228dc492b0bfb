"""Cancelling a backfill with many pending runs while a worker claims its runs as fast as it
can: how long the cancel request takes, and whether any run started after it committed."""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta

import asyncpg

from bench.common import scratch
from bench.scenario import Measurement, scenario
from bench.stack import Stack, connect, noop_target, stack, start_windows


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


async def planned(conn: asyncpg.Connection, backfill: int, within: float) -> None:
    """Planning done and runs flowing (at least one started), so the cancel races claims."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        row = await conn.fetchrow(
            """SELECT planning_done, started_at IS NOT NULL AS started
               FROM backfills WHERE id = $1""",
            backfill,
        )
        if row is not None and row["planning_done"] and row["started"]:
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(f"backfill {backfill} not planned in {within}s")


async def trial(
    s: Stack, conn: asyncpg.Connection, target: int, n: int, windows: int
) -> tuple[float, int]:
    start = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(minutes=(windows + 1) * n)
    backfill = await start_windows(s, target, start.isoformat(), windows)
    await planned(conn, backfill, within=600)
    pending = int(
        await conn.fetchval(
            "SELECT count(*) FROM transfer_runs WHERE backfill_id = $1 AND state = 'pending'",
            backfill,
        )
    )
    t0 = time.perf_counter()
    cancelled = await s.call("POST", f"/v1/backfills/{backfill}/cancel")
    took = (time.perf_counter() - t0) * 1000
    assert cancelled["state"] == "cancelled"
    return took, pending


@scenario(
    "cancel",
    "cancel a backfill of 100,000 one-minute windows while a worker claims its runs",
    "p99 <= 300 ms over 20 trials; zero runs started after the cancel committed",
)
async def run(quick: bool) -> Measurement:
    # The case in a full run: 20 trials, each cancelling about 100,000 pending runs
    # (the worker has claimed a few dozen by then). Quick keeps CI's smoke run short.
    trials, windows = (3, 5_000) if quick else (20, 100_000)
    async with scratch("cancel") as (dsn, prefix), stack(dsn, prefix, workers=1) as s:
        target = await noop_target(s, "cancel", 16)
        conn = await connect(dsn)
        try:
            took, pending = [], []
            for n in range(trials):
                ms, left = await trial(s, conn, target, n, windows)
                took.append(ms)
                pending.append(left)
            late = int(
                await conn.fetchval(
                    """SELECT count(*) FROM backfills b
                       JOIN transfer_runs r ON r.backfill_id = b.id
                       WHERE r.started_at > b.cancelled_at"""
                )
            )
        finally:
            await conn.close()
    return Measurement(
        figure=p99(took),
        unit="ms",
        higher_is_better=False,
        extra={
            "trials": trials,
            "median_ms": round(statistics.median(took), 1),
            "max_ms": round(max(took), 1),
            "windows": windows,
            "pending_runs_min": min(pending),
            "pending_runs_median": int(statistics.median(pending)),
            "runs_started_after_cancel": late,
        },
    )
