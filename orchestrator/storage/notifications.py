"""A LISTEN on one Postgres channel, on a connection of its own, held for a process's life.

Callers that cache what Postgres holds (the API's verified keys) use it to hear of changes
made by any process. What they need to know is not only "it changed" but "I may have missed
a change": `on_change` is called for every notification and also whenever the connection is
lost, and `listening` is false until it is back, so a cache can stay off meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
import structlog

log = structlog.get_logger(__name__)

RECONNECT_SECONDS = 2.0


class ChannelListener:
    def __init__(
        self, dsn: str, channel: str, on_change: Callable[[], None], *, failure_event: str
    ) -> None:
        """`failure_event`: the log event for the first failed (re)connect in a row."""
        self._dsn = dsn
        self._channel = channel
        self._on_change = on_change
        self._failure_event = failure_event
        self._conn: asyncpg.Connection[Any] | None = None

    @property
    def listening(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    def _notified(self, *_: object) -> None:
        self._on_change()

    def _lost(self, *_: object) -> None:
        self._conn = None
        self._on_change()

    async def _connect(self) -> None:
        conn: asyncpg.Connection[Any] = await asyncpg.connect(self._dsn, timeout=5)
        try:
            await conn.add_listener(self._channel, self._notified)
            conn.add_termination_listener(self._lost)
        except BaseException:
            conn.terminate()
            raise
        # Changes made before the LISTEN took effect were not heard: count as one.
        self._on_change()
        self._conn = conn

    async def keep_listening(self) -> None:
        """Holds the connection until cancelled, reconnecting when it drops."""
        failed = False
        while True:
            if not self.listening:
                self._lost()
                try:
                    await self._connect()
                    failed = False
                except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    if not failed:
                        log.warning(self._failure_event, channel=self._channel)
                    failed = True
            await asyncio.sleep(RECONNECT_SECONDS)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None or conn.is_closed():
            return
        try:
            async with asyncio.timeout(2):
                await conn.close()
        except (Exception, asyncio.CancelledError):
            conn.terminate()
