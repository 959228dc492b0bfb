"""One asyncpg pool per named source, opened on first use. API users name a source; the DSN
stays in settings and never appears in a response or a log line.

A source's pool is shared by every team granted that source, so a connection goes back
clean: whatever a team's statement set (a role, a setting, a temporary table that would
shadow another team's table, an advisory lock) is undone on release."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import structlog

from orchestrator.errors import SourceError, SourceRefused
from orchestrator.settings import Settings
from orchestrator.sources.intervals import use_exact_intervals
from orchestrator.sources.roles import role_violations

log = structlog.get_logger(__name__)

# RESET ALL leaves the role alone (it is not reset by it), hence RESET ROLE first.
_RESET = (
    "RESET ROLE; RESET ALL; CLOSE ALL; UNLISTEN *; SELECT pg_advisory_unlock_all(); "
    "DISCARD TEMP; DISCARD SEQUENCES"
)


async def _reset(conn: asyncpg.Connection[Any]) -> None:
    await conn.execute(_RESET)


def _millis(settings: Settings) -> str:
    return str(int(settings.source_statement_timeout_seconds * 1000))


class SourcePools:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._pools: dict[str, asyncpg.Pool[Any]] = {}
        self._lock = asyncio.Lock()
        # Per source: "ok", "unsafe", "refused" or "unreachable", as last found.
        self.states: dict[str, str] = {}

    def known(self, name: str) -> bool:
        return name in self._settings.sources

    async def get(self, name: str) -> asyncpg.Pool[Any]:
        pool = self._pools.get(name)
        if pool is not None:
            return pool
        async with self._lock:
            pool = self._pools.get(name)
            if pool is not None:
                return pool
            config = self._settings.sources.get(name)
            if config is None:
                raise SourceError(f"source {name!r} is not configured")
            try:
                pool = await asyncpg.create_pool(
                    config.dsn.get_secret_value(),
                    min_size=0,
                    max_size=self._settings.db_pool_max,
                    init=use_exact_intervals,  # months stay months (asyncpg folds them into days)
                    reset=_reset,
                    # A startup parameter, so RESET ALL returns to it rather than dropping it.
                    server_settings={"statement_timeout": _millis(self._settings)},
                )
            except (OSError, asyncpg.PostgresError):
                self.states[name] = "unreachable"
                raise
            assert pool is not None
            await self._vet(name, pool, unsafe=config.unsafe)
            self._pools[name] = pool
            return pool

    async def _vet(self, name: str, pool: asyncpg.Pool[Any], *, unsafe: bool) -> None:
        async with pool.acquire() as conn:
            found = await role_violations(conn)
        if not found:
            self.states[name] = "ok"
            return
        if unsafe:
            self.states[name] = "unsafe"
            log.warning("source_unsafe", source=name, violations=found)
            return
        self.states[name] = "refused"
        log.error("source_refused", source=name, violations=found)
        await pool.close()
        raise SourceRefused(
            f"source {name!r} is refused: its database role breaks the least-privilege rules "
            "(the operator's log says which)"
        )

    async def check_all(self) -> dict[str, str]:
        """Connects to every configured source and vets its role: on start, so a bad role is
        in the log before anyone uses it. A source that cannot be reached now is tried again
        on first use."""
        for name in self._settings.source_names():
            try:
                await self.get(name)
            except SourceRefused:
                pass
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("source_unreachable", source=name, error=type(exc).__name__)
        return dict(self.states)

    async def close(self) -> None:
        pools, self._pools = self._pools, {}
        for pool in pools.values():
            await pool.close()
