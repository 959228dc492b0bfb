"""Fixtures of the fault tests, on top of tests/conftest.py (a database and a broker prefix
per test, `ctx`, `db`, `worker`)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from orchestrator.context import Context, open_context
from orchestrator.settings import Settings
from tests.conftest import AMQP_URL, RunningWorker
from tests.faults.processes import Workers
from tests.helpers import wait_until
from workers.process import Worker


@pytest.fixture
async def workers(database: str, prefix: str, tmp_path: Path) -> AsyncIterator[Workers]:
    """Starts real `backfill worker` processes for this test; kills what is left afterwards
    (thawing frozen ones first) and prints their logs (shown when the test failed)."""
    started = Workers(database, prefix, tmp_path)
    try:
        yield started
    finally:
        await started.close()


class Producer:
    """Another service publishing straight to the orchestrator's exchange, with confirms."""

    def __init__(self, channel: aio_pika.abc.AbstractChannel, prefix: str) -> None:
        self.channel = channel
        self.prefix = prefix

    async def send(self, routing_key: str, body: bytes | dict[str, Any]) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        exchange = await self.channel.get_exchange(self.prefix)
        await exchange.publish(
            aio_pika.Message(raw, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=routing_key,
            mandatory=True,
        )

    async def depth(self, queue: str) -> int:
        declared = await self.channel.declare_queue(f"{self.prefix}.{queue}", passive=True)
        return int(declared.declaration_result.message_count or 0)

    async def drained(self, *queues: str, within: float = 15.0) -> None:
        """Waits until the queues hold no ready message (unacked ones are not counted by the
        broker's passive declare, so pair this with a state the test waits for)."""

        async def empty() -> bool:
            return all([await self.depth(q) == 0 for q in queues])

        await wait_until(empty, within=within, what=f"queues {queues} drained")

    async def dead_letters(self) -> list[aio_pika.abc.AbstractIncomingMessage]:
        queue = await self.channel.get_queue(f"{self.prefix}.dead")
        out = []
        while (message := await queue.get(fail=False, no_ack=True)) is not None:
            out.append(message)
        return out


@pytest.fixture
async def producer(ctx: Context) -> AsyncIterator[Producer]:
    connection = await aio_pika.connect(AMQP_URL)
    channel = await connection.channel(publisher_confirms=True)
    yield Producer(channel, ctx.settings.amqp_prefix)
    await connection.close()


@pytest.fixture
async def second_worker(settings: Settings) -> AsyncIterator[RunningWorker]:
    """Another in-process worker with its own pool and broker connection, competing with the
    `worker` fixture's for the same queues."""
    async with open_context(settings) as other:
        running = RunningWorker(Worker(other))
        await running.start()
        yield running
        await running.stop()
