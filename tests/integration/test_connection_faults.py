"""Connections cut mid-backfill: RabbitMQ and Postgres, each behind a TCP proxy the test
controls, go away and come back while a worker is copying a table. The backfill completes,
every row arrives exactly once, and commands sent during the outage are applied once."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import pytest

from orchestrator.context import Context, open_context
from tests.conftest import AMQP_URL, RunningWorker, make_settings
from tests.faults.checker import check_table_backfill
from tests.faults.proxy import TcpProxy
from tests.faults.scenario import make_dest, make_source, start_backfill, table_target
from tests.helpers import wait_until
from workers.process import Worker

pytestmark = pytest.mark.integration


def _via(proxy: TcpProxy, url: str, query: str = "") -> str:
    parts = urlsplit(url)
    userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    netloc = f"{userinfo}{proxy.listen_host}:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc, query=query or parts.query))


@pytest.fixture
async def proxies(database: str) -> AsyncIterator[tuple[TcpProxy, TcpProxy]]:
    pg = urlsplit(database)
    mq = urlsplit(AMQP_URL)
    async with (
        await TcpProxy.open(pg.hostname or "127.0.0.1", pg.port or 5432) as pg_proxy,
        await TcpProxy.open(mq.hostname or "127.0.0.1", mq.port or 5672) as mq_proxy,
    ):
        yield pg_proxy, mq_proxy


@pytest.fixture
async def proxied_worker(
    database: str, prefix: str, proxies: tuple[TcpProxy, TcpProxy]
) -> AsyncIterator[Context]:
    """A context and a worker whose every connection, to Postgres and to RabbitMQ, goes
    through the proxies. The robust connection retries every half second."""
    pg_proxy, mq_proxy = proxies
    settings = make_settings(
        _via(pg_proxy, database),
        prefix,
        amqp_url=_via(mq_proxy, AMQP_URL, "reconnect_interval=0.5"),
        lease_seconds=3.0,
        heartbeat_seconds=0.3,
        redispatch_after_seconds=2.0,
    )
    async with open_context(settings) as ctx:
        running = RunningWorker(Worker(ctx))
        await running.start()
        yield ctx
        await running.stop()


async def _some_rows_delivered(db: Any, backfill_id: int, total: int) -> bool:
    done = await db.fetchval(
        "SELECT rows_processed_count FROM backfills WHERE id = $1", backfill_id
    )
    return bool(0 < done < total)


async def test_a_broker_outage_mid_backfill_loses_and_doubles_nothing(
    proxied_worker: Context, proxies: tuple[TcpProxy, TcpProxy], db: Any
) -> None:
    ctx = proxied_worker
    _, mq_proxy = proxies
    await make_source(db, 6000)
    await make_dest(db, statement_delay=0.02)
    await make_source(db, 300, name="src2")
    await make_dest(db, "dst2", like="src2")
    await make_source(db, 200, name="src3")
    await make_dest(db, "dst3", like="src3")
    await table_target(ctx, "copy", chunk_size=200)
    await table_target(ctx, "copy2", source="src2", dest="dst2", chunk_size=50)
    third = await table_target(ctx, "copy3", source="src3", dest="dst3", chunk_size=50)
    first = await start_backfill(ctx, "copy")
    await wait_until(lambda: _some_rows_delivered(db, first.id, 6000), what="rows flowing")

    # The broker goes away for the worker: open connections reset, new ones refused.
    mq_proxy.refuse()
    await mq_proxy.cut()
    await wait_until(lambda: _not(ctx.broker.connected), what="the worker to see it")

    # The API path keeps accepting writes: they wait in the outbox.
    second = await start_backfill(ctx, "copy2")

    async def held() -> bool:
        return bool(await db.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))

    await wait_until(held, what="the outbox to hold what cannot be sent")
    # Another service publishes a command straight to RabbitMQ (which is up) meanwhile.
    command_id = uuid.uuid4()
    await _publish(
        ctx.settings.amqp_prefix,
        {
            "type": "command.create",
            "command_id": str(command_id),
            "backfill": {"target": third.id},
        },
    )

    await mq_proxy.accept()  # the broker is back

    await check_table_backfill(db, first.id, source="src", dest="dst", within=90)
    await check_table_backfill(db, second.id, source="src2", dest="dst2", within=60)

    async def applied() -> Any:
        return await db.fetchval("SELECT id FROM backfills WHERE command_id = $1", command_id)

    third_id = await wait_until(applied, what="the command sent during the outage")
    await check_table_backfill(db, third_id, source="src3", dest="dst3", within=60)
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0


async def test_a_postgres_outage_mid_backfill_loses_and_doubles_nothing(
    proxied_worker: Context, proxies: tuple[TcpProxy, TcpProxy], db: Any
) -> None:
    ctx = proxied_worker
    pg_proxy, _ = proxies
    await make_source(db, 6000)
    await make_dest(db, statement_delay=0.02)
    await table_target(ctx, "copy", chunk_size=200)
    backfill = await start_backfill(ctx, "copy")
    await wait_until(lambda: _some_rows_delivered(db, backfill.id, 6000), what="rows flowing")

    # Postgres goes away for the worker (the test's own connection is direct).
    pg_proxy.refuse()
    await pg_proxy.cut()

    async def unreachable() -> bool:
        try:
            await ctx.pool.fetchval("SELECT 1")
        except Exception:
            return True
        return False

    await wait_until(unreachable, what="the worker's pool to find Postgres gone")
    await pg_proxy.accept()

    await check_table_backfill(db, backfill.id, source="src", dest="dst", within=90)


async def _not(probe: Any) -> bool:
    return not probe()


async def _publish(prefix: str, payload: dict[str, Any]) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(prefix)
        await exchange.publish(
            aio_pika.Message(json.dumps(payload).encode()),
            routing_key=payload["type"],
            mandatory=True,
        )
    finally:
        await connection.close()
