"""Response models of the /ops routes, for the OpenAPI document.

The routes render plain mappings (the overview comes straight from the repository), so these
models describe them rather than render them; the API fuzz test holds the live responses to
them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class HealthOut(_Out):
    status: Literal["ok"]


class ReadinessOut(_Out):
    status: Literal["ready", "unavailable"]
    checks: dict[str, bool]
    # Per source as last vetted: ok, unsafe (role checks skipped by the operator), refused,
    # unreachable. Never a readiness condition.
    sources: dict[str, Literal["ok", "unsafe", "refused", "unreachable"]] | None = None


class PendingRunOut(_Out):
    id: int
    backfill_id: int
    created_at: datetime
    not_before: datetime | None


class WorkerSeenOut(_Out):
    id: str
    hostname: str
    pid: int
    roles: list[str]
    started_at: datetime
    last_seen_at: datetime
    stopped_at: datetime | None


class OutboxOut(_Out):
    unsent: int
    oldest_unsent_at: datetime | None


class OverviewOut(_Out):
    """Counts by state, the oldest pending run, workers seen in the last day, the outbox, and
    queue depths (null when the broker could not be asked)."""

    backfills: dict[str, int]
    runs: dict[str, int]
    oldest_pending_run: PendingRunOut | None
    workers: list[WorkerSeenOut]
    outbox: OutboxOut
    queues: dict[str, int] | None
