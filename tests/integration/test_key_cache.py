"""The API's cache of verified keys: a key is looked up once per few seconds, yet a revoked
or expired key is refused at once, wherever it was revoked."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.key_cache import KEY_CACHE, KeyCache
from orchestrator.context import Context
from orchestrator.domain.keys import Principal, Scope, token_hash

pytestmark = pytest.mark.integration


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def listening(client: Any) -> KeyCache:
    cache: KeyCache = client.app[KEY_CACHE]
    deadline = time.monotonic() + 10
    while not cache.listening:
        assert time.monotonic() < deadline, "the key cache never started listening"
        await asyncio.sleep(0.05)
    return cache


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
    deadline = time.monotonic() + 2
    while cache._generation == generation:
        assert time.monotonic() < deadline, "the revoke's NOTIFY never emptied the cache"
        await asyncio.sleep(0.005)
    assert await status(client, key) == 401


async def test_touching_a_key_does_not_empty_the_cache(client: Any, ctx: Context, db: Any) -> None:
    cache = await listening(client)
    key, info = await ctx.access.create_key(1, {Scope.READ})
    assert await status(client, key) == 200
    generation = cache._generation
    await db.execute(
        "UPDATE orchestrator.api_keys SET last_used_at = now() WHERE prefix = $1", info.prefix
    )
    await asyncio.sleep(0.2)
    assert cache._generation == generation


async def test_a_key_about_to_expire_is_not_kept_past_its_expiry(
    client: Any, ctx: Context
) -> None:
    await listening(client)
    key, _ = await ctx.access.create_key(
        1, {Scope.READ}, expires_at=datetime.now(UTC) + timedelta(seconds=1.5)
    )
    assert await status(client, key) == 200
    await asyncio.sleep(1.6)
    assert await status(client, key) == 401


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
