"""One asyncpg pool per named source, opened on first use. API users name a source; the DSN
stays in settings and never appears in a response or a log line."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from orchestrator.errors import SourceError
from orchestrator.settings import Settings
from orchestrator.sinks.encoding import use_exact_intervals


def _millis(settings: Settings) -> str:
    return str(int(settings.source_statement_timeout_seconds * 1000))


class SourcePools:
    def __init__(self, settings: Settings) -> None:
        # "main" gets a pool of its own too: the orchestrator's pool decodes jsonb into
        # Python objects, while sources must pass values through untouched.
        self._settings = settings
        self._pools: dict[str, asyncpg.Pool[Any]] = {}
        self._lock = asyncio.Lock()

    def known(self, name: str) -> bool:
        return name in self._settings.source_names()

    async def get(self, name: str) -> asyncpg.Pool[Any]:
        pool = self._pools.get(name)
        if pool is not None:
            return pool
        async with self._lock:
            pool = self._pools.get(name)
            if pool is not None:
                return pool
            dsn = self._settings.source_dsn(name)
            if dsn is None:
                known = ", ".join(self._settings.source_names())
                raise SourceError(f"unknown source {name!r}; configured: {known}")
            pool = await asyncpg.create_pool(
                dsn,
                min_size=0,
                max_size=self._settings.db_pool_max,
                init=use_exact_intervals,  # months stay months (asyncpg folds them into days)
                server_settings={"statement_timeout": _millis(self._settings)},
            )
            assert pool is not None
            self._pools[name] = pool
            return pool

    async def close(self) -> None:
        pools, self._pools = self._pools, {}
        for pool in pools.values():
            await pool.close()
