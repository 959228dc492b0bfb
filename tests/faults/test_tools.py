"""The fault suite's own tools: the checker must catch what it claims to catch (a checker that
always passes would make every fault test worthless), and the proxy must cut, refuse, stall
and resume real Postgres and RabbitMQ connections."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import asyncpg
import pytest

from orchestrator.context import Context
from tests.conftest import AMQP_URL, RunningWorker
from tests.faults.checker import check_date_range_backfill, check_table_backfill
from tests.faults.proxy import TcpProxy
from tests.faults.scenario import (
    date_range_target,
    make_dest,
    make_source,
    start_backfill,
    table_target,
)

pytestmark = pytest.mark.integration


async def expect_problems(check: Any, *expected: str) -> str:
    with pytest.raises(AssertionError) as failed:
        await check
    report = str(failed.value)
    missing = [e for e in expected if e not in report]
    assert not missing, f"the report does not mention {missing}:\n{report}"
    return report


async def test_the_checker_reports_every_problem_it_finds(
    ctx: Context, db: Any, worker: RunningWorker
) -> None:
    await make_source(db, 1000)
    await make_dest(db)
    await table_target(ctx, chunk_size=250)
    backfill = await start_backfill(ctx, "copy")
    found = await check_table_backfill(db, backfill.id, within=30)
    assert found.problems == []
    assert len(found.runs) == 4

    # Now break it in every way the checker claims to notice, all at once.
    await db.execute("DELETE FROM dst WHERE id = 10")  # a row lost
    await db.execute("UPDATE dst SET name = 'changed' WHERE id = 20")  # a row changed
    await db.execute(  # a row that is not in the source
        "INSERT INTO dst SELECT 5000, name, amount, tags, payload, seen_at, note "
        "FROM src WHERE id = 1"
    )
    await db.execute(
        "UPDATE backfills SET rows_processed_count = rows_processed_count + 7, runs_completed = 5"
    )
    await db.execute(
        "UPDATE transfer_runs SET state = 'running', lease_token = gen_random_uuid() WHERE seq = 3"
    )
    await db.execute("UPDATE transfer_runs SET rows_processed = 251 WHERE seq = 0")
    await db.execute(
        """INSERT INTO outbox (routing_key, payload)
           SELECT routing_key, payload FROM outbox WHERE routing_key = 'event.backfill.completed'"""
    )
    report = await expect_problems(
        check_table_backfill(db, backfill.id, within=0.2),
        "not settled within 0.2s",
        "run 4 (seq 3): left running; still holds a lease",
        "runs_completed = 5 but 3 runs are completed",
        "rows_processed_count = 1007 but the runs sum to 1001",
        "processed 251 rows, its range has 250",
        "1 source rows never reached dst",
        "1 rows in dst that are not in src",
        "1 rows differ between src and dst",
        "checksums differ",
        "event.backfill.completed written 2 times",
        "keys missing from the destination: 1: [10]",
        "rows whose content differs: 1: [20]",
    )
    assert "runs by state: {'completed': 3, 'running': 1}" in report


async def test_the_date_range_checker_notices_gaps_and_stray_executions(
    ctx: Context, db: Any, worker: RunningWorker
) -> None:
    await date_range_target(ctx, "days", {"type": "noop"})
    backfill = await start_backfill(ctx, "days", start="2024-01-01", end="2024-01-05")
    found = await check_date_range_backfill(db, backfill.id, within=30)
    run_ids = [r["id"] for r in found.runs]
    await db.execute("DELETE FROM transfer_runs WHERE seq = 2")
    await expect_problems(
        check_date_range_backfill(
            db,
            backfill.id,
            within=0.2,
            executions={run_ids[0]: 2, run_ids[1]: 0, 99999: 1},
            exactly_once=True,
        ),
        "runs_total = 5 but 4 runs were planned",
        "windows do not tile the range",
        "run seqs are not 0..3",
        f"completed runs the handler never finished: [{run_ids[1]}",
        "runs executed to the end but not completed: [99999]",
        f"runs executed more than once: [{run_ids[0]}]",
    )


def _via(dsn: str, port: int) -> str:
    parts = urlsplit(dsn)
    user, _, _ = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user}@127.0.0.1:{port}"))


async def test_the_proxy_cuts_refuses_stalls_and_resumes(database: str) -> None:
    target = urlsplit(database)
    async with await TcpProxy.open(target.hostname or "127.0.0.1", target.port or 5432) as proxy:
        dsn = _via(database, proxy.port)
        conn = await asyncpg.connect(dsn)
        assert await conn.fetchval("SELECT 1") == 1
        assert proxy.connections == 1

        assert await proxy.cut() == 1  # a network drop: the open connection is reset
        with pytest.raises((OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError)):
            await conn.fetchval("SELECT 1")

        proxy.refuse()  # a server that is down
        with pytest.raises(ConnectionRefusedError):
            await asyncpg.connect(dsn, timeout=2)
        await proxy.accept()  # back, on the same port
        conn = await asyncpg.connect(dsn)
        assert await conn.fetchval("SELECT 2") == 2

        proxy.stall()  # a partition: nothing flows, nothing is reset
        query = asyncio.ensure_future(conn.fetchval("SELECT 3"))
        done, _ = await asyncio.wait({query}, timeout=0.3)  # observing that it does not finish
        assert not done, "a query finished through a stalled proxy"
        proxy.resume()  # healed: what was held arrives
        assert await asyncio.wait_for(query, timeout=5) == 3
        await conn.close()

    amqp = urlsplit(AMQP_URL)
    async with await TcpProxy.open(amqp.hostname or "127.0.0.1", amqp.port or 5672) as proxy:
        connection = await aio_pika.connect(_via(AMQP_URL, proxy.port))
        channel = await connection.channel()
        queue = await channel.declare_queue(f"bftest-proxy-{uuid.uuid4().hex[:8]}", exclusive=True)
        await channel.default_exchange.publish(aio_pika.Message(b"x"), routing_key=queue.name)
        assert await proxy.cut() == 1
        with pytest.raises(Exception, match=r"reset|closed|Connection"):
            await asyncio.wait_for(connection.channel(), timeout=5)
        proxy.refuse()
        with pytest.raises((OSError, aio_pika.exceptions.AMQPConnectionError)):
            await aio_pika.connect(_via(AMQP_URL, proxy.port), timeout=2)
        await proxy.accept()
        again = await aio_pika.connect(_via(AMQP_URL, proxy.port))
        await again.close()
        await connection.close()
