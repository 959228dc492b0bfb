"""How far a backfill is and how fast it goes, as `watch` shows it. Pure: readings of the
API's backfill objects in, numbers and words out.

The API's `progress` field (fraction, rows/s, runs/min, ETA over the last minute) is used when
the server sends it; an older server sends counts only, and rates are then derived from the
counts seen between polls."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

FINAL_STATES = frozenset({"completed", "failed", "cancelled"})
RATE_WINDOW_SECONDS = 60.0


@dataclass(frozen=True)
class Reading:
    state: str
    unit: str  # "rows" or "runs": what `done` and `total` count
    done: int
    total: int | None
    fraction: float | None
    rows_per_second: float | None
    runs_per_minute: float | None
    eta_seconds: float | None


def runs_ended(b: Mapping[str, Any]) -> int:
    return int(b["runs_completed"]) + int(b["runs_failed"]) + int(b["runs_cancelled"])


def counts(b: Mapping[str, Any]) -> tuple[str, int, int | None]:
    """(unit, done, total): rows for a table backfill whose rows were counted, runs otherwise;
    total None while planning has not said how much there is."""
    if b.get("kind") == "table" and b.get("rows_initial_count"):
        return "rows", int(b["rows_processed_count"]), int(b["rows_initial_count"])
    total = int(b["runs_total"])
    return "runs", runs_ended(b), total or None


class RateTracker:
    """Rows and runs per unit of time over the last minute of polls."""

    def __init__(self, window: float = RATE_WINDOW_SECONDS) -> None:
        self._window = window
        self._samples: deque[tuple[float, int, int]] = deque()

    def add(self, at: float, rows: int, runs: int) -> None:
        self._samples.append((at, rows, runs))
        while len(self._samples) > 2 and at - self._samples[1][0] >= self._window:
            self._samples.popleft()

    def rates(self) -> tuple[float | None, float | None]:
        if len(self._samples) < 2:
            return None, None
        (t0, rows0, runs0), (t1, rows1, runs1) = self._samples[0], self._samples[-1]
        if t1 <= t0:
            return None, None
        return (rows1 - rows0) / (t1 - t0), (runs1 - runs0) * 60.0 / (t1 - t0)


def read(b: Mapping[str, Any], tracker: RateTracker, at: float) -> Reading:
    unit, done, total = counts(b)
    tracker.add(at, int(b["rows_processed_count"]), runs_ended(b))
    state = str(b["state"])
    progress = b.get("progress")
    if isinstance(progress, Mapping):
        fraction = progress.get("fraction")
        return Reading(
            state, unit, done, total,
            fraction=None if fraction is None else float(fraction),
            rows_per_second=progress.get("rows_per_second"),
            runs_per_minute=progress.get("runs_per_minute"),
            eta_seconds=progress.get("eta_seconds"),
        )  # fmt: skip
    rows_per_second, runs_per_minute = tracker.rates()
    fraction = None if not total else min(1.0, done / total)
    per_second = rows_per_second if unit == "rows" else (runs_per_minute or 0) / 60.0
    eta = None
    if total and per_second and per_second > 0 and state not in FINAL_STATES | {"paused"}:
        eta = max(0.0, total - done) / per_second
    if state == "completed":
        fraction = 1.0
    return Reading(state, unit, done, total, fraction, rows_per_second, runs_per_minute, eta)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def rate_text(reading: Reading) -> str:
    if reading.unit == "rows" and reading.rows_per_second is not None:
        return f"{reading.rows_per_second:,.0f} rows/s"
    if reading.runs_per_minute is not None:
        return f"{reading.runs_per_minute:,.1f} runs/min"
    return ""


def detail(reading: Reading) -> str:
    total = "?" if reading.total is None else f"{reading.total:,}"
    parts = [f"{reading.done:,}/{total} {reading.unit}"]
    if reading.state not in FINAL_STATES:
        parts.append(rate_text(reading))
        if reading.eta_seconds is not None:
            parts.append(f"ETA {duration(reading.eta_seconds)}")
    parts.append(reading.state)
    return " · ".join(p for p in parts if p)


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def elapsed(b: Mapping[str, Any]) -> float | None:
    start = _time(b.get("started_at")) or _time(b.get("created_at"))
    end = _time(b.get("completed_at") or b.get("failed_at") or b.get("cancelled_at"))
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def summary(b: Mapping[str, Any]) -> str:
    """One line saying how a backfill ended."""
    name = f" ({b['name']})" if b.get("name") else ""
    runs = f"{b['runs_completed']:,}/{b['runs_total']:,} runs completed"
    rows = f"{b['rows_processed_count']:,} rows"
    took = elapsed(b)
    speed = ""
    if took and b["rows_processed_count"]:
        speed = f", {b['rows_processed_count'] / took:,.0f} rows/s"
    line = f"backfill {b['id']}{name} {b['state']}: {rows}, {runs} in {duration(took)}{speed}"
    if b["runs_failed"]:
        line += f"; {b['runs_failed']:,} failed"
    if b["runs_cancelled"]:
        line += f"; {b['runs_cancelled']:,} cancelled"
    errors = b.get("error_report") or []
    if b["state"] == "failed" and errors:
        first = str(errors[0].get("error", "")).splitlines()[0][:160]
        line += f"; first error: {first}"
    return line
