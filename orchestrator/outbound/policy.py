"""When an outbound request is retried and how long it waits: pure, so it is unit-tested
without a server.

Retried: network errors and timeouts, 408, 429 and every 5xx (the receiver may succeed
later). Not retried: any other status outside 2xx, redirects included (a webhook that
moved should be reconfigured, and following one could lead past the allow-list)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum

from orchestrator.domain.retry import backoff_seconds


class Outcome(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    REJECTED = "rejected"


def classify(status: int) -> Outcome:
    if 200 <= status < 300:
        return Outcome.DELIVERED
    if status in (408, 429) or 500 <= status < 600:
        return Outcome.RETRY
    return Outcome.REJECTED


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or an HTTP date); None when
    absent or unreadable, in which case the usual backoff applies."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int
    timeout_seconds: float
    backoff_base_seconds: float
    backoff_max_seconds: float
    retry_after_max_seconds: float

    def wait_before_next(
        self, attempt: int, retry_after: float | None, rng: random.Random | None = None
    ) -> float | None:
        """How long to wait after failed attempt number `attempt` (1-based) before the next,
        or None when no attempt is left or the receiver asked for longer than we hold a run
        for (the run then fails and is retried later as a whole)."""
        if attempt >= self.attempts:
            return None
        if retry_after is not None:
            if not math.isfinite(retry_after) or retry_after > self.retry_after_max_seconds:
                return None
            return retry_after
        return backoff_seconds(
            attempt, base=self.backoff_base_seconds, cap=self.backoff_max_seconds, rng=rng
        )
