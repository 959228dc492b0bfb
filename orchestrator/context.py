"""What one process holds open: the database pool, source pools, the broker connection, and
the stores and the use cases built on them. Opened once in the CLI, shared by the API and the
workers of that process, closed on the way out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from orchestrator.access import AccessService
from orchestrator.messaging.broker import Broker
from orchestrator.messaging.topology import Topology
from orchestrator.plugins.resources import Resources
from orchestrator.settings import Settings
from orchestrator.sources.pools import SourcePools
from orchestrator.storage.access import AccessRepository
from orchestrator.storage.database import Pool, open_pool
from orchestrator.storage.stores import Storage
from orchestrator.usecases import UseCases, build_usecases


@dataclass(frozen=True)
class Context:
    settings: Settings
    pool: Pool
    sources: SourcePools
    broker: Broker
    storage: Storage
    usecases: UseCases
    access: AccessService

    @property
    def resources(self) -> Resources:
        return self.usecases.resources


@asynccontextmanager
async def open_context(settings: Settings) -> AsyncIterator[Context]:
    pool = await open_pool(
        settings.database_url.get_secret_value(),
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        # Every transaction of the orchestrator is short; one left open this long belongs
        # to a process that stopped, and it must not outlive the lease it was working under.
        idle_in_transaction=max(1.0, settings.lease_seconds / 2),
    )
    sources = SourcePools(settings)
    broker = Broker(
        settings.amqp_url.get_secret_value(),
        Topology(settings.amqp_prefix, settings.delivery_limit),
        prefetch=settings.amqp_prefetch,
    )
    try:
        await broker.connect()
        storage = Storage.build(
            pool,
            capacity=Storage.capacity(settings.dispatch_capacity),
            cancel_inline_runs=settings.cancel_inline_runs,
        )
        usecases = build_usecases(settings, storage, sources)
        try:
            yield Context(
                settings,
                pool,
                sources,
                broker,
                storage,
                usecases,
                AccessService(settings, AccessRepository(pool)),
            )
        finally:
            # What sinks and handlers opened: their broker connections, the HTTP client.
            await usecases.resources.close()
    finally:
        await broker.close()
        await sources.close()
        await pool.close()
