"""Pure parts of the CLI: reading progress, parsing operator input, naming unknown settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from orchestrator.cli.admin import key_state, parse_expiry, parse_scopes
from orchestrator.cli.config import describe, unknown_variables
from orchestrator.cli.errors import Exit, UsageError
from orchestrator.cli.main import given_value
from orchestrator.cli.progress import RateTracker, detail, read, summary
from orchestrator.cli.watch import exit_code
from orchestrator.domain.keys import KeyInfo, Scope
from orchestrator.settings import Settings

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def backfill(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": 7, "name": None, "kind": "date_range", "state": "running",
        "rows_initial_count": None, "rows_processed_count": 0,
        "runs_total": 10, "runs_completed": 0, "runs_failed": 0, "runs_cancelled": 0,
        "error_report": [], "created_at": "2026-06-01T12:00:00Z",
        "started_at": "2026-06-01T12:00:00Z", "completed_at": None, "failed_at": None,
        "cancelled_at": None,
    }  # fmt: skip
    body.update(fields)
    return body


def test_rates_and_eta_are_derived_from_counts_between_polls() -> None:
    tracker = RateTracker()
    read(backfill(runs_completed=2), tracker, 0.0)
    reading = read(backfill(runs_completed=4), tracker, 60.0)
    assert reading.unit == "runs"
    assert reading.fraction == pytest.approx(0.4)
    assert reading.runs_per_minute == pytest.approx(2.0)
    assert reading.eta_seconds == pytest.approx(180.0)  # 6 runs left at 2 per minute


def test_a_counted_table_backfill_is_measured_in_rows() -> None:
    tracker = RateTracker()
    body = backfill(kind="table", rows_initial_count=1000, rows_processed_count=100)
    read(body, tracker, 0.0)
    reading = read({**body, "rows_processed_count": 600}, tracker, 10.0)
    assert (reading.unit, reading.done, reading.total) == ("rows", 600, 1000)
    assert reading.rows_per_second == pytest.approx(50.0)
    assert reading.eta_seconds == pytest.approx(8.0)


def test_the_servers_progress_field_wins_over_derived_numbers() -> None:
    progress = {"fraction": 0.25, "rows_per_second": 12.5, "runs_per_minute": 3.0,
                "eta_seconds": 42.0, "eta": None, "window_seconds": 60}  # fmt: skip
    reading = read(backfill(progress=progress), RateTracker(), 0.0)
    assert (reading.fraction, reading.rows_per_second, reading.eta_seconds) == (0.25, 12.5, 42.0)


def test_no_eta_while_paused_or_without_a_total() -> None:
    tracker = RateTracker()
    read(backfill(runs_completed=1), tracker, 0.0)
    assert read(backfill(runs_completed=2, state="paused"), tracker, 1.0).eta_seconds is None
    assert read(backfill(runs_total=0), RateTracker(), 0.0).fraction is None


def test_summary_says_how_it_ended() -> None:
    done = backfill(
        state="failed", runs_completed=9, runs_failed=1, rows_processed_count=900,
        failed_at="2026-06-01T12:01:30Z",
        error_report=[{"error": "division by zero\nCONTEXT: ..."}],
    )  # fmt: skip
    assert summary(done) == (
        "backfill 7 failed: 900 rows, 9/10 runs completed in 1m30s, 10 rows/s; 1 failed; "
        "first error: division by zero"
    )


def test_exit_code_is_the_worst_ending() -> None:
    assert exit_code([{"state": "completed"}]) is Exit.OK
    assert exit_code([{"state": "completed"}, {"state": "cancelled"}]) is Exit.CANCELLED
    assert exit_code([{"state": "cancelled"}, {"state": "failed"}]) is Exit.FAILED


def test_scopes_are_checked_against_the_known_ones() -> None:
    assert parse_scopes("read, write") == {Scope.READ, Scope.WRITE}
    with pytest.raises(UsageError, match="'bogus' is not a scope; allowed: read, write, admin"):
        parse_scopes("read,bogus")
    with pytest.raises(UsageError, match="at least one"):
        parse_scopes(",")


def test_expiry_must_be_a_future_iso_time() -> None:
    assert parse_expiry("2026-06-02", NOW) == datetime(2026, 6, 2, tzinfo=UTC)
    with pytest.raises(UsageError, match="'tomorrow' is not an ISO 8601"):
        parse_expiry("tomorrow", NOW)
    with pytest.raises(UsageError, match="in the past"):
        parse_expiry("2020-01-01", NOW)


def test_key_state() -> None:
    key = KeyInfo(id=1, team_id=1, prefix="bfk_x", scopes=[Scope.READ], name=None,
                  created_at=NOW, expires_at=None, revoked_at=None, last_used_at=None)  # fmt: skip
    assert key_state(key, NOW) == "active"
    assert key_state(key.model_copy(update={"expires_at": NOW}), NOW) == "expired"
    assert key_state(key.model_copy(update={"revoked_at": NOW}), NOW) == "revoked"


def test_unknown_variables_name_the_closest_setting() -> None:
    env = {"BACKFILL_PORT": "1", "BACKFILL_HTTP_PORT": "2", "BACKFILL_URL": "x",
           "backfill_log_levl": "x", "BACKFILL_ZZZZZZZZ": "x", "PATH": "/bin"}  # fmt: skip
    assert unknown_variables(env) == [
        ("BACKFILL_PORT", "BACKFILL_HTTP_PORT"),
        ("BACKFILL_ZZZZZZZZ", None),
        ("backfill_log_levl", "BACKFILL_LOG_LEVEL"),
    ]


def test_invalid_settings_are_described_without_secrets() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(http_port="abc", sources='{"x": 1', lease_seconds=-1)  # type: ignore[arg-type]
    text = describe(caught.value)
    assert "BACKFILL_HTTP_PORT='abc': Input should be a valid integer" in text
    assert "BACKFILL_LEASE_SECONDS=-1: Input should be greater than 0" in text
    assert "BACKFILL_SOURCES: " in text
    assert '{"x": 1' not in text


def test_the_value_given_to_a_failing_option_is_found() -> None:
    class Param:
        opts = ["--team"]

    assert given_value(["keys", "create", "--team", "one"], Param()) == "one"
    assert given_value(["keys", "create", "--team=one"], Param()) == "one"
    assert given_value(["keys", "create"], Param()) is None
    assert given_value(["x"], None) is None


def test_expiry_accepts_times_with_zones() -> None:
    later = NOW + timedelta(hours=1)
    assert parse_expiry(later.isoformat(), NOW) == later


def test_an_unknown_log_level_is_refused_with_the_allowed_ones() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(log_level="bogus")
    assert describe(caught.value) == (
        "BACKFILL_LOG_LEVEL='bogus': not a log level; allowed: DEBUG, INFO, WARNING, ERROR, "
        "CRITICAL"
    )
    assert Settings(log_level="debug").log_level == "DEBUG"


def test_the_progress_detail_shows_rate_and_eta_only_while_moving() -> None:
    tracker = RateTracker()
    read(backfill(runs_completed=2), tracker, 0.0)
    moving = read(backfill(runs_completed=4), tracker, 60.0)
    assert detail(moving) == "4/10 runs · 2.0 runs/min · ETA 3m00s · running"
    done = read(backfill(runs_completed=10, state="completed"), tracker, 61.0)
    assert detail(done) == "10/10 runs · completed"
