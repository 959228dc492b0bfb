"""Publishes rows as JSON to an exchange: one message per row, or arrays of `batch_size`
rows. Messages are persistent and published with confirms and `mandatory`, so a batch
counts as delivered only once the broker has confirmed every message and routed each to at
least one queue; an unroutable message fails the run instead of vanishing.

The exchange must exist (it is checked passively, never declared): its type, durability and
bindings belong to whoever consumes it."""

from __future__ import annotations

import asyncio
import string
from datetime import UTC, datetime
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractExchange
from pamqp.commands import Basic
from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.errors import Unavailable, ValidationFailed
from orchestrator.outbound.errors import DeliveryFailed
from orchestrator.plugins.peers import broker_url
from orchestrator.plugins.resources import Resources
from orchestrator.settings import MAIN_SOURCE
from orchestrator.sinks.base import RowBatch, Sink
from orchestrator.sinks.encoding import RowEncoder, idempotency_key

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

    def _encoder(self, batch: RowBatch) -> RowEncoder:
        shape = (tuple(batch.columns), tuple(batch.column_types))
        encoder = self._encoders.get(shape)
        if encoder is None:
            encoder = RowEncoder(batch.columns, batch.column_types, batch.key_columns)
            self._encoders[shape] = encoder
        return encoder

    def _routing_key(self, batch: RowBatch, encoder: RowEncoder, row: Any) -> str:
        schema, table = _schema_table(batch.table)
        values = {"schema": schema, "table": table, "backfill_id": batch.backfill_id}
        if self._uses_key:
            values["key"] = ".".join(encoder.key_text(row))
        key = self._options.routing_key.format(**values)
        if len(key.encode()) > 255:
            raise DeliveryFailed(
                f"routing key {key[:80]!r}… is longer than AMQP's 255 bytes", retryable=False
            )
        return key

    def _messages(self, batch: RowBatch) -> list[tuple[bytes, Basic.Properties, str]]:
        """(body, properties, routing key) per message. The properties are pamqp's own,
        built here once per message: aio-pika's Message would build them again on every
        publish, behind an attribute lock and two single-dispatch conversions, which cost
        more than the rest of a message together."""
        encoder = self._encoder(batch)
        size = self._options.batch_size
        now = datetime.now(UTC)
        common: dict[str, Any] = {
            "x-backfill-id": batch.backfill_id,
            "x-backfill-run-id": batch.run_id,
            "x-backfill-table": batch.table,
            "x-backfill-action": "read",
            "x-backfill-key-columns": list(batch.key_columns),
        }
        backfill_id, table = batch.backfill_id, batch.table
        out: list[tuple[bytes, Basic.Properties, str]] = []
        routing_key: str | None = None  # the same for every message unless it names the key
        rows_all = batch.rows
        for start in range(0, len(rows_all), size):
            rows = rows_all[start : start + size]
            headers = common.copy()
            if size == 1:
                first = encoder.key(rows[0])
                body = encoder.row(rows[0])
                headers["x-backfill-key"] = first
                message_id = idempotency_key(backfill_id, table, first)
            else:
                first, last = encoder.key(rows[0]), encoder.key(rows[-1])
                body = "[" + ",".join([encoder.row(r) for r in rows]) + "]"
                headers["x-backfill-first-key"] = first
                headers["x-backfill-last-key"] = last
                message_id = idempotency_key(backfill_id, table, first, last)
            headers["x-backfill-rows"] = len(rows)
            # Field for field what aio_pika.Message(...).properties gave before (priority 0
            # included), so consumers see the same messages.
            properties = Basic.Properties(
                content_type="application/json",
                delivery_mode=_PERSISTENT,
                priority=0,
                message_id=message_id,
                headers=headers,
                timestamp=now,
                message_type="backfill.read",
                app_id=APP_ID,
            )
            if routing_key is None or self._uses_key:
                routing_key = self._routing_key(batch, encoder, rows[0])
            out.append((body.encode(), properties, routing_key))
        return out

    async def deliver(self, batch: RowBatch) -> int:
        if not batch.rows:
            return 0
        messages = self._messages(batch)
        if self._channel.is_closed:
            raise DeliveryFailed(
                f"the channel to exchange {self._options.exchange!r} is closed", retryable=True
            )
        # aiormq's channel directly: aio-pika's Exchange.publish adds only checks made once
        # above. Published together and confirmed together: the broker pipelines the
        # confirms, so a batch costs about one round trip instead of one per message.
        channel = await self._channel.get_underlay_channel()
        publish = channel.basic_publish
        exchange = self._options.exchange
        results = await asyncio.gather(
            *[
                publish(
                    body,
                    exchange=exchange,
                    routing_key=key,
                    properties=properties,
                    mandatory=True,
                )
                for body, properties, key in messages
            ],
            return_exceptions=True,
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise DeliveryFailed(
                f"{len(failed)} of {len(messages)} messages to exchange "
                f"{self._options.exchange!r} were not confirmed; first: {_describe(failed[0])}",
                retryable=not isinstance(failed[0], aiormq.exceptions.PublishError),
            )
        return len(batch.rows)

    async def close(self) -> None:
        if not self._channel.is_closed:
            try:
                await self._channel.close()
            except Exception:  # the connection went away; the channel went with it
                return


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
