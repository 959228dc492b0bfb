"""Mage's pipeline backfill API against the real service: the seed page's requests as written,
Mage's fields and types, starting and cancelling with `status`, run variables, previews and
counts, deletion, and Mage's error shape."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from pydantic import BaseModel, ConfigDict

from orchestrator.handlers.base import Handler, WindowRun
from orchestrator.handlers.registry import HANDLER_TYPES
from orchestrator.plugins.resources import Resources
from tests.gate import Gate, gate_handler
from tests.helpers import api, backfill_state, make_target, wait_until

pytestmark = pytest.mark.integration

FIELDS = {
    "id",
    "block_uuid",
    "completed_at",
    "created_at",
    "end_datetime",
    "failed_at",
    "interval_type",
    "interval_units",
    "metrics",
    "name",
    "pipeline_schedule_id",
    "pipeline_uuid",
    "start_datetime",
    "started_at",
    "status",
    "updated_at",
    "variables",
}
MAGE_DATETIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "DELETE, GET, PATCH, POST, PUT, OPTIONS",
    "Access-Control-Allow-Headers": "*",
}

# The seed's cURL example, body byte for byte.
CURL_BODY = """{
    "backfill": {
      "start_datetime": "2023-07-17 23:56:05",
      "end_datetime": "2023-07-18 23:56:05",
      "name": "new_name"
    }
  }"""
COOKIE = (
    "oauth_token=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHBpcmVzIjoxNjkyMzE0ODM3LjE1MTkzOSwidG9r"
    "ZW4iOiJieHlQajlVcHE5N2phTC1nTGtOQTVnM2draWZwRjJwSEZZZkNzLTJ2NmpnIn0.bWqUP7Xg9PmHBW703AGPOE2"
    "70Cc73F4kb0IKHLppGbM"
)


# ------------------------------------------------------------------------------ helpers


class _RecorderOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Recorder:
    """A handler type that keeps the variables each run received."""

    name = "recorder"
    options_model: type[BaseModel] = _RecorderOptions

    def __init__(self) -> None:
        self.variables: list[dict[str, Any]] = []

    async def validate(self, options: BaseModel, resources: Resources) -> None:
        return None

    async def open(self, options: BaseModel, resources: Resources) -> Handler:
        return _RecorderRun(self)


class _RecorderRun:
    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder

    async def run(self, window: WindowRun) -> int | None:
        self._recorder.variables.append(dict(window.variables))
        return 1

    async def close(self) -> None:
        return None


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    recording = Recorder()
    HANDLER_TYPES[recording.name] = recording
    yield recording
    HANDLER_TYPES.pop(recording.name, None)


@pytest.fixture
def gate() -> Iterator[Gate]:
    with gate_handler() as g:
        yield g


async def make_pipeline(
    client: Any, name: str = "arwen_starlight", handler: str = "noop", **extra: Any
) -> dict[str, Any]:
    return await make_target(client, name, handler={"type": handler}, **extra)  # type: ignore[no-any-return]


async def mage(client: Any, method: str, path: str, **kw: Any) -> dict[str, Any]:
    """A Mage request that must succeed: HTTP 200, Mage's CORS headers, no error."""
    response = await client.request(method, path, **kw)
    body: dict[str, Any] = await response.json()
    assert response.status == 200, body
    assert "error" not in body, body
    for name, value in CORS.items():
        assert response.headers[name] == value
    return body


async def mage_error(client: Any, method: str, path: str, **kw: Any) -> tuple[int, dict[str, Any]]:
    """A Mage request that must fail: Mage's error envelope; the HTTP status and the error."""
    response = await client.request(method, path, **kw)
    body = await response.json()
    assert set(body) == {"error", "status"}, body
    if body["error"]["code"] != 401:  # Mage's 401 is a real one whatever the body says
        assert body["status"] == response.status
    assert set(body["error"]) == {"code", "message", "type", "errors"}
    assert all(isinstance(line, str) for line in body["error"]["errors"])
    for name, value in CORS.items():
        assert response.headers[name] == value
    return response.status, body["error"]


