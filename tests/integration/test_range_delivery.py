"""Key ranges delivered without decoding rows: the postgres sink within one database (one
INSERT … SELECT) and into another (binary COPY streamed between the two), the null sink, and
the source-friendly paging around them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from orchestrator.context import Context
from orchestrator.settings import Settings
from orchestrator.sinks.postgres import PostgresOptions, PostgresSinkType
from orchestrator.sinks.ranges import KeyRange
from orchestrator.sources.tables import KeysetSql, column_types, table_sql
from tests.conftest import PG_ADMIN, db_url, grant_source, make_settings, source_dsn
from tests.helpers import api, make_target, start_backfill, wait_backfill

pytestmark = pytest.mark.integration

ORDERS = """
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    customer uuid NOT NULL,
    amount numeric(12, 2),
    note text,
    tags text[],
    payload jsonb,
    raw bytea,
    span interval,
    placed_at timestamptz NOT NULL
)"""

FILL = """
INSERT INTO orders
SELECT g, md5(g::text)::uuid, g * 1.25, CASE WHEN g % 7 = 0 THEN NULL ELSE 'n' || g END,
       ARRAY['a', g::text], jsonb_build_object('g', g, 'big', 12345678901234567890.5),
       decode(md5(g::text), 'hex'), make_interval(months => g % 13, days => g % 3),
       '2024-01-01'::timestamptz + g * interval '1 minute'
