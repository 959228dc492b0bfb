"""Source grants, stored in the orchestrator's schema; managed with `backfill sources`."""

from __future__ import annotations

from typing import Any

import asyncpg

from orchestrator.domain.grants import SourceGrant
from orchestrator.errors import NotFound
from orchestrator.storage.database import Pool

_COLUMNS = (
    "team_id, source, read_tables, write_tables, sql_handler, statement_timeout_ms, "
    "granted_at, updated_at"
)

_GET = f"SELECT {_COLUMNS} FROM source_grants WHERE team_id = $1 AND source = $2"

_LIST = (
    f"SELECT {_COLUMNS} FROM source_grants WHERE $1::bigint IS NULL OR team_id = $1 "
    "ORDER BY team_id, source"
)

_UPSERT = f"""
INSERT INTO source_grants (team_id, source, read_tables, write_tables, sql_handler,
                           statement_timeout_ms)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (team_id, source) DO UPDATE SET
    read_tables = EXCLUDED.read_tables,
    write_tables = EXCLUDED.write_tables,
    sql_handler = EXCLUDED.sql_handler,
    statement_timeout_ms = EXCLUDED.statement_timeout_ms,
    updated_at = now()
RETURNING {_COLUMNS}
"""

_DELETE = "DELETE FROM source_grants WHERE team_id = $1 AND source = $2"


def _grant(row: Any) -> SourceGrant:
    return SourceGrant.model_validate(dict(row))


class GrantRepository:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def get(self, team_id: int, source: str) -> SourceGrant | None:
        row = await self.pool.fetchrow(_GET, team_id, source)
        return _grant(row) if row is not None else None

    async def list(self, team_id: int | None = None) -> list[SourceGrant]:
        return [_grant(r) for r in await self.pool.fetch(_LIST, team_id)]

    async def put(self, grant: SourceGrant) -> SourceGrant:
        """Creates the grant or replaces what it allows."""
        try:
            row = await self.pool.fetchrow(
                _UPSERT,
                grant.team_id,
                grant.source,
                grant.read_tables,
                grant.write_tables,
                grant.sql_handler,
                grant.statement_timeout_ms,
            )
        except asyncpg.ForeignKeyViolationError:
            raise NotFound(f"team {grant.team_id} not found") from None
        return _grant(row)

    async def delete(self, team_id: int, source: str) -> bool:
        status = await self.pool.execute(_DELETE, team_id, source)
        return status != "DELETE 0"
