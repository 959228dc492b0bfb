"""Publishes rows as JSON to an exchange: one message per row, or arrays of `batch_size`
rows. Messages are persistent and published with confirms and `mandatory`, so a batch
counts as delivered only once the broker has confirmed every message and routed each to at
least one queue; an unroutable message fails the run instead of vanishing.

A table's rows reach it as key ranges when Postgres can render every column the way
encoding.py does (rabbitmq_range): the bodies come from the source as finished JSON text and
no row is decoded in Python. Other tables' rows are read and encoded in Python, as before.

The exchange must exist (it is checked passively, never declared): its type, durability and
bindings belong to whoever consumes it."""

from __future__ import annotations

import string
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import aio_pika
import aiormq
import orjson
from aio_pika.abc import AbstractChannel, AbstractExchange
from pamqp.commands import Basic
from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.errors import Unavailable, ValidationFailed
from orchestrator.outbound.errors import DeliveryFailed
from orchestrator.plugins.peers import broker_url
from orchestrator.plugins.resources import Resources
from orchestrator.settings import MAIN_SOURCE, Settings
from orchestrator.sinks.base import RowBatch, Sink
from orchestrator.sinks.encoding import RowEncoder, ascii_json, idempotency_key
from orchestrator.sinks.rabbitmq_publish import Message, publish_confirmed
from orchestrator.sinks.rabbitmq_range import MessageQuery, message_query
from orchestrator.sinks.ranges import KeyRange

POINTER = "/sink/options"
PLACEHOLDERS = frozenset({"schema", "table", "backfill_id", "key"})
APP_ID = "backfill-orchestrator"
_PERSISTENT = int(aio_pika.DeliveryMode.PERSISTENT)


def template_fields(template: str) -> list[str]:
    """The placeholders of a routing-key template; ValueError if it is not a plain one (no
    attribute access, indexing, conversions or format specs)."""
    fields: list[str] = []
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            known = ", ".join("{" + p + "}" for p in sorted(PLACEHOLDERS))
            raise ValueError(f"unknown placeholder {{{name}}}; use {known}")
        fields.append(name)
    return fields


class RabbitmqOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    broker: str = Field(
        default=MAIN_SOURCE,
        description='Named broker: "main" is BACKFILL_AMQP_URL, others BACKFILL_SINK_BROKERS',
    )
    exchange: str = Field(min_length=1, max_length=255, description="An existing exchange")
    routing_key: str = Field(
        default="{schema}.{table}",
        max_length=255,
        description="Template: {schema}, {table}, {backfill_id}; {key} with batch_size 1",
    )
    batch_size: int = Field(
        default=1, ge=1, le=10_000, description="1: a message per row; N: arrays of N rows"
    )

    @model_validator(mode="after")
    def _template(self) -> RabbitmqOptions:
        fields = template_fields(self.routing_key)
        if "key" in fields and self.batch_size != 1:
            raise ValueError("{key} in routing_key needs batch_size 1 (a batch has many keys)")
        return self


def _schema_table(table: str) -> tuple[str, str]:
    schema, _, name = table.rpartition(".")
    return schema or "public", name


