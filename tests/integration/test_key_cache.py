"""The API's cache of verified keys: a key is looked up once per few seconds, yet a revoked
or expired key is refused at once, wherever it was revoked."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.key_cache import KEY_CACHE, TTL_SECONDS, KeyCache
from orchestrator.context import Context
from orchestrator.domain.keys import Principal, Scope, token_hash
from tests.helpers import wait_until

pytestmark = pytest.mark.integration


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def listening(client: Any) -> KeyCache:
    cache: KeyCache = client.app[KEY_CACHE]

    async def probe() -> bool:
        return cache.listening

    await wait_until(probe, within=10, what="the key cache listening")
    return cache


async def emptied(cache: KeyCache, generation: int) -> None:
    async def probe() -> bool:
        return cache._generation != generation

    await wait_until(probe, within=2, what="a NOTIFY emptying the key cache")


async def status(client: Any, token: str) -> int:
    r = await client.get("/v1/whoami", headers=bearer(token))
    await r.read()
    return int(r.status)


async def test_a_key_revoked_through_the_api_is_refused_by_the_next_request(
    client: Any, ctx: Context
) -> None:
    cache = await listening(client)
    key, info = await ctx.access.create_key(1, {Scope.READ})
    assert await status(client, key) == 200
    assert token_hash(key) in cache._entries
    assert await status(client, key) == 200  # now served from the cache
    r = await client.delete(f"/v1/keys/{info.prefix}")
    assert r.status in (200, 204), await r.text()
    assert await status(client, key) == 401


async def test_a_key_revoked_by_another_process_is_refused_as_the_notify_arrives(
    client: Any, ctx: Context, db: Any
) -> None:
    cache = await listening(client)
    key, info = await ctx.access.create_key(1, {Scope.READ})
    assert await status(client, key) == 200
    generation = cache._generation
    # As `backfill keys revoke` (or SQL by hand) does it: not through this process.
    await db.execute(
        "UPDATE orchestrator.api_keys SET revoked_at = now() WHERE prefix = $1", info.prefix
    )
    await emptied(cache, generation)
    assert await status(client, key) == 401


async def test_touching_a_key_does_not_empty_the_cache(client: Any, ctx: Context, db: Any) -> None:
    cache = await listening(client)
    key, info = await ctx.access.create_key(1, {Scope.READ})
    assert await status(client, key) == 200
    _, other = await ctx.access.create_key(1, {Scope.READ})
    generation = cache._generation
    await db.execute(
        "UPDATE orchestrator.api_keys SET last_used_at = now() WHERE prefix = $1", info.prefix
    )
    # Notifications arrive in commit order: once the revoke's has, a touch's would have too.
    await db.execute(
        "UPDATE orchestrator.api_keys SET revoked_at = now() WHERE prefix = $1", other.prefix
    )
    await emptied(cache, generation)
    assert cache._generation == generation + 1


async def test_a_key_is_never_kept_past_its_expiry(client: Any, ctx: Context) -> None:
    cache = await listening(client)
    soon, _ = await ctx.access.create_key(
        1, {Scope.READ}, expires_at=datetime.now(UTC) + timedelta(seconds=1.5)
    )
    later, _ = await ctx.access.create_key(
        1, {Scope.READ}, expires_at=datetime.now(UTC) + timedelta(hours=1)
    )
    assert await status(client, soon) == 200
    assert await status(client, later) == 200
    # Expiring within the cache's lifetime (and margin): asked of Postgres every time.
    assert token_hash(soon) not in cache._entries
    _, until = cache._entries[token_hash(later)]
    assert until <= time.monotonic() + TTL_SECONDS


async def test_without_its_listener_the_cache_asks_postgres_every_time(
    client: Any, ctx: Context, db: Any
) -> None:
    cache = await listening(client)
    key, info = await ctx.access.create_key(1, {Scope.READ})
    assert await status(client, key) == 200
    await cache.close()  # as if the listening connection had dropped
    assert not cache.listening
    await db.execute(
        "UPDATE orchestrator.api_keys SET revoked_at = now() WHERE prefix = $1", info.prefix
    )
    assert await status(client, key) == 401


async def test_a_lookup_that_raced_a_revoke_is_not_cached(client: Any, ctx: Context) -> None:
    cache = await listening(client)
    key, _ = await ctx.access.create_key(1, {Scope.READ})
    real = ctx.access.authenticate

    async def revoked_meanwhile(token: str | None) -> Principal:
        principal = await real(token)
        cache.clear()  # a revoke's NOTIFY arriving while the key was being read
        return principal

    cache._access.authenticate = revoked_meanwhile  # type: ignore[method-assign]
    try:
        assert await status(client, key) == 200
    finally:
        cache._access.authenticate = real  # type: ignore[method-assign]
    assert cache._entries == {}
