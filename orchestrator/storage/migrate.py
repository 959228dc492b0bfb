"""Numbered plain-SQL migrations applied under an advisory lock, so several processes
starting at once apply each migration exactly once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import structlog

log = structlog.get_logger(__name__)

# Where the orchestrator's own tables live. Its connections put it first on the search_path,
# so the SQL (and every migration) names tables without a schema.
SCHEMA = "orchestrator"

# Any constant works; it only has to be the same in every process of this project.
_MIGRATION_LOCK = 7_362_910_114
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    folder = resources.files("orchestrator.storage").joinpath("sql/migrations")
    found = []
    for entry in folder.iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions: {versions}")
    return found


async def ensure_database(dsn: str) -> bool:
    """Create the database named in `dsn` if it is missing. Returns True if created."""
    parts = urlsplit(dsn)
    dbname = parts.path.lstrip("/") or "postgres"
    try:
        conn = await asyncpg.connect(dsn)
    except asyncpg.InvalidCatalogNameError:
        pass
    else:
        await conn.close()
        return False
    admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        await admin.execute(f'CREATE DATABASE "{dbname}"')
    except asyncpg.DuplicateDatabaseError:
        return False  # another process won the race
    finally:
        await admin.close()
    log.info("database_created", database=dbname)
    return True


async def _use_schema(conn: asyncpg.Connection) -> None:
    """Creates the orchestrator's schema and puts it first on this session's search_path.

    A database migrated before the schema existed keeps its tables in `public` until
    migration 0007 moves them; its versions table moves first so that its history is found,
    and `public` stays on the path so that the older migrations still find their tables."""
    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    legacy = await conn.fetchval(
        "SELECT to_regclass('public.schema_migrations') IS NOT NULL "
        f"AND to_regclass('{SCHEMA}.schema_migrations') IS NULL"
    )
    if legacy:
        await conn.execute(f"ALTER TABLE public.schema_migrations SET SCHEMA {SCHEMA}")
    await conn.execute(f"SET search_path TO {SCHEMA}, public")


async def migrate(conn: asyncpg.Connection) -> list[int]:
    """Apply pending migrations; returns the versions applied by this call. Leaves the
    connection's search_path on the orchestrator's schema."""
    applied_now: list[int] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
        await _use_schema(conn)
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for m in migrations():
            if m.version in done:
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    m.version,
                    m.name,
                )
            applied_now.append(m.version)
            log.info("migration_applied", version=m.version, name=m.name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return applied_now
