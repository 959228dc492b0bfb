"""The `demo` source that `backfill up` sets up on first start, so the README walkthrough
runs with two commands: a login role of its own on the orchestrator's database, with rights
on the `public` schema only (never on the orchestrator's schema, never a superuser nor a
member of the server file and program roles), granted to team 1.

The same database rather than one of its own: the walkthrough's `psql backfill` keeps
working, no CREATEDB right is needed, and the boundary is what it is for every source, the
role's privileges, which the start-up role check verifies."""

from __future__ import annotations

import re
import secrets
import sys
from typing import Any, TextIO
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import structlog

from orchestrator.domain.grants import SourceGrant
from orchestrator.settings import Settings, SourceConfig
from orchestrator.storage.grants import GrantRepository

log = structlog.get_logger(__name__)

DEMO_SOURCE = "demo"
DEMO_TEAM = 1
DEMO_TIMEOUT_MS = 30_000
_LOCK = 7_362_910_115  # next to the migration lock's number; any constant works


def demo_role_name(database: str) -> str:
    # One per orchestrator database: roles are cluster-wide.
    return re.sub(r"[^a-z0-9_]", "_", f"{database.lower()}_demo")[:63]


def _dsn_as(dsn: str, user: str, password: str) -> str:
    parts = urlsplit(dsn)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(
        parts._replace(netloc=f"{quote(user, safe='')}:{quote(password, safe='')}@{host}")
    )


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def role_sql(role: str, password: str, database: str, owner: str) -> list[str]:
    """What makes the demo role: also the recipe printed when this role may not run it."""
    r, db, o = _ident(role), _ident(database), _ident(owner)
    literal = password.replace("'", "''")
    return [
        f"CREATE ROLE {r} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '{literal}'",
        f"GRANT CONNECT ON DATABASE {db} TO {r}",
        f"GRANT USAGE ON SCHEMA public TO {r}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {r}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {r}",
        # Tables made later by the orchestrator's role (the walkthrough's psql) too.
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA public "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {r}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA public "
        f"GRANT USAGE, SELECT ON SEQUENCES TO {r}",
    ]


async def ensure_demo_source(
    settings: Settings, conn: asyncpg.Connection[Any], *, out: TextIO = sys.stderr
) -> Settings:
    """`settings` with the demo source added (made on first start when this role may create
    roles); unchanged when a source named demo is configured, or when it cannot be made, in
    which case `out` says what to run. `conn` is on the orchestrator's schema."""
    if not settings.demo_source or DEMO_SOURCE in settings.sources:
        return settings
    dsn = settings.database_url.get_secret_value()
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
        row = await conn.fetchrow("SELECT role, password FROM demo_source")
        if row is None:
            me = await conn.fetchrow(
                "SELECT current_database(), current_user, rolcreaterole OR rolsuper "
                "FROM pg_roles WHERE rolname = current_user"
            )
            assert me is not None
            database, owner, may = me
            role = demo_role_name(database)
            password = secrets.token_urlsafe(24)
            if not may:
                _explain(out, role, database, owner)
                return settings
            if await conn.fetchval("SELECT to_regrole($1) IS NOT NULL", role):
                # Left by an earlier database of the same name: take it over afresh.
                await conn.execute(f"ALTER ROLE {_ident(role)} PASSWORD '{password}'")
                statements = role_sql(role, password, database, owner)[1:]
            else:
                statements = role_sql(role, password, database, owner)
            for statement in statements:
                await conn.execute(statement)
            await conn.execute(
                "INSERT INTO demo_source (role, password) VALUES ($1, $2)", role, password
            )
            await GrantRepository(conn).put(  # type: ignore[arg-type]
                SourceGrant(
                    team_id=DEMO_TEAM,
                    source=DEMO_SOURCE,
                    read_tables=["public.*"],
                    write_tables=["public.*"],
                    sql_handler=True,
                    statement_timeout_ms=DEMO_TIMEOUT_MS,
                )
            )
            log.info("demo_source_created", role=role, team=DEMO_TEAM)
        else:
            role, password = row["role"], row["password"]
    return settings.with_source(DEMO_SOURCE, SourceConfig(dsn=_dsn_as(dsn, role, password)))


async def stored_demo_source(settings: Settings, conn: asyncpg.Connection[Any]) -> Settings:
    """`settings` with the demo source if an earlier start made it; never makes it (for the
    operator's commands, which should not set anything up as a side effect)."""
    if not settings.demo_source or DEMO_SOURCE in settings.sources:
        return settings
    row = await conn.fetchrow("SELECT role, password FROM demo_source")
    if row is None:
        return settings
    dsn = _dsn_as(settings.database_url.get_secret_value(), row["role"], row["password"])
    return settings.with_source(DEMO_SOURCE, SourceConfig(dsn=dsn))


def _explain(out: TextIO, role: str, database: str, owner: str) -> None:
    recipe = ";\n    ".join(role_sql(role, "CHOOSE-A-PASSWORD", database, owner))
    print(
        f"\nNo source named {DEMO_SOURCE!r} is configured, and this database role ({owner}) "
        "may not create roles, so none was set up.\nTo have one, run as a role that may:\n\n"
        f"    {recipe};\n\n"
        "then start with\n\n"
        f'    BACKFILL_SOURCES=\'{{"{DEMO_SOURCE}": "postgresql://{role}:CHOOSE-A-PASSWORD@'
        f"HOST:5432/{database}\"}}'\n\n"
        "and grant it: backfill sources grant demo --team 1 --read 'public.*' "
        "--write 'public.*' --sql\n",
        file=out,
        flush=True,
    )