def assert_mage_backfill(body: dict[str, Any]) -> None:
    """The documented fields, exactly, with the seed response's types."""
    assert set(body) == FIELDS, set(body) ^ FIELDS
    assert type(body["id"]) is int
    assert body["block_uuid"] is None
    assert body["metrics"] is None
    assert body["pipeline_schedule_id"] is None
    assert isinstance(body["pipeline_uuid"], str)
    assert body["name"] is None or isinstance(body["name"], str)
    for name in ("created_at", "updated_at"):
        assert MAGE_DATETIME.match(body[name]), (name, body[name])
    for name in ("completed_at", "end_datetime", "failed_at", "start_datetime", "started_at"):
        assert body[name] is None or MAGE_DATETIME.match(body[name]), (name, body[name])
    assert body["interval_type"] in (None, "minute", "hour", "day", "week", "month", "year")
    assert body["interval_units"] is None or type(body["interval_units"]) is int
    assert body["status"] in (None, "initial", "running", "completed", "failed", "cancelled")
    assert body["variables"] is None or isinstance(body["variables"], dict)


async def create(client: Any, pipeline: str = "arwen_starlight", **attributes: Any) -> Any:
    body = await mage(
        client, "POST", f"/api/pipelines/{pipeline}/backfills", json={"backfill": attributes}
    )
    return body["backfill"]


async def put(client: Any, path: str, **attributes: Any) -> Any:
    return (await mage(client, "PUT", path, json={"backfill": attributes}))["backfill"]


async def wait_status(client: Any, bid: int, statuses: set[str | None]) -> Any:
    async def probe() -> Any:
        body = (await mage(client, "GET", f"/api/backfills/{bid}"))["backfill"]
        return body if body["status"] in statuses else None

    return await wait_until(probe, what=f"backfill {bid} in {statuses}")


# ------------------------------------------------------------------- the seed's examples


async def seed_draft(client: Any, db: Any) -> None:
    """Pipeline arwen_starlight with backfill 6, unstarted and without interval or variables,
    as the seed's response shows it before the update."""
    await make_pipeline(client)
    await db.execute("SELECT setval(pg_get_serial_sequence('backfills', 'id'), 5)")
    created = await create(client, name="old_name")
    assert created["id"] == 6


def assert_seed_response(body: dict[str, Any]) -> None:
    assert set(body) == {"backfill"}
    backfill = body["backfill"]
    assert_mage_backfill(backfill)
    assert backfill | {"created_at": None, "updated_at": None} == {
        "id": 6,
        "block_uuid": None,
        "completed_at": None,
        "created_at": None,
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
        "updated_at": None,
        "variables": None,
    }


async def test_the_curl_example_as_written_updates_the_backfill(
    client: Any, db: Any, token: str
) -> None:
    await seed_draft(client, db)
    # A session of its own: only the example's headers, the key as X-API-KEY, Mage's cookie.
    async with aiohttp.ClientSession() as session:
        response = await session.put(
            client.make_url("/api/pipelines/arwen_starlight/backfills/6"),
            headers={
                "Content-Type": "application/json",
                "Cookie": COOKIE,
                "X-API-KEY": token,
            },
            data=CURL_BODY,
        )
        assert response.status == 200
        body = await response.json()
    assert_seed_response(body)


async def test_the_python_example_as_written_updates_the_backfill(
    client: Any, db: Any, token: str
) -> None:
    await seed_draft(client, db)
    headers = {
        "Content-Type": "application/json",
        "X-API-KEY": token,
        "Cookie": "oauth_token=some_really_long_string",
    }
    json_data = {
        "backfill": {
            "start_datetime": "2023-07-17 23:56:05",
            "end_datetime": "2023-07-18 23:56:05",
            "name": "new_name",
        }
    }
    async with aiohttp.ClientSession() as session:
        # requests.put(url, json=..., headers=...) sends json.dumps of the data.
        response = await session.put(
            client.make_url("/api/pipelines/arwen_starlight/backfills/6"),
            data=json.dumps(json_data),
            headers=headers,
        )
        assert response.status == 200
        body = await response.json()
    assert_seed_response(body)
    stored = (await mage(client, "GET", "/api/backfills/6"))["backfill"]
    assert stored == body["backfill"]


# ------------------------------------------------------------------------- behaviours


