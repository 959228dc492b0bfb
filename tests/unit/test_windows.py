from __future__ import annotations

import calendar
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.domain.models import IntervalType, RunOrder, Window
from orchestrator.domain.windows import WindowPlan, count_windows, window_plan

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
H = timedelta(hours=1)
D = timedelta(days=1)

# Roughly one window's length per unit, used only to keep generated ranges to a few dozen
# windows so the whole property suite stays fast.
APPROX = {
    IntervalType.MINUTE: timedelta(minutes=1),
    IntervalType.HOUR: H,
    IntervalType.DAY: D,
    IntervalType.WEEK: 7 * D,
    IntervalType.MONTH: 31 * D,
    IntervalType.YEAR: 366 * D,
}

PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def localise(value: date | datetime, tz: ZoneInfo) -> datetime:
    """The test's own reading of the input rules, to compare the planner against."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return value.astimezone(UTC)
        return value.replace(tzinfo=tz, fold=0).astimezone(UTC)
    return datetime.combine(value, time()).replace(tzinfo=tz).astimezone(UTC)


def end_bound(end: date | datetime, tz: ZoneInfo) -> datetime:
    if isinstance(end, datetime):
        return localise(end, tz)
    return localise(end + D, tz)


def all_windows(plan_windows: Iterable[tuple[int, Window]]) -> list[Window]:
    return [w for _, w in plan_windows]


@dataclass(frozen=True)
class Case:
    start: date | datetime
    end: date | datetime
    interval_type: IntervalType
    units: int
    zone: str

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    def plan(self, order: RunOrder = RunOrder.OLDEST_FIRST) -> WindowPlan:
        return window_plan(self.start, self.end, self.interval_type, self.units, self.zone, order)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    zone = draw(st.sampled_from(ZONES))
    tz = ZoneInfo(zone)
    interval_type = draw(st.sampled_from(list(IntervalType)))
    units = draw(st.one_of(st.integers(1, 4), st.sampled_from([7, 15, 90])))
    # Half the starts fall in the months with DST changes in the north or south.
    naive = draw(
        st.one_of(
            st.datetimes(datetime(1990, 1, 1), datetime(2040, 12, 31)),
            st.builds(
                datetime,
                st.integers(2000, 2030),
                st.sampled_from([3, 4, 10, 11]),
                st.integers(1, 28),
                st.integers(0, 23),
                st.sampled_from([0, 15, 30, 45]),
            ),
        )
    )
    kind = draw(st.sampled_from(["date", "naive", "aware_local", "aware_utc"]))
    start: date | datetime
    if kind == "date":
        start = naive.date()
    elif kind == "naive":
        start = naive
    elif kind == "aware_local":
        start = naive.replace(tzinfo=tz, fold=draw(st.integers(0, 1)))
    else:
        start = naive.replace(tzinfo=UTC)
    span = APPROX[interval_type] * units * draw(st.floats(0, 40))
    end_naive = naive + span
    end: date | datetime
    if draw(st.booleans()):
        end = end_naive.date()
        if isinstance(start, datetime) and localise(start, tz) >= end_bound(end, tz):
            end = localise(start, tz).astimezone(tz).date()
    else:
        end = end_naive
        if draw(st.booleans()):
            end = end_naive.replace(tzinfo=tz)
        if localise(end, tz) < localise(start, tz):
            end = start if isinstance(start, datetime) else naive
    return Case(start, end, interval_type, units, zone)


@PROPS
@given(cases())
def test_oldest_first_windows_tile_the_range(case: Case) -> None:
    plan = case.plan()
    start = localise(case.start, case.tz)
    bound = end_bound(case.end, case.tz)
    windows = all_windows(plan.windows())

    assert len(windows) == plan.count == len(plan)
    if start >= bound:
        assert windows == []
        return
    assert windows[0].start == start
    for left, right in itertools.pairwise(windows):
        assert left.end == right.start
    for w in windows:
        assert w.start.tzinfo is UTC
        assert w.end.tzinfo is UTC
        assert w.start < w.end
    assert windows[-1].start < bound
    assert windows[-1].end >= bound  # the next window would start at or past the bound


@PROPS
@given(cases())
def test_window_starts_follow_the_anchor(case: Case) -> None:
    """Each start is anchor + k x step, in absolute time for minute/hour, in wall time
    (clamped to the month's end) for the calendar intervals."""
    plan = case.plan()
    tz = case.tz
    start = localise(case.start, tz)
    interval_type, units, raw = case.interval_type, case.units, case.start
    if isinstance(raw, datetime) and raw.tzinfo is not None:
        # Via UTC: astimezone to a datetime's own zone is a no-op and would keep a wall time
        # that does not exist (an aware start in a gap), while the anchor is the instant's.
        anchor = raw.astimezone(UTC).astimezone(tz).replace(tzinfo=None, fold=0)
    elif isinstance(raw, datetime):
        anchor = raw.replace(fold=0)
    else:
        anchor = datetime.combine(raw, time())

    for k, w in plan.windows():
        if interval_type is IntervalType.MINUTE:
            assert w.start == start + timedelta(minutes=units * k)
            assert w.end - w.start == timedelta(minutes=units)
        elif interval_type is IntervalType.HOUR:
            assert w.start == start + H * units * k
            assert w.end - w.start == H * units
        else:
            local = w.start.astimezone(tz)
            if interval_type in (IntervalType.DAY, IntervalType.WEEK):
                per = 7 if interval_type is IntervalType.WEEK else 1
                assert local.date() == anchor.date() + D * per * units * k
            else:
                months = units * k * (12 if interval_type is IntervalType.YEAR else 1)
                year, month0 = divmod(anchor.month - 1 + months, 12)
                year += anchor.year
                day = min(anchor.day, calendar.monthrange(year, month0 + 1)[1])
                assert local.date() == date(year, month0 + 1, day)
            if k > 0:
                # Same wall time as the anchor unless that wall time fell into a DST gap.
                expected = anchor.replace(
                    year=local.year, month=local.month, day=local.day, tzinfo=tz
                )
                if expected.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == (
                    expected.replace(tzinfo=None)
                ):
                    assert local.replace(tzinfo=None) == expected.replace(tzinfo=None)
                    assert local.fold == 0


@PROPS
@given(cases())
def test_newest_first_is_the_exact_reverse(case: Case) -> None:
    oldest = case.plan(RunOrder.OLDEST_FIRST)
    newest = case.plan(RunOrder.NEWEST_FIRST)
    assert newest.count == oldest.count
    assert all_windows(newest.windows()) == all_windows(oldest.windows())[::-1]


@PROPS
@given(cases(), st.sampled_from(list(RunOrder)), st.data())
def test_random_access_and_resume_agree_with_streaming(
    case: Case, order: RunOrder, data: st.DataObject
) -> None:
    plan = case.plan(order)
    streamed = list(plan.windows())
    assert [seq for seq, _ in streamed] == list(range(plan.count))
    assert [plan.window_at(i) for i in range(plan.count)] == [w for _, w in streamed]
    k = data.draw(st.integers(0, plan.count))
    assert list(plan.windows(from_seq=k)) == streamed[k:]
    assert (
        count_windows(case.start, case.end, case.interval_type, case.units, case.zone) == plan.count
    )


# --- examples -------------------------------------------------------------------------------


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def starts(plan_windows: Iterable[tuple[int, Window]]) -> list[datetime]:
    return [w.start for w in all_windows(plan_windows)]


def test_monthly_from_jan_31_clamps_without_drift() -> None:
    # Ends the day before the sixth window would start, so it is the last one left out.
    plan = window_plan(date(2024, 1, 31), date(2024, 6, 29), "month", 1, "UTC", "oldest_first")
    assert [s.date() for s in starts(plan.windows())] == [
        date(2024, 1, 31),
        date(2024, 2, 29),
        date(2024, 3, 31),
        date(2024, 4, 30),
        date(2024, 5, 31),
    ]
    assert plan.window_at(4).end == utc(2024, 6, 30)


def test_monthly_non_leap_february() -> None:
    plan = window_plan(date(2023, 1, 31), date(2023, 3, 30), "month", 1, "UTC", "oldest_first")
    assert [s.date() for s in starts(plan.windows())] == [date(2023, 1, 31), date(2023, 2, 28)]
    assert plan.window_at(1).end == utc(2023, 3, 31)


def test_yearly_feb_29_anchor() -> None:
    plan = window_plan(date(2024, 2, 29), date(2029, 1, 1), "year", 1, "UTC", "oldest_first")
    assert [s.date() for s in starts(plan.windows())] == [
        date(2024, 2, 29),
        date(2025, 2, 28),
        date(2026, 2, 28),
        date(2027, 2, 28),
        date(2028, 2, 29),
    ]
    assert plan.window_at(4).end == utc(2029, 2, 28)


def test_quarterly_units() -> None:
    plan = window_plan(date(2024, 1, 1), date(2024, 12, 31), "month", 3, "UTC", "oldest_first")
    assert [s.month for s in starts(plan.windows())] == [1, 4, 7, 10]


@pytest.mark.parametrize(
    ("zone", "spring", "fall"),
    [
        ("Europe/Berlin", date(2024, 3, 31), date(2024, 10, 27)),
        ("America/New_York", date(2024, 3, 10), date(2024, 11, 3)),
    ],
)
def test_day_windows_across_dst(zone: str, spring: date, fall: date) -> None:
    tz = ZoneInfo(zone)
    for day, hours in ((spring, 23), (fall, 25)):
        plan = window_plan(day - D, day + D, "day", 1, zone, "oldest_first")
        windows = all_windows(plan.windows())
        assert [w.end - w.start for w in windows] == [24 * H, hours * H, 24 * H]
        for w, d in zip(windows, (day - D, day, day + D), strict=True):
            assert w.start.astimezone(tz).replace(tzinfo=None) == datetime.combine(d, time())


def test_week_window_across_spring_forward_is_one_hour_short() -> None:
    plan = window_plan(date(2024, 3, 25), date(2024, 4, 7), "week", 1, "Europe/Berlin")
    assert [w.end - w.start for _, w in plan.windows()] == [7 * 24 * H - H, 7 * 24 * H]


@pytest.mark.parametrize(
    ("zone", "start"),
    [
        ("Europe/Berlin", datetime(2024, 3, 31)),
        ("Europe/Berlin", datetime(2024, 10, 27)),
        ("America/New_York", datetime(2024, 3, 10)),
        ("America/New_York", datetime(2024, 11, 3)),
    ],
)
def test_hourly_windows_across_dst_are_exactly_one_hour(zone: str, start: datetime) -> None:
    plan = window_plan(start, start + D, "hour", 1, zone, "oldest_first")
    windows = all_windows(plan.windows())
    assert all(w.end - w.start == H for w in windows)
    # The absolute length of the local day: 23 or 25 one-hour windows.
    assert plan.count in (23, 25)


def test_day_wall_time_in_spring_gap_moves_forward() -> None:
    tz = ZoneInfo("Europe/Berlin")
    plan = window_plan(datetime(2024, 3, 30, 2, 30), date(2024, 4, 1), "day", 1, "Europe/Berlin")
    local = [s.astimezone(tz).replace(tzinfo=None) for s in starts(plan.windows())]
    assert local == [
        datetime(2024, 3, 30, 2, 30),
        datetime(2024, 3, 31, 3, 30),  # 02:30 does not exist that day
        datetime(2024, 4, 1, 2, 30),
    ]


def test_day_wall_time_in_fall_overlap_takes_first_occurrence() -> None:
    plan = window_plan(datetime(2024, 10, 26, 2, 30), date(2024, 10, 27), "day", 1, "Europe/Berlin")
    # 02:30 happens twice on Oct 27; the first is at +02:00.
    assert starts(plan.windows())[1] == utc(2024, 10, 27, 0, 30)


def test_aware_start_in_second_occurrence_is_kept() -> None:
    tz = ZoneInfo("Europe/Berlin")
    start = datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=tz)
    plan = window_plan(start, date(2024, 10, 28), "day", 1, "Europe/Berlin")
    assert [w.start for w in all_windows(plan.windows())] == [
        utc(2024, 10, 27, 1, 30),
        utc(2024, 10, 28, 1, 30),
    ]


