"""Runs the Celery reference: a solo worker process drains `n` no-op tasks published on
one queue of the shared RabbitMQ; returns tasks per second, publish to drained."""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import AMQP


async def _wait_file(path: Path, proc: asyncio.subprocess.Process, within: float) -> None:
    deadline = time.monotonic() + within
    while not await asyncio.to_thread(path.exists):
        if proc.returncode is not None:
            raise RuntimeError("celery worker exited")
        if time.monotonic() > deadline:
            raise TimeoutError("celery worker did not drain in time")
        await asyncio.sleep(0.005)


async def celery_tasks_per_second(n: int, within: float = 600) -> float:
    from bench import celery_ref

    queue = f"bench-celery-{uuid.uuid4().hex[:8]}"
    workdir = Path(tempfile.mkdtemp(prefix="bench-celery-"))
    log = (workdir / "worker.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "celery",
        "-A",
        "bench.celery_ref",
        "worker",
        "-P",
        "solo",
        "-Q",
        queue,
        "--without-heartbeat",
        "--without-gossip",
        "--without-mingle",
        "-l",
        "WARNING",
        stdout=log,
        stderr=log,
    )
    drained = False
    try:
        warm = workdir / "warm"
        await asyncio.to_thread(celery_ref.done.apply_async, (str(warm),), queue=queue)
        await _wait_file(warm, proc, 60)
        finished = workdir / "finished"

        def publish() -> None:
            with celery_ref.app.producer_or_acquire() as producer:
                for _ in range(n):
                    celery_ref.noop.apply_async(queue=queue, producer=producer)
                celery_ref.done.apply_async((str(finished),), queue=queue, producer=producer)

        t0 = time.monotonic()
        await asyncio.to_thread(publish)
        await _wait_file(finished, proc, within)
        drained = True
        return n / (time.monotonic() - t0)
    finally:
        proc.terminate()
        await proc.wait()
        log.close()
        with celery_ref.app.connection_for_write(AMQP) as conn:
            conn.default_channel.queue_delete(queue)
        # The worker's log is kept only when it is needed: to see why the reference failed.
        if drained:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"celery reference failed; its worker log: {workdir / 'worker.log'}")
