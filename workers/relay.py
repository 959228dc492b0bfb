"""The outbox relay: publishes rows written with state changes, with publisher confirms,
and marks them sent. Rows stay until RabbitMQ confirms, so nothing is lost while it is down.
Several relays may run (one per process): SKIP LOCKED gives each its own rows."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import structlog

from orchestrator import metrics
from orchestrator.domain.outbox import OutboxMessage
from orchestrator.messaging.broker import Broker
from orchestrator.storage.commands import Outbox
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
        self._listen_dsn = listen_dsn
        self._broker = broker
        self._poll = poll_seconds
        self._batch = batch
        self._wake = asyncio.Event()
        self._listener: asyncpg.Connection[Any] | None = None

    def _notified(self, *_: object) -> None:
        self._wake.set()

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

    async def _listen(self) -> None:
        # LISTEN wakes the relay within milliseconds of a commit; the poll is the fallback
        # while the listening connection is down. The connection is its own, not the pool's:
        # it is held for the life of the process, and closing it ends the LISTEN.
        if self._listener is not None and not self._listener.is_closed():
            return
        conn = await asyncpg.connect(self._listen_dsn, timeout=5)
        try:
            await conn.add_listener("backfill_outbox", self._notified)
        except BaseException:
            conn.terminate()
            raise
        self._listener = conn

    async def _step(self) -> None:
        try:
            await self._listen()
        except Exception:
            log.warning("outbox_listen_failed")
        await self.drain()

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await every(self._poll, stop, "outbox_relay", self._step, wake=self._wake)
        finally:
            await self._close_listener()

    async def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is None or listener.is_closed():
            return
        try:
            # A shutdown must never wait on a connection that stopped answering.
            async with asyncio.timeout(2):
                await listener.close()
        except (Exception, asyncio.CancelledError):
            listener.terminate()
