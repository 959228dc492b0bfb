"""Mage's API, the pure parts: datetimes in and out, body reading, status and error mapping,
previews and run counts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import MultiDict

from api.compat import mage
from api.compat.failure import Failure
from orchestrator.domain.models import Backfill, IntervalType, TargetKind
from orchestrator.domain.states import BackfillState
from orchestrator.errors import ValidationFailed

CREATED = datetime(2023, 7, 18, 23, 30, 26, 123456, tzinfo=UTC)
B = BackfillState


def backfill(**values: Any) -> Backfill:
    defaults: dict[str, Any] = {
        "id": 6,
        "uuid": uuid4(),
        "target_id": 1,
        "kind": TargetKind.DATE_RANGE,
        "state": B.DRAFT,
        "max_active_runs": 4,
        "max_attempts": 3,
        "created_at": CREATED,
        "updated_at": CREATED + timedelta(minutes=1, seconds=31),
    }
    return Backfill(**(defaults | values))


def mage_range(start: str, end: str, interval: str = "day", units: int = 1) -> dict[str, Any]:
    """A backfill's range as a Mage create stores it."""
    start_at, end_at = datetime.fromisoformat(start), datetime.fromisoformat(end)
    return {
        "range_start": start_at,
        "range_end": end_at,
        "range_input": {"start": start_at.isoformat(), "end": end_at.isoformat()},
        "end_inclusive": True,
        "time_zone": "UTC",
        "interval_type": IntervalType(interval),
        "interval_units": units,
    }


# ------------------------------------------------------------------------ datetimes


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2023-07-17 23:56:05", datetime(2023, 7, 17, 23, 56, 5, tzinfo=UTC)),
        ("2023-07-17T23:56:05", datetime(2023, 7, 17, 23, 56, 5, tzinfo=UTC)),
        ("2023-07-17T23:56:05.000Z", datetime(2023, 7, 17, 23, 56, 5, tzinfo=UTC)),
        ("2023-07-18T01:56:05+02:00", datetime(2023, 7, 17, 23, 56, 5, tzinfo=UTC)),
        ("2023-07-17", datetime(2023, 7, 17, tzinfo=UTC)),
        (" 2023-07-17 23:56 ", datetime(2023, 7, 17, 23, 56, tzinfo=UTC)),
    ],
)
def test_datetimes_are_read_as_utc(raw: str, expected: datetime) -> None:
    assert mage.parse_datetime(raw, "start_datetime") == expected


@pytest.mark.parametrize("raw", ["yesterday", "2023-13-01", "", 1689638165, ["2023-07-17"]])
def test_what_is_not_a_datetime_is_refused_naming_the_field(raw: object) -> None:
    with pytest.raises(ValidationFailed) as caught:
        mage.parse_datetime(raw, "end_datetime")
    assert caught.value.errors[0]["pointer"] == "/end_datetime"


def test_a_datetime_before_year_one_in_utc_is_refused_not_a_crash() -> None:
    with pytest.raises(ValidationFailed):
        mage.parse_datetime("0001-01-01T00:00:00+05:00", "start_datetime")


def test_datetimes_leave_as_utc_seconds() -> None:
    berlin = datetime(2023, 7, 18, 3, 56, 5, 999999, tzinfo=timezone(timedelta(hours=2)))
    assert mage.format_datetime(berlin) == "2023-07-18 01:56:05"
    assert mage.format_datetime(None) is None


# ---------------------------------------------------------------------------- bodies


def test_a_body_maps_onto_draft_fields() -> None:
    given = mage.read_input(
        {
            "backfill": {
                "name": "new_name",
                "start_datetime": "2023-07-17 23:56:05",
                "end_datetime": None,
                "interval_type": "hour",
                "interval_units": "2",
                "variables": None,
                "status": "initial",
                "block_uuid": None,
            }
        }
    )
    assert given.fields == {
        "name": "new_name",
        "start": datetime(2023, 7, 17, 23, 56, 5, tzinfo=UTC),
        "end": None,
        "interval_type": IntervalType.HOUR,
        "interval_units": 2,
        "variables": {},
    }
    assert (given.status, given.status_given) == ("initial", True)


def test_what_a_get_shows_may_be_put_back_and_is_ignored() -> None:
    shown = mage.to_mage(backfill(), "arwen_starlight") | {
        "total_run_count": 2,
        "run_status_counts": {},
        "pipeline_run_dates": [],
    }
    given = mage.read_input({"backfill": shown})
    assert set(given.fields) == {
        "name",
        "start",
        "end",
        "interval_type",
        "interval_units",
        "variables",
    }
    assert given.status_given
    assert given.status is None


def test_an_empty_body_changes_nothing() -> None:
    assert mage.read_input({}) == mage.BackfillInput(fields={})
    assert mage.read_input({"backfill": None}) == mage.BackfillInput(fields={})


