"""No-op date-range runs end to end against Celery on the same broker.

One `backfill up` process (what `make run` starts) plans and runs a backfill of one-minute
windows whose handler does nothing; every run's state change is committed in Postgres. The
reference publishes the same number of no-op Celery tasks to a solo worker, results ignored."""

from __future__ import annotations

import time

from bench.common import scratch
from bench.reference_celery import celery_tasks_per_second
from bench.scenario import Measurement, scenario
from bench.stack import CpuMeter, noop_target, stack, start_windows, wait_backfills


def cpu_extra(meter: CpuMeter, runs: int) -> dict[str, float]:
    """CPU milliseconds per run, by part and summed."""
    per = {f"cpu_ms_per_run_{k}": round(v * 1000 / runs, 3) for k, v in meter.spent.items()}
    per["cpu_ms_per_run"] = round(sum(meter.spent.values()) * 1000 / runs, 3)
    return per


@scenario(
    "runs_noop",
    "20,000 no-op one-minute windows, max_active_runs 16, one `backfill up` process",
    ">= 2 x Celery 5.5 (solo worker, RabbitMQ, results ignored), state durable in Postgres",
)
async def run(quick: bool) -> Measurement:
    windows = 1_000 if quick else 20_000
    async with scratch("runs") as (dsn, prefix), stack(dsn, prefix, combined=True) as s:
        target = await noop_target(s, "noop", 16)
        meter = CpuMeter(s.pids(), s.database, dsn.rsplit("/", 1)[0] + "/postgres")
        await meter.start()
        t0 = time.monotonic()
        backfill = await start_windows(s, target, "2020-01-01T00:00:00+00:00", windows)
        (done,) = await wait_backfills(s, [backfill], within=900)
        took = time.monotonic() - t0
        await meter.stop()
        assert done["state"] == "completed", done["state"]
        runs = int(done["runs_completed"])
    reference = await celery_tasks_per_second(runs)
    return Measurement(
        figure=runs / took,
        unit="runs/s",
        reference=reference,
        reference_name="Celery 5.5 solo worker",
        extra={"runs": runs, "seconds": round(took, 2), **cpu_extra(meter, runs)},
    )
