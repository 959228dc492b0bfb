"""The orchestrator's own connection pool: jsonb as Python objects, fail fast on open."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg

from orchestrator import jsoncodec
from orchestrator.errors import DatabaseUnavailable
from orchestrator.storage.migrate import SCHEMA

if TYPE_CHECKING:
    Pool: TypeAlias = asyncpg.Pool[asyncpg.Record]
    Conn: TypeAlias = (
        asyncpg.Connection[asyncpg.Record] | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]
    )
else:
    Pool = asyncpg.Pool
    Conn = asyncpg.Connection


async def _init(conn: asyncpg.Connection[Any]) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, encoder=jsoncodec.dumps_str, decoder=jsoncodec.loads, schema="pg_catalog"
        )


async def _keep_session(conn: asyncpg.Connection[Any]) -> None:
    """The orchestrator's connections hold no session state between uses (the outbox
    listener removes its listener before release), so the default reset query that asyncpg
    sends on every release is a round trip for nothing."""


# Bounds on waiting for Postgres: an unreachable database is an error in seconds (the API
# answers 503), never a request that hangs.
CONNECT_TIMEOUT_SECONDS = 5.0
COMMAND_TIMEOUT_SECONDS = 60.0


_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable (ConnectionError is one)
    TimeoutError,  # connect or acquire took too long
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,  # "connection is closed" and the like
    asyncpg.CannotConnectNowError,  # starting up or shutting down
    asyncpg.AdminShutdownError,
    asyncpg.TooManyConnectionsError,
)
# The API tells these apart by the type below it, without importing the driver.
for _failure in _UNAVAILABLE:
    DatabaseUnavailable.register(_failure)


def is_unavailable(exc: BaseException) -> bool:
    """The database could not be reached or dropped the connection (as opposed to refusing a
    statement): worth answering 503 and retrying an idempotent operation."""
    return isinstance(exc, _UNAVAILABLE)


async def open_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 10, idle_in_transaction: float | None = None
) -> Pool:
    """`idle_in_transaction` (seconds): Postgres ends a session that sits in an open
    transaction longer, so a process frozen mid-transaction (a SIGSTOP, a long pause) does
    not hold a backfill's row lock, and with it every claim, checkpoint and cancel of that
    backfill, for as long as it is frozen."""
    # The orchestrator's tables live in their own schema; its SQL names them unqualified.
    server_settings = {"application_name": "backfill-orchestrator", "search_path": SCHEMA}
    if idle_in_transaction is not None:
        server_settings["idle_in_transaction_session_timeout"] = str(
            max(1, int(idle_in_transaction * 1000))
        )
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init,
        reset=_keep_session,
        timeout=CONNECT_TIMEOUT_SECONDS,
        command_timeout=COMMAND_TIMEOUT_SECONDS,
        # Statements are prepared per connection; a bounded cache keeps memory flat.
        statement_cache_size=256,
        server_settings=server_settings,
    )
    assert pool is not None
    async with pool.acquire() as conn:
        await conn.fetchval("SELECT 1")
    return pool
