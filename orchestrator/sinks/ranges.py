"""Delivering a key range without reading its rows into Python.

When nothing transforms the rows on their way, a sink may take a page as a key range of the
source table instead of a RowBatch: it then moves the rows by SQL (one statement when source
and destination are the same database) or as binary COPY bytes streamed from the source to
the destination, never decoding them. Sinks that cannot (they encode rows, or the two tables'
column types differ) answer None, and the executor reads rows as before."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import asyncpg

from orchestrator.sources.tables import KeysetSql

# Chunks of COPY data in flight between the source and the destination connection: enough to
# keep both busy, few enough that a slow destination holds back the source instead of memory.
PIPE_CHUNKS = 32


@dataclass(frozen=True)
class KeyRange:
    """The rows of `table` with keys in (lower, upper], not yet read."""

    source: str  # the named source the table is read from
    pool: asyncpg.Pool[Any]
    keyset: KeysetSql
    columns: list[str]
    column_types: dict[str, str]  # format_type names: binary COPY needs them to match
    lower: list[str] | None
    upper: list[str]
    backfill_id: int
    run_id: int
    # schema.table as the backfill names it: sinks that label what they send (rabbitmq
    # headers and message ids) need it.
    table: str

    def select(self) -> tuple[str, list[str]]:
        """The SELECT of this range's rows and its parameters."""
        sql = self.keyset.range_select(self.columns, self.lower is not None)
        return sql, [*(self.lower or []), *self.upper]


@runtime_checkable
class RangeSink(Protocol):
    async def deliver_range(self, page: KeyRange) -> tuple[int, int] | None:
        """Delivers the range's rows without decoding them and returns (rows read, rows
        ingested), or None when this sink cannot take this range (the caller reads rows
        instead). Delivering the same range twice must be harmless, as for deliver()."""


def copied(status: str) -> int:
    """Rows from a command tag: "COPY 1000", "INSERT 0 1000"."""
    return int(status.rsplit(" ", 1)[1])


async def copy_out(page: KeyRange, output: Callable[[bytes], Coroutine[Any, Any, None]]) -> int:
    """Streams the range as binary COPY data to `output`; returns the row count."""
    sql, args = page.select()
    async with page.pool.acquire() as conn:
        status = await conn.copy_from_query(sql, *args, output=output, format="binary")
    return copied(status)


async def pipe(
    page: KeyRange, write: Callable[[AsyncIterator[bytes]], Coroutine[Any, Any, None]]
) -> int:
    """Streams the range's binary COPY data from the source into `write`, which consumes it
    (a COPY FROM STDIN on another connection), with a bounded queue between them. Either
    side failing cancels the other. Returns the rows read."""
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=PIPE_CHUNKS)

    async def produce() -> int:
        n = await copy_out(page, queue.put)
        await queue.put(None)
        return n

    async def chunks() -> AsyncIterator[bytes]:
        while (data := await queue.get()) is not None:
            yield data

    try:
        async with asyncio.TaskGroup() as group:
            reader = group.create_task(produce())
            group.create_task(write(chunks()))
    except BaseExceptionGroup as failed:
        # The first failure is the one to report (a timeout, a refused row), not a group.
        raise failed.exceptions[0] from None
    return reader.result()
