"""Upserts rows into a table of a named source. Re-delivering a chunk changes nothing: rows
are copied into a temporary table and merged with INSERT … ON CONFLICT (key) DO UPDATE.

Key ranges (orchestrator.sinks.ranges) skip Python: from the same database the whole page is
one INSERT … SELECT … ON CONFLICT statement; from another, the source's binary COPY output is
streamed into COPY FROM STDIN of the temporary table, then merged the same way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.domain.grants import DEFAULT_STATEMENT_TIMEOUT_MS, Access, DataNeed
from orchestrator.domain.specs import TABLE_RE, qualify_table
from orchestrator.errors import SourceError
from orchestrator.grants.scope import granted
from orchestrator.plugins.resources import Resources
from orchestrator.sinks.base import RowBatch, Sink
from orchestrator.sinks.ranges import KeyRange, copied, pipe
from orchestrator.sources.placement import same_database
from orchestrator.sources.tables import TableShape, column_types, describe_table, quote_ident


class PostgresOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(default="main", description="Named source that holds the table")
    table: str = Field(pattern=TABLE_RE.pattern, description="Destination schema.table")


class _PostgresSink:
    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        dest: TableShape,
        source: str,
        dest_types: dict[str, str],
        timeout_ms: int,
    ) -> None:
        self._pool = pool
        self._dest = dest
        self._source = source
        self._dest_types = dest_types
        self._timeout_ms = timeout_ms
        self._dest_columns = set(dest.columns)
        self._merge_sql: dict[tuple[str, ...], str] = {}
        self._temp = f"bf_stage_{abs(hash(dest.qualified)) % 10**12}"

    def _upsert(self, columns: tuple[str, ...], select: str) -> str:
        cols = ", ".join(quote_ident(c) for c in columns)
        conflict = ", ".join(quote_ident(c) for c in self._conflict_key())
        updates = [c for c in columns if c not in self._conflict_key()]
        action = (
            "DO UPDATE SET "
            + ", ".join(f"{quote_ident(c)} = EXCLUDED.{quote_ident(c)}" for c in updates)
            if updates
            else "DO NOTHING"
        )
        return (
            f"INSERT INTO {self._dest.sql_name} ({cols}) {select} ON CONFLICT ({conflict}) {action}"
        )

    def _merge(self, columns: tuple[str, ...]) -> str:
        sql = self._merge_sql.get(columns)
        if sql is None:
            cols = ", ".join(quote_ident(c) for c in columns)
            sql = self._upsert(columns, f"SELECT {cols} FROM pg_temp.{quote_ident(self._temp)}")
            self._merge_sql[columns] = sql
        return sql

    async def _limit(self, conn: Any) -> None:
        # The grant's statement timeout; SET LOCAL ends with the transaction.
        await conn.execute(f"SET LOCAL statement_timeout = {self._timeout_ms}")

    async def _create_stage(self, conn: Any) -> None:
        await conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {quote_ident(self._temp)} "
            f"(LIKE {self._dest.sql_name}) ON COMMIT DELETE ROWS"
        )

    async def deliver_range(self, page: KeyRange) -> tuple[int, int] | None:
        columns = tuple(page.columns)
        if any(c not in self._dest_columns for c in columns):
            return None  # the row path raises the error that names them
        if not any(c not in self._conflict_key() for c in columns):
            return None  # DO NOTHING: rows read and rows written differ; the row path counts
        if same_database(page.source, self._source):
            # One statement inside the database: the rows never leave Postgres.
            select, args = page.select()
            async with self._pool.acquire() as conn, conn.transaction():
                await self._limit(conn)
                n = copied(await conn.execute(self._upsert(columns, select), *args))
            return n, n
        if any(page.column_types.get(c) != self._dest_types.get(c) for c in columns):
            return None  # binary COPY needs identical types; the row path converts
        async with self._pool.acquire() as conn, conn.transaction():
            await self._limit(conn)
            await self._create_stage(conn)

            async def write(chunks: AsyncIterator[bytes]) -> None:
                await conn.copy_to_table(
                    self._temp,
                    source=chunks,
                    columns=list(columns),
                    schema_name="pg_temp",
                    format="binary",
                )

            read = await pipe(page, write)
            merged = copied(await conn.execute(self._merge(columns)))
        return read, merged

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
            await self._limit(conn)
            await self._create_stage(conn)
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
    ) -> tuple[asyncpg.Pool[Any], TableShape, dict[str, str]]:
        if not resources.sources.known(options.source):
            raise SourceError(f"source {options.source!r} of the postgres sink is not configured")
        pool = await resources.sources.get(options.source)
        async with pool.acquire() as conn:
            shape = await describe_table(conn, qualify_table(options.table), None)
            types = await column_types(conn, shape.sql_name)
        return pool, shape, types

    async def validate(self, options: BaseModel, resources: Resources) -> None:
        assert isinstance(options, PostgresOptions)
        await self._describe(options, resources)

    async def open(self, options: BaseModel, resources: Resources) -> Sink:
        assert isinstance(options, PostgresOptions)
        pool, shape, types = await self._describe(options, resources)
        grant = granted(options.source)
        timeout = grant.statement_timeout_ms if grant else DEFAULT_STATEMENT_TIMEOUT_MS
        return _PostgresSink(pool, shape, options.source, types, timeout)