@pytest.mark.parametrize(
    ("document", "pointer", "words"),
    [
        ({"backfill": {"colour": "blue"}}, "/colour", "unknown attribute"),
        ({"backfil": {}}, "/backfil", "unknown key"),
        ({"backfill": []}, "/backfill", "must be an object"),
        ({"backfill": {"block_uuid": "load"}}, "/block_uuid", "block backfills"),
        ({"backfill": {"status": "paused"}}, "/status", "must be one of"),
        ({"backfill": {"interval_type": "custom"}}, "/interval_type", "custom intervals"),
        ({"backfill": {"interval_type": "second"}}, "/interval_type", "a minute"),
        ({"backfill": {"interval_type": "days"}}, "/interval_type", "must be one of"),
        ({"backfill": {"interval_units": True}}, "/interval_units", "whole number"),
        ({"backfill": {"interval_units": 1.5}}, "/interval_units", "whole number"),
        ({"backfill": {"interval_units": "²"}}, "/interval_units", "whole number"),
        ({"backfill": {"variables": [1]}}, "/variables", "must be an object"),
        ({"backfill": {"name": 7}}, "/name", "must be a string"),
    ],
)
def test_bodies_mage_would_not_take_are_refused(
    document: dict[str, Any], pointer: str, words: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        mage.read_input(document)
    [error] = caught.value.errors
    assert error["pointer"] == pointer
    assert words in error["message"]


def test_only_values_that_differ_from_what_is_shown_are_changes() -> None:
    current = backfill(
        name="n",
        variables={"a": 1},
        **mage_range("2023-07-17T23:56:05.250000+00:00", "2023-07-18T23:56:05+00:00"),
    )
    read_back = mage.read_input({"backfill": mage.to_mage(current, "p")})
    assert mage.changed_fields(current, read_back.fields) == {}
    moved = mage.read_input({"backfill": {"end_datetime": "2023-07-19 23:56:05", "name": "n"}})
    assert mage.changed_fields(current, moved.fields) == {
        "end": datetime(2023, 7, 19, 23, 56, 5, tzinfo=UTC)
    }


# ---------------------------------------------------------------------------- output


def test_the_seed_response_shape() -> None:
    shown = mage.to_mage(
        backfill(
            name="new_name",
            range_start=datetime(2023, 7, 17, 23, 56, 5, tzinfo=UTC),
            range_end=datetime(2023, 7, 18, 23, 56, 5, tzinfo=UTC),
        ),
        "arwen_starlight",
    )
    assert list(shown) == list(mage.FIELDS)
    assert shown == {
        "id": 6,
        "block_uuid": None,
        "completed_at": None,
        "created_at": "2023-07-18 23:30:26",
        "end_datetime": "2023-07-18 23:56:05",
        "failed_at": None,
        "interval_type": None,
        "interval_units": None,
        "metrics": None,
        "name": "new_name",
        "pipeline_schedule_id": None,
        "pipeline_uuid": "arwen_starlight",
        "start_datetime": "2023-07-17 23:56:05",
        "started_at": None,
        "status": None,
        "updated_at": "2023-07-18 23:31:57",
        "variables": None,
    }


@pytest.mark.parametrize(
    ("state", "status"),
    [
        (B.DRAFT, None),
        (B.CREATED, "initial"),
        (B.SCHEDULED, "initial"),
        (B.RUNNING, "running"),
        (B.PAUSED, "running"),
        (B.COMPLETED, "completed"),
        (B.FAILED, "failed"),
        (B.CANCELLED, "cancelled"),
    ],
)
def test_every_state_has_a_mage_status(state: BackfillState, status: str | None) -> None:
    assert mage.mage_status(state) == status


def test_previews_are_mages_run_dates_with_an_inclusive_end() -> None:
    current = backfill(**mage_range("2023-07-17T23:56:05+00:00", "2023-07-18T23:56:05+00:00"))
    plan = mage.preview_plan(current)
    assert plan is not None
    assert plan.count == 2
    assert mage.preview_dates(plan, offset=1, limit=40) == [
        {
            "ds": "2023-07-18",
            "execution_date": "2023-07-18T23:56:05+00:00",
            "hr": "23",
            "interval_end_datetime": "2023-07-19T23:56:05+00:00",
            "interval_seconds": 86400.0,
            "interval_start_datetime": "2023-07-18T23:56:05+00:00",
        }
    ]
    assert mage.preview_dates(plan, offset=2, limit=40) == []
    assert len(mage.preview_dates(plan, offset=0, limit=1)) == 1


def test_no_preview_without_all_four_of_start_end_interval_type_and_units() -> None:
    full = mage_range("2023-07-17T00:00:00+00:00", "2023-07-18T00:00:00+00:00")
    assert mage.preview_plan(backfill(**(full | {"interval_type": None}))) is None
    assert mage.preview_plan(backfill(**(full | {"range_end": None}))) is None


def test_run_counts_by_mage_run_status() -> None:
    assert mage.run_status_counts(backfill(), running=0) == {}
    active = backfill(
        state=B.RUNNING,
        runs_total=10,
        runs_created=6,
        runs_completed=2,
        runs_failed=1,
    )
    # 6 made: 2 completed, 1 failed, 2 running, 1 waiting; 4 not planned yet also wait.
    assert mage.run_status_counts(active, running=2) == {
        "initial": 5,
        "running": 2,
        "completed": 2,
        "failed": 1,
    }
    over = backfill(
        state=B.CANCELLED, runs_total=10, runs_created=6, runs_completed=3, runs_cancelled=3
    )
    assert mage.run_status_counts(over, running=0) == {"completed": 3, "cancelled": 3}


# ----------------------------------------------------------------------------- query


def test_presentation_reads_mages_booleans_and_paging() -> None:
    view = mage.read_presentation(
        MultiDict(include_preview_runs="True", include_run_count="no", _limit="5", _offset="10")
    )
    assert view == mage.Presentation(preview_runs=True, run_count=False, limit=5, offset=10)
    assert mage.read_presentation(MultiDict()) == mage.Presentation()
    assert mage.read_presentation(MultiDict(_limit="99999999")).limit == mage.MAX_LIMIT
    for bad in ({"_limit": "0"}, {"_limit": "x"}, {"_offset": "-1"}, {"_offset": "²"}):
        with pytest.raises(ValidationFailed):
            mage.read_presentation(MultiDict(bad))


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (404, "not_found", (404, "Record not found.", "record_not_found")),
        (422, "validation_failed", (400, "Record is invalid.", "record_invalid")),
        (409, "conflict", (400, "Record is invalid.", "record_invalid")),
        (422, "invalid_state_transition", (400, "Record is invalid.", "record_invalid")),
        (400, "bad_request", (400, "API resource error.", "api_resource_error")),
        (401, "unauthorized", (401, "Invalid API key.", "invalid_api_key")),
        (403, "forbidden", (403, "Unauthorized access.", "unauthorized_access")),
        (405, "method_not_allowed", (405, "API resource error.", "api_resource_error")),
        (429, "rate_limited", (429, "Too many requests.", "rate_limited")),
        (500, "internal_error", (500, "Internal server error.", "internal_server_error")),
        (503, "service_unavailable", (503, "Service unavailable.", "service_unavailable")),
    ],
)
def test_failures_become_mage_errors(status: int, code: str, expected: tuple[Any, ...]) -> None:
    error = mage.mage_error(Failure(status=status, code=code, title="t", detail="d"))
    assert (error["code"], error["message"], error["type"]) == expected
    assert error["errors"] == ["d"]


