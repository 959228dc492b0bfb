"""Runs one parameterised statement per window in a named source, inside a transaction:
$1 is the window start and $2 the window end (timestamptz). A statement may use only $1."""

from __future__ import annotations

from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.errors import SourceError, ValidationFailed
from orchestrator.handlers.base import Handler, WindowRun
from orchestrator.sinks.base import Resources


class SqlOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = "main"
    statement: str = Field(min_length=1, max_length=100_000)


class _SqlHandler:
    def __init__(self, pool: asyncpg.Pool[Any], statement: str) -> None:
        self._pool = pool
        self._statement = statement

    async def run(self, window: WindowRun) -> int | None:
        async with self._pool.acquire() as conn, conn.transaction():
            stmt = await conn.prepare(self._statement)
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

    async def _pool(self, options: SqlOptions, resources: Resources) -> asyncpg.Pool[Any]:
        if not resources.sources.known(options.source):
            raise SourceError(f"unknown source {options.source!r} for the sql handler")
        return await resources.sources.get(options.source)

    async def validate(self, options: BaseModel, resources: Resources) -> None:
        assert isinstance(options, SqlOptions)
        pool = await self._pool(options, resources)
        async with pool.acquire() as conn:
            try:
                stmt = await conn.prepare(options.statement)
            except asyncpg.PostgresError as exc:
                raise ValidationFailed(
                    "the sql handler's statement does not prepare",
                    errors=[{"pointer": "/handler/options/statement", "message": str(exc)}],
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
        return _SqlHandler(await self._pool(options, resources), options.statement)
