"""First start: `backfill up` sets up the `demo` source (a least-privilege role on the
orchestrator's database, granted to team 1), and the README walkthrough runs against it."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from orchestrator.context import Context
from orchestrator.settings import Settings
from orchestrator.sources.demo import demo_role_name, ensure_demo_source
from tests.conftest import PG_ADMIN, drop_role, make_settings
from tests.helpers import api, make_target, start_backfill, target_body, wait_backfill
from tests.security.conftest import Team

pytestmark = pytest.mark.integration


@pytest.fixture
async def settings(database: str, prefix: str) -> AsyncIterator[Settings]:
    base = make_settings(database, prefix, demo_source=True)
    base = base.model_copy(update={"sources": {}})  # as `make run` starts: no source at all
    conn = await asyncpg.connect(database, server_settings={"search_path": "orchestrator"})
    role = demo_role_name(database.rsplit("/", 1)[1])
    try:
        yield await ensure_demo_source(base, conn, out=io.StringIO())
    finally:
        # The role is cluster-wide: it goes with what it holds in this database.
        await conn.execute(f'DROP OWNED BY "{role}"')
        await conn.close()
        admin = await asyncpg.connect(PG_ADMIN)
        try:
            await drop_role(admin, role)
        finally:
            await admin.close()


async def test_the_demo_source_is_made_once_and_passes_the_role_check(
    ctx: Context, settings: Settings, database: str
) -> None:
    assert list(settings.sources) == ["demo"]
    assert await ctx.sources.check_all() == {"demo": "ok"}
    conn = await asyncpg.connect(database, server_settings={"search_path": "orchestrator"})
    try:
        again = await ensure_demo_source(
            settings.model_copy(update={"sources": {}}), conn, out=io.StringIO()
        )
        grants = await conn.fetch(
            "SELECT team_id, source, sql_handler FROM source_grants WHERE source = 'demo'"
        )
    finally:
        await conn.close()
    assert again.sources["demo"] == settings.sources["demo"]
    assert [tuple(g) for g in grants] == [(1, "demo", True)]


async def test_the_readme_walkthrough_runs_against_the_demo_source(
    client: Any, db: Any, intruder: Team
) -> None:
    await db.execute(
        """CREATE TABLE orders (id bigint PRIMARY KEY, customer text NOT NULL,
                                amount numeric(10,2) NOT NULL, created_at timestamptz NOT NULL);
           INSERT INTO orders
           SELECT i, 'customer-' || i % 500, i % 997 / 10.0,
                  timestamptz '2024-01-01 00:00Z' + i * interval '26 seconds'
           FROM generate_series(1, 5000) AS i;
           CREATE TABLE orders_copy (LIKE orders INCLUDING ALL);
           CREATE TABLE daily_totals (day date PRIMARY KEY, orders bigint NOT NULL,
                                      amount numeric NOT NULL);"""
    )
    await make_target(
        client, "orders-copy", kind="table", source="demo", tables=["orders"], chunk_size=1000,
        sink={"type": "postgres", "options": {"source": "demo", "table": "orders_copy"}},
    )  # fmt: skip
    copy = await start_backfill(client, "orders-copy")
    statement = (
        "INSERT INTO daily_totals (day, orders, amount) "
        "SELECT ($1::timestamptz AT TIME ZONE 'UTC')::date, count(*), coalesce(sum(amount), 0) "
        "FROM orders WHERE created_at >= $1 AND created_at < $2 "
        "ON CONFLICT (day) DO UPDATE SET orders = EXCLUDED.orders, amount = EXCLUDED.amount"
    )
    await make_target(
        client, "daily-totals", kind="date_range", max_active_runs=2,
        handler={"type": "sql", "options": {"source": "demo", "statement": statement}},
    )  # fmt: skip
    daily = await start_backfill(client, "daily-totals", start="2024-01-01", end="2024-01-02")
    assert (await wait_backfill(client, copy["id"], {"completed", "failed"}))["state"] == (
        "completed"
    )
    assert (await wait_backfill(client, daily["id"], {"completed", "failed"}))["state"] == (
        "completed"
    )
    assert await db.fetchval("SELECT count(*) FROM orders_copy") == 5000
    assert await db.fetchval("SELECT sum(orders) FROM daily_totals") == 5000
    # Granted to team 1 only.
    body = await api(
        client, "POST", "/v1/targets", 403, headers=intruder.headers,
        json=target_body("x", "table", source="demo", tables=["orders"]),
    )  # fmt: skip
    assert body["code"] == "not_granted"