async def test_a_started_backfill_makes_one_run_per_interval_up_to_and_including_the_end(
    client: Any, recorder: Recorder
) -> None:
    await make_pipeline(client, handler="recorder")
    created = await create(
        client,
        name="july",
        start_datetime="2023-07-17 23:56:05",
        end_datetime="2023-07-18 23:56:05",
        interval_type="day",
        interval_units=1,
        variables={"region": "eu"},
    )
    assert_mage_backfill(created)
    assert created["status"] is None
    assert created["variables"] == {"region": "eu"}
    path = f"/api/pipelines/arwen_starlight/backfills/{created['id']}"

    preview = (await mage(client, "GET", path + "?include_preview_runs=true"))["backfill"]
    assert preview["total_run_count"] == 2
    assert preview["run_status_counts"] == {}
    assert preview["pipeline_run_dates"] == [
        {
            "ds": "2023-07-17",
            "execution_date": "2023-07-17T23:56:05+00:00",
            "hr": "23",
            "interval_end_datetime": "2023-07-18T23:56:05+00:00",
            "interval_seconds": 86400.0,
            "interval_start_datetime": "2023-07-17T23:56:05+00:00",
        },
        {
            "ds": "2023-07-18",
            "execution_date": "2023-07-18T23:56:05+00:00",
            "hr": "23",
            "interval_end_datetime": "2023-07-19T23:56:05+00:00",
            "interval_seconds": 86400.0,
            "interval_start_datetime": "2023-07-18T23:56:05+00:00",
        },
    ]

    started = await put(client, path, status="initial")
    assert started["status"] in ("initial", "running", "completed")
    done = await wait_status(client, created["id"], {"completed", "failed"})
    assert done["status"] == "completed"
    assert MAGE_DATETIME.match(done["completed_at"])
    assert MAGE_DATETIME.match(done["started_at"])

    by_date = sorted(recorder.variables, key=lambda v: v["execution_date"])
    assert [v["execution_date"] for v in by_date] == [
        "2023-07-17T23:56:05+00:00",
        "2023-07-18T23:56:05+00:00",
    ]
    for run, expected in zip(by_date, preview["pipeline_run_dates"], strict=True):
        assert run["region"] == "eu"
        for name, value in expected.items():
            assert run[name] == value, name

    counted = (await mage(client, "GET", path + "?include_run_count=true"))["backfill"]
    assert counted["total_run_count"] == 2
    assert counted["run_status_counts"] == {"completed": 2}
    assert "pipeline_run_dates" not in counted


async def test_previews_and_lists_page_with_limit_and_offset(client: Any) -> None:
    await make_pipeline(client)
    hourly = await create(
        client,
        start_datetime="2023-01-01",
        end_datetime="2023-01-02T00:00:00Z",
        interval_type="hour",
        interval_units=1,
    )
    assert hourly["start_datetime"] == "2023-01-01 00:00:00"
    path = f"/api/backfills/{hourly['id']}?include_preview_runs=1&_limit=10&_offset=20"
    body = (await mage(client, "GET", path))["backfill"]
    assert body["total_run_count"] == 25  # 00:00 on the 1st through 00:00 on the 2nd
    assert [d["hr"] for d in body["pipeline_run_dates"]] == ["20", "21", "22", "23", "00"]
    default = await mage(client, "GET", f"/api/backfills/{hourly['id']}?include_preview_runs=t")
    assert len(default["backfill"]["pipeline_run_dates"]) == 25

    second = await create(client, name="second")
    listed = await mage(client, "GET", "/api/pipelines/arwen_starlight/backfills")
    assert [b["id"] for b in listed["backfills"]] == [second["id"], hourly["id"]]
    assert listed["metadata"] == {"count": 2, "next": False}
    for item in listed["backfills"]:
        assert_mage_backfill(item)
    first_page = await mage(client, "GET", "/api/pipelines/arwen_starlight/backfills?_limit=1")
    assert [b["id"] for b in first_page["backfills"]] == [second["id"]]
    assert first_page["metadata"] == {"count": 2, "next": True}
    last_page = await mage(
        client, "GET", "/api/pipelines/arwen_starlight/backfills?_limit=1&_offset=1"
    )
    assert [b["id"] for b in last_page["backfills"]] == [hourly["id"]]
    assert last_page["metadata"] == {"count": 2, "next": False}


