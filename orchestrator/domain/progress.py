"""How far a backfill is, how fast it moves and when it should end.

Computed from what workers already store, never counted per row: the backfill's counters
(rolled up at every checkpoint and run end) say how much is done, and the runs active in the
last minute say how fast. A run's rows are taken as spread evenly over its span, from its
start to its end (or, while it runs, its last write); the share of that span inside the
window is what counts. Runs are short next to the window, so the estimate is close, and it
stays right when a worker writes its counters in batches."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from orchestrator.domain.models import Backfill, TargetKind
from orchestrator.domain.states import BackfillState

WINDOW_SECONDS = 60

# States in which a backfill is expected to move; an ETA means something only here.
_MOVING = frozenset({BackfillState.CREATED, BackfillState.SCHEDULED, BackfillState.RUNNING})


class Activity(BaseModel):
    """What a backfill's runs did within the last `seconds` (up to `at`, the database's
    clock): rows, and runs that ended (completed or failed)."""

    model_config = ConfigDict(frozen=True)

    rows: float = 0.0
    runs: int = 0
    seconds: float = WINDOW_SECONDS
    at: datetime


class Progress(BaseModel):
    """`fraction` is done/total (rows for a table backfill whose rows were counted, runs
    otherwise), null while the total is unknown. Rates are over the last `window_seconds`
    (shorter when the backfill started less than a window ago), null before it starts. The
    ETA extrapolates the current rate; null unless the backfill is moving."""

    model_config = ConfigDict(frozen=True)

    fraction: float | None
    rows_per_second: float | None
    runs_per_minute: float | None
    eta_seconds: float | None
    eta: datetime | None
    window_seconds: int = WINDOW_SECONDS


class Counters(Protocol):
    """What the fraction done is read from: a backfill's own counters. A Backfill has them;
    so does a row of the per-backfill metrics."""

    @property
    def kind(self) -> TargetKind: ...
    @property
    def state(self) -> BackfillState: ...
    @property
    def planning_done(self) -> bool: ...
    @property
    def rows_initial_count(self) -> int | None: ...
    @property
    def rows_processed_count(self) -> int: ...
    @property
    def runs_total(self) -> int: ...
    @property
    def runs_completed(self) -> int: ...
    @property
    def runs_failed(self) -> int: ...


def fraction_of(backfill: Counters) -> float | None:
    """Done/total, 0 to 1, or None while the total is unknown (see Progress.fraction)."""
    if backfill.state is BackfillState.COMPLETED:
        return 1.0
    done, total, _ = _done_and_total(backfill)
    return None if total is None else (1.0 if total == 0 else min(1.0, done / total))


def progress_of(backfill: Backfill, activity: Activity) -> Progress:
    done, total, by_rows = _done_and_total(backfill)
    fraction = fraction_of(backfill)
    rows_per_second = runs_per_minute = None
    if backfill.started_at is not None:
        # A backfill younger than the window is measured over its own life, or its first
        # minute would read low.
        elapsed = (activity.at - backfill.started_at).total_seconds()
        seconds = max(1.0, min(activity.seconds, elapsed))
        rows_per_second = round(activity.rows / seconds, 3)
        runs_per_minute = round(activity.runs * 60.0 / seconds, 3)
    eta_seconds: float | None = None
    if backfill.state in _MOVING and total is not None:
        per_second = rows_per_second if by_rows else _per_second(runs_per_minute)
        if per_second:
            eta_seconds = round(max(0.0, total - done) / per_second, 1)
    return Progress(
        fraction=None if fraction is None else round(fraction, 6),
        rows_per_second=rows_per_second,
        runs_per_minute=runs_per_minute,
        eta_seconds=eta_seconds,
        eta=None if eta_seconds is None else activity.at + timedelta(seconds=eta_seconds),
    )


def _per_second(runs_per_minute: float | None) -> float | None:
    return None if runs_per_minute is None else runs_per_minute / 60.0


def _done_and_total(backfill: Counters) -> tuple[float, float | None, bool]:
    """(done, total, measured in rows?). A table backfill is measured in rows once they were
    counted; otherwise in runs, whose total is known once planning is done (date-range
    backfills plan every window before their first run)."""
    if backfill.kind is TargetKind.TABLE and backfill.rows_initial_count is not None:
        return float(backfill.rows_processed_count), float(backfill.rows_initial_count), True
    # Cancelled runs were never done; a cancelled backfill shows how far it got.
    ended = backfill.runs_completed + backfill.runs_failed
    if backfill.planning_done or (
        backfill.kind is TargetKind.DATE_RANGE and backfill.runs_total > 0
    ):
        return float(ended), float(backfill.runs_total), False
    return float(ended), None, False
