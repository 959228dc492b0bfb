"""The rabbitmq sink builds its messages' AMQP properties itself (aio-pika's Message cost more
than the rest of a message): they must encode to exactly the bytes aio-pika's did."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import aio_pika
import pytest
from pamqp.header import ContentHeader

from orchestrator.sinks.base import RowBatch
from orchestrator.sinks.encoding import idempotency_key
from orchestrator.sinks.rabbitmq import APP_ID, RabbitmqOptions, _RabbitmqSink

COLUMNS = ["id", "placed_at", "note", "doc", "price"]
TYPES = ["int8", "timestamptz", "text", "jsonb", "numeric"]


def batch(n: int) -> RowBatch:
    at = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    rows = [(i, at, f"nöte {i}", {"a": i, "b": [1, "x"]}, Decimal("1.50")) for i in range(1, n + 1)]
    return RowBatch("public.items", COLUMNS, rows, ["id"], 42, 7, TYPES)


def sink(batch_size: int, routing_key: str = "{schema}.{table}") -> _RabbitmqSink:
    options = RabbitmqOptions(exchange="x", batch_size=batch_size, routing_key=routing_key)
    return _RabbitmqSink(options, cast(Any, None), cast(Any, None))


def as_aio_pika_built_it(
    body: bytes, headers: dict[str, Any], message_id: str, at: datetime
) -> bytes:
    """What the sink sent before: aio_pika.Message(...).properties."""
    message = aio_pika.Message(
        body,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message_id,
        headers=headers,
        timestamp=at,
        app_id=APP_ID,
        type="backfill.read",
    )
    return ContentHeader(0, len(body), message.properties).marshal()


@pytest.mark.parametrize("batch_size", [1, 3])
def test_messages_encode_as_aio_pika_encoded_them(batch_size: int) -> None:
    rows = batch(7)
    messages = sink(batch_size)._messages(rows)
    assert len(messages) == -(-7 // batch_size)
    for n, (body, properties, routing_key) in enumerate(messages):
        chunk = rows.rows[n * batch_size : (n + 1) * batch_size]
        first, last = f"[{chunk[0][0]}]", f"[{chunk[-1][0]}]"
        headers: dict[str, Any] = {
            "x-backfill-id": 42,
            "x-backfill-run-id": 7,
            "x-backfill-table": "public.items",
            "x-backfill-action": "read",
            "x-backfill-key-columns": ["id"],
        }
        if batch_size == 1:
            headers["x-backfill-key"] = first
            message_id = idempotency_key(42, "public.items", first)
        else:
            headers["x-backfill-first-key"] = first
            headers["x-backfill-last-key"] = last
            message_id = idempotency_key(42, "public.items", first, last)
        headers["x-backfill-rows"] = len(chunk)
        assert properties.headers == headers
        assert properties.message_id == message_id
        assert routing_key == "public.items"
        assert properties.timestamp is not None
        assert ContentHeader(0, len(body), properties).marshal() == as_aio_pika_built_it(
            body, headers, message_id, properties.timestamp
        )


def test_a_routing_key_naming_the_key_is_made_per_message() -> None:
    messages = sink(1, "rows.{table}.{key}")._messages(batch(3))
    assert [key for _, _, key in messages] == ["rows.items.1", "rows.items.2", "rows.items.3"]
