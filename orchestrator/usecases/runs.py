"""A backfill's transfer runs, as the API lists them."""

from __future__ import annotations

from uuid import UUID

from orchestrator.domain.models import TransferRun
from orchestrator.domain.states import RunState
from orchestrator.usecases.paging import Page, page_of
from orchestrator.usecases.ports import StoragePort


class Runs:
    def __init__(self, storage: StoragePort) -> None:
        self.storage = storage

    async def page(
        self,
        backfill_id: int | UUID,
        *,
        team_id: int,
        states: list[RunState] | None,
        after: int | None,
        limit: int,
    ) -> Page[TransferRun]:
        """In planning order (seq ascending); `after` is the last seq of the previous page."""
        bid = await self.storage.backfills.id_of(backfill_id, team_id)  # 404, not an empty page
        items = await self.storage.runs.page(
            bid, [s.value for s in states] if states else None, after, limit + 1
        )
        return page_of(items, limit, lambda r: r.seq)
