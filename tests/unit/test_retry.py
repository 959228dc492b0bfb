from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.domain.retry import backoff_seconds, should_retry


@settings(max_examples=200, deadline=None)
@given(
    attempt=st.integers(-5, 5000),
    base=st.floats(0, 1e6),
    cap=st.floats(0, 1e9),
    seed=st.integers(0, 2**32),
)
def test_backoff_is_within_full_jitter_bounds(
    attempt: int, base: float, cap: float, seed: int
) -> None:
    delay = backoff_seconds(attempt, base=base, cap=cap, rng=random.Random(seed))
    assert math.isfinite(delay)
    assert delay >= 0
    if attempt < 1:
        assert delay == 0
    else:
        assert delay <= min(cap, base * 2.0 ** min(attempt - 1, 1023))


class _MaxRandom(random.Random):
    """Always draws the top of the range, to pin the ceiling."""

    def random(self) -> float:
        return 1.0


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 30.0), (50, 30.0)],
)
def test_ceiling_doubles_until_the_cap(attempt: int, ceiling: float) -> None:
    assert backoff_seconds(attempt, base=2.0, cap=30.0, rng=_MaxRandom()) == ceiling


def test_attempt_zero_and_negative_wait_nothing() -> None:
    assert backoff_seconds(0, base=5.0, cap=60.0) == 0.0
    assert backoff_seconds(-3, base=5.0, cap=60.0) == 0.0


@pytest.mark.parametrize("attempt", [1024, 1025, 10**6, 10**18])
def test_huge_attempt_does_not_overflow(attempt: int) -> None:
    assert backoff_seconds(attempt, base=1e300, cap=60.0, rng=_MaxRandom()) == 60.0
    assert 0.0 <= backoff_seconds(attempt, base=1.0, cap=60.0) <= 60.0


def test_jitter_actually_varies() -> None:
    rng = random.Random(7)
    delays = {backoff_seconds(6, base=1.0, cap=60.0, rng=rng) for _ in range(20)}
    assert len(delays) > 1


def test_zero_base_never_waits() -> None:
    assert backoff_seconds(10, base=0.0, cap=60.0) == 0.0


@pytest.mark.parametrize(("base", "cap"), [(-1.0, 10.0), (1.0, -1.0), (math.inf, 10.0)])
def test_rejects_bad_parameters(base: float, cap: float) -> None:
    with pytest.raises(ValueError, match="non-negative"):
        backoff_seconds(1, base=base, cap=cap)


@pytest.mark.parametrize(
    ("attempt", "max_attempts", "expected"),
    [
        (0, 3, True),
        (1, 3, True),
        (2, 3, True),
        (3, 3, False),
        (4, 3, False),
        (0, 1, True),
        (1, 1, False),
    ],
)
def test_should_retry(attempt: int, max_attempts: int, expected: bool) -> None:
    assert should_retry(attempt, max_attempts) is expected