async def test_all_backfills_lists_every_pipeline_and_filters_by_pipeline_uuid(
    client: Any,
) -> None:
    await make_pipeline(client, "first")
    await make_pipeline(client, "second")
    a = await create(client, "first", name="a")
    b = await create(client, "second", name="b")
    everything = await mage(client, "GET", "/api/backfills")
    assert [(x["id"], x["pipeline_uuid"]) for x in everything["backfills"]] == [
        (b["id"], "second"),
        (a["id"], "first"),
    ]
    only = await mage(client, "GET", "/api/backfills?pipeline_uuid=first")
    assert [x["id"] for x in only["backfills"]] == [a["id"]]
    none = await mage(client, "GET", "/api/backfills?pipeline_uuid=nope")
    assert none == {"backfills": [], "metadata": {"count": 0, "next": False}}


async def test_cancel_cancels_queued_runs_while_running_ones_finish(
    client: Any, db: Any, gate: Gate
) -> None:
    await make_pipeline(client, handler="gate", max_active_runs=2)
    created = await create(
        client,
        start_datetime="2024-01-01 00:00:00",
        end_datetime="2024-01-05 00:00:00",
        interval_type="day",
        interval_units=1,
    )
    bid = created["id"]
    path = f"/api/pipelines/arwen_starlight/backfills/{bid}"
    await put(client, path, status="initial")

    async def two_running() -> bool:
        return len(gate.started) == 2

    await wait_until(two_running, what="two runs started")
    running = (await mage(client, "GET", path + "?include_run_count=true"))["backfill"]
    assert running["status"] == "running"
    assert running["run_status_counts"] == {"initial": 3, "running": 2}

    cancelled = await put(client, path, status="cancelled")
    assert cancelled["status"] == "cancelled"
    again = await put(client, path, status="cancelled")  # the status it has: nothing to do
    assert again["status"] == "cancelled"
    counted = (await mage(client, "GET", path + "?include_run_count=true"))["backfill"]
    assert counted["run_status_counts"] == {"running": 2, "cancelled": 3}

    gate.release.set()

    async def running_ones_finished() -> Any:
        body = await backfill_state(client, bid)
        return body if body["runs_completed"] == 2 else None

    native = await wait_until(running_ones_finished, what="the running runs to finish")
    assert native["state"] == "cancelled"
    assert native["runs_cancelled"] == 3
    assert len(gate.started) == 2
    counted = (await mage(client, "GET", path + "?include_run_count=true"))["backfill"]
    assert counted["status"] == "cancelled"
    assert counted["run_status_counts"] == {"completed": 2, "cancelled": 3}
    authors = await db.fetchrow("SELECT created_by, cancelled_by FROM backfills WHERE id = $1", bid)
    key_id = await db.fetchval("SELECT id FROM api_keys WHERE name = 'tests'")
    assert (authors["created_by"], authors["cancelled_by"]) == (key_id, key_id)

    _, error = await mage_error(client, "PUT", path, json={"backfill": {"status": "initial"}})
    assert error["type"] == "record_invalid"
    assert "cannot start again" in " ".join(error["errors"])


async def test_delete_cancels_hides_and_returns_the_backfill_as_it_was(
    client: Any, gate: Gate, db: Any
) -> None:
    await make_pipeline(client, handler="gate")
    created = await create(
        client,
        start_datetime="2024-01-01 00:00:00",
        end_datetime="2024-01-03 00:00:00",
        interval_type="day",
        interval_units=1,
        status="initial",
    )
    bid = created["id"]
    deleted = await mage(client, "DELETE", f"/api/backfills/{bid}")
    assert set(deleted) == {"backfill"}
    assert_mage_backfill(deleted["backfill"])
    assert deleted["backfill"]["id"] == bid
    # Mage echoes the record as it was when deleted; the cancel is seen underneath.
    assert deleted["backfill"]["status"] == created["status"] == "initial"
    assert await db.fetchval("SELECT state FROM backfills WHERE id = $1", bid) == "cancelled"

    status, error = await mage_error(client, "GET", f"/api/backfills/{bid}")
    assert status == 200
    assert error | {"errors": []} == {
        "code": 404,
        "message": "Record not found.",
        "type": "record_not_found",
        "errors": [],
    }
    await api(client, "GET", f"/v1/backfills/{bid}", 404)
    listed = await mage(client, "GET", "/api/pipelines/arwen_starlight/backfills")
    assert listed["backfills"] == []

    draft = await create(client, name="draft")
    path = f"/api/pipelines/arwen_starlight/backfills/{draft['id']}"
    gone = (await mage(client, "DELETE", path))["backfill"]
    assert gone["name"] == "draft"
    # A draft never started: null, as Mage shows it, not "cancelled".
    assert gone["status"] is None
    assert gone == draft | {"updated_at": gone["updated_at"]}
    await mage_error(client, "GET", path)


