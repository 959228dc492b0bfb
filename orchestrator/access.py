"""Who may call: authenticating keys, checking scopes, counting requests per key, and the
keys and teams operators manage."""

from __future__ import annotations

from datetime import datetime

import structlog

from orchestrator.domain.keys import (
    ALL_SCOPES,
    KeyInfo,
    Principal,
    Scope,
    hash_matches,
    new_token,
    token_hash,
    token_prefix,
)
from orchestrator.errors import Forbidden, NotFound, RateLimited, Unauthorized, ValidationFailed
from orchestrator.settings import Settings
from orchestrator.storage.access import AccessRepository

log = structlog.get_logger(__name__)

MIN_BOOTSTRAP_TOKEN = 32


class AccessService:
    def __init__(self, settings: Settings, repo: AccessRepository) -> None:
        self.settings = settings
        self.repo = repo

    async def authenticate(self, token: str | None) -> Principal:
        """The key behind a bearer token, or Unauthorized. Unknown, wrong, expired and
        revoked keys all get the same answer, so a caller learns nothing from it."""
        if not token:
            raise Unauthorized("missing bearer token: send 'Authorization: Bearer <key>'")
        stored = await self.repo.key_by_prefix(token_prefix(token))
        if stored is None or not hash_matches(token, stored.secret_hash):
            raise Unauthorized("invalid API key")
        if stored.revoked_at is not None:
            raise Unauthorized("invalid API key")
        if stored.expires_at is not None and stored.expires_at <= await self.repo.now():
            raise Unauthorized("invalid API key")
        await self.repo.touch_key(stored.id)
        return Principal(
            key_id=stored.id,
            team_id=stored.team_id,
            prefix=stored.prefix,
            scopes=frozenset(Scope(s) for s in stored.scopes),
        )

    @staticmethod
    def require(principal: Principal, scope: Scope) -> None:
        if not principal.can(scope):
            raise Forbidden(f"this key lacks the {scope.value!r} scope")

    async def count_request(self, principal: Principal) -> tuple[int, int]:
        """Counts the request against the key's limit; returns (limit, remaining) or raises
        RateLimited. Counters live in Postgres, so the limit holds across API processes."""
        limit = self.settings.rate_limit_requests
        if limit <= 0:
            return 0, 0
        hits, reset_in = await self.repo.hit_rate_limit(
            principal.key_id, self.settings.rate_limit_period_seconds
        )
        if hits > limit:
            raise RateLimited(
                f"more than {limit} requests in {self.settings.rate_limit_period_seconds:g}s "
                "for this key",
                limit=limit,
                retry_after=max(1, int(reset_in + 0.999)),
            )
        return limit, limit - hits

    # ------------------------------------------------------------------ management

    async def create_key(
        self,
        team_id: int,
        scopes: set[Scope],
        *,
        name: str | None = None,
        expires_at: datetime | None = None,
        token: str | None = None,
    ) -> tuple[str, KeyInfo]:
        """Returns the token (the only time it is shown) and the stored key."""
        if not scopes:
            raise ValidationFailed(
                "a key needs at least one scope",
                errors=[{"pointer": "/scopes", "message": "empty"}],
            )
        token = token or new_token()
        info = await self.repo.insert_key(
            team_id,
            token_prefix(token),
            token_hash(token),
            sorted(s.value for s in scopes),
            name,
            expires_at,
        )
        return token, info

    async def revoke_key(self, prefix: str, team_id: int | None = None) -> None:
        if not await self.repo.revoke_key(prefix, team_id):
            raise NotFound(f"no active key with prefix {prefix!r}")

    async def ensure_bootstrap_key(self) -> str | None:
        """With BACKFILL_BOOTSTRAP_TOKEN set, a key with exactly that token exists for team 1
        with every scope. Otherwise, when no key exists at all, one is made and returned so
        the caller can show it once. Returns a token only when it is new and generated."""
        configured = self.settings.bootstrap_token
        if configured is not None:
            token = configured.get_secret_value()
            if len(token) < MIN_BOOTSTRAP_TOKEN:
                raise ValidationFailed(
                    f"BACKFILL_BOOTSTRAP_TOKEN must be at least {MIN_BOOTSTRAP_TOKEN} characters"
                )
            stored = await self.repo.key_by_prefix(token_prefix(token))
            if stored is not None and hash_matches(token, stored.secret_hash):
                return None
            if stored is not None:
                raise ValidationFailed(
                    "BACKFILL_BOOTSTRAP_TOKEN shares its prefix with another key; choose another"
                )
            await self.create_key(1, set(ALL_SCOPES), name="bootstrap", token=token)
            log.info("bootstrap_key_created", prefix=token_prefix(token))
            return None
        if await self.repo.count_keys() > 0:
            return None
        token, info = await self.create_key(1, set(ALL_SCOPES), name="first key")
        log.info("first_key_created", prefix=info.prefix)
        return token
