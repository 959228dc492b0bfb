"""API keys: random 256-bit tokens, shown once, kept only as a SHA-256 hash with a visible
prefix; scopes say what a key may do. Pure functions: no storage here."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

TOKEN_MARK = "bfk_"
PREFIX_LENGTH = len(TOKEN_MARK) + 8


class Scope(StrEnum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


ALL_SCOPES = frozenset(Scope)


def new_token() -> str:
    """`bfk_` and 43 url-safe characters: 32 random bytes (256 bits)."""
    return TOKEN_MARK + secrets.token_urlsafe(32)


def token_prefix(token: str) -> str:
    return token[:PREFIX_LENGTH]


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def hash_matches(token: str, stored: bytes) -> bool:
    # Constant time, so response timing does not reveal how much of a guess was right.
    return hmac.compare_digest(token_hash(token), stored)


class Principal(BaseModel):
    """Who is calling: a key of one team with its scopes."""

    model_config = ConfigDict(frozen=True)

    key_id: int
    team_id: int
    prefix: str
    scopes: frozenset[Scope]

    def can(self, scope: Scope) -> bool:
        return scope in self.scopes


class KeyInfo(BaseModel):
    """A key as lists show it: never the token, never the hash."""

    model_config = ConfigDict(frozen=True)

    id: int
    team_id: int
    prefix: str
    scopes: list[Scope]
    name: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
