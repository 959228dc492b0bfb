"""Upserts rows into a table of a named source. Re-delivering a chunk changes nothing: rows
are copied into a temporary table and merged with INSERT … ON CONFLICT (key) DO UPDATE."""

from __future__ import annotations

from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.domain.grants import DEFAULT_STATEMENT_TIMEOUT_MS, Access, DataNeed
from orchestrator.domain.specs import TABLE_RE, qualify_table
from orchestrator.errors import SourceError
from orchestrator.grants.scope import granted
from orchestrator.sinks.base import Resources, RowBatch, Sink
from orchestrator.sources.tables import TableShape, describe_table, quote_ident


class PostgresOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(default="main", description="Named source that holds the table")
    table: str = Field(pattern=TABLE_RE.pattern, description="Destination schema.table")


class _PostgresSink:
    def __init__(self, pool: asyncpg.Pool[Any], dest: TableShape, timeout_ms: int) -> None:
        self._pool = pool
        self._dest = dest
        self._timeout_ms = timeout_ms
        self._dest_columns = set(dest.columns)
        self._merge_sql: dict[tuple[str, ...], str] = {}
        self._temp = f"bf_stage_{abs(hash(dest.qualified)) % 10**12}"

    def _merge(self, columns: tuple[str, ...]) -> str:
        sql = self._merge_sql.get(columns)
        if sql is None:
            cols = ", ".join(quote_ident(c) for c in columns)
            conflict = ", ".join(quote_ident(c) for c in self._conflict_key())
            updates = [c for c in columns if c not in self._conflict_key()]
            action = (
                "DO UPDATE SET "
                + ", ".join(f"{quote_ident(c)} = EXCLUDED.{quote_ident(c)}" for c in updates)
                if updates
                else "DO NOTHING"
            )
            sql = (
                f"INSERT INTO {self._dest.sql_name} ({cols}) "
                f"SELECT {cols} FROM pg_temp.{quote_ident(self._temp)} "
                f"ON CONFLICT ({conflict}) {action}"
            )
            self._merge_sql[columns] = sql
        return sql

    def _conflict_key(self) -> list[str]:
        # describe_table puts the sort column first only when one is given; none is here.
        return self._dest.key_columns

    async def deliver(self, batch: RowBatch) -> int:
        if not batch.rows:
            return 0
        missing = [c for c in batch.columns if c not in self._dest_columns]
        if missing:
            raise SourceError(
                f"destination {self._dest.qualified} has no column(s) {', '.join(missing)}"
            )
        columns = tuple(batch.columns)
        async with self._pool.acquire() as conn, conn.transaction():
            # The grant's statement timeout; SET LOCAL ends with the transaction.
            await conn.execute(f"SET LOCAL statement_timeout = {self._timeout_ms}")
            await conn.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {quote_ident(self._temp)} "
                f"(LIKE {self._dest.sql_name}) ON COMMIT DELETE ROWS"
            )
            await conn.copy_records_to_table(
                self._temp, records=batch.rows, columns=list(columns), schema_name="pg_temp"
            )
            status = await conn.execute(self._merge(columns))
        return int(status.rsplit(" ", 1)[1])

    async def close(self) -> None:
        return None


class PostgresSinkType:
    name = "postgres"
    options_model: type[BaseModel] = PostgresOptions

    def data_needs(self, options: BaseModel) -> list[DataNeed]:
        assert isinstance(options, PostgresOptions)
        return [DataNeed(options.source, Access.WRITE, qualify_table(options.table), "/table")]

    async def _describe(
        self, options: PostgresOptions, resources: Resources
    ) -> tuple[asyncpg.Pool[Any], TableShape]:
        if not resources.sources.known(options.source):
            raise SourceError(f"source {options.source!r} of the postgres sink is not configured")
        pool = await resources.sources.get(options.source)
        async with pool.acquire() as conn:
            shape = await describe_table(conn, qualify_table(options.table), None)
        return pool, shape

    async def validate(self, options: BaseModel, resources: Resources) -> None:
        assert isinstance(options, PostgresOptions)
        await self._describe(options, resources)

    async def open(self, options: BaseModel, resources: Resources) -> Sink:
        assert isinstance(options, PostgresOptions)
        pool, shape = await self._describe(options, resources)
        grant = granted(options.source)
        timeout = grant.statement_timeout_ms if grant else DEFAULT_STATEMENT_TIMEOUT_MS
        return _PostgresSink(pool, shape, timeout)
