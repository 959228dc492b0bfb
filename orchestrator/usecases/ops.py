"""What operators read: the system's overview, backfills' progress, the metrics' counters."""

from __future__ import annotations

from typing import Any

from orchestrator import metrics
from orchestrator.domain.models import Backfill
from orchestrator.domain.progress import Progress
from orchestrator.settings import Settings
from orchestrator.usecases.ports import StoragePort


class Ops:
    def __init__(self, settings: Settings, storage: StoragePort) -> None:
        self.settings = settings
        self.storage = storage

    async def overview(self) -> dict[str, Any]:
        """Backfills by state, runs by state, oldest pending run, workers seen (alive, stale or
        stopped), progress of the active backfills and the system's throughput."""
        # Three missed heartbeats: one late beat under load is not yet a dead worker.
        seen = await self.storage.maintenance.overview(
            stale_after_seconds=3 * self.settings.heartbeat_seconds
        )
        body = seen.as_body()
        body.update(await self.storage.progress.overview())
        return body

    async def progress(self, backfills: list[Backfill]) -> dict[int, Progress]:
        """Each backfill's progress, by id (one query for all of them)."""
        return await self.storage.progress.progress(backfills)

    async def active_backfill_progress(self) -> list[dict[str, Any]]:
        """The counters of the active backfills, for the per-backfill metrics."""
        return await self.storage.maintenance.active_backfill_progress(
            metrics.ACTIVE_BACKFILLS_SHOWN
        )
