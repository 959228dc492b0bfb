"""Runs one parameterised statement per window in a named source, inside a transaction:
$1 is the window start and $2 the window end (timestamptz). A statement may use only $1.

The transaction is read-only unless the team's grant on the source allows writes, and has the
grant's statement_timeout; the statement runs as the source's login role, which is the
boundary a statement cannot talk its way out of (orchestrator.sources.roles)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.domain.grants import DEFAULT_STATEMENT_TIMEOUT_MS, Access, DataNeed
from orchestrator.error_text import error_text
from orchestrator.errors import SourceError, ValidationFailed
from orchestrator.grants.scope import granted
from orchestrator.handlers.base import Handler, WindowRun
from orchestrator.plugins.resources import Resources


class SqlOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = "main"
    statement: str = Field(min_length=1, max_length=100_000)


@asynccontextmanager
async def _granted_transaction(
    pool: asyncpg.Pool[Any], source: str
) -> AsyncIterator[asyncpg.pool.PoolConnectionProxy[Any]]:
    grant = granted(source)
    writes = grant is not None and grant.sql_writes
    timeout_ms = grant.statement_timeout_ms if grant is not None else DEFAULT_STATEMENT_TIMEOUT_MS
    async with pool.acquire() as conn, conn.transaction():
        if not writes:
            await conn.execute("SET TRANSACTION READ ONLY")
        # SET LOCAL: it ends with the transaction, whatever the statement does after.
        await conn.execute(f"SET LOCAL statement_timeout = {int(timeout_ms)}")
        yield conn


class _SqlHandler:
    def __init__(self, pool: asyncpg.Pool[Any], options: SqlOptions) -> None:
        self._pool = pool
        self._options = options

    async def run(self, window: WindowRun) -> int | None:
        async with _granted_transaction(self._pool, self._options.source) as conn:
            stmt = await conn.prepare(self._options.statement)
            args = (window.window_start, window.window_end)[: len(stmt.get_parameters())]
            await stmt.fetch(*args)
            status = stmt.get_statusmsg()
        # "INSERT 0 5", "UPDATE 5", "DELETE 5", "SELECT 5": the last number is the row count.
        tail = status.rsplit(" ", 1)[-1] if status else ""
        return int(tail) if tail.isdigit() else None

    async def close(self) -> None:
        return None


class SqlHandlerType:
    name = "sql"
    options_model: type[BaseModel] = SqlOptions

    def data_needs(self, options: BaseModel) -> list[DataNeed]:
        assert isinstance(options, SqlOptions)
        return [DataNeed(options.source, Access.SQL, pointer="/source")]

    async def _pool(self, options: SqlOptions, resources: Resources) -> asyncpg.Pool[Any]:
        if not resources.sources.known(options.source):
            raise SourceError(f"source {options.source!r} is not configured")
        return await resources.sources.get(options.source)

    async def validate(self, options: BaseModel, resources: Resources) -> None:
        assert isinstance(options, SqlOptions)
        pool = await self._pool(options, resources)
        async with _granted_transaction(pool, options.source) as conn:
            try:
                stmt = await conn.prepare(options.statement)
            except asyncpg.PostgresError as exc:
                raise ValidationFailed(
                    "the sql handler's statement does not prepare",
                    errors=[{"pointer": "/handler/options/statement", "message": error_text(exc)}],
                ) from None
            if len(stmt.get_parameters()) > 2:
                raise ValidationFailed(
                    "the sql handler's statement takes at most $1 (window start) and $2 (end)",
                    errors=[
                        {"pointer": "/handler/options/statement", "message": "too many parameters"}
                    ],
                )

    async def open(self, options: BaseModel, resources: Resources) -> Handler:
        assert isinstance(options, SqlOptions)
        return _SqlHandler(await self._pool(options, resources), options)