async def test_dates_cannot_change_once_started_but_name_can_and_a_read_back_put_is_a_no_op(
    client: Any, gate: Gate
) -> None:
    await make_pipeline(client, handler="gate")
    created = await create(client, name="before")
    path = f"/api/pipelines/arwen_starlight/backfills/{created['id']}"
    # Before it starts, everything may change, and several attributes at once.
    changed = await put(
        client,
        path,
        start_datetime="2024-02-01 00:00:00",
        end_datetime="2024-02-03 00:00:00",
        interval_type="day",
        interval_units="1",
        variables={"k": "v"},
    )
    assert (changed["interval_type"], changed["interval_units"]) == ("day", 1)
    started = await put(client, path, status="initial")
    assert started["status"] in ("initial", "running")

    _, error = await mage_error(
        client, "PUT", path, json={"backfill": {"start_datetime": "2024-01-01 00:00:00"}}
    )
    assert error["type"] == "record_invalid"
    assert error["code"] == 400
    assert any(line.startswith("start_datetime: cannot change") for line in error["errors"])

    renamed = await put(client, path, name="after")
    assert renamed["name"] == "after"
    read = (await mage(client, "GET", path + "?include_run_count=true"))["backfill"]
    again = await mage(client, "PUT", path, json={"backfill": read})
    assert again["backfill"]["name"] == "after"
    assert again["backfill"]["start_datetime"] == "2024-02-01 00:00:00"


async def test_a_backfill_started_here_is_visible_and_cancellable_natively(
    client: Any, gate: Gate
) -> None:
    await make_pipeline(client, handler="gate")
    created = await create(
        client,
        start_datetime="2024-03-01 00:00:00",
        end_datetime="2024-03-02 00:00:00",
        interval_type="day",
        interval_units=1,
        status="initial",
    )
    assert created["status"] == "initial"
    native = await api(client, "GET", f"/v1/backfills/{created['id']}", 200)
    assert native["kind"] == "date_range"
    assert native["runs_total"] == 2
    assert native["start"] == "2024-03-01T00:00:00+00:00"
    cancelled = await api(client, "POST", f"/v1/backfills/{created['id']}/cancel", 200)
    assert cancelled["state"] == "cancelled"
    shown = (await mage(client, "GET", f"/api/backfills/{created['id']}"))["backfill"]
    assert shown["status"] == "cancelled"


async def test_an_overlapping_start_is_refused_and_leaves_nothing_behind(
    client: Any, gate: Gate
) -> None:
    await make_pipeline(client, handler="gate")
    window = {
        "start_datetime": "2024-01-01 00:00:00",
        "end_datetime": "2024-01-10 00:00:00",
        "interval_type": "day",
    }
    await create(client, status="initial", **window)
    _, error = await mage_error(
        client,
        "POST",
        "/api/pipelines/arwen_starlight/backfills",
        json={"backfill": {**window, "status": "initial"}},
    )
    assert error["type"] == "record_invalid"
    assert "overlaps" in " ".join(error["errors"])
    listed = await mage(client, "GET", "/api/pipelines/arwen_starlight/backfills")
    assert listed["metadata"]["count"] == 1

    draft = await create(client, **window)
    _, error = await mage_error(
        client,
        "PUT",
        f"/api/backfills/{draft['id']}",
        json={"backfill": {"status": "initial"}},
    )
    assert "overlaps" in " ".join(error["errors"])
    still = (await mage(client, "GET", f"/api/backfills/{draft['id']}"))["backfill"]
    assert still["status"] is None