class _RabbitmqSink:
    def __init__(
        self, options: RabbitmqOptions, channel: AbstractChannel, exchange: AbstractExchange
    ) -> None:
        self._options = options
        self._channel = channel
        self._exchange = exchange
        self._uses_key = "key" in template_fields(options.routing_key)
        self._encoders: dict[tuple[tuple[str, ...], tuple[str, ...]], RowEncoder] = {}
        self._queries: dict[tuple[Any, ...], MessageQuery | None] = {}

    def _encoder(self, batch: RowBatch) -> RowEncoder:
        shape = (tuple(batch.columns), tuple(batch.column_types))
        encoder = self._encoders.get(shape)
        if encoder is None:
            encoder = RowEncoder(batch.columns, batch.column_types, batch.key_columns)
            self._encoders[shape] = encoder
        return encoder

    def _routing_key(self, table: str, backfill_id: int, key: list[str] | None) -> str:
        schema, name = _schema_table(table)
        values = {"schema": schema, "table": name, "backfill_id": backfill_id}
        if key is not None:
            values["key"] = ".".join(key)
        routing_key = self._options.routing_key.format(**values)
        if len(routing_key.encode()) > 255:
            raise DeliveryFailed(
                f"routing key {routing_key[:80]!r}… is longer than AMQP's 255 bytes",
                retryable=False,
            )
        return routing_key

    def _messages(self, batch: RowBatch) -> list[Message]:
        """(body, properties, routing key) per message, the rows encoded in Python."""
        encoder = self._encoder(batch)
        size = self._options.batch_size
        properties = _Properties(batch.backfill_id, batch.run_id, batch.table, batch.key_columns)
        out: list[Message] = []
        routing_key: str | None = None  # the same for every message unless it names the key
        rows_all = batch.rows
        for start in range(0, len(rows_all), size):
            rows = rows_all[start : start + size]
            if size == 1:
                body = encoder.row(rows[0])
                props = properties.row(encoder.key(rows[0]))
            else:
                body = "[" + ",".join([encoder.row(r) for r in rows]) + "]"
                props = properties.rows(encoder.key(rows[0]), encoder.key(rows[-1]), len(rows))
            if routing_key is None or self._uses_key:
                key = encoder.key_text(rows[0]) if self._uses_key else None
                routing_key = self._routing_key(batch.table, batch.backfill_id, key)
            out.append((body.encode(), props, routing_key))
        return out

    async def deliver(self, batch: RowBatch) -> int:
        if not batch.rows:
            return 0
        await self._publish(self._messages(batch))
        return len(batch.rows)

    async def deliver_range(self, page: KeyRange) -> tuple[int, int] | None:
        """Publishes the range's rows as Postgres renders them to JSON (rabbitmq_range): no
        row is decoded in Python. None when the table has a column type Postgres renders
        differently from encoding.py; the executor then reads rows instead."""
        shape = (
            page.keyset.table_sql,
            tuple(page.keyset.key_columns),
            tuple(page.columns),
            tuple(page.column_types.get(c, "") for c in page.columns),
            page.lower is not None,
        )
        if shape not in self._queries:
            self._queries[shape] = message_query(page, self._options.batch_size)
        query = self._queries[shape]
        if query is None:
            return None
        async with page.pool.acquire() as conn:
            records = await conn.fetch(query.sql, *(page.lower or []), *page.upper)
        if not records:
            return 0, 0
        if self._options.batch_size == 1:
            rows = len(records)
            await self._publish(self._row_messages(page, records))
        else:
            rows = sum(r[3] for r in records)
            await self._publish(self._array_messages(page, records))
        return rows, rows

    def _row_messages(self, page: KeyRange, records: list[Any]) -> Iterator[Message]:
        """Messages of (key, body) records, made as the publisher takes them."""
        properties = _page_properties(page)
        routing_key = (
            "" if self._uses_key else self._routing_key(page.table, page.backfill_id, None)
        )
        for key, body in records:
            if self._uses_key:
                routing_key = self._routing_key(page.table, page.backfill_id, _key_text(key))
            yield body.encode(), properties.row(ascii_json(key)), routing_key

    def _array_messages(self, page: KeyRange, records: list[Any]) -> Iterator[Message]:
        """Messages of (first key, last key, body, rows) records."""
        properties = _page_properties(page)
        routing_key = self._routing_key(page.table, page.backfill_id, None)
        for first, last, body, n in records:
            yield (
                body.encode(),
                properties.rows(ascii_json(first), ascii_json(last), n),
                routing_key,
            )

    async def _publish(self, messages: Iterable[Message]) -> None:
        if self._channel.is_closed:
            raise DeliveryFailed(
                f"the channel to exchange {self._options.exchange!r} is closed", retryable=True
            )
        # aiormq's channel directly: aio-pika's Exchange.publish adds only checks made once
        # here, and rabbitmq_publish frames a whole window of messages as one write.
        channel = await self._channel.get_underlay_channel()
        assert isinstance(channel, aiormq.Channel)
        sent, failed = await publish_confirmed(channel, self._options.exchange, messages)
        if failed:
            raise DeliveryFailed(
                f"{len(failed)} of {sent} messages to exchange "
                f"{self._options.exchange!r} were not confirmed; first: {_describe(failed[0])}",
                retryable=not isinstance(failed[0], aiormq.exceptions.PublishError),
            )

    async def close(self) -> None:
        if not self._channel.is_closed:
            try:
                await self._channel.close()
            except Exception:  # the connection went away; the channel went with it
                return


class _Properties:
    """A message's AMQP properties, pamqp's own, built here once per message: aio-pika's
    Message would build them again on every publish, behind an attribute lock and two
    single-dispatch conversions, which cost more than the rest of a message together. Field
    for field what aio_pika.Message(...).properties gave before (priority 0 included), so
    consumers see the same messages."""

    def __init__(
        self, backfill_id: int, run_id: int, table: str, key_columns: Sequence[str]
    ) -> None:
        self._backfill_id = backfill_id
        self._table = table
        self._common: dict[str, Any] = {
            "x-backfill-id": backfill_id,
            "x-backfill-run-id": run_id,
            "x-backfill-table": table,
            "x-backfill-action": "read",
            "x-backfill-key-columns": list(key_columns),
        }
        self._now = datetime.now(UTC)

    def _make(self, headers: dict[str, Any], message_id: str) -> Basic.Properties:
        return Basic.Properties(
            content_type="application/json",
            delivery_mode=_PERSISTENT,
            priority=0,
            message_id=message_id,
            headers=headers,
            timestamp=self._now,
            message_type="backfill.read",
            app_id=APP_ID,
        )

    def row(self, key: str) -> Basic.Properties:
        headers = self._common.copy()
        headers["x-backfill-key"] = key
        headers["x-backfill-rows"] = 1
        return self._make(headers, idempotency_key(self._backfill_id, self._table, key))

    def rows(self, first: str, last: str, count: int) -> Basic.Properties:
        headers = self._common.copy()
        headers["x-backfill-first-key"] = first
        headers["x-backfill-last-key"] = last
        headers["x-backfill-rows"] = count
        message_id = idempotency_key(self._backfill_id, self._table, first, last)
        return self._make(headers, message_id)


