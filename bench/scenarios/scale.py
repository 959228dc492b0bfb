"""Runs per second as the work spreads: 1, 10 and 100 concurrent no-op backfills sharing the
same number of runs, and one worker process against two. Each case reports CPU per run
summed over the worker(s), the API process, the Postgres backends of its database and
RabbitMQ: what one run costs, and so how far more machines would carry it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.common import scratch
from bench.scenario import Measurement, scenario
from bench.scenarios.runs_noop import cpu_extra
from bench.stack import CpuMeter, Stack, noop_target, stack, start_windows, wait_backfills


async def one_case(s: Stack, admin: str, total: int, backfills: int, case: str) -> dict[str, Any]:
    """`total` one-minute windows over `backfills` backfills started at once, on a target of
    their own (named `case`), timed from the first POST to the last one ending."""
    target = await noop_target(s, case, 16)
    meter = CpuMeter(s.pids(), s.database, admin)
    per = total // backfills
    await meter.start()
    t0 = time.monotonic()
    ids = await asyncio.gather(
        *(
            start_windows(s, target, f"{2000 + n}-01-01T00:00:00+00:00", per)
            for n in range(backfills)
        )
    )
    done = await wait_backfills(s, list(ids), within=1800)
    took = time.monotonic() - t0
    await meter.stop()
    runs = sum(int(b["runs_completed"]) for b in done)
    assert all(b["state"] == "completed" for b in done)
    return {"runs_per_s": runs / took, "runs": runs, **cpu_extra(meter, runs)}


def _total(quick: bool) -> int:
    return 400 if quick else 10_000


@scenario(
    "scale_backfills",
    "the same no-op runs as 1, 10 and 100 concurrent backfills, one worker process",
    "runs/s within 20 % across 1, 10 and 100 backfills (worst / 1 backfill >= 0.8)",
)
async def run_backfills(quick: bool) -> Measurement:
    total = _total(quick)
    async with scratch("scale") as (dsn, prefix), stack(dsn, prefix, workers=1) as s:
        admin = dsn.rsplit("/", 1)[0] + "/postgres"
        cases = {k: await one_case(s, admin, total, k, f"b{k}") for k in (1, 10, 100)}
    base = cases[1]["runs_per_s"]
    worst = min(cases[10]["runs_per_s"], cases[100]["runs_per_s"])
    return Measurement(
        figure=worst,
        unit="runs/s",
        reference=base,
        reference_name="1 backfill",
        extra={
            **{f"runs_per_s_{k}_backfills": round(c["runs_per_s"], 1) for k, c in cases.items()},
            **{f"cpu_ms_per_run_{k}_backfills": c["cpu_ms_per_run"] for k, c in cases.items()},
            **{f"{key}_1_backfill": v for key, v in cases[1].items() if key.startswith("cpu_")},
        },
    )


@scenario(
    "scale_workers",
    "10 concurrent no-op backfills with two worker processes against one",
    "a second worker process never lowers runs/s (2 workers / 1 worker >= 1.0)",
)
async def run_workers(quick: bool) -> Measurement:
    total = _total(quick)
    async with scratch("scale") as (dsn, prefix), stack(dsn, prefix, workers=1) as s:
        admin = dsn.rsplit("/", 1)[0] + "/postgres"
        one = await one_case(s, admin, total, 10, "one")
        await s.start("worker#1", "worker")
        await s.wait_ready(2)
        two = await one_case(s, admin, total, 10, "two")
    return Measurement(
        figure=two["runs_per_s"],
        unit="runs/s",
        reference=one["runs_per_s"],
        reference_name="1 worker process",
        extra={
            "cpu_ms_per_run_1_worker": one["cpu_ms_per_run"],
            "cpu_ms_per_run_2_workers": two["cpu_ms_per_run"],
        },
    )
