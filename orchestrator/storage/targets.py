"""Targets: what a backfill works through (the tables of a source, or a handler's windows)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from orchestrator.domain.models import Target
from orchestrator.errors import Conflict, NotFound
from orchestrator.storage.database import Pool
from orchestrator.storage.queries import q

# What a target's update may set. Column names come from TargetPatch's fields, never from
# the request body's keys.
_UPDATABLE = frozenset(
    {
        "name",
        "sort_column",
        "sink",
        "handler",
        "variables",
        "chunk_size",
        "interval_type",
        "interval_units",
        "max_active_runs",
        "max_attempts",
    }
)


class TargetStore:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def insert(self, values: dict[str, Any]) -> Target:
        try:
            row = await self.pool.fetchrow(
                q("insert_target"),
                values["name"],
                values["kind"],
                values.get("source"),
                values.get("tables", []),
                values.get("sort_column"),
                values.get("sink"),
                values.get("handler"),
                values.get("variables", {}),
                values.get("chunk_size", 1000),
                values.get("interval_type", "day"),
                values.get("interval_units", 1),
                values["max_active_runs"],
                values["max_attempts"],
                values["team_id"],
            )
        except asyncpg.UniqueViolationError:
            raise Conflict(f"a target named {values['name']!r} already exists") from None
        assert row is not None
        return Target.from_row(row)

    async def get(self, target: int | str | UUID, team_id: int | None) -> Target:
        """By id or uuid (any team when team_id is None) or by name (names are per team; a
        name without a team means team 1, the default)."""
        if isinstance(target, int):
            row = await self.pool.fetchrow(q("get_target_by_id"), target, team_id)
        elif isinstance(target, UUID):
            row = await self.pool.fetchrow(q("get_target_by_uuid"), target, team_id)
        else:
            row = await self.pool.fetchrow(q("get_target_by_name"), target, team_id or 1)
        if row is None:
            raise NotFound(f"target {target!r} not found")
        return Target.from_row(row)

    async def page(self, team_id: int, after: int | None, limit: int) -> list[Target]:
        rows = await self.pool.fetch(q("list_targets"), after, limit, team_id)
        return [Target.from_row(r) for r in rows]

    async def update(self, target_id: int, team_id: int, changes: dict[str, Any]) -> Target:
        if not changes:
            return await self.get(target_id, team_id)
        assert set(changes) <= _UPDATABLE, set(changes) - _UPDATABLE
        sets = ", ".join(f"{col} = ${i}" for i, col in enumerate(changes, start=3))
        try:
            row = await self.pool.fetchrow(
                f"UPDATE targets SET {sets}, updated_at = now() "
                "WHERE id = $1 AND team_id = $2 RETURNING *",
                target_id,
                team_id,
                *changes.values(),
            )
        except asyncpg.UniqueViolationError:
            raise Conflict(f"a target named {changes.get('name')!r} already exists") from None
        if row is None:
            raise NotFound(f"target {target_id} not found")
        return Target.from_row(row)

    async def delete(self, target_id: int, team_id: int) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            if await conn.fetchrow(q("get_target_by_id"), target_id, team_id) is None:
                raise NotFound(f"target {target_id} not found")
            await conn.execute(q("lock_target"), target_id)
            if await conn.fetchval(q("target_has_active_backfill"), target_id):
                raise Conflict(
                    f"target {target_id} has an active backfill; cancel it before deleting"
                )
            await conn.execute(q("delete_target_backfills"), target_id)
            status = await conn.execute(q("delete_target"), target_id)
            if status.endswith(" 0"):
                raise NotFound(f"target {target_id} not found")
