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

    def as_body(self) -> dict[str, Any]:
        """The overview as the JSON body /ops/overview starts from."""
        oldest = self.oldest_pending_run
        return {
            "backfills": dict(self.backfills),
            "runs": dict(self.runs),
            "oldest_pending_run": dataclasses.asdict(oldest) if oldest is not None else None,
            "workers": [dataclasses.asdict(w) for w in self.workers],
            "outbox": {
                "unsent": self.outbox_unsent,
                "oldest_unsent_at": self.outbox_oldest_unsent_at,
            },
        }
