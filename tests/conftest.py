"""Fixtures against the real Postgres and RabbitMQ.

Isolation: one template database is migrated per session and each test gets its own copy
(`CREATE DATABASE … TEMPLATE`); each test gets its own exchange and queue names (a random
amqp_prefix), deleted afterwards. Timings are short so leases, sweeps and retries happen
within a test's deadline."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aio_pika
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from orchestrator.context import Context, open_context
from orchestrator.domain.grants import SourceGrant
from orchestrator.domain.keys import ALL_SCOPES
from orchestrator.probes import ContextProbes
from orchestrator.settings import Settings
from orchestrator.storage.migrate import migrate
from workers.process import Worker

PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://root@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
_BASE = PG_ADMIN.rsplit("/", 1)[0]


def db_url(name: str) -> str:
    return f"{_BASE}/{name}"


# The login role of the source `main` that every test's settings configure, as an operator
# would: least privilege on the test database's `public` schema, nothing on the
# orchestrator's. Roles are cluster-wide, hence the pid in the name.
SOURCE_ROLE = f"bf_src_{os.getpid()}"


def as_role(dsn: str, role: str) -> str:
    """`dsn` logging in as `role` (Postgres here trusts local connections: no password)."""
    scheme, rest = dsn.split("://", 1)
    return f"{scheme}://{role}@{rest.rpartition('@')[2]}"


def source_dsn(database: str) -> str:
    return as_role(database, SOURCE_ROLE)


# What team 1 holds on `main` in every test database (it rides on the template).
MAIN_GRANT_SQL = """
INSERT INTO orchestrator.source_grants (team_id, source, read_tables, write_tables, sql_handler)
VALUES (1, 'main', '{public.*}', '{public.*}', true)
"""


async def grant_public(conn: asyncpg.Connection[Any], role: str) -> None:
    """What the test source role may do in this database: the tables of `public`, those that
    root makes later included."""
    for statement in (
        f'GRANT USAGE ON SCHEMA public TO "{role}"',
        f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"',
        f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{role}"',
        "ALTER DEFAULT PRIVILEGES FOR ROLE root IN SCHEMA public "
        f'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "{role}"',
        "ALTER DEFAULT PRIVILEGES FOR ROLE root IN SCHEMA public "
        f'GRANT USAGE, SELECT ON SEQUENCES TO "{role}"',
    ):
        await conn.execute(statement)


async def create_login_role(admin: asyncpg.Connection[Any], role: str, options: str = "") -> None:
    """Idempotent: a role left by an earlier run of the same name is reused."""
    with contextlib.suppress(asyncpg.DuplicateObjectError):
        await admin.execute(f'CREATE ROLE "{role}" LOGIN {options}')


async def drop_role(admin: asyncpg.Connection[Any], role: str) -> None:
    # It fails while a database that outlived the session still grants it something.
    with contextlib.suppress(asyncpg.PostgresError):
        await admin.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture(scope="session", autouse=True)
def _clean_environment() -> Iterator[None]:
    # Settings read BACKFILL_* from the environment; a developer's shell must not leak in.
    saved = {k: v for k, v in os.environ.items() if k.startswith("BACKFILL_")}
    for k in saved:
        del os.environ[k]
    yield
    os.environ.update(saved)


@pytest.fixture(scope="session")
async def template_db() -> AsyncIterator[str]:
    name = f"bf_template_{os.getpid()}"
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await create_login_role(admin, SOURCE_ROLE, "NOSUPERUSER NOCREATEDB NOCREATEROLE")
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
        conn = await asyncpg.connect(db_url(name))
        try:
            await migrate(conn)
            await grant_public(conn, SOURCE_ROLE)
            await conn.execute(MAIN_GRANT_SQL)
        finally:
            await conn.close()
        yield name
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await drop_role(admin, SOURCE_ROLE)
    finally:
        await admin.close()


async def copy_template(template_db: str) -> str:
    """A fresh copy of the migrated template; its name."""
    name = f"bf_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    finally:
        await admin.close()
    return name


async def drop_database(name: str) -> None:
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def database(template_db: str) -> AsyncIterator[str]:
    """A fresh, migrated database for this test; its DSN."""
    name = await copy_template(template_db)
    yield db_url(name)
    await drop_database(name)


def make_settings(database: str, prefix: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database,
        "amqp_url": AMQP_URL,
        "amqp_prefix": prefix,
        "http_port": 0,
        "lease_seconds": 5.0,
        "heartbeat_seconds": 0.5,
        "reaper_seconds": 0.3,
        "dispatch_sweep_seconds": 0.3,
        "outbox_poll_seconds": 0.2,
        "retry_base_seconds": 0.05,
        "retry_max_seconds": 0.2,
        "redispatch_after_seconds": 10.0,
        "shutdown_grace_seconds": 5.0,
        "log_json": True,
        "demo_source": False,
    }
    # The source `main`: the test database through a least-privilege role, granted to team 1
    # (on the template) as an operator would; sources a test names come on top.
    sources = {"main": source_dsn(database), **overrides.pop("sources", {})}
    values.update(overrides)
    values["sources"] = sources
    return Settings(**values)


# The older name, kept for tests that import it; not a test itself.
test_settings = make_settings
test_settings.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A broker namespace of this test's own; its exchanges and queues go afterwards."""
    name = f"bftest-{uuid.uuid4().hex[:10]}"
    yield name
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        for queue in ("commands", "runs", "dead"):
            await channel.queue_delete(f"{name}.{queue}")
        for exchange in (name, f"{name}.dead"):
            await channel.exchange_delete(exchange)
    finally:
        await connection.close()


