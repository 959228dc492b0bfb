"""One robust RabbitMQ connection per process: a confirming channel to publish on and a
channel with a prefetch limit to consume from."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import structlog
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
)

from orchestrator import jsoncodec, metrics
from orchestrator.messaging.topology import REASON_HEADER, Declared, Topology

log = structlog.get_logger(__name__)

Handler = Callable[[AbstractIncomingMessage], Awaitable[None]]

# The AMQP `app_id` of everything the orchestrator publishes: a consumer tells the API's own
# commands, coming back from the outbox, from a producer's.
APP_ID = "backfill-orchestrator"


def published_by_us(message: AbstractIncomingMessage) -> bool:
    return message.app_id == APP_ID


def encode(payload: dict[str, Any]) -> bytes:
    return jsoncodec.dumps(payload)


class Broker:
    def __init__(self, url: str, topology: Topology, prefetch: int) -> None:
        self._url = url
        self.topology = topology
        self._prefetch = prefetch
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractRobustChannel | None = None
        self._consume_channel: AbstractRobustChannel | None = None
        self._declared: Declared | None = None
        self._consumers: dict[str, tuple[AbstractQueue, str]] = {}
        self._handlers: dict[str, Handler] = {}

    async def connect(self) -> None:
        self._connection = await aio_pika.connect_robust(self._url)
        publish = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        assert isinstance(publish, AbstractRobustChannel)
        self._publish_channel = publish
        self._declared = await self.topology.declare(publish)
        consume = await self._connection.channel()
        assert isinstance(consume, AbstractRobustChannel)
        await consume.set_qos(prefetch_count=self._prefetch)
        self._consume_channel = consume

    @property
    def declared(self) -> Declared:
        assert self._declared is not None, "connect() first"
        return self._declared

    async def publish(
        self,
        routing_key: str,
        payload: dict[str, Any],
        *,
        message_id: str | None = None,
        mandatory: bool = True,
    ) -> None:
        """Returns once the broker confirmed the message. `mandatory` makes an unroutable
        message an error instead of a silent drop (events are not mandatory: nobody may be
        listening)."""
        message = aio_pika.Message(
            encode(payload),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message_id,
            type=str(payload.get("type", routing_key)),
            app_id=APP_ID,
        )
        await self.declared.exchange.publish(message, routing_key, mandatory=mandatory)

    async def dead_letter(self, message: AbstractIncomingMessage, reason: str) -> None:
        """Moves a message we refuse to the dead-letter queue with its reason, keeping the
        original body and headers, so an operator can read why and replay it."""
        headers = dict(message.headers or {})
        headers[REASON_HEADER] = reason[:1000]
        headers["x-original-routing-key"] = message.routing_key or ""
        dead = aio_pika.Message(
            message.body,
            headers=headers,
            content_type=message.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message.message_id,
            type=message.type,
        )
        await self.declared.dead_exchange.publish(dead, routing_key=message.routing_key or "")
        # The routing key tells the queue: run.dispatch is bound to the runs queue, command.*
        # to the commands queue, and nothing else is consumed.
        runs = message.routing_key == "run.dispatch"
        metrics.dead_lettered(self.topology.runs if runs else self.topology.commands)
        log.warning("message_dead_lettered", reason=reason, routing_key=message.routing_key)

    async def consume(self, queue_name: str, handler: Handler) -> None:
        assert self._consume_channel is not None, "connect() first"
        self._handlers[queue_name] = handler
        queue = await self._consume_channel.get_queue(queue_name, ensure=False)
        tag = await queue.consume(handler)
        self._consumers[queue_name] = (queue, tag)

    async def stop_consuming(self) -> None:
        self._handlers.clear()
        consumers, self._consumers = self._consumers, {}
        for queue, tag in consumers.values():
            try:
                await queue.cancel(tag)
            except Exception:  # the channel may already be gone; nothing is left to cancel
                log.debug("consumer_cancel_failed", queue=queue.name)

    async def _live_tags(self) -> set[str] | None:
        """The consumer tags the broker currently delivers to on our consuming channel, or
        None while the connection or the channel is down."""
        channel = self._consume_channel
        if channel is None or channel.is_closed or not self.connected():
            return None
        try:
            underlay = await channel.get_underlay_channel()
        except Exception:  # reconnecting: the robust channel has no live channel yet
            return None
        # aiormq's channel keeps the tags the broker delivers to (a broker-side cancel
        # removes one); the abstract type does not declare the attribute.
        return set(getattr(underlay, "consumers", {}))

    async def consumers_attached(self) -> bool:
        """Every queue we consume has its consumer on the live channel."""
        tags = await self._live_tags()
        return (
            tags is not None
            and bool(self._consumers)
            and all(tag in tags for _, tag in self._consumers.values())
        )

    async def ensure_consumers(self) -> list[str]:
        """Re-attaches any consumer the broker dropped while the connection stayed up (a
        cancel from the broker, a queue deleted and declared again): aio-pika's robust
        connection restores consumers after a reconnect, not after those. Returns the
        queues it re-attached. Does nothing while disconnected: the reconnect restores."""
        tags = await self._live_tags()
        if tags is None:
            return []
        missing = [n for n in self._handlers if self._consumers[n][1] not in tags]
        if not missing:
            return []
        # The queue itself may be gone (deleted by hand, lost with a node): declaring the
        # topology again is idempotent and brings it and its bindings back.
        assert self._publish_channel is not None
        self._declared = await self.topology.declare(self._publish_channel)
        rebuilt = []
        for name in missing:
            handler = self._handlers[name]
            queue, tag = self._consumers[name]
            try:
                # Forget the dead tag, or the next reconnect would restore it beside the new.
                await queue.cancel(tag)
            except Exception:
                log.debug("consumer_cancel_failed", queue=name)
            new_tag = await queue.consume(handler)
            self._consumers[name] = (queue, new_tag)
            rebuilt.append(name)
            log.warning("consumer_reattached", queue=name)
        return rebuilt

    def connected(self) -> bool:
        return (
            self._connection is not None
            and not self._connection.is_closed
            and bool(
                getattr(self._connection, "connected", None) and self._connection.connected.is_set()
            )
        )

    async def queue_depths(self) -> dict[str, int]:
        # A passive declare through aio-pika's robust channel answers from the queue object
        # cached at start-up; the underlying channel asks the broker every time.
        assert self._publish_channel is not None
        channel = await self._publish_channel.get_underlay_channel()
        depths = {}
        for name in (self.topology.commands, self.topology.runs, self.topology.dead):
            result = await channel.queue_declare(name, passive=True)
            depths[name] = result.message_count or 0
        return depths

    async def queue_stats(self) -> list[tuple[str, str, int, int]]:
        """(role, queue, messages ready, consumers) for the commands, runs and dead queues,
        asked of the broker now (see queue_depths)."""
        assert self._publish_channel is not None
        channel = await self._publish_channel.get_underlay_channel()
        stats = []
        for role, name in (
            ("commands", self.topology.commands),
            ("runs", self.topology.runs),
            ("dead", self.topology.dead),
        ):
            result = await channel.queue_declare(name, passive=True)
            stats.append((role, name, result.message_count or 0, result.consumer_count or 0))
        return stats

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