def test_lord_howe_half_hour_shift() -> None:
    # Lord Howe moves its clocks by 30 minutes (first Sunday in October, 02:00 -> 02:30).
    plan = window_plan(date(2024, 10, 6), date(2024, 10, 6), "day", 1, "Australia/Lord_Howe")
    (w,) = all_windows(plan.windows())
    assert w.end - w.start == 23 * H + 30 * timedelta(minutes=1)


def test_inclusive_date_end() -> None:
    plan = window_plan(date(2024, 1, 1), date(2024, 1, 3), "day", 1, "UTC", "oldest_first")
    assert plan.count == 3
    assert plan.window_at(2) == Window(start=utc(2024, 1, 3), end=utc(2024, 1, 4))
    assert count_windows(date(2024, 1, 1), date(2024, 3, 30), "day", 1, "UTC") == 90


def test_single_date_gives_that_day() -> None:
    assert count_windows(date(2024, 1, 1), date(2024, 1, 1), "day", 1, "UTC") == 1
    assert count_windows(date(2024, 1, 1), date(2024, 1, 1), "hour", 1, "UTC") == 24
    assert count_windows(date(2024, 3, 31), date(2024, 3, 31), "hour", 1, "Europe/Berlin") == 23


def test_datetime_end_is_exclusive_and_windows_are_not_clipped() -> None:
    assert count_windows(datetime(2024, 1, 1), datetime(2024, 1, 3), "day", 1, "UTC") == 2
    plan = window_plan(datetime(2024, 1, 1), datetime(2024, 1, 3, 0, 1), "day", 1, "UTC")
    assert plan.count == 3
    assert plan.window_at(2).end == utc(2024, 1, 4)


