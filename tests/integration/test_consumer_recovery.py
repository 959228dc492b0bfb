"""Consumers the broker dropped while the connection stayed up come back, and readiness
says when they are missing. (A reconnect is aio-pika's to restore; a broker-side cancel,
such as the queue being deleted, is not, so the worker watches for it.)"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest

from orchestrator.context import Context, open_context
from orchestrator.probes import ContextProbes
from tests.conftest import AMQP_URL, RunningWorker, make_settings
from tests.helpers import wait_until
from workers.process import Worker

pytestmark = pytest.mark.integration


async def delete_queue(name: str) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        await channel.queue_delete(name)
    finally:
        await connection.close()


async def consumers_on(name: str) -> int:
    """How many consumers the broker has on a queue (0 while it does not exist)."""
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, passive=True)
        return queue.declaration_result.consumer_count or 0
    except aio_pika.exceptions.ChannelClosed:
        return 0  # a passive declare of a missing queue closes the channel
    finally:
        await connection.close()


async def publish_create(prefix: str, target: int) -> uuid.UUID:
    command_id = uuid.uuid4()
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(prefix)
        body = json.dumps(
            {
                "type": "command.create",
                "command_id": str(command_id),
                "backfill": {"target": target, "start": "2024-01-01", "end": "2024-01-02"},
            }
        )
        await exchange.publish(
            aio_pika.Message(body.encode()), routing_key="command.create", mandatory=True
        )
    finally:
        await connection.close()
    return command_id


@pytest.fixture
async def slow_watch(database: str, prefix: str) -> AsyncIterator[tuple[Context, Worker]]:
    """A worker whose watch loop runs once a minute, so the test sees the gap it closes."""
    settings = make_settings(database, prefix, reaper_seconds=60.0)
    async with open_context(settings) as ctx:
        running = RunningWorker(Worker(ctx))
        await running.start()
        yield ctx, running.worker
        await running.stop()


async def test_readiness_reports_a_dropped_consumer_until_it_is_reattached(
    slow_watch: tuple[Context, Worker],
) -> None:
    ctx, _ = slow_watch
    probes = ContextProbes(ctx, consuming=True)
    broker = ctx.broker
    await wait_until(broker.consumers_attached, what="consumers attached at start")

    await delete_queue(broker.topology.commands)

    async def dropped() -> bool:
        return (await probes.readiness())["consumers"] is False

    await wait_until(dropped, what="readiness to report the dropped consumer")
    assert (await probes.readiness())["rabbitmq"] is True  # the connection never went away

    assert await broker.ensure_consumers() == [broker.topology.commands]
    assert all((await probes.readiness()).values())
    assert await broker.ensure_consumers() == []  # nothing missing: nothing done


async def test_the_worker_reattaches_a_dropped_consumer_and_goes_on_consuming(
    ctx: Context, worker: Any
) -> None:
    target = await ctx.storage.targets.insert(
        {
            "name": "days",
            "kind": "date_range",
            "handler": {"type": "noop"},
            "max_active_runs": 2,
            "max_attempts": 1,
            "team_id": 1,
        }
    )
    broker = ctx.broker
    await wait_until(broker.consumers_attached, what="consumers attached at start")

    await delete_queue(broker.topology.commands)

    # The watch loop (every reaper_seconds) declares the queue again and consumes from it.
    await wait_until(
        lambda: consumers_on(broker.topology.commands), what="the consumer to be re-attached"
    )
    command_id = await publish_create(ctx.settings.amqp_prefix, target.id)

    async def applied() -> Any:
        backfill = await ctx.storage.backfills.by_command(command_id)
        return backfill is not None and backfill.state.value == "completed"

    await wait_until(applied, what="the command sent after the re-attach to be applied")