async def test_errors_come_in_mage_shape_with_200_unless_real_codes_are_asked_for(
    client: Any,
) -> None:
    await make_pipeline(client)
    draft = await create(client)
    one = f"/api/backfills/{draft['id']}"

    status, error = await mage_error(client, "GET", "/api/backfills/999999")
    assert (status, error["code"], error["type"]) == (200, 404, "record_not_found")
    status, error = await mage_error(client, "GET", "/api/backfills/999999?_http_error_codes=true")
    assert (status, error["code"], error["message"]) == (404, 404, "Record not found.")

    cases: list[tuple[dict[str, Any], str]] = [
        ({"backfill": {"colour": "blue"}}, "colour: unknown attribute"),
        ({"backfill": {"interval_type": "custom"}}, "interval_type: custom intervals"),
        ({"backfill": {"interval_type": "fortnight"}}, "interval_type: must be one of"),
        ({"backfill": {"interval_units": 0}}, "interval_units:"),
        ({"backfill": {"block_uuid": "load_data"}}, "block_uuid: block backfills"),
        ({"backfill": {"start_datetime": "yesterday"}}, "start_datetime: 'yesterday'"),
        ({"backfill": {"status": "running"}}, "status: the backfill is not started"),
        ({"backfill": {"status": "paused"}}, "status: must be one of"),
        ({"backfill": {"status": "initial"}}, "end_datetime: required"),
        ({"backfil": {}}, "backfil: unknown key"),
        (
            {"backfill": {"start_datetime": "2024-01-02", "end_datetime": "2024-01-01"}},
            "end_datetime:",
        ),
    ]
    for document, expected in cases:
        status, error = await mage_error(client, "PUT", one, json=document)
        assert status == 200
        assert error | {"errors": []} == {
            "code": 400,
            "message": "Record is invalid.",
            "type": "record_invalid",
            "errors": [],
        }, document
        assert any(line.startswith(expected) for line in error["errors"]), (document, error)

    status, error = await mage_error(
        client, "PUT", one + "?_http_error_codes=1", json={"backfill": {"colour": "blue"}}
    )
    assert (status, error["code"]) == (400, 400)
    status, error = await mage_error(
        client, "PUT", one, data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert (status, error["code"], error["type"]) == (200, 400, "api_resource_error")
    # Refused changes changed nothing.
    assert (await mage(client, "GET", one))["backfill"] == draft


async def test_a_missing_or_wrong_key_is_mages_invalid_api_key(client: Any, token: str) -> None:
    await make_pipeline(client)
    async with aiohttp.ClientSession() as session:
        url = client.make_url("/api/pipelines/arwen_starlight/backfills")
        # Mage's OAuthMiddleware answers HTTP 401; its body says 200 unless asked otherwise.
        response = await session.get(url)
        assert response.status == 401
        body = await response.json()
        assert body["status"] == 200
        assert body["error"] | {"errors": []} == {
            "code": 401,
            "message": "Invalid API key.",
            "type": "invalid_api_key",
            "errors": [],
        }
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        # Mage's clients send X-API-KEY: the message names that header.
        message = " ".join(body["error"]["errors"])
        assert "X-API-KEY" in message

        response = await session.get(
            url.with_query({"_http_error_codes": "true"}), headers={"X-API-KEY": "bfk_wrong"}
        )
        body = await response.json()
        assert (response.status, body["status"]) == (401, 401)
        assert body["error"]["type"] == "invalid_api_key"

        response = await session.get(url, headers={"X-API-KEY": token})
        assert response.status == 200
        assert "backfills" in await response.json()

        # A browser's preflight carries no key: Mage's BaseHandler.options answers 204.
        for headers in ({}, {"X-API-KEY": token}):
            response = await session.options(url, headers=headers)
            assert response.status == 204
            for name, value in CORS.items():
                assert response.headers[name] == value


async def test_an_unknown_pipeline_or_a_table_target_is_not_found(client: Any, db: Any) -> None:
    await db.execute("CREATE TABLE records (id bigint PRIMARY KEY)")
    await make_target(client, "a-sink", "table", tables=["records"])
    await make_pipeline(client)
    draft = await create(client)
    for method, path in [
        ("GET", "/api/pipelines/nope/backfills"),
        ("POST", "/api/pipelines/nope/backfills"),
        ("GET", "/api/pipelines/a-sink/backfills"),
        ("GET", f"/api/pipelines/nope/backfills/{draft['id']}"),
        ("GET", "/api/pipelines/arwen_starlight/backfills/12345678901234567890"),
        ("GET", "/api/pipelines/arwen_starlight/backfills/abc"),
        ("GET", "/api/pipelines/arwen_starlight/nothing"),
    ]:
        status, error = await mage_error(client, method, path)
        assert (status, error["code"], error["type"]) == (200, 404, "record_not_found"), path
