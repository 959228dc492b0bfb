"""Teams, API keys and rate-limit counters."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from orchestrator.domain.keys import KeyInfo
from orchestrator.errors import Conflict, NotFound
from orchestrator.storage.database import Pool
from orchestrator.storage.queries import q

# Seconds between two last_used_at updates of a key sent by one process.
_TOUCH_EVERY = 30.0

# Postgres channel a trigger (migration 0013) notifies when a key may have become invalid.
KEY_CHANGES_CHANNEL = "backfill_api_keys"


@dataclass(frozen=True)
class StoredKey:
    id: int
    team_id: int
    prefix: str
    secret_hash: bytes
    scopes: list[str]
    expires_at: datetime | None
    revoked_at: datetime | None


class AccessRepository:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self._touched: dict[int, float] = {}
        # Called after this process revoked a key: a cache of verified keys in this process
        # forgets them before the revoke's answer leaves, without waiting for the NOTIFY.
        self.on_key_revoked: list[Callable[[], None]] = []

    async def create_team(self, name: str) -> tuple[int, str]:
        try:
            row = await self.pool.fetchrow(q("insert_team"), name)
        except asyncpg.UniqueViolationError:
            raise Conflict(f"a team named {name!r} already exists") from None
        assert row is not None
        return row["id"], row["name"]

    async def list_teams(self) -> list[tuple[int, str]]:
        return [(r["id"], r["name"]) for r in await self.pool.fetch(q("list_teams"))]

    async def team_exists(self, team_id: int) -> bool:
        return bool(
            await self.pool.fetchval("SELECT EXISTS (SELECT 1 FROM teams WHERE id = $1)", team_id)
        )

    async def insert_key(
        self,
        team_id: int,
        prefix: str,
        secret_hash: bytes,
        scopes: list[str],
        name: str | None,
        expires_at: datetime | None,
    ) -> KeyInfo:
        try:
            row = await self.pool.fetchrow(
                q("insert_key"), team_id, prefix, secret_hash, scopes, name, expires_at
            )
        except asyncpg.ForeignKeyViolationError:
            raise NotFound(f"team {team_id} not found") from None
        assert row is not None
        return KeyInfo.model_validate(dict(row))

    async def key_by_prefix(self, prefix: str) -> StoredKey | None:
        row = await self.pool.fetchrow(q("key_by_prefix"), prefix)
        if row is None:
            return None
        return StoredKey(
            id=row["id"],
            team_id=row["team_id"],
            prefix=row["prefix"],
            secret_hash=bytes(row["secret_hash"]),
            scopes=list(row["scopes"]),
            expires_at=row["expires_at"],
            revoked_at=row["revoked_at"],
        )

    async def list_keys(self, team_id: int | None) -> list[KeyInfo]:
        return [
            KeyInfo.model_validate(dict(r)) for r in await self.pool.fetch(q("list_keys"), team_id)
        ]

    async def revoke_key(self, prefix: str, team_id: int | None) -> bool:
        revoked = await self.pool.fetchval(q("revoke_key"), prefix, team_id) is not None
        if revoked:
            for forget in self.on_key_revoked:
                forget()
        return revoked

    async def count_keys(self) -> int:
        return int(await self.pool.fetchval(q("count_keys")))

    async def touch_key(self, key_id: int) -> None:
        # The statement writes at most once a minute per key; remembering when this process
        # last sent it spares the round trip on every other request of a busy key.
        now = time.monotonic()
        if now - self._touched.get(key_id, -_TOUCH_EVERY) < _TOUCH_EVERY:
            return
        await self.pool.execute(q("touch_key"), key_id)
        self._touched[key_id] = now

    async def hit_rate_limit(self, key_id: int, period: float) -> tuple[int, float]:
        row = await self.pool.fetchrow(q("hit_rate_limit"), key_id, period)
        assert row is not None
        return int(row["hits"]), float(row["reset_in"])

    async def prune_rate_limits(self) -> None:
        await self.pool.execute(q("prune_rate_limits"))

    async def now(self) -> datetime:
        return await self.pool.fetchval("SELECT now()")  # type: ignore[no-any-return]
