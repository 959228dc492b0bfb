"""What /ops/overview reports about the system as a whole: backfills and runs by state, the
run waiting longest, the workers seen lately and the outbox's backlog."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class PendingRun:
    id: int
    backfill_id: int
    created_at: datetime
    not_before: datetime


@dataclass(frozen=True)
class WorkerSeen:
    id: str
    hostname: str
    pid: int
    roles: list[str]
    # Runs it executes at once, which it adds to the dispatch capacity while alive (None: a
    # process that executes none).
    concurrency: int | None
    started_at: datetime
    last_seen_at: datetime
    stopped_at: datetime | None
    # alive, stale (no heartbeat for a while, never said it stopped) or stopped.
    status: str


@dataclass(frozen=True)
class Overview:
    backfills: dict[str, int]
    runs: dict[str, int]
    oldest_pending_run: PendingRun | None
    workers: list[WorkerSeen]
    outbox_unsent: int
    outbox_oldest_unsent_at: datetime | None
    # The runs queued or running that dispatch shares out now, and whether a setting pins it
    # (otherwise it is the alive workers' concurrency); None where no fair share applies.
    dispatch_capacity: int | None = None
    dispatch_capacity_pinned: bool = False

    def as_body(self) -> dict[str, Any]:
        """The overview as the JSON body /ops/overview starts from."""
        oldest = self.oldest_pending_run
        return {
            "backfills": dict(self.backfills),
            "runs": dict(self.runs),
            "oldest_pending_run": dataclasses.asdict(oldest) if oldest is not None else None,
            "workers": [dataclasses.asdict(w) for w in self.workers],
            "dispatch_capacity": (
                None
                if self.dispatch_capacity is None
                else {"runs": self.dispatch_capacity, "pinned": self.dispatch_capacity_pinned}
            ),
            "outbox": {
                "unsent": self.outbox_unsent,
                "oldest_unsent_at": self.outbox_oldest_unsent_at,
            },
        }
