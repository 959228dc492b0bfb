"""The reference for run throughput: Celery 5.5 on the same RabbitMQ, one solo worker,
results ignored. `python -m celery -A bench.celery_ref worker` runs the worker; the bench
publishes no-op tasks and a last task that marks a file, which a solo worker reaches only
after every task before it (one queue, in order)."""

from __future__ import annotations

import os
from pathlib import Path

from celery import Celery

app = Celery(
    "bench", broker=os.environ.get("BENCH_CELERY_BROKER", "amqp://guest:guest@127.0.0.1:5672//")
)
app.conf.update(
    task_ignore_result=True,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    worker_prefetch_multiplier=4,
)


@app.task(name="bench.noop")
def noop() -> None:
    return None


@app.task(name="bench.done")
def done(path: str) -> None:
    Path(path).touch()
