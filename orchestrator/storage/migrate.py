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


async def migrate(conn: asyncpg.Connection) -> list[int]:
    """Apply pending migrations; returns the versions applied by this call."""
    applied_now: list[int] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
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
