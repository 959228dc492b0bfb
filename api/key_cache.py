"""Verified API keys kept in memory for a few seconds, so a request does not cost a
Postgres round trip to find its key.

A key that stops being valid must be refused at once, in every API process:
- a revoke in this process empties the cache before its answer leaves
  (`AccessRepository.on_key_revoked`);
- a revoke anywhere else (another API process, `backfill keys revoke`, SQL by hand) fires a
  trigger (migration 0013) whose NOTIFY reaches every process's listener at commit, and the
  listener empties the cache;
- while the listening connection is down the cache is not used at all (every request asks
  Postgres), since a NOTIFY could be missed then;
- a lookup that started before a change does not store what it read (a generation
  counter), so a revoke racing a first request cannot leave the revoked key cached;
- an entry lives `TTL_SECONDS` at most, and never past the key's own expiry.
Unknown or refused keys are never cached: every failed attempt is checked in Postgres."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from aiohttp import web

from api.keys import ACCESS_KEY
from orchestrator.access import AccessService
from orchestrator.domain.keys import Principal, token_hash
from orchestrator.storage.access import KEY_CHANGES_CHANNEL, AccessRepository
from orchestrator.storage.notifications import ChannelListener

TTL_SECONDS = 5.0
# Keys a process keeps; past that the oldest entry goes (a process rarely sees this many).
MAX_KEYS = 1024
# A key expiring sooner than this after it would leave the cache is not cached: its expiry
# stays a question for Postgres's clock, not this process's.
_EXPIRY_MARGIN_SECONDS = 2.0


class KeyCache:
    def __init__(
        self, access: AccessService, repo: AccessRepository, dsn: str, *, ttl: float = TTL_SECONDS
    ) -> None:
        self._access = access
        self._repo = repo
        self._ttl = ttl
        self._entries: dict[bytes, tuple[Principal, float]] = {}
        self._generation = 0
        # Every notification, and every loss of the connection (a notification may have
        # been missed), empties the cache.
        self._listener = ChannelListener(
            dsn, KEY_CHANGES_CHANNEL, self.clear, failure_event="api_key_cache_listen_failed"
        )
        repo.on_key_revoked.append(self.clear)

    @property
    def listening(self) -> bool:
        return self._listener.listening

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()

    async def authenticate(self, token: str | None) -> Principal:
        if not token or not self.listening:
            return await self._access.authenticate(token)
        digest = token_hash(token)
        entry = self._entries.get(digest)
        now = time.monotonic()
        if entry is not None:
            principal, until = entry
            if now < until:
                return principal
            del self._entries[digest]
        generation = self._generation
        principal = await self._access.authenticate(token)
        until = now + self._ttl
        stored = await self._repo.key_by_prefix(principal.prefix)
        if stored is not None and stored.expires_at is not None:
            left = stored.expires_at.timestamp() - time.time() - _EXPIRY_MARGIN_SECONDS
            until = min(until, now + left)
        if generation == self._generation and until > now and self.listening:
            if len(self._entries) >= MAX_KEYS:
                del self._entries[next(iter(self._entries))]
            self._entries[digest] = (principal, until)
        return principal

    async def keep_listening(self) -> None:
        """Holds the listening connection for the life of the process, reconnecting when it
        drops; the cache is off whenever it is down."""
        await self._listener.keep_listening()

    async def close(self) -> None:
        await self._listener.close()
        self.clear()


KEY_CACHE = web.AppKey("key_cache", KeyCache)


def install(app: web.Application, access: AccessService, dsn: str) -> None:
    """Caches `access`'s keys for `app`'s requests. A test double of the access service has
    no key table to listen on, so it gets no cache: every request asks it."""
    repo = getattr(access, "repo", None)
    if not isinstance(repo, AccessRepository):
        return
    app[KEY_CACHE] = KeyCache(access, repo, dsn)
    app.cleanup_ctx.append(_listening)


async def _listening(app: web.Application) -> AsyncIterator[None]:
    cache = app[KEY_CACHE]
    task = asyncio.create_task(cache.keep_listening(), name="api_key_cache_listener")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await cache.close()


async def authenticate(app: web.Application, token: str | None) -> Principal:
    """The key behind `token`, from the cache when `app` has one."""
    cache = app.get(KEY_CACHE)
    if cache is None:
        return await app[ACCESS_KEY].authenticate(token)
    return await cache.authenticate(token)
