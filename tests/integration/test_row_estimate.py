"""A dry run's `rows_estimate` without ANALYZE: the planner's own bounded estimate when
pg_class.reltuples is unknown, never a count."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.sources.tables import estimate_rows
from tests.helpers import api, make_target

pytestmark = pytest.mark.integration

ROWS = 5000


async def _fresh(db: Any, name: str) -> None:
    # Autovacuum off: the table must stay un-analysed for the whole test.
    await db.execute(
        f"CREATE TABLE {name} (id bigint PRIMARY KEY, v text NOT NULL)"
        " WITH (autovacuum_enabled = false)"
    )


async def test_a_fresh_table_gets_an_estimate_before_analyze(client: Any, db: Any) -> None:
    await _fresh(db, "fresh")
    await db.execute(f"INSERT INTO fresh SELECT g, 'value ' || g FROM generate_series(1, {ROWS}) g")
    assert await db.fetchval("SELECT reltuples FROM pg_class WHERE relname = 'fresh'") == -1
    await make_target(client, "fresh", "table", chunk_size=1000)
    preview = await api(
        client, "POST", "/v1/backfills?dry_run=true&limit=1", 200, json={"target": "fresh"}
    )
    estimate = preview["rows_estimate"]
    assert estimate is not None
    assert ROWS / 4 <= estimate <= ROWS * 4, estimate


async def test_a_stale_zero_with_pages_and_an_empty_table(db: Any) -> None:
    # VACUUM on the empty table records reltuples = 0; the rows come after.
    await _fresh(db, "vacuumed")
    await db.execute("VACUUM vacuumed")
    await db.execute(
        f"INSERT INTO vacuumed SELECT g, 'value ' || g FROM generate_series(1, {ROWS}) g"
    )
    assert await db.fetchval("SELECT reltuples FROM pg_class WHERE relname = 'vacuumed'") == 0
    estimate = await estimate_rows(db, "public.vacuumed")
    assert estimate is not None
    assert ROWS / 4 <= estimate <= ROWS * 4, estimate

    await _fresh(db, "empty")
    assert await estimate_rows(db, "public.empty") == 0

    # A few rows on one page: a page's worth at most, not the planner's ten-page guess.
    await _fresh(db, "small")
    await db.execute("INSERT INTO small VALUES (1, 'a'), (2, 'b')")
    small = await estimate_rows(db, "public.small")
    assert small is not None
    assert 1 <= small <= 400, small

    assert await estimate_rows(db, "public.no_such_table") is None
