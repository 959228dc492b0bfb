"""The rabbitmq sink's range path: rows rendered to JSON by Postgres must reach consumers as
exactly the bytes the Python path wrote (bodies, headers, message ids, routing keys), on a
real table with every common column type; a type Postgres renders differently keeps the
Python path; and the windowed publisher keeps aiormq's confirms and returns intact."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import aiormq
import pytest
from aio_pika.abc import AbstractIncomingMessage

from orchestrator.context import Context
from orchestrator.sinks.base import RowBatch
from orchestrator.sinks.encoding import RowEncoder
from orchestrator.sinks.json_sql import value_json
from orchestrator.sinks.rabbitmq import RabbitmqOptions, RabbitmqSinkType, _Properties
from orchestrator.sinks.rabbitmq_publish import publish_confirmed
from orchestrator.sinks.rabbitmq_range import message_query
from orchestrator.sinks.ranges import KeyRange
from orchestrator.sources.intervals import use_exact_intervals
from orchestrator.sources.tables import KeysetSql, column_types, table_sql
from tests.conftest import AMQP_URL
from tests.integration.test_row_encoding import COLUMNS, ROWS

pytestmark = pytest.mark.integration

# Beyond test_row_encoding's rows: years before 1000, fractions with trailing zeros, control
# characters and line separators, a bytea longer than a base64 line, tiny numerics.
MORE_ROWS = """
INSERT INTO everything (id, ts, tstz, d, txt, vc, ch, num, b, texts, jb) VALUES
  (4, '0099-01-01 00:00:00', '2024-06-01 12:00:00.5+00', '0099-02-03',
   E'ctl \\x01\\x1f \\u2028 / \\\\ "', 'ü', 'a', 100, decode(repeat('ab', 100), 'hex'),
   '{{"a\\\\b"}}', '{"k": [1, 2.50, "é"]}'),
  (5, '2024-01-01 00:00:00.000001', '1999-12-31 23:59:59.999999-08', '2000-01-01', 'x', NULL,
   NULL, 1e-20, '\\x00', NULL, 'null')
"""

COVERED = [
    "id", "i2", "i4", "i8", "num", "num_scaled", "flag", "txt", "vc", "ch", "ts", "tstz",
    "d", "u", "j", "jb", "b", "ints", "texts", "grid",
]  # fmt: skip


async def everything(db: Any) -> None:
    await db.execute("CREATE TYPE mood AS ENUM ('happy', 'sad')")
    await db.execute(f"CREATE TABLE everything ({COLUMNS})")
    await db.execute("INSERT INTO everything VALUES " + ", ".join(ROWS))
    await db.execute(MORE_ROWS)


async def python_rows(db: Any, table: str) -> tuple[list[Any], list[str], list[str]]:
    """The rows as the executor's row path reads them: values, column names, type names."""
    await use_exact_intervals(db)
    statement = await db.prepare(f"SELECT * FROM {table} ORDER BY id")
    attributes = statement.get_attributes()
    return (
        [tuple(r.values()) for r in await statement.fetch()],
        [a.name for a in attributes],
        [a.type.name for a in attributes],
    )


async def test_postgres_renders_each_covered_type_as_python_does(db: Any) -> None:
    await everything(db)
    # A session time zone other than UTC must not show through.
    await db.execute("SET TIME ZONE 'America/New_York'")
    rows, names, type_names = await python_rows(db, "everything")
    encoder = RowEncoder(names, type_names, ["id"])
    declared = await column_types(db, "public.everything")
    covered = []
    for i, (name, declared_type) in enumerate(declared.items()):
        expression = value_json(f"t.{name}", declared_type)
        if expression is None:
            continue
        covered.append(name)
        rendered = await db.fetch(
            f"SELECT COALESCE({expression}, 'null') FROM everything t ORDER BY id"
        )
        assert [encoder._fields[i][1](row[i]) for row in rows] == [r[0] for r in rendered], name
    assert covered == COVERED


@pytest.fixture
async def queue(ctx: Context) -> AsyncIterator[tuple[str, asyncio.Queue[AbstractIncomingMessage]]]:
    connection = await aio_pika.connect(AMQP_URL)
    channel = await connection.channel()
    name = f"bftest-range-{uuid.uuid4().hex[:10]}"
    exchange = await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC)
    declared = await channel.declare_queue(name, exclusive=True)
    await declared.bind(exchange, "#")
    received: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()

    async def receive(message: AbstractIncomingMessage) -> None:
        await message.ack()
        await received.put(message)

    await declared.consume(receive)
    yield name, received
    await exchange.delete()
    await connection.close()
    await ctx.resources.close()


async def take(received: asyncio.Queue[AbstractIncomingMessage], n: int) -> list[Any]:
    """n messages as (body, routing key, properties but the send time)."""
    out = []
    for _ in range(n):
        m = await asyncio.wait_for(received.get(), 10)
        out.append(
            (
                m.body,
                m.routing_key,
                m.headers,
                m.message_id,
                m.content_type,
                m.delivery_mode,
                m.priority,
                m.type,
                m.app_id,
            )
        )
    assert received.empty()
    return out


