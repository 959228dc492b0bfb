"""Retry policy: when a failed run may go again and how long it waits first."""

from __future__ import annotations

import math
import random

# 2.0 ** 1024 overflows a float; past this exponent the cap always wins anyway.
_MAX_EXPONENT = 1023


def backoff_seconds(
    attempt: int, *, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**(attempt-1))].

    `attempt` counts attempts already made, so the first retry (attempt 1) waits up to `base`.
    Full jitter spreads retries of runs that failed together (say, a database restart) instead
    of having them hammer the source again in lockstep.
    """
    if not (math.isfinite(base) and math.isfinite(cap)) or base < 0 or cap < 0:
        raise ValueError(f"base and cap must be finite and non-negative, got {base}, {cap}")
    if attempt < 1:
        return 0.0
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, _MAX_EXPONENT))
    return (rng or random).uniform(0.0, ceiling)


def should_retry(attempt: int, max_attempts: int) -> bool:
    """Whether a run that has made `attempt` attempts may make another."""
    return attempt < max_attempts
