"""What a worker gets back when it claims runs or checkpoints one."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.domain.models import BackfillRow, Target, TransferRun


@dataclass(frozen=True)
class ClaimedRun:
    run: TransferRun
    # The backfill as it was when the run was claimed, under its lock.
    backfill: BackfillRow
    # The target as it was when the run was claimed (read once per claiming transaction).
    target: Target | None = None


@dataclass(frozen=True)
class Checkpointed:
    """A checkpoint that counted, with what the run needs to know for its next batch."""

    max_rows_per_second: float | None
