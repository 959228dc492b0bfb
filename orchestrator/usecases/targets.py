"""Targets: what a backfill copies from (a table, to a sink) or runs (a handler, by window)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from orchestrator.domain.models import Target, TargetKind
from orchestrator.domain.specs import DateRangeTargetSpec, TableTargetSpec, TargetPatch, TargetSpec
from orchestrator.domain.values import field_error
from orchestrator.grants.checks import sink_needs, table_needs
from orchestrator.usecases.checks import DataChecks
from orchestrator.usecases.paging import Page, page_of
from orchestrator.usecases.ports import StoragePort


class Targets:
    def __init__(self, storage: StoragePort, checks: DataChecks) -> None:
        self.storage = storage
        self.checks = checks

    async def create(self, spec: TargetSpec, *, team_id: int) -> Target:
        """NotGranted (403) for a source, table, destination or statement outside the team's
        grants, before anything is looked at. Conflict (409) if the name is taken; 422 if a
        table target's source is not configured, a table does not exist or has no key, its
        sort column is missing or nullable, or the sink or handler is unknown or
        misconfigured."""
        values: dict[str, Any] = spec.model_dump(mode="json")
        if isinstance(spec, TableTargetSpec):
            # Everything the target names, against the grants, before any of it is looked
            # at: a refusal then cannot tell a missing table from a forbidden one.
            await self.checks.grants.check(
                team_id, table_needs(spec.source, spec.tables) + sink_needs(spec.sink)
            )
            for table in spec.tables:
                await self.checks.describe(spec.source, table, spec.sort_column, team_id=team_id)
            await self.checks.sink(spec.sink, team_id)
        else:
            assert isinstance(spec, DateRangeTargetSpec)
            await self.checks.handler(spec.handler, team_id)
        return await self.storage.targets.insert(values | {"team_id": team_id})

    async def page(self, *, team_id: int, after: int | None, limit: int) -> Page[Target]:
        items = await self.storage.targets.page(team_id, after, limit + 1)
        return page_of(items, limit, lambda t: t.id)

    async def get(self, target: int | str | UUID, *, team_id: int) -> Target:
        return await self.storage.targets.get(target, team_id)

    async def update(self, target_id: int, patch: TargetPatch, *, team_id: int) -> Target:
        current = await self.storage.targets.get(target_id, team_id)
        changes = patch.model_dump(mode="json", exclude_unset=True)
        if current.kind == TargetKind.TABLE:
            for field in ("handler", "variables", "interval_type", "interval_units"):
                if field in changes:
                    raise field_error(f"/{field}", f"{field} does not apply to a table target")
            if patch.sink is not None:
                await self.checks.sink(patch.sink, team_id)
            if "sort_column" in changes:
                for table in current.tables:
                    assert current.source is not None
                    await self.checks.describe(
                        current.source, table, patch.sort_column, team_id=team_id
                    )
        else:
            for field in ("sink", "sort_column", "chunk_size"):
                if field in changes:
                    raise field_error(f"/{field}", f"{field} does not apply to a date_range target")
            if patch.handler is not None:
                await self.checks.handler(patch.handler, team_id)
        return await self.storage.targets.update(target_id, team_id, changes)

    async def delete(self, target_id: int, *, team_id: int) -> None:
        """Conflict (409) while it has an active backfill; its finished backfills go too."""
        await self.storage.targets.delete(target_id, team_id)
