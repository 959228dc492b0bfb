"""The outbox relay: publishes rows written with state changes, with publisher confirms,
and marks them sent. Rows stay until RabbitMQ confirms, so nothing is lost while it is down.
Several relays may run (one per process): SKIP LOCKED gives each its own rows."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from orchestrator import metrics
from orchestrator.domain.outbox import OutboxMessage
from orchestrator.messaging.broker import Broker
from orchestrator.storage.commands import Outbox
from orchestrator.storage.notifications import ChannelListener
from workers.loop import every

log = structlog.get_logger(__name__)


class OutboxRelay:
    def __init__(
        self,
        outbox: Outbox,
        broker: Broker,
        *,
        listen_dsn: str,
        poll_seconds: float,
        batch: int = 200,
    ) -> None:
        self._outbox = outbox
        self._broker = broker
        self._poll = poll_seconds
        self._batch = batch
        self._wake = asyncio.Event()
        # LISTEN wakes the relay within milliseconds of a commit; the poll is the fallback
        # while the listening connection is down (a lost connection wakes it too, so rows
        # committed meanwhile go out at once).
        self._listener = ChannelListener(
            listen_dsn, "backfill_outbox", self._wake.set, failure_event="outbox_listen_failed"
        )

    async def drain(self) -> int:
        """Publishes until the outbox is empty; returns how many were sent."""
        sent = 0
        while True:
            n = await self._outbox.relay(self._batch, self._publish)
            if not n:
                return sent
            sent += n
            metrics.OUTBOX_PUBLISHED.inc(n)

    async def _publish(self, messages: list[OutboxMessage]) -> None:
        await asyncio.gather(
            *(
                self._broker.publish(
                    m.routing_key,
                    m.payload,
                    message_id=str(m.message_id),
                    mandatory=not m.routing_key.startswith("event."),
                )
                for m in messages
            )
        )

    async def _step(self) -> None:
        await self.drain()

    async def run(self, stop: asyncio.Event) -> None:
        listening = asyncio.create_task(self._listener.keep_listening(), name="outbox_listener")
        try:
            await every(self._poll, stop, "outbox_relay", self._step, wake=self._wake)
        finally:
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listening
            await self._listener.close()
