"""The Supermetrics mapping on its own: statuses, dates, times, the error shape and the
request parsing, without a database."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from api.compat import supermetrics as sm
from api.compat.failure import Failure
from api.keys import REQUEST_ID_KEY
from orchestrator.domain.models import Backfill, ErrorEntry, TargetKind
from orchestrator.domain.states import BackfillState

B = BackfillState
T0 = datetime(2024, 2, 1, 9, 0, 0, 123456, tzinfo=UTC)


def backfill(**changes: Any) -> Backfill:
    values: dict[str, Any] = {
        "id": 12345,
        "uuid": uuid4(),
        "target_id": 456789,
        "kind": TargetKind.DATE_RANGE,
        "state": B.RUNNING,
        "range_start": datetime(2024, 1, 1, tzinfo=UTC),
        "range_end": datetime(2024, 1, 31, tzinfo=UTC),
        "end_is_date": True,
        "time_zone": "UTC",
        "max_active_runs": 4,
        "max_attempts": 3,
        "created_by": 789,
        "runs_total": 31,
        "runs_created": 31,
        "runs_completed": 25,
        "runs_failed": 2,
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(changes)
    return Backfill(**values)


def dumped(item: Backfill) -> dict[str, Any]:
    return sm.to_supermetrics(item).model_dump(mode="json")


# ------------------------------------------------------------------------------ statuses


@pytest.mark.parametrize(
    ("state", "status"),
    [
        (B.CREATED, "CREATED"),
        (B.SCHEDULED, "SCHEDULED"),
        (B.RUNNING, "RUNNING"),
        (B.PAUSED, "SCHEDULED"),
        (B.FAILED, "FAILED"),
        (B.COMPLETED, "COMPLETED"),
        (B.CANCELLED, "CANCELLED"),
    ],
)
def test_every_started_state_has_a_supermetrics_status(state: BackfillState, status: str) -> None:
    assert sm.supermetrics_status(state) == status
    assert dumped(backfill(state=state))["status"] == status


def test_drafts_and_table_backfills_are_not_transfer_backfills() -> None:
    assert sm.is_transfer_backfill(backfill())
    assert not sm.is_transfer_backfill(backfill(state=B.DRAFT))
    assert not sm.is_transfer_backfill(backfill(kind=TargetKind.TABLE))
    assert not sm.is_transfer_backfill(backfill(range_end=None))


def test_end_time_is_when_the_final_or_failed_status_was_reached() -> None:
    done, failed, cancelled = T0 + timedelta(hours=1), T0 + timedelta(hours=2), T0 + timedelta(3)
    stamps = {"completed_at": done, "failed_at": failed, "cancelled_at": cancelled}
    assert sm.end_time(backfill(state=B.COMPLETED, **stamps)) == done
    assert sm.end_time(backfill(state=B.FAILED, **stamps)) == failed
    # A failed backfill that was cancelled ended when it was cancelled.
    assert sm.end_time(backfill(state=B.CANCELLED, **stamps)) == cancelled
    for state in (B.CREATED, B.SCHEDULED, B.RUNNING, B.PAUSED):
        assert sm.end_time(backfill(state=state, **stamps)) is None


# -------------------------------------------------------------------------------- fields


def test_the_seed_example_maps_field_for_field() -> None:
    cancelled_at = datetime(2024, 2, 1, 15, 30, tzinfo=UTC)
    item = backfill(
        state=B.CANCELLED,
        started_at=datetime(2024, 2, 1, 10, 0, tzinfo=UTC),
        cancelled_at=cancelled_at,
        cancelled_by=790,
    )
    assert dumped(item) == {
        "transfer_backfill_id": 12345,
        "transfer_id": 456789,
        "range_start_date": "2024-01-01",
        "range_end_date": "2024-01-31",
        "created_time": "2024-02-01T09:00:00Z",
        "created_user_id": 789,
        "removed_time": "2024-02-01T15:30:00Z",
        "removed_user_id": 790,
        "start_time": "2024-02-01T10:00:00Z",
        "end_time": "2024-02-01T15:30:00Z",
        "status": "CANCELLED",
        "transfer_runs_total": 31,
        "transfer_runs_created": 31,
        "transfer_runs_completed": 25,
        "transfer_runs_failed": 2,
        "error_report": [],
    }


def test_times_are_whole_seconds_in_utc_with_a_z() -> None:
    helsinki = timezone(timedelta(hours=2))
    item = backfill(created_at=datetime(2024, 2, 1, 11, 0, 5, 999999, tzinfo=helsinki))
    assert dumped(item)["created_time"] == "2024-02-01T09:00:05Z"


def test_a_backfill_no_key_created_has_no_creating_user() -> None:
    assert dumped(backfill(created_by=None))["created_user_id"] is None


@pytest.mark.parametrize(
    ("changes", "dates"),
    [
        # A date end (Supermetrics' own): stored as that day's midnight, its day included.
        ({}, ("2024-01-01", "2024-01-31")),
        # In another zone the days are that zone's.
        (
            {
                "time_zone": "Europe/Helsinki",
                "range_start": datetime(2024, 1, 1, tzinfo=ZoneInfo("Europe/Helsinki")),
                "range_end": datetime(2024, 1, 31, tzinfo=ZoneInfo("Europe/Helsinki")),
            },
            ("2024-01-01", "2024-01-31"),
        ),
        # An exclusive datetime end at midnight does not cover that day ...
        ({"end_is_date": False}, ("2024-01-01", "2024-01-30")),
        # ... one in the middle of a day does ...
        (
            {"end_is_date": False, "range_end": datetime(2024, 1, 31, 12, tzinfo=UTC)},
            ("2024-01-01", "2024-01-31"),
        ),
        # ... and an inclusive one covers its own instant.
        ({"end_is_date": False, "end_inclusive": True}, ("2024-01-01", "2024-01-31")),
    ],
)
def test_range_dates_are_the_first_and_last_day_covered(
    changes: dict[str, Any], dates: tuple[str, str]
) -> None:
    start, end = sm.range_dates(backfill(**changes))
    assert (start.isoformat(), end.isoformat()) == dates


def test_the_error_report_is_one_dated_entry_per_failed_run() -> None:
    entries = [
        ErrorEntry(
            run_id=1, window_start=datetime(2024, 1, 15, tzinfo=UTC), attempt=3, error="x" * 5000
        ),
        ErrorEntry(run_id=2, window_start=datetime(2024, 1, 14, tzinfo=UTC), attempt=3, error="e"),
        ErrorEntry(run_id=3, window_start=None, attempt=1, error="no window"),
    ]
    report = dumped(backfill(error_report=entries))["error_report"]
    assert report == [
        {"transfer_run_date": "2024-01-15", "error": "x" * 1000},
        {"transfer_run_date": "2024-01-14", "error": "e"},
    ]


# ------------------------------------------------------------------------------- requests


def test_a_range_needs_both_dates_in_order() -> None:
    assert sm.parse_range({"range_start": "2024-01-01", "range_end": "2024-01-01"}) == (
        date(2024, 1, 1),
        date(2024, 1, 1),
    )
    bad: list[dict[str, Any]] = [
        {"range_start": "2024-01-01"},
        {"range_start": "2024-01-02", "range_end": "2024-01-01"},
        {"range_start": "2024-01-01", "range_end": "2024-01-02", "x": 1},
        {"range_start": "2024-1-1", "range_end": "2024-01-02"},
        {"range_start": "2023-02-29", "range_end": "2024-01-02"},
        {"range_start": 1, "range_end": "2024-01-02"},
    ]
    for body in bad:
        with pytest.raises(sm.SupermetricsError) as caught:
            sm.parse_range(body)
        assert (caught.value.status, caught.value.code) == (400, "INVALID_PARAMETER"), body


def test_the_only_status_that_can_be_set_is_cancelled() -> None:
    sm.parse_status({"status": "CANCELLED"})
    for body in ({}, {"status": "RUNNING"}, {"status": "CANCELLED", "x": 1}, {"status": None}):
        with pytest.raises(sm.SupermetricsError):
            sm.parse_status(body)


@pytest.mark.parametrize("raw", ["abc", "0", "-1", "1.0", str(2**63), "9" * 40, "\uff11"])
def test_a_path_id_is_a_positive_int64(raw: str) -> None:
    request = make_mocked_request("GET", f"/v1/teams/{raw}/backfills", match_info={"team_id": raw})
    with pytest.raises(sm.SupermetricsError) as caught:
        sm.path_id(request, "team_id")
    assert caught.value.status == 400


def test_the_largest_int64_is_an_id() -> None:
    raw = str(2**63 - 1)
    request = make_mocked_request("GET", "/", match_info={"backfill_id": raw})
    assert sm.path_id(request, "backfill_id") == 2**63 - 1


# --------------------------------------------------------------------------------- errors


def render(failure: Failure) -> tuple[web.Response, dict[str, Any]]:
    request = make_mocked_request("GET", "/v1/teams/1/backfills")
    request[REQUEST_ID_KEY] = "01892A4D-7586-7000-8000-000000000000"
    response = sm.render_error(request, failure)
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert isinstance(response.body, bytes)
    body = json.loads(response.body)
    assert body["meta"] == {"request_id": "01892A4D-7586-7000-8000-000000000000"}
    return response, body["error"]


def failure(status: int, code: str, detail: str = "detail", **kw: Any) -> Failure:
    return Failure(status=status, code=code, title="title", detail=detail, **kw)


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (400, "INVALID_PARAMETER", "Invalid Parameter"),
        (401, "API_KEY_INVALID", "Invalid API key"),
        (403, "ACCESS_DENIED", "Access Denied"),
        (404, "NOT_FOUND", "Not Found"),
        (422, "UNPROCESSABLE_ENTITY", "Unprocessable Entity"),
        (429, "TOO_MANY_REQUESTS", "Too Many Requests"),
        (500, "INTERNAL_SERVER_ERROR", "Internal Server Error"),
    ],
)
def test_native_failures_get_the_seeds_codes(status: int, code: str, message: str) -> None:
    response, error = render(failure(status, "native_code"))
    assert response.status == status
    assert (error["code"], error["message"]) == (code, message)


def test_a_server_error_never_shows_its_detail() -> None:
    _, error = render(failure(500, "internal_error", "secret stack"))
    assert "secret" not in error["description"]


def test_a_conflict_is_unprocessable() -> None:
    response, error = render(failure(409, "conflict", "the row changed concurrently"))
    assert response.status == 422
    assert error["code"] == "CONFLICT"


def test_rate_limit_headers_are_kept() -> None:
    headers = {"Retry-After": "7", "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0"}
    response, error = render(failure(429, "rate_limited", headers=headers))
    assert response.status == 429
    for name, value in headers.items():
        assert response.headers[name] == value
    assert error["description"] == "detail"


def test_own_errors_keep_their_code_and_message() -> None:
    exc = sm.not_found("backfill")
    response, error = render(
        Failure(status=exc.status, code=exc.code, title=exc.title, detail=exc.detail)
    )
    assert response.status == 404
    assert error == {
        "code": "NOT_FOUND",
        "message": "Not Found",
        "description": "The requested backfill could not be found or you do not have access to it.",
    }


def test_field_errors_are_described_and_long_text_is_clipped() -> None:
    errors = [{"pointer": "/end", "message": "the range is empty"}]
    _, error = render(failure(422, "validation_failed", "see errors", errors=errors))
    assert error["description"] == "end: the range is empty"
    _, error = render(failure(400, "bad_request", "x" * 1000))
    assert len(error["description"]) == 255


def test_an_http_error_gets_a_code_from_its_status() -> None:
    response, error = render(
        failure(405, "method_not_allowed", headers={"Allow": "GET"}, from_http=True)
    )
    assert response.status == 405
    assert response.headers["Allow"] == "GET"
    assert error["code"] == "METHOD_NOT_ALLOWED"
    _, error = render(failure(415, "unsupported_media_type"))
    assert (error["code"], error["message"]) == ("UNSUPPORTED_MEDIA_TYPE", "Unsupported Media Type")
