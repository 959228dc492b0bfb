"""Drafts: date-range backfills kept to start later, their definition still open to change."""

from __future__ import annotations

from uuid import UUID, uuid4

from orchestrator.domain.commands import create_command
from orchestrator.domain.definitions import draft_of, spec_of
from orchestrator.domain.models import Backfill
from orchestrator.domain.specs import DraftSpec
from orchestrator.domain.values import check_draft, draft_values, new_draft_values, range_values
from orchestrator.settings import Settings
from orchestrator.usecases.checks import DataChecks
from orchestrator.usecases.ports import StoragePort


class Drafts:
    def __init__(self, settings: Settings, storage: StoragePort, checks: DataChecks) -> None:
        self.settings = settings
        self.storage = storage
        self.checks = checks

    async def create(
        self,
        target_ref: int | str | UUID,
        draft: DraftSpec,
        *,
        team_id: int,
        created_by: int | None = None,
    ) -> Backfill:
        """Stores a date-range backfill that starts later (`start`). What is given is checked
        now, so a draft that cannot start says so at once."""
        target = await self.storage.targets.get(target_ref, team_id)
        values = new_draft_values(
            draft, target, uuid4(), created_by, max_runs=self.settings.max_runs_per_backfill
        )
        backfill, _ = await self.storage.backfills.insert(values, announce_create=None)
        return backfill

    async def update(
        self, backfill_ref: int | UUID, changes: DraftSpec, *, team_id: int
    ) -> Backfill:
        """Changes the fields set in `changes`. The name may change at any time; the window,
        interval, zone and variables only while it is a draft (InvalidTransition after)."""
        current = await self.storage.backfills.get(backfill_ref, team_id)
        given = changes.model_fields_set
        if not given:
            return current
        if given == {"name"}:
            return await self.storage.backfills.update_draft(current.id, {"name": changes.name})
        check_draft(current, "re-plan")
        merged = draft_of(current).model_copy(update={f: getattr(changes, f) for f in given})
        target = await self.storage.targets.get(current.target_id, team_id)
        return await self.storage.backfills.update_draft(
            current.id, draft_values(merged, target, max_runs=self.settings.max_runs_per_backfill)
        )

    async def start(self, backfill_ref: int | UUID, *, team_id: int) -> Backfill:
        """Plans a draft like a new backfill (the same checks, the overlap check included)
        and hands it to the workers."""
        current = await self.storage.backfills.get(backfill_ref, team_id)
        check_draft(current, "start")
        draft = draft_of(current)
        target = await self.storage.targets.get(current.target_id, team_id)
        await self.checks.target_data(target)
        spec = spec_of(draft, target.id)
        values = range_values(spec, target, max_runs=self.settings.max_runs_per_backfill)
        assert current.command_id is not None
        return await self.storage.backfills.start_draft(
            current.id, values, announce_create=create_command(spec, target, current.command_id)
        )
