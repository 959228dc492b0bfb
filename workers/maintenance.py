"""Periodic duties: return expired leases, re-publish forgotten dispatches, dispatch runs
whose retry fell due, hand unplanned backfills to a planner, record this worker's heartbeat
and prune the sent outbox. Any number of workers may run these at once."""

from __future__ import annotations

import os
import socket

import structlog

from orchestrator.settings import Settings
from orchestrator.storage.stores import Storage
from workers.planner import Planner

log = structlog.get_logger(__name__)


class Maintenance:
    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        planner: Planner,
        worker_id: str,
        roles: list[str],
    ) -> None:
        self._settings = settings
        self._sweeps = storage.maintenance
        self._planning = storage.planning
        self._planner = planner
        self.worker_id = worker_id
        self._roles = roles

    async def reap(self) -> None:
        reaped = await self._sweeps.reap_expired(100)
        if reaped:
            log.warning("leases_reaped", runs=reaped)
        stale = await self._sweeps.redispatch_stale(self._settings.redispatch_after_seconds, 100)
        if stale:
            log.warning("dispatch_republished", runs=stale)
        await self._sweeps.prune_outbox(3600.0)
        await self._sweeps.sweep_cancelled_runs(5000)

    async def dispatch(self) -> None:
        await self._sweeps.dispatch_due(100)

    async def plan(self) -> None:
        for backfill_id in await self._planning.candidates(10):
            self._planner.kick(backfill_id)

    async def heartbeat(self) -> None:
        s = self._settings
        await self._sweeps.worker_seen(
            self.worker_id,
            socket.gethostname(),
            os.getpid(),
            self._roles,
            s.worker_concurrency if "executor" in self._roles else None,
            # A heartbeat or two may be late (a busy loop, a database blip) without the
            # worker's slots leaving the fair shares; a dead worker's leave within three.
            3 * s.heartbeat_seconds,
        )