def test_aware_datetimes_are_used_as_given() -> None:
    plan = window_plan(
        datetime(2024, 1, 1, 5, tzinfo=UTC),
        datetime(2024, 1, 1, 8, tzinfo=UTC),
        "hour",
        1,
        "America/New_York",
    )
    assert starts(plan.windows()) == [utc(2024, 1, 1, 5), utc(2024, 1, 1, 6), utc(2024, 1, 1, 7)]


def test_date_means_local_midnight() -> None:
    plan = window_plan(date(2024, 1, 1), date(2024, 1, 1), "day", 1, "Asia/Kolkata")
    assert plan.window_at(0) == Window(start=utc(2023, 12, 31, 18, 30), end=utc(2024, 1, 1, 18, 30))


def test_equal_datetimes_give_no_windows() -> None:
    plan = window_plan(datetime(2024, 1, 1), datetime(2024, 1, 1), "day", 1, "UTC")
    assert plan.count == 0
    assert list(plan.windows()) == []
    with pytest.raises(IndexError):
        plan.window_at(0)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (date(2024, 1, 2), date(2024, 1, 1)),
        (datetime(2024, 1, 1, 0, 1), datetime(2024, 1, 1)),
        (datetime(2024, 1, 2), date(2024, 1, 1)),
        (date(2024, 1, 2), datetime(2024, 1, 1, 23)),
    ],
)
def test_start_after_end_raises(start: date | datetime, end: date | datetime) -> None:
    with pytest.raises(ValueError, match=r"start .* is after end"):
        window_plan(start, end, "day", 1, "UTC")


