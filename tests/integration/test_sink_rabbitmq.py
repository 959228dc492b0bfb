"""The rabbitmq sink against a real broker and a real consumer: every source row arrives
exactly as it is in the table, with its headers and idempotency key, one per message or in
arrays; an unroutable message fails the run; a missing exchange is refused up front."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage

from orchestrator.context import Context
from tests.conftest import AMQP_URL
from tests.helpers import api, make_target, start_backfill, target_body, wait_backfill, wait_until

pytestmark = pytest.mark.integration


@dataclass
class Consumer:
    """A queue bound to the test's exchange, and what arrived on it."""

    exchange: str
    queue: str
    messages: list[AbstractIncomingMessage] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for m in self.messages:
            body = json.loads(m.body)
            out.extend(body if isinstance(body, list) else [body])
        return out


@pytest.fixture
async def client(client: Any, ctx: Context) -> AsyncIterator[Any]:
    """conftest's client; afterwards the sink's broker connections are closed, as the
    service does on its way out."""
    yield client
    await ctx.resources.close()


@pytest.fixture
async def broker() -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    connection = await aio_pika.connect(AMQP_URL)
    channel = await connection.channel()
    yield channel
    await connection.close()


async def bind(
    channel: aio_pika.abc.AbstractChannel, binding: str | None = "#"
) -> AsyncIterator[Consumer]:
    name = f"bftest-sink-{uuid.uuid4().hex[:10]}"
    exchange = await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC)
    queue = await channel.declare_queue(name, exclusive=True)
    consumer = Consumer(name, name)
    if binding is not None:
        await queue.bind(exchange, binding)

    async def receive(message: AbstractIncomingMessage) -> None:
        consumer.messages.append(message)
        await message.ack()

    tag = await queue.consume(receive)
    try:
        yield consumer
    finally:
        await queue.cancel(tag)
        await queue.delete(if_unused=False, if_empty=False)
        await exchange.delete()


@pytest.fixture
async def consumer(broker: aio_pika.abc.AbstractChannel) -> AsyncIterator[Consumer]:
    async for c in bind(broker):
        yield c


@pytest.fixture
async def unbound(broker: aio_pika.abc.AbstractChannel) -> AsyncIterator[Consumer]:
    async for c in bind(broker, None):
        yield c


async def make_items(db: Any, n: int) -> list[Any]:
    await db.execute(
        """CREATE TABLE items (id bigint PRIMARY KEY, sku uuid NOT NULL, price numeric(12, 2),
                               note text, placed_at timestamptz NOT NULL)"""
    )
    await db.execute(
        """INSERT INTO items SELECT g, md5(g::text)::uuid, g * 1.05,
                  CASE WHEN g % 5 = 0 THEN NULL ELSE 'note ' || g END,
                  '2024-01-01T00:00:00Z'::timestamptz + g * interval '1 second'
           FROM generate_series(1, $1) g""",
        n,
    )
    return list(await db.fetch("SELECT * FROM items ORDER BY id"))


def expected(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "sku": str(row["sku"]),
        "price": str(row["price"]),
        "note": row["note"],
        "placed_at": row["placed_at"].isoformat(),
    }


async def rabbitmq_backfill(
    client: Any, options: dict[str, Any], *, max_attempts: int = 3, chunk_size: int = 500
) -> dict[str, Any]:
    await make_target(
        client,
        "items-to-rabbit",
        "table",
        tables=["items"],
        chunk_size=chunk_size,
        sink={"type": "rabbitmq", "options": options},
    )
    created = await start_backfill(client, "items-to-rabbit", max_attempts=max_attempts)
    return await wait_backfill(client, created["id"], {"completed", "failed"})


async def arrived(consumer: Consumer, rows: int) -> None:
    async def probe() -> bool:
        return len(consumer.rows()) >= rows

    await wait_until(probe, within=10, what=f"{rows} rows on the queue")


async def test_one_message_per_row_with_headers_and_idempotency_keys(
    client: Any, db: Any, consumer: Consumer
) -> None:
    source = await make_items(db, 1500)
    done = await rabbitmq_backfill(client, {"exchange": consumer.exchange})
    assert done["state"] == "completed", done
    assert done["rows_ingested_count"] == 1500
    await arrived(consumer, 1500)

    assert len(consumer.messages) == 1500
    by_id = {json.loads(m.body)["id"]: m for m in consumer.messages}
    assert sorted(by_id) == [r["id"] for r in source], "each row exactly once"
    for row in source:
        message = by_id[row["id"]]
        assert json.loads(message.body) == expected(row)
        assert message.message_id == f"{done['id']}:public.items:[{row['id']}]"
        assert message.routing_key == "public.items"
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.content_type == "application/json"
        assert message.headers == {
            "x-backfill-id": done["id"],
            "x-backfill-run-id": message.headers["x-backfill-run-id"],
            "x-backfill-table": "public.items",
            "x-backfill-action": "read",
            "x-backfill-key-columns": ["id"],
            "x-backfill-key": f"[{row['id']}]",
            "x-backfill-rows": 1,
        }


