"""The orchestrator's tables live in the schema `orchestrator`: a fresh database creates them
there, and a database migrated before the schema existed has them moved, data and all."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from orchestrator.storage.migrate import migrate, migrations
from tests.conftest import PG_ADMIN, db_url

pytestmark = pytest.mark.integration


@pytest.fixture
async def empty_db() -> AsyncIterator[str]:
    name = f"bf_mig_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield db_url(name)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def tables_in(conn: asyncpg.Connection[Any], schema: str) -> set[str]:
    rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1", schema)
    return {r["tablename"] for r in rows}


async def test_a_fresh_database_keeps_nothing_of_the_orchestrators_in_public(
    empty_db: str,
) -> None:
    conn = await asyncpg.connect(empty_db)
    try:
        await migrate(conn)
        assert await tables_in(conn, "public") == set()
        assert {"targets", "backfills", "api_keys", "source_grants", "schema_migrations"} <= (
            await tables_in(conn, "orchestrator")
        )
        # PUBLIC has no right on the schema.
        assert not await conn.fetchval(
            "SELECT has_schema_privilege('public', 'orchestrator', 'USAGE')"
        )
    finally:
        await conn.close()


async def test_a_database_migrated_before_the_schema_has_its_tables_moved(
    empty_db: str,
) -> None:
    conn = await asyncpg.connect(empty_db)
    try:
        # As the migrations up to 0006 left a database: everything in public.
        await conn.execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for m in migrations():
            if m.version <= 6:
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    m.version,
                    m.name,
                )
        await conn.execute("INSERT INTO teams (name) VALUES ('kept')")
        applied = await migrate(conn)
        assert applied[0] == 7
        assert await tables_in(conn, "public") == set()
        assert await conn.fetchval("SELECT count(*) FROM orchestrator.teams") == 2
        # The outbox trigger's function moved with it and still fires.
        await conn.execute(
            "INSERT INTO orchestrator.outbox (routing_key, payload) VALUES ('x', '{}')"
        )
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE p.proname = 'outbox_notify' AND n.nspname = 'orchestrator'"
            )
            == 1
        )
        # Migrating again finds nothing to do.
        assert await migrate(conn) == []
    finally:
        await conn.close()
