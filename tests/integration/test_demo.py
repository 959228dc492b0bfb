"""`backfill demo` on a fresh database, against a running service, with the `demo` source a
first start sets up."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from orchestrator.settings import Settings
from orchestrator.sources.demo import demo_role_name, ensure_demo_source
from tests.clirun import backfill, environment
from tests.conftest import PG_ADMIN, drop_role, make_settings

pytestmark = pytest.mark.integration

ROWS = 20_000


@pytest.fixture
async def settings(database: str, prefix: str) -> AsyncIterator[Settings]:
    # As `backfill up` starts on a fresh database: no source configured, `demo` set up.
    base = make_settings(database, prefix, demo_source=True)
    base = base.model_copy(update={"sources": {}})
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


async def test_demo_runs_both_backfills_to_completion(
    client: Any, settings: Settings, db: asyncpg.Connection[Any]
) -> None:
    base = str(client.make_url("")).rstrip("/")
    env = environment(
        BACKFILL_DATABASE_URL=settings.database_url.get_secret_value(), BACKFILL_URL=base
    )

    result = await backfill("demo", "--rows", str(ROWS), env=env, within=300)

    assert result.code == 0, result
    lines = result.stdout.splitlines()
    assert sum(" completed: " in line for line in lines) == 2, result.stdout
    for path in ("/ui/", "/metrics", "/docs"):
        assert f"{base}{path}" in result.stdout
    assert await db.fetchval("SELECT count(*) FROM public.demo_events_copy") == ROWS
    totals = await db.fetchrow("SELECT count(*), sum(events)::bigint FROM demo_event_totals")
    assert totals is not None
    assert tuple(totals) == (31 * 4, ROWS)
    # The key it made for itself is revoked again.
    assert (
        await db.fetchval(
            "SELECT count(*) FROM api_keys WHERE name LIKE 'demo %' AND revoked_at IS NULL"
        )
        == 0
    )


async def test_demo_names_an_unknown_source(client: Any, settings: Settings) -> None:
    env = environment(
        BACKFILL_DATABASE_URL=settings.database_url.get_secret_value(),
        BACKFILL_URL=str(client.make_url("")),
    )
    result = await backfill("demo", "--source", "nope", env=env)
    assert result.code == 2, result
    result.assert_one_error_line("'nope'", "known: demo")
