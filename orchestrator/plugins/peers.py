"""Connections to destinations, shared by every run of a process and opened on first use:
one outbound HTTP client (its resolver enforces the allow-list) and one AMQP connection per
named broker.

The sink brokers get connections of their own, apart from the control plane's: a flood of
rows that makes RabbitMQ block publishers (flow control) must not also block the outbox
relay. They are plain connections, reopened on the next use when they drop: a run that was
publishing fails its attempt and is retried, so nothing needs the robust reconnect."""

from __future__ import annotations

import asyncio

import aio_pika
import structlog
from aio_pika.abc import AbstractConnection

from orchestrator.errors import Unavailable, ValidationFailed
from orchestrator.outbound.client import OutboundClient, allow_list
from orchestrator.settings import MAIN_SOURCE, Settings

log = structlog.get_logger(__name__)


def broker_url(settings: Settings, name: str, pointer: str) -> str:
    if name == MAIN_SOURCE:
        return settings.amqp_url.get_secret_value()
    secret = settings.sink_brokers.get(name)
    if secret is None:
        known = ", ".join(sorted({MAIN_SOURCE, *settings.sink_brokers}))
        raise ValidationFailed(
            f"unknown broker {name!r}",
            errors=[{"pointer": pointer, "message": f"configured brokers: {known}"}],
        )
    return secret.get_secret_value()


class Peers:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._http: OutboundClient | None = None
        self._brokers: dict[str, AbstractConnection] = {}
        self._lock = asyncio.Lock()

    def http(self) -> OutboundClient:
        if self._http is None:
            self._http = OutboundClient(allow_list(self._settings))
        return self._http

    async def broker(self, name: str) -> AbstractConnection:
        url = broker_url(self._settings, name, "/sink/options/broker")
        async with self._lock:
            connection = self._brokers.get(name)
            if connection is None or connection.is_closed:
                try:
                    connection = await aio_pika.connect(url)
                except (OSError, aio_pika.exceptions.AMQPError) as exc:
                    raise Unavailable(f"cannot connect to broker {name!r}: {exc}") from None
                self._brokers[name] = connection
            return connection

    async def close(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.close()
        brokers, self._brokers = self._brokers, {}
        for name, connection in brokers.items():
            try:
                await connection.close()
            except Exception:  # closing on the way out; a dead connection has nothing to lose
                log.debug("broker_close_failed", broker=name)
