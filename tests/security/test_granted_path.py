"""Within its grant, a second team's backfills work end to end as they always did: a table
copied through the postgres sink, and a sql date-range backfill writing daily totals."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.context import Context
from tests.conftest import grant_source
from tests.helpers import api, backfill_body, wait_until
from tests.security.conftest import Team, team_target

pytestmark = pytest.mark.integration


@pytest.fixture
async def orders(db: Any) -> None:
    await db.execute(
        """CREATE TABLE team2_orders (id bigint PRIMARY KEY, amount numeric(10, 2) NOT NULL,
                                      created_at timestamptz NOT NULL);
           INSERT INTO team2_orders
           SELECT i, i % 97 / 10.0, timestamptz '2024-01-01 00:00Z' + i * interval '7 minutes'
           FROM generate_series(1, 3000) AS i;
           CREATE TABLE team2_orders_copy (LIKE team2_orders INCLUDING ALL);
           CREATE TABLE team2_daily (day date PRIMARY KEY, orders bigint NOT NULL,
                                     amount numeric NOT NULL);"""
    )


async def finished(client: Any, team: Team, backfill_id: int) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        body: dict[str, Any] = await api(
            client, "GET", f"/v1/backfills/{backfill_id}", 200, headers=team.headers
        )
        return body if body["state"] in {"completed", "failed"} else None

    return await wait_until(probe, within=90, what=f"backfill {backfill_id} to finish")


async def test_a_table_backfill_on_a_granted_source_copies_every_row(
    client: Any, ctx: Context, db: Any, intruder: Team, orders: None
) -> None:
    await grant_source(
        ctx, intruder.id, read=("public.team2_*",), write=("public.team2_*_copy",), sql=False
    )
    await team_target(
        client, intruder, "copy", tables=["team2_orders"], chunk_size=500,
        sink={"type": "postgres", "options": {"table": "team2_orders_copy"}},
    )  # fmt: skip
    started = await api(
        client, "POST", "/v1/backfills", 201, headers=intruder.headers, json=backfill_body("copy")
    )
    done = await finished(client, intruder, started["id"])
    assert done["state"] == "completed", done
    assert done["rows_processed_count"] == 3000
    assert await db.fetch("SELECT * FROM team2_orders_copy ORDER BY id") == await db.fetch(
        "SELECT * FROM team2_orders ORDER BY id"
    )


async def test_a_sql_date_range_backfill_on_a_granted_source_writes_what_it_computes(
    client: Any, ctx: Context, db: Any, intruder: Team, orders: None
) -> None:
    await grant_source(
        ctx, intruder.id, read=("public.team2_*",), write=("public.team2_daily",), sql=True
    )
    await team_target(
        client, intruder, "daily", kind="date_range", max_active_runs=3,
        handler={"type": "sql", "options": {"statement": (
            "INSERT INTO team2_daily (day, orders, amount) "
            "SELECT ($1::timestamptz AT TIME ZONE 'UTC')::date, count(*), coalesce(sum(amount), 0) "
            "FROM team2_orders WHERE created_at >= $1 AND created_at < $2 "
            "ON CONFLICT (day) DO UPDATE SET orders = EXCLUDED.orders, amount = EXCLUDED.amount"
        )}},
    )  # fmt: skip
    started = await api(
        client, "POST", "/v1/backfills", 201, headers=intruder.headers,
        json=backfill_body("daily", start="2024-01-01", end="2024-01-15"),
    )  # fmt: skip
    done = await finished(client, intruder, started["id"])
    assert done["state"] == "completed", done
    assert await db.fetch("SELECT day, orders, amount FROM team2_daily ORDER BY day") == (
        await db.fetch(
            "SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS orders, "
            "sum(amount) AS amount FROM team2_orders "
            "WHERE created_at < '2024-01-16 00:00Z' GROUP BY 1 ORDER BY 1"
        )
    )


async def test_without_a_write_grant_the_sql_handler_runs_read_only(
    client: Any, ctx: Context, db: Any, intruder: Team, orders: None
) -> None:
    await grant_source(ctx, intruder.id, read=("public.team2_*",), write=(), sql=True)
    await team_target(
        client, intruder, "daily", kind="date_range", max_attempts=1,
        handler={"type": "sql", "options": {"statement": (
            "INSERT INTO team2_daily SELECT $1::date, 0, 0"
        )}},
    )  # fmt: skip
    started = await api(
        client, "POST", "/v1/backfills", 201, headers=intruder.headers,
        json=backfill_body("daily", start="2024-01-01", end="2024-01-01"),
    )  # fmt: skip
    done = await finished(client, intruder, started["id"])
    assert done["state"] == "failed"
    assert "read-only transaction" in str(done["error_report"])
    assert await db.fetchval("SELECT count(*) FROM team2_daily") == 0


async def test_a_statement_over_the_grants_timeout_is_cancelled(
    client: Any, ctx: Context, db: Any, intruder: Team
) -> None:
    await grant_source(ctx, intruder.id, read=(), write=(), sql=True, statement_timeout_ms=200)
    await team_target(
        client, intruder, "slow", kind="date_range", max_attempts=1,
        handler={"type": "sql", "options": {"statement": "SELECT pg_sleep(30)"}},
    )  # fmt: skip
    started = await api(
        client, "POST", "/v1/backfills", 201, headers=intruder.headers,
        json=backfill_body("slow", start="2024-01-01", end="2024-01-01"),
    )  # fmt: skip
    done = await finished(client, intruder, started["id"])
    assert done["state"] == "failed"
    assert "statement timeout" in str(done["error_report"])