@pytest.mark.parametrize(
    ("batch_size", "routing_key"), [(1, "{schema}.{table}"), (1, "{table}.{key}"), (2, "{table}")]
)
async def test_a_range_publishes_what_the_row_path_published(
    ctx: Context,
    db: Any,
    queue: tuple[str, asyncio.Queue[AbstractIncomingMessage]],
    batch_size: int,
    routing_key: str,
) -> None:
    await everything(db)
    columns = ", ".join(COVERED)
    await db.execute(f"CREATE TABLE covered AS SELECT {columns} FROM everything")
    await db.execute("ALTER TABLE covered ADD PRIMARY KEY (id)")
    rows, names, type_names = await python_rows(db, "covered")
    exchange, received = queue
    options = RabbitmqOptions(exchange=exchange, batch_size=batch_size, routing_key=routing_key)
    sink: Any = await RabbitmqSinkType().open(options, ctx.resources)
    try:
        await sink.deliver(RowBatch("public.covered", names, rows, ["id"], 9, 4, type_names))
        before = await take(received, -(-len(rows) // batch_size))
        keyset = KeysetSql.build(table_sql("public.covered"), ["id"], ["bigint"])
        types = await column_types(db, keyset.table_sql)
        page = KeyRange(
            "main", await ctx.sources.get("main"), keyset, list(types), types, None, ["5"], 9, 4,
            table="public.covered",
        )  # fmt: skip
        assert await sink.deliver_range(page) == (len(rows), len(rows))
        assert await take(received, len(before)) == before
        # A page sent again (a crash before its checkpoint) repeats the same message ids,
        # which is what lets a consumer drop the repeats.
        assert await sink.deliver_range(page) == (len(rows), len(rows))
        assert await take(received, len(before)) == before
    finally:
        await sink.close()


async def test_a_type_postgres_renders_differently_keeps_the_python_path(
    ctx: Context, db: Any
) -> None:
    await everything(db)
    keyset = KeysetSql.build(table_sql("public.everything"), ["id"], ["bigint"])
    types = await column_types(db, keyset.table_sql)
    pool = await ctx.sources.get("main")
    page = KeyRange(
        "main", pool, keyset, list(types), types, None, ["5"], 1, 1, "public.everything"
    )
    assert message_query(page, 1) is None  # float, interval, inet, … among the columns
    only = {c: types[c] for c in COVERED}
    assert message_query(
        KeyRange("main", pool, keyset, list(only), only, None, ["5"], 1, 1, "public.everything"), 1
    )
    sink: Any = await RabbitmqSinkType().open(RabbitmqOptions(exchange="amq.topic"), ctx.resources)
    try:
        assert await sink.deliver_range(page) is None
    finally:
        await sink.close()
    await ctx.resources.close()


async def test_windows_keep_aiormqs_confirms_returns_and_delivery_tags(ctx: Context) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    try:
        setup = await connection.channel()
        name = f"bftest-window-{uuid.uuid4().hex[:10]}"
        exchange = await setup.declare_exchange(name, aio_pika.ExchangeType.DIRECT)
        queue = await setup.declare_queue(name, exclusive=True)
        await queue.bind(exchange, "routed")
        publisher = await connection.channel(publisher_confirms=True, on_return_raises=True)
        channel = await publisher.get_underlay_channel()
        assert isinstance(channel, aiormq.Channel)
        props = _Properties(1, 1, "public.t", ["id"])
        big = b"x" * (channel.max_content_size * 2 + 5)  # split over three body frames
        messages = [
            (b"%d" % n if n != 1500 else big, props.row(f"[{n}]"), "routed") for n in range(2500)
        ]
        assert await publish_confirmed(channel, name, messages) == (2500, [])
        # Unroutable: each message of the window comes back, and the channel goes on.
        unroutable = [(b"u", props.row(f"[u{n}]"), "nowhere") for n in range(3)]
        sent, failed = await publish_confirmed(channel, name, unroutable)
        assert sent == 3
        assert len(failed) == 3
        assert all(isinstance(f, aiormq.exceptions.PublishError) for f in failed)
        # aiormq's own publish after ours: its delivery tags still match the broker's.
        await exchange.publish(aio_pika.Message(b"last", message_id="last"), "routed")
        assert await publisher.get_underlay_channel() is channel
        assert not channel.confirmations
        assert not channel.message_id_delivery_tag
        bodies = []
        async with queue.iterator() as messages_in:
            async for message in messages_in:
                await message.ack()
                bodies.append(message.body)
                if len(bodies) == 2501:
                    break
        assert bodies[1500] == big
        assert bodies == [m[0] for m in messages] + [b"last"]
    finally:
        await connection.close()
