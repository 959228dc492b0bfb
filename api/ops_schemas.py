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
    # Runs it executes at once, added to the dispatch capacity while it is alive; null for
    # a process that executes none.
    concurrency: int | None
    started_at: datetime
    last_seen_at: datetime
    stopped_at: datetime | None
    # alive: heartbeats arrive; stale: none for three heartbeat periods although it never
    # said it stopped (killed, or its host is gone); stopped: it shut down.
    status: Literal["alive", "stale", "stopped"]


class DispatchCapacityOut(_Out):
    """The runs queued or running that dispatch shares out by priority now: pinned by
    BACKFILL_DISPATCH_CAPACITY, or the alive workers' concurrency."""

    runs: int
    pinned: bool


class OutboxOut(_Out):
    unsent: int
    oldest_unsent_at: datetime | None


class ProgressSeenOut(_Out):
    fraction: float | None
    rows_per_second: float | None
    runs_per_minute: float | None
    eta_seconds: float | None
    eta: datetime | None
    window_seconds: int


class ActiveBackfillOut(_Out):
    """A backfill that may still move (created, scheduled, running or paused), any team."""

    id: int
    team_id: int
    target_id: int
    kind: str
    name: str | None
    state: str
    progress: ProgressSeenOut


class ThroughputOut(_Out):
    """Rows and ended runs per time over the last `window_seconds`, all backfills together."""

    rows_per_second: float
    runs_per_minute: float
    window_seconds: int


class OverviewOut(_Out):
    """Counts by state, the oldest pending run, workers seen in the last day, the outbox,
    queue depths (null when the broker could not be asked), the progress of every active
    backfill (at most 100, oldest first) and the system's throughput."""

    backfills: dict[str, int]
    runs: dict[str, int]
    oldest_pending_run: PendingRunOut | None
    workers: list[WorkerSeenOut]
    dispatch_capacity: DispatchCapacityOut | None
    outbox: OutboxOut
    queues: dict[str, int] | None
    active_backfills: list[ActiveBackfillOut]
    throughput: ThroughputOut
