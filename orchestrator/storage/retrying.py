"""Retrying a database operation through a restart or a dropped connection.

Only for operations that are safe to run twice: a retry may follow an attempt whose commit
reached the server but whose answer did not. The repository makes the executor's writes so
(a checkpoint finds its cursor already stored; fenced updates match nothing twice)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog

from orchestrator.domain.retry import backoff_seconds
from orchestrator.storage.database import is_unavailable

log = structlog.get_logger(__name__)

T = TypeVar("T")

_RNG = random.Random()


async def retry_unavailable(
    op: Callable[[], Awaitable[T]],
    *,
    within: float,
    what: str,
    base: float = 0.1,
    cap: float = 2.0,
) -> T:
    """Runs `op`, retrying with jittered backoff while the database is unavailable, for at
    most `within` seconds; any other error, or running out of time, raises."""
    deadline = time.monotonic() + within
    attempt = 0
    while True:
        try:
            return await op()
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            attempt += 1
            delay = backoff_seconds(attempt, base=base, cap=cap, rng=_RNG)
            if time.monotonic() + delay > deadline:
                raise
            log.warning("database_retry", operation=what, attempt=attempt, error=repr(exc))
            await asyncio.sleep(delay)