def test_start_later_on_the_inclusive_end_date_is_allowed() -> None:
    plan = window_plan(datetime(2024, 1, 1, 12), date(2024, 1, 1), "hour", 6, "UTC")
    assert starts(plan.windows()) == [utc(2024, 1, 1, 12), utc(2024, 1, 1, 18)]


def test_newest_first_seq_zero_is_newest() -> None:
    plan = window_plan(date(2024, 1, 1), date(2024, 1, 3), "day", 1, "UTC", "newest_first")
    assert plan.window_at(0).start == utc(2024, 1, 3)
    assert [seq for seq, _ in plan.windows(from_seq=1)] == [1, 2]
    assert [w.start for _, w in plan.windows(from_seq=1)] == [utc(2024, 1, 2), utc(2024, 1, 1)]


def test_large_range_is_planned_without_materialising() -> None:
    plan = window_plan(date(1970, 1, 1), date(2069, 12, 31), "minute", 1, "UTC")
    assert plan.count == (date(2070, 1, 1) - date(1970, 1, 1)).days * 24 * 60
    last = plan.window_at(plan.count - 1)
    assert last.end == utc(2070, 1, 1)
    seq, resumed = next(plan.windows(from_seq=plan.count - 2))
    assert seq == plan.count - 2
    assert resumed.end == last.start


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        window_plan(date(2024, 1, 1), date(2024, 1, 2), "day", 1, "Mars/Olympus")
    with pytest.raises(ValueError, match="interval_units"):
        window_plan(date(2024, 1, 1), date(2024, 1, 2), "day", 0, "UTC")
    with pytest.raises(ValueError, match="representable"):
        window_plan(date(9999, 1, 1), date(9999, 12, 31), "day", 1, "UTC")
    plan = window_plan(date(2024, 1, 1), date(2024, 1, 2), "day", 1, "UTC")
    with pytest.raises(ValueError, match="from_seq"):
        plan.windows(from_seq=3)
    with pytest.raises(IndexError):
        plan.window_at(-1)


def test_previous_start_is_the_window_before_in_range_order_even_before_the_range() -> None:
    plan = window_plan(
        date(2024, 1, 31), date(2024, 4, 30), IntervalType.MONTH, 1, "UTC", RunOrder.NEWEST_FIRST
    )
    # Newest first: seq 0 is the April window (Apr 30), whose predecessor is Mar 31.
    assert plan.window_at(0).start == datetime(2024, 4, 30, tzinfo=UTC)
    assert plan.previous_start(0) == datetime(2024, 3, 31, tzinfo=UTC)
    # The oldest window's predecessor lies before the range: Dec 31.
    assert plan.window_at(plan.count - 1).start == datetime(2024, 1, 31, tzinfo=UTC)
    assert plan.previous_start(plan.count - 1) == datetime(2023, 12, 31, tzinfo=UTC)
    with pytest.raises(IndexError):
        plan.previous_start(plan.count)
