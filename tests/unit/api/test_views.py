"""The bodies api.views writes are exactly what the response models would dump: the same
members in the same order, the same values, the same JSON bytes, for backfills of every
shape (table and date range, every state, with and without error reports, progress and
planning figures, time zones other than UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from api.schemas import BackfillOut, PageOut, backfills_page
from api.views import backfill_body, backfills_page_body
from orchestrator import jsoncodec
from orchestrator.domain.models import (
    Backfill,
    ErrorEntry,
    IntervalType,
    Reprocess,
    RunOrder,
    TargetKind,
)
from orchestrator.domain.progress import Progress
from orchestrator.domain.states import BackfillState
from orchestrator.usecases.paging import Page

_zones = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))])
_times = st.builds(
    lambda at, zone: at.replace(tzinfo=UTC).astimezone(zone),
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1)),
    _zones,
)
_maybe_times = st.none() | _times
_counts = st.integers(min_value=0, max_value=2**40)
_small = st.integers(min_value=0, max_value=10_000)
_rates = st.none() | st.floats(min_value=0.001, max_value=1e9, allow_nan=False)
_keys = st.none() | st.lists(st.text(max_size=8), max_size=3)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)

_entries = st.builds(
    ErrorEntry,
    run_id=_counts,
    window_start=_maybe_times,
    window_end=_maybe_times,
    lower_key=_keys,
    upper_key=_keys,
    attempt=_small,
    error=st.text(max_size=40),
)

_backfills = st.builds(
    Backfill,
    id=st.integers(min_value=1, max_value=2**62),
    uuid=st.uuids(),
    team_id=st.integers(min_value=1, max_value=100),
    target_id=st.integers(min_value=1, max_value=2**62),
    kind=st.sampled_from(TargetKind),
    name=st.none() | st.text(max_size=20),
    state=st.sampled_from(BackfillState),
    command_id=st.none() | st.uuids(),
    table_name=st.none() | st.text(max_size=10),
    sort_column=st.none() | st.text(max_size=10),
    chunk_size=st.none() | st.integers(min_value=0, max_value=100_000),
    range_start=_maybe_times,
    range_end=_maybe_times,
    end_inclusive=st.booleans(),
    interval_type=st.none() | st.sampled_from(IntervalType),
    interval_units=st.none() | st.integers(min_value=1, max_value=60),
    time_zone=st.none() | st.sampled_from(["UTC", "Europe/Berlin"]),
    run_order=st.none() | st.sampled_from(RunOrder),
    reprocess=st.sampled_from(Reprocess),
    variables=st.dictionaries(st.text(max_size=8), _json, max_size=4),
    max_active_runs=st.integers(min_value=1, max_value=64),
    max_attempts=st.integers(min_value=1, max_value=10),
    max_runs_per_minute=_rates,
    max_rows_per_second=_rates,
    priority=st.integers(min_value=1, max_value=10),
    planning_done=st.booleans(),
    rows_initial_count=st.none() | _counts,
    rows_processed_count=_counts,
    rows_ingested_count=_counts,
    runs_total=_small,
    runs_created=_small,
    runs_planned=st.none() | _small,
    runs_completed=_small,
    runs_failed=_small,
    runs_cancelled=_small,
    error_report=st.lists(_entries, max_size=3),
    created_at=_times,
    started_at=_maybe_times,
    updated_at=_times,
    completed_at=_maybe_times,
    cancelled_at=_maybe_times,
    failed_at=_maybe_times,
    paused_at=_maybe_times,
)

_fractions = st.none() | st.floats(min_value=0, max_value=1)
_progress = st.builds(
    Progress,
    fraction=_fractions,
    rows_per_second=_rates,
    runs_per_minute=_rates,
    eta_seconds=_rates,
    eta=_maybe_times,
)


def _same(view: dict[str, Any], model: Any) -> None:
    dumped = model.model_dump(mode="json")
    assert view == dumped
    # Order and types too: the bytes a client receives are the same.
    assert jsoncodec.dumps(view) == jsoncodec.dumps(dumped)


@settings(max_examples=300)
@given(_backfills, _progress)
def test_a_backfill_body_is_its_response_model_dumped(b: Backfill, progress: Progress) -> None:
    _same(backfill_body(b, progress), BackfillOut.from_domain(b, progress))


@settings(max_examples=50)
@given(st.lists(st.tuples(_backfills, _progress), max_size=3), st.none() | _counts)
def test_a_page_of_backfills_is_its_response_model_dumped(
    items: list[tuple[Backfill, Progress]], next_after: int | None
) -> None:
    backfills = [b.model_copy(update={"id": i + 1}) for i, (b, _) in enumerate(items)]
    progress = {b.id: p for b, (_, p) in zip(backfills, items, strict=True)}
    page = Page(items=backfills, next_after=next_after)
    model: PageOut[BackfillOut] = backfills_page(page, progress)
    _same(backfills_page_body(page, progress), model)


def test_every_member_the_model_declares_is_written() -> None:
    now = datetime.now(UTC)
    b = Backfill(
        id=1,
        uuid=UUID(int=1),
        target_id=1,
        kind=TargetKind.DATE_RANGE,
        state=BackfillState.CREATED,
        max_active_runs=1,
        max_attempts=1,
        created_at=now,
        updated_at=now,
    )
    progress = Progress(
        fraction=None, rows_per_second=None, runs_per_minute=None, eta_seconds=None, eta=None
    )
    assert list(backfill_body(b, progress)) == list(BackfillOut.model_fields)