async def test_batches_of_rows_per_message(client: Any, db: Any, consumer: Consumer) -> None:
    source = await make_items(db, 1050)
    done = await rabbitmq_backfill(client, {"exchange": consumer.exchange, "batch_size": 100})
    assert done["state"] == "completed", done
    await arrived(consumer, 1050)

    assert sorted(consumer.rows(), key=lambda r: r["id"]) == [expected(r) for r in source]
    # Runs of 500 rows cut into arrays of 100; the last run has 50.
    assert sorted(len(json.loads(m.body)) for m in consumer.messages) == [50] + [100] * 10
    for message in consumer.messages:
        rows = json.loads(message.body)
        first, last = rows[0]["id"], rows[-1]["id"]
        assert message.message_id == f"{done['id']}:public.items:[{first}]..[{last}]"
        assert message.headers["x-backfill-first-key"] == f"[{first}]"
        assert message.headers["x-backfill-last-key"] == f"[{last}]"
        assert message.headers["x-backfill-rows"] == len(rows)


async def test_the_routing_key_template_can_name_the_key(
    client: Any, db: Any, broker: aio_pika.abc.AbstractChannel
) -> None:
    await make_items(db, 20)
    async for consumer in bind(broker, "items.*"):
        done = await rabbitmq_backfill(
            client, {"exchange": consumer.exchange, "routing_key": "{table}.{key}"}
        )
        assert done["state"] == "completed", done
        await arrived(consumer, 20)
        assert sorted(m.routing_key or "" for m in consumer.messages) == sorted(
            f"items.{i}" for i in range(1, 21)
        )


async def test_an_unroutable_message_fails_the_run(client: Any, db: Any, unbound: Consumer) -> None:
    await make_items(db, 5)
    done = await rabbitmq_backfill(client, {"exchange": unbound.exchange}, max_attempts=1)
    assert done["state"] == "failed", done
    error = done["error_report"][0]["error"]
    assert "were not confirmed" in error
    assert "NO_ROUTE" in error
    assert "public.items" in error


async def test_bad_options_are_refused_when_the_target_is_created(
    client: Any, db: Any, consumer: Consumer
) -> None:
    await make_items(db, 1)

    async def refused(options: dict[str, Any]) -> dict[str, Any]:
        return await api(  # type: ignore[no-any-return]
            client,
            "POST",
            "/v1/targets",
            422,
            json=target_body(
                "bad", "table", tables=["items"], sink={"type": "rabbitmq", "options": options}
            ),
        )

    missing = await refused({"exchange": f"{consumer.exchange}-missing"})
    assert "does not exist" in missing["detail"]
    assert missing["errors"][0]["pointer"] == "/sink/options/exchange"

    batch_key = await refused(
        {"exchange": consumer.exchange, "routing_key": "{key}", "batch_size": 10}
    )
    assert batch_key["errors"][0]["pointer"] == "/sink/options"
    assert "batch_size 1" in batch_key["errors"][0]["message"]

    placeholder = await refused({"exchange": consumer.exchange, "routing_key": "{tabel}"})
    assert "unknown placeholder {tabel}" in placeholder["errors"][0]["message"]

    broker = await refused({"exchange": consumer.exchange, "broker": "elsewhere"})
    assert broker["errors"][0]["pointer"] == "/sink/options/broker"


async def test_a_target_stored_on_the_orchestrators_exchange_fails_without_a_retry(
    client: Any, db: Any, consumer: Consumer, prefix: str
) -> None:
    """A target stored before the sink refused the orchestrator's own exchanges: its runs
    fail at the sink's open, for good, and publish nothing there."""
    await make_items(db, 5)
    sink = {"type": "rabbitmq", "options": {"exchange": consumer.exchange}}
    await make_target(client, "items-to-own", "table", tables=["items"], sink=sink)
    await db.execute(
        "UPDATE targets SET sink = jsonb_set(sink, '{options,exchange}', to_jsonb($1::text))"
        " WHERE name = 'items-to-own'",
        prefix,
    )
    created = await start_backfill(client, "items-to-own", max_attempts=3)
    done = await wait_backfill(client, created["id"], {"completed", "failed"})
    assert done["state"] == "failed", done
    assert "the orchestrator's own" in done["error_report"][0]["error"]
    attempts = await db.fetch(
        "SELECT attempt FROM transfer_runs WHERE backfill_id = $1", created["id"]
    )
    assert [r["attempt"] for r in attempts] == [1], "a refusal no retry can change was retried"
    assert consumer.messages == []
