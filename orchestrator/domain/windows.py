"""The date-range planner: splits a range into windows without materialising them.

Semantics
---------
* Windows are half-open, ``[start_k, start_{k+1})``, and never clipped: the last window may
  extend past the end of the range.
* Window k starts at ``anchor + k * units * interval``, computed from the anchor each time
  rather than by repeated addition, so monthly windows anchored on Jan 31 run Jan 31, Feb 29
  (clamped to the month's last day), Mar 31, ... without drifting to the 29th. A yearly window
  anchored on Feb 29 falls on Feb 28 in non-leap years.
* ``minute`` and ``hour`` arithmetic happens in absolute time, so an hourly window is always
  exactly one hour, DST or not. ``day``, ``week``, ``month`` and ``year`` arithmetic happens on
  local wall-clock time in ``time_zone`` and is then localised: a wall time in a spring-forward
  gap moves forward by the gap (it is read with the offset in force before the transition,
  fold=0), and an ambiguous wall time in a fall-back overlap takes its first occurrence
  (fold=0). A day window across a DST change is therefore 23 or 25 hours long.
* Window 0 starts exactly at the localised ``start``. Later calendar windows are anchored on
  the wall-clock time of that instant in ``time_zone`` (for a naive start in a gap, the wall
  time as given), so a start in the second occurrence of an ambiguous hour still yields
  windows at that wall time on later days.
* Inputs: a ``date`` is local midnight of that date in ``time_zone``; a naive ``datetime`` is
  wall time in ``time_zone``; an aware ``datetime`` is used as is.
* End bound: if ``end`` is a ``date`` it is inclusive, so the windows are those starting before
  local midnight of the day after ``end`` (start on the same date gives that one day's windows).
  If ``end`` is a ``datetime``, the windows are those starting strictly before it, so
  ``start == end`` gives no windows; with ``end_inclusive``, those starting at or before it
  (Mage's rule), so ``start == end`` gives one.
* ``start`` after ``end`` (for a date ``end``: on a later local date) raises ValueError.
* Returned windows are timezone-aware datetimes in UTC.
* Sequence numbers are in execution order: with ``newest_first``, seq 0 is the newest window.

Window starts are non-decreasing in k as long as no UTC offset jumps by more than one
interval, which holds for every zone except a handful of historic date-line moves (for example
Pacific/Apia skipping 2011-12-30), where a skipped local day comes out as an empty window.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from orchestrator.domain.models import IntervalType, RunOrder, Window

_ABSOLUTE_STEPS = {
    IntervalType.MINUTE: timedelta(minutes=1),
    IntervalType.HOUR: timedelta(hours=1),
}
_WALL_DAY_STEPS = {
    IntervalType.DAY: timedelta(days=1),
    IntervalType.WEEK: timedelta(weeks=1),
}
_MONTHS = {IntervalType.MONTH: 1, IntervalType.YEAR: 12}


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def _localise(wall: datetime, tz: tzinfo) -> datetime:
    """Local wall time -> UTC instant. fold=0 reads a gap time with the pre-transition offset,
    which lands it past the gap, and picks the first of two ambiguous instants."""
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


def _add_months(wall: datetime, months: int) -> datetime:
    year, month0 = divmod(wall.month - 1 + months, 12)
    year += wall.year
    if not 1 <= year <= 9999:
        raise OverflowError("date value out of range")
    day = min(wall.day, calendar.monthrange(year, month0 + 1)[1])
    return wall.replace(year=year, month=month0 + 1, day=day)


def _as_instant(value: date | datetime, tz: tzinfo) -> tuple[datetime, datetime]:
    """The UTC instant of `value` and the local wall time it names."""
    if isinstance(value, datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            instant = value.astimezone(UTC)
            return instant, instant.astimezone(tz).replace(tzinfo=None, fold=0)
        wall = value.replace(tzinfo=None, fold=0)
    else:
        wall = datetime.combine(value, time())
    return _localise(wall, tz), wall


@dataclass(frozen=True, slots=True)
class WindowPlan:
    """Windows of a date range, addressable by seq in execution order. Holds only the anchor
    and bounds, so any window is O(1) to compute and resuming needs just the stored seq."""

    count: int
    start: datetime  # UTC instant of window 0's start (in range order, not execution order)
    bound: datetime  # UTC; windows start strictly before this
    interval_type: IntervalType
    interval_units: int
    time_zone: str
    order: RunOrder
    _anchor_wall: datetime = field(repr=False)
    _tz: ZoneInfo = field(repr=False)

    def __len__(self) -> int:
        return self.count

    def window_at(self, seq: int) -> Window:
        if not 0 <= seq < self.count:
            raise IndexError(f"seq {seq} out of range for {self.count} windows")
        k = self._index(seq)
        return Window(start=self._start_of(k), end=self._start_of(k + 1))

    def previous_start(self, seq: int) -> datetime:
        """The start of the window before window `seq` in range order: for the first
        window, the one the range would have had before its start."""
        if not 0 <= seq < self.count:
            raise IndexError(f"seq {seq} out of range for {self.count} windows")
        return self._start_of(self._index(seq) - 1)

    def windows(self, from_seq: int = 0) -> Iterator[tuple[int, Window]]:
        """(seq, window) from `from_seq` to the end; from_seq == count yields nothing."""
        if not 0 <= from_seq <= self.count:
            raise ValueError(f"from_seq {from_seq} out of range for {self.count} windows")
        return self._stream(from_seq)

    def _stream(self, from_seq: int) -> Iterator[tuple[int, Window]]:
        # Each boundary is shared by two neighbouring windows; carry it over so every window
        # costs one start computation.
        if self.order is RunOrder.OLDEST_FIRST:
            left = self._start_of(from_seq)
            for seq in range(from_seq, self.count):
                right = self._start_of(seq + 1)
                yield seq, Window(start=left, end=right)
                left = right
        else:
            right = self._start_of(self.count - from_seq)
            for seq in range(from_seq, self.count):
                left = self._start_of(self.count - 1 - seq)
                yield seq, Window(start=left, end=right)
                right = left

    def _index(self, seq: int) -> int:
        return seq if self.order is RunOrder.OLDEST_FIRST else self.count - 1 - seq

    def _start_of(self, k: int) -> datetime:
        """Start of the k-th window in range order (k may be `count`: the last window's end)."""
        return _start_at(
            k, self.start, self._anchor_wall, self._tz, self.interval_type, self.interval_units
        )


def _start_at(
    k: int,
    start: datetime,
    anchor_wall: datetime,
    tz: tzinfo,
    interval_type: IntervalType,
    units: int,
) -> datetime:
    if k == 0:
        return start
    if interval_type in _ABSOLUTE_STEPS:
        return start + _ABSOLUTE_STEPS[interval_type] * (units * k)
    if interval_type in _WALL_DAY_STEPS:
        return _localise(anchor_wall + _WALL_DAY_STEPS[interval_type] * (units * k), tz)
    return _localise(_add_months(anchor_wall, _MONTHS[interval_type] * units * k), tz)


def _estimate(
    anchor_wall: datetime, bound_wall: datetime, interval_type: IntervalType, units: int
) -> int:
    """Roughly how many calendar steps fit between two wall times; off by at most a couple."""
    if interval_type in _WALL_DAY_STEPS:
        return (bound_wall - anchor_wall) // (_WALL_DAY_STEPS[interval_type] * units)
    months = (bound_wall.year - anchor_wall.year) * 12 + bound_wall.month - anchor_wall.month
    return months // (_MONTHS[interval_type] * units)


def _count(
    start: datetime,
    bound: datetime,
    anchor_wall: datetime,
    tz: tzinfo,
    interval_type: IntervalType,
    units: int,
) -> int:
    """The number of k >= 0 with start_k < bound, i.e. the first k with start_k >= bound."""
    if start >= bound:
        return 0
    if interval_type in _ABSOLUTE_STEPS:
        step = _ABSOLUTE_STEPS[interval_type] * units
        return -((start - bound) // step)

    def reaches(k: int) -> bool:
        try:
            return _start_at(k, start, anchor_wall, tz, interval_type, units) >= bound
        except OverflowError:
            return True  # past datetime.max, so certainly past a representable bound

    bound_wall = bound.astimezone(tz).replace(tzinfo=None)
    k = max(1, _estimate(anchor_wall, bound_wall, interval_type, units))
    # Starts are monotone in k and the estimate is off only by DST shifts and month-end
    # clamping, so these loops run a step or two.
    while k > 1 and reaches(k - 1):
        k -= 1
    while not reaches(k):
        k += 1
    return k


def window_plan(
    start: date | datetime,
    end: date | datetime,
    interval_type: IntervalType | str,
    interval_units: int,
    time_zone: str,
    order: RunOrder | str = RunOrder.OLDEST_FIRST,
    *,
    end_inclusive: bool = False,
) -> WindowPlan:
    """Plan the windows of [start, end]; see the module docstring for the exact rules.
    `end_inclusive` makes a datetime `end` take a window that starts exactly at it (a date
    `end` is always inclusive)."""
    interval_type = IntervalType(interval_type)
    order = RunOrder(order)
    if interval_units < 1:
        raise ValueError(f"interval_units must be at least 1, got {interval_units}")
    tz = _zone(time_zone)
    try:
        start_instant, anchor_wall = _as_instant(start, tz)
        if isinstance(end, datetime):
            bound, _ = _as_instant(end, tz)
            if end_inclusive:
                # Instants have microsecond resolution: "starts <= end" is "starts < end+1us".
                bound += timedelta(microseconds=1)
            if start_instant > bound:
                raise ValueError(f"start {start} is after end {end}")
        else:
            bound, _ = _as_instant(end + timedelta(days=1), tz)
            if start_instant >= bound:
                raise ValueError(f"start {start} is after end {end}")
        count = _count(start_instant, bound, anchor_wall, tz, interval_type, interval_units)
        plan = WindowPlan(
            count=count,
            start=start_instant,
            bound=bound,
            interval_type=interval_type,
            interval_units=interval_units,
            time_zone=time_zone,
            order=order,
            _anchor_wall=anchor_wall,
            _tz=tz,
        )
        if count:
            plan._start_of(count)  # the last window's end must be representable too
    except OverflowError:
        raise ValueError(f"range {start} .. {end} reaches beyond the representable dates") from None
    return plan


def count_windows(
    start: date | datetime,
    end: date | datetime,
    interval_type: IntervalType | str,
    interval_units: int,
    time_zone: str,
) -> int:
    return window_plan(start, end, interval_type, interval_units, time_zone).count


# The variables Mage shows for each run in a backfill's `pipeline_run_dates`, in its order.
MAGE_PREVIEW_VARIABLES = (
    "ds",
    "execution_date",
    "hr",
    "interval_end_datetime",
    "interval_seconds",
    "interval_start_datetime",
)


def window_variables(
    variables: dict[str, Any], start: datetime, end: datetime, *, previous_start: datetime
) -> dict[str, Any]:
    """What a date-range run's handler sees: the backfill's variables plus its window, under
    this service's names and Mage's (interval_*_datetime, ds, hr), so a pipeline written for
    Mage's backfills reads the same variables here."""
    return {
        **variables,
        "execution_date": start.isoformat(),
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "interval_seconds": (end - start).total_seconds(),
        # The window before this one in the range (before the range, for the first).
        "previous_window_start": previous_start.isoformat(),
        "interval_start_datetime": start.isoformat(),
        "interval_end_datetime": end.isoformat(),
        "ds": start.strftime("%Y-%m-%d"),
        "hr": start.strftime("%H"),
    }
