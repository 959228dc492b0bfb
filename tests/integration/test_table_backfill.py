"""A table backfill end to end: API -> outbox -> RabbitMQ -> planner -> executor -> sink."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.helpers import (
    api,
    backfill_body,
    make_target,
    start_backfill,
    target_body,
    wait_backfill,
)

pytestmark = pytest.mark.integration

SOURCE = """
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    customer uuid NOT NULL,
    amount numeric(12, 2),
    note text,
    tags text[],
    payload jsonb,
    raw bytea,
    placed_at timestamptz NOT NULL
);
"""


async def make_orders(db: Any, n: int) -> None:
    await db.execute(SOURCE)
    await db.execute("CREATE TABLE orders_copy (LIKE orders INCLUDING ALL)")
    await db.execute(
        """INSERT INTO orders
           SELECT g, md5(g::text)::uuid, g * 1.25, CASE WHEN g % 7 = 0 THEN NULL ELSE 'n' || g END,
                  ARRAY['a', g::text], jsonb_build_object('g', g, 'big', 12345678901234567890.5),
                  decode(md5(g::text), 'hex'), '2024-01-01'::timestamptz + g * interval '1 minute'
           FROM generate_series(1, $1) g""",
        n,
    )


async def test_100k_rows_reach_the_postgres_sink_row_for_row(client: Any, db: Any) -> None:
    await make_orders(db, 100_000)
    await make_target(
        client,
        "orders-copy",
        "table",
        tables=["orders"],
        chunk_size=5000,
        sink={"type": "postgres", "options": {"table": "orders_copy"}},
    )
    created = await start_backfill(client, "orders-copy")
    assert created["state"] == "created"
    assert created["table"] == "public.orders"
    assert created["sort_column"] == "id"

    done = await wait_backfill(client, created["id"], {"completed", "failed"}, within=120)
    assert done["state"] == "completed", done
    assert done["rows_initial_count"] == 100_000
    assert done["rows_processed_count"] == 100_000
    assert done["rows_ingested_count"] == 100_000
    assert done["runs_total"] == done["runs_created"] == done["runs_completed"] == 20
    assert done["runs_failed"] == done["runs_cancelled"] == 0
    assert done["started_at"]
    assert done["completed_at"]

    missing_or_different = await db.fetchval(
        """SELECT count(*) FROM orders o FULL JOIN orders_copy c USING (id)
           WHERE o IS DISTINCT FROM c"""
    )
    assert missing_or_different == 0
    assert await db.fetchval("SELECT count(*) FROM orders_copy") == 100_000

    runs = await api(client, "GET", f"/v1/backfills/{created['id']}/runs?limit=500", 200)
    ranges = [(r["lower_key"], r["upper_key"]) for r in runs["data"]]
    assert ranges[0][0] is None
    assert ranges[-1][1] == ["100000"]
    # Contiguous: each run starts where the previous ended.
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    assert {r["state"] for r in runs["data"]} == {"completed"}


async def test_an_empty_table_completes_at_once(client: Any, db: Any) -> None:
    await db.execute("CREATE TABLE nothing (id int PRIMARY KEY)")
    await make_target(client, "empty", "table", tables=["nothing"])
    created = await start_backfill(client, "empty")
    done = await wait_backfill(client, created["id"], {"completed", "failed"})
    assert done["state"] == "completed"
    assert done["runs_total"] == 0
    assert done["rows_initial_count"] == 0


async def test_a_table_without_a_key_is_refused(client: Any, db: Any) -> None:
    await db.execute("CREATE TABLE loose (a int, b text)")
    body = await api(
        client,
        "POST",
        "/v1/targets",
        422,
        json=target_body("loose", "table"),
    )
    assert body["code"] == "invalid_source"
    assert "primary key" in body["detail"]


async def test_a_nullable_sort_column_is_refused(client: Any, db: Any) -> None:
    await db.execute("CREATE TABLE t (id int PRIMARY KEY, updated_at timestamptz)")
    body = await api(
        client,
        "POST",
        "/v1/targets",
        422,
        json=target_body("t", "table", sort_column="updated_at"),
    )
    assert "nullable" in body["detail"]


async def test_a_second_active_backfill_of_the_same_table_conflicts(client: Any, db: Any) -> None:
    await db.execute("CREATE TABLE t (id int PRIMARY KEY)")
    await db.execute("INSERT INTO t SELECT generate_series(1, 10)")
    await make_target(client, "t", "table")
    first = await start_backfill(client, "t")
    await api(client, "POST", f"/v1/backfills/{first['id']}/pause", 200)
    body = await api(client, "POST", "/v1/backfills", 409, json=backfill_body("t"))
    assert body["code"] == "conflict"
    assert body["conflicting_backfill_id"] == first["id"]


async def test_a_retried_create_with_the_same_idempotency_key_makes_one_backfill(
    client: Any, db: Any
) -> None:
    await db.execute("CREATE TABLE t (id int PRIMARY KEY)")
    await make_target(client, "t", "table")
    headers = {"Idempotency-Key": "nightly-2024-01-01"}
    first = await api(
        client, "POST", "/v1/backfills", 201, json=backfill_body("t"), headers=headers
    )
    again = await api(
        client, "POST", "/v1/backfills", 201, json=backfill_body("t"), headers=headers
    )
    assert again["id"] == first["id"]
    assert await db.fetchval("SELECT count(*) FROM backfills") == 1
    # Without the key the second request is a new backfill, refused while the first is active
    # or accepted once it is done.
    await wait_backfill(client, first["id"], {"completed"})
    other = await start_backfill(client, "t")
    assert other["id"] != first["id"]


async def test_paging_past_the_last_run_with_a_huge_cursor_is_an_empty_page(
    client: Any, db: Any
) -> None:
    """Found by fuzzing: an `after` beyond int32 once failed in the database with a 500."""
    await db.execute("CREATE TABLE t (id int PRIMARY KEY)")
    await make_target(client, "t", "table")
    created = await start_backfill(client, "t")
    page = await api(client, "GET", f"/v1/backfills/{created['id']}/runs?after=9999999999", 200)
    assert page == {"data": [], "next_after": None}