FROM generate_series(1, $1) g"""

# Every value of every row, in key order: equal digests mean equal tables.
DIGEST = "SELECT count(*), md5(string_agg(t::text, '|' ORDER BY id)) FROM {} t"


@pytest.fixture
async def other(template_db: str) -> AsyncIterator[str]:
    """A second database on the same server: a destination that is not the source."""
    name = f"bf_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
        yield db_url(name)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def settings(database: str, prefix: str, other: str) -> Settings:
    return make_settings(database, prefix, sources={"other": source_dsn(other)})


@pytest.fixture(autouse=True)
async def _other_granted(ctx: Context) -> None:
    await grant_source(ctx, 1, "other")


@pytest.fixture
async def other_db(other: str) -> AsyncIterator[asyncpg.Connection[Any]]:
    conn = await asyncpg.connect(other)
    yield conn
    await conn.close()


async def orders(db: Any, n: int) -> None:
    await db.execute(ORDERS)
    await db.execute(FILL, n)


async def copy_backfill(client: Any, name: str, sink_options: dict[str, Any], **kw: Any) -> Any:
    await make_target(
        client,
        name,
        kind="table",
        tables=["orders"],
        sink={"type": "postgres", "options": sink_options},
        **kw,
    )
    started = await start_backfill(client, name)
    return await wait_backfill(client, started["id"], {"completed", "failed"}, within=120)


async def test_rows_reach_another_database_exactly(client: Any, db: Any, other_db: Any) -> None:
    await orders(db, 12_345)
    await other_db.execute(ORDERS.replace("orders", "orders_copy"))
    done = await copy_backfill(
        client, "copy", {"source": "other", "table": "orders_copy"}, chunk_size=1000
    )
    assert done["state"] == "completed", done
    assert done["rows_processed_count"] == done["rows_ingested_count"] == 12_345
    assert await other_db.fetchrow(DIGEST.format("orders_copy")) == await db.fetchrow(
        DIGEST.format("orders")
    )
    assert done["planning"] == {
        "done": True,
        "runs_created": done["runs_total"],
        "rows_planned": 12_345,
        "fraction": 1.0,
    }


async def test_rows_reach_a_table_of_the_same_database_exactly(client: Any, db: Any) -> None:
    await orders(db, 5_000)
    await db.execute("CREATE TABLE orders_copy (LIKE orders INCLUDING ALL)")
    done = await copy_backfill(client, "copy", {"table": "orders_copy"}, chunk_size=700)
    assert done["state"] == "completed", done
    assert done["rows_processed_count"] == done["rows_ingested_count"] == 5_000
    assert await db.fetchrow(DIGEST.format("orders_copy")) == await db.fetchrow(
        DIGEST.format("orders")
    )


async def _page(ctx: Context, db: Any, lower: str | None, upper: str) -> KeyRange:
    keyset = KeysetSql.build(table_sql("public.orders"), ["id"], ["bigint"])
    types = await column_types(db, keyset.table_sql)
    return KeyRange(
        source="main",
        pool=await ctx.sources.get("main"),
        keyset=keyset,
        columns=list(types),
        column_types=types,
        lower=[lower] if lower else None,
        upper=[upper],
        backfill_id=1,
        run_id=1,
        table="public.orders",
    )


async def _sink(ctx: Context, source: str, table: str) -> Any:
    return await PostgresSinkType().open(PostgresOptions(source=source, table=table), ctx.resources)


@pytest.mark.parametrize("source", ["main", "other"])
async def test_a_range_delivered_twice_lands_once_and_updates_in_place(
    ctx: Context, db: Any, other_db: Any, source: str
) -> None:
    await orders(db, 300)
    dest = db if source == "main" else other_db
    await dest.execute(ORDERS.replace("orders", "orders_copy"))
    sink = await _sink(ctx, source, "orders_copy")
    page = await _page(ctx, db, "100", "250")
    assert await sink.deliver_range(page) == (150, 150)
    await db.execute("UPDATE orders SET note = 'changed' WHERE id = 200")
    assert await sink.deliver_range(page) == (150, 150)  # the crash-and-repeat case
    assert await dest.fetchval("SELECT count(*) FROM orders_copy") == 150
    assert tuple(await dest.fetchrow("SELECT min(id), max(id) FROM orders_copy")) == (101, 250)
    assert await dest.fetchval("SELECT note FROM orders_copy WHERE id = 200") == "changed"


async def test_other_column_types_are_read_as_rows_instead(
    client: Any, ctx: Context, db: Any, other_db: Any
) -> None:
    """Binary COPY cannot turn bigint into integer: the sink declines the range and the row
    path, which converts, delivers it."""
    await orders(db, 1_500)
    await other_db.execute(
        ORDERS.replace("orders", "orders_copy").replace("id bigint", "id integer")
    )
    sink = await _sink(ctx, "other", "orders_copy")
    assert await sink.deliver_range(await _page(ctx, db, None, "10")) is None
    done = await copy_backfill(
        client, "copy", {"source": "other", "table": "orders_copy"}, chunk_size=1000
    )
    assert done["state"] == "completed", done
    assert await other_db.fetchval("SELECT count(*) FROM orders_copy") == 1_500


async def test_the_null_sink_counts_every_row_of_a_range(client: Any, db: Any) -> None:
    await orders(db, 2_500)
    await make_target(client, "orders", kind="table", chunk_size=1000)
    started = await start_backfill(client, "orders")
    done = await wait_backfill(client, started["id"], {"completed", "failed"})
    assert done["state"] == "completed", done
    assert done["rows_processed_count"] == 2_500


class TestSlowDestination:
    """A destination slower than the statement timeout: pages shrink until they fit, and
    the run completes at its first attempt."""

    @pytest.fixture
    def settings(self, database: str, prefix: str, other: str) -> Settings:
        return make_settings(
            database,
            prefix,
            sources={"other": source_dsn(other)},
            read_batch_rows=1000,
            source_statement_timeout_seconds=0.5,
        )

    async def test_a_cancelled_page_is_retried_smaller(
        self, client: Any, db: Any, other_db: Any
    ) -> None:
        await orders(db, 2_000)
        await other_db.execute(ORDERS.replace("orders", "orders_copy"))
        # 2 ms a row: a page of 1000 takes 2 s, far past the 0.5 s statement timeout.
        await other_db.execute(
            """CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN PERFORM pg_sleep(0.002); RETURN NEW; END $$;
               CREATE TRIGGER slow BEFORE INSERT ON orders_copy
                   FOR EACH ROW EXECUTE FUNCTION slow();"""
        )
        done = await copy_backfill(
            client, "copy", {"source": "other", "table": "orders_copy"}, chunk_size=1000
        )
        assert done["state"] == "completed", done
        assert await other_db.fetchval("SELECT count(*) FROM orders_copy") == 2_000
        runs = await api(client, "GET", f"/v1/backfills/{done['id']}/runs", 200)
        assert [r["attempt"] for r in runs["data"]] == [1, 1]