def _page_properties(page: KeyRange) -> _Properties:
    return _Properties(page.backfill_id, page.run_id, page.table, page.keyset.key_columns)


def _key_text(key: str) -> list[str]:
    """A key's values as plain text for a routing key, from its JSON array: strings unquoted,
    as RowEncoder.key_text gives them."""
    return [v if isinstance(v, str) else orjson.dumps(v).decode() for v in orjson.loads(key)]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiormq.exceptions.PublishError):
        frame = exc.frame
        return (
            f"returned {getattr(frame, 'reply_code', '?')} {getattr(frame, 'reply_text', '')} "
            f"for routing key {getattr(frame, 'routing_key', '?')!r} (no queue is bound for it)"
        )
    return f"{type(exc).__name__}: {exc}"


class RabbitmqSinkType:
    name = "rabbitmq"
    options_model: type[BaseModel] = RabbitmqOptions

    async def validate(self, options: BaseModel, resources: Resources) -> None:
        assert isinstance(options, RabbitmqOptions)
        _refuse_orchestrator_exchange(options, resources.settings)
        url = broker_url(resources.settings, options.broker, f"{POINTER}/broker")
        # A connection of its own: a failed passive declare closes its channel, and that
        # must not disturb channels that runs are publishing on.
        try:
            connection = await aio_pika.connect(url, timeout=10)
        except (OSError, aiormq.exceptions.AMQPError, TimeoutError) as exc:
            raise Unavailable(f"cannot connect to broker {options.broker!r}: {exc}") from None
        try:
            channel = await connection.channel()
            await _existing_exchange(channel, options)
        finally:
            await connection.close()

    async def open(self, options: BaseModel, resources: Resources) -> Sink:
        assert isinstance(options, RabbitmqOptions)
        try:
            _refuse_orchestrator_exchange(options, resources.settings)
        except ValidationFailed as exc:
            # A target stored before the refusal existed: no retry makes it deliverable.
            raise DeliveryFailed(exc.detail, retryable=False) from None
        connection = await resources.peers.broker(options.broker)
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        try:
            exchange = await _existing_exchange(channel, options)
        except ValidationFailed as exc:
            # Deleted since the target was checked: repeating the run will not bring it back.
            raise DeliveryFailed(exc.detail, retryable=False) from None
        except BaseException:
            if not channel.is_closed:
                await channel.close()
            raise
        return _RabbitmqSink(options, channel, exchange)


def _refuse_orchestrator_exchange(options: RabbitmqOptions, settings: Settings) -> None:
    """On the orchestrator's own broker, a sink may not publish where the orchestrator
    listens: its exchanges (`<prefix>`, `<prefix>.*`) route `command.*` to the commands queue,
    and the default exchange (`amq.default`) routes to any queue by name. A team's rows there
    would be commands naming any team, checked against that team's grants: a team key would
    be worth the broker's credentials (docs/security.md)."""
    if options.broker != MAIN_SOURCE:
        return
    prefix = settings.amqp_prefix
    name = options.exchange
    if name == "amq.default" or name == prefix or name.startswith(prefix + "."):
        raise ValidationFailed(
            f"exchange {name!r} is the orchestrator's own on broker {options.broker!r}",
            errors=[
                {
                    "pointer": f"{POINTER}/exchange",
                    "message": "publish to an exchange of your own, not one the orchestrator "
                    "consumes from",
                }
            ],
        )


async def _existing_exchange(
    channel: AbstractChannel, options: RabbitmqOptions
) -> AbstractExchange:
    try:
        return await channel.get_exchange(options.exchange, ensure=True)
    except aiormq.exceptions.ChannelNotFoundEntity:
        raise ValidationFailed(
            f"exchange {options.exchange!r} does not exist on broker {options.broker!r}",
            errors=[
                {
                    "pointer": f"{POINTER}/exchange",
                    "message": "declare it (with its bindings) before creating the target",
                }
            ],
        ) from None