@pytest.fixture
def settings(database: str, prefix: str) -> Settings:
    return make_settings(database, prefix)


@pytest.fixture
async def ctx(settings: Settings) -> AsyncIterator[Context]:
    async with open_context(settings) as context:
        yield context


class RunningWorker:
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.task: Any = None

    async def start(self) -> None:
        import asyncio

        self.task = asyncio.create_task(self.worker.run())

    async def stop(self) -> None:
        import asyncio

        self.worker.stop()
        if self.task is not None:
            await asyncio.wait_for(self.task, timeout=30)


@pytest.fixture
async def worker(ctx: Context) -> AsyncIterator[RunningWorker]:
    running = RunningWorker(Worker(ctx))
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
async def token(ctx: Context) -> str:
    """A key of team 1 with every scope, as the bootstrap makes."""
    created, _ = await ctx.access.create_key(1, set(ALL_SCOPES), name="tests")
    return created


@pytest.fixture
async def client(
    ctx: Context, worker: RunningWorker, token: str
) -> AsyncIterator[TestClient[Any, Any]]:
    """The API over the real service, with a worker consuming in the same process; requests
    carry the `token` fixture's key unless a test sends its own Authorization header."""
    app = create_app(ctx.settings, ctx.usecases, ContextProbes(ctx, consuming=True), ctx.access)
    headers = {"Authorization": f"Bearer {token}"}
    async with TestClient(TestServer(app), headers=headers) as test_client:
        yield test_client


async def grant_source(
    ctx: Context,
    team_id: int,
    source: str = "main",
    *,
    read: tuple[str, ...] = ("public.*",),
    write: tuple[str, ...] = ("public.*",),
    sql: bool = True,
    statement_timeout_ms: int = 60_000,
) -> SourceGrant:
    """What an operator does with `backfill sources grant`."""
    return await ctx.usecases.grants.repo.put(
        SourceGrant(
            team_id=team_id,
            source=source,
            read_tables=list(read),
            write_tables=list(write),
            sql_handler=sql,
            statement_timeout_ms=statement_timeout_ms,
        )
    )


@pytest.fixture
async def db(ctx: Context) -> AsyncIterator[asyncpg.Connection[Any]]:
    """A plain connection to the test database (as root), for setting up source tables and
    checking. Tables it makes go to `public`; the orchestrator's are found by name too."""
    conn = await asyncpg.connect(
        ctx.settings.database_url.get_secret_value(),
        server_settings={"search_path": "public, orchestrator"},
    )
    yield conn
    await conn.close()
