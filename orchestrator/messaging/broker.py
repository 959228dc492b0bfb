"""One robust RabbitMQ connection per process: a confirming channel to publish on and a
channel with a prefetch limit to consume from."""

from __future__ import annotations

import json
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

from orchestrator import metrics
from orchestrator.messaging.topology import REASON_HEADER, Declared, Topology

log = structlog.get_logger(__name__)

Handler = Callable[[AbstractIncomingMessage], Awaitable[None]]


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), default=str).encode()


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
        metrics.dead_lettered(self.topology, message.routing_key)
        log.warning("message_dead_lettered", reason=reason, routing_key=message.routing_key)

    async def consume(self, queue_name: str, handler: Handler) -> None:
        assert self._consume_channel is not None, "connect() first"
        queue = await self._consume_channel.get_queue(queue_name, ensure=False)
        tag = await queue.consume(handler)
        self._consumers[queue_name] = (queue, tag)

    async def stop_consuming(self) -> None:
        consumers, self._consumers = self._consumers, {}
        for queue, tag in consumers.values():
            try:
                await queue.cancel(tag)
            except Exception:  # the channel may already be gone; nothing is left to cancel
                log.debug("consumer_cancel_failed", queue=queue.name)

    def consumers_attached(self) -> bool:
        channel = self._consume_channel
        return (
            bool(self._consumers)
            and channel is not None
            and not channel.is_closed
            and self.connected()
        )

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

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