def test_field_errors_are_listed_under_mages_field_names() -> None:
    failure = Failure(
        status=422,
        code="validation_failed",
        title="t",
        detail="a date-range backfill needs start and end",
        errors=[
            {"pointer": "/start", "message": "required"},
            {"pointer": "/end", "message": "required"},
            {"pointer": "/variables/k", "message": "bad"},
            {"parameter": "_limit", "message": "must be a whole number >= 1"},
        ],
    )
    assert mage.mage_error(failure)["errors"] == [
        "a date-range backfill needs start and end",
        "start_datetime: required",
        "end_datetime: required",
        "variables/k: bad",
        "_limit: must be a whole number >= 1",
    ]


def _rendered(query: str, failure: Failure) -> tuple[int, dict[str, Any], Any]:
    request = make_mocked_request("GET", "/api/backfills/1" + query)
    response = mage.render_error(request, failure)
    assert response.body is not None
    assert isinstance(response.body, bytes)
    return response.status, json.loads(response.body), response.headers


def test_errors_are_http_200_unless_the_query_asks_for_real_codes() -> None:
    failure = Failure(status=404, code="not_found", title="t", detail="Backfill 1 does not exist.")
    status, body, headers = _rendered("", failure)
    assert status == 200
    assert body == {
        "error": {
            "code": 404,
            "message": "Record not found.",
            "type": "record_not_found",
            "errors": ["Backfill 1 does not exist."],
        },
        "status": 200,
    }
    for name, value in mage.CORS_HEADERS.items():
        assert headers[name] == value

    status, body, _ = _rendered("?_http_error_codes=true", failure)
    assert (status, body["status"]) == (404, 404)
    status, body, _ = _rendered("?_http_error_codes=false", failure)
    assert (status, body["status"]) == (200, 200)


def test_a_missing_key_is_a_real_401_as_mages_oauth_middleware_answers_it() -> None:
    failure = Failure(
        status=401,
        code="unauthorized",
        title="t",
        detail="no key",
        headers={"WWW-Authenticate": 'Bearer realm="backfill"'},
    )
    status, body, headers = _rendered("", failure)
    assert status == 401
    assert body == {
        "error": {
            "code": 401,
            "message": "Invalid API key.",
            "type": "invalid_api_key",
            "errors": ["no key"],
        },
        "status": 200,  # Mage's own body says 200 unless real codes are asked for
    }
    assert headers["WWW-Authenticate"] == 'Bearer realm="backfill"'
    status, body, _ = _rendered("?_http_error_codes=t", failure)
    assert (status, body["status"]) == (401, 401)


def test_rate_limit_headers_survive_a_200() -> None:
    failure = Failure(
        status=429,
        code="rate_limited",
        title="t",
        detail="slow down",
        headers={"Retry-After": "3"},
    )
    status, body, headers = _rendered("", failure)
    assert (status, body["error"]["code"], headers["Retry-After"]) == (200, 429, "3")
