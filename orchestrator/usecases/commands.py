"""Commands as they arrive from the queue (and, for a create, from the API too): each is
applied once, keyed by its command id."""

from __future__ import annotations

from uuid import UUID

from orchestrator.domain.commands import create_command
from orchestrator.domain.models import Backfill, TargetKind
from orchestrator.domain.specs import BackfillSpec
from orchestrator.domain.values import backfill_values, field_error, range_values
from orchestrator.errors import NotFound
from orchestrator.settings import Settings
from orchestrator.usecases.checks import DataChecks
from orchestrator.usecases.ports import StoragePort


class Commands:
    def __init__(self, settings: Settings, storage: StoragePort, checks: DataChecks) -> None:
        self.settings = settings
        self.storage = storage
        self.checks = checks

    async def applied(self, command_id: UUID) -> bool:
        """Whether this command was applied before (a cancel, pause or resume)."""
        return await self.storage.commands.applied(command_id)

    async def apply_create(
        self,
        spec: BackfillSpec,
        *,
        team_id: int,
        command_id: UUID,
        announce: bool,
        created_by: int | None = None,
    ) -> tuple[Backfill, bool]:
        """Creates the backfill, saying whether this call made it (False: the command was
        applied before). `announce=False` is for a command that already arrived through the
        queue: no `command.create` needs to go out for it."""
        # Checked before validating, so a repeated command costs one query, not the source
        # introspection; the insert checks again inside its transaction for races.
        existing = await self.storage.backfills.by_command(command_id)
        if existing is not None:
            return existing, False
        try:
            target = await self.storage.targets.get(spec.target, team_id)
        except NotFound:
            raise field_error("/target", f"target {spec.target!r} not found") from None
        # The same checks for a command from the queue as for a request: the team it names
        # must hold grants for everything the target reaches (its table: table_values).
        await self.checks.target_data(target)
        values = backfill_values(spec, target, command_id, created_by)
        if target.kind == TargetKind.TABLE:
            values.update(await self.checks.table_values(spec, target))
        else:
            values.update(range_values(spec, target, max_runs=self.settings.max_runs_per_backfill))
        announce_create = create_command(spec, target, command_id) if announce else None
        return await self.storage.backfills.insert(values, announce_create=announce_create)

    async def apply_command(
        self, action: str, backfill_id: int | UUID, command_id: UUID, *, team_id: int | None
    ) -> Backfill:
        """A cancel/pause/resume that arrived through the queue; recorded as applied in the
        same transaction, so the same command again changes nothing."""
        bid = await self.storage.backfills.id_of(backfill_id, team_id)
        return await self.storage.backfills.change_state(bid, action, command_id=command_id)
