"""Supermetrics' transfer backfill API against the real service: the seed page's request as
written, every field of its `Backfill` schema with its type, the documented behaviour of
each endpoint, and its error shapes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from orchestrator.context import Context
from orchestrator.domain.keys import Scope
from orchestrator.domain.specs import DraftSpec
from orchestrator.probes import ContextProbes
from orchestrator.settings import Settings
from tests.conftest import make_settings
from tests.gate import Gate, gate_handler
from tests.helpers import api, make_target, start_backfill, wait_backfill, wait_until

pytestmark = pytest.mark.integration

# The seed's `Backfill` schema (003_46478dc79e302346.txt): its required fields, its optional
# ones, and the enum of `status`.
REQUIRED = {
    "transfer_backfill_id",
    "transfer_id",
    "range_start_date",
    "range_end_date",
    "status",
    "created_time",
    "created_user_id",
    "transfer_runs_total",
    "transfer_runs_created",
    "transfer_runs_completed",
    "transfer_runs_failed",
}
OPTIONAL = {"removed_time", "removed_user_id", "start_time", "end_time", "error_report"}
STATUSES = {"CREATED", "SCHEDULED", "RUNNING", "FAILED", "COMPLETED", "CANCELLED"}
INT64 = (1, 2**63 - 1)
INT32 = (0, 2**31 - 1)
DATE = re.compile(r"^\d{4}-\d\d-\d\d$")
# ISO 8601 in UTC with a Z, as the seed's examples ("2024-02-01T09:00:00Z").
UTC_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{1,50}$")


def is_int(value: Any, bounds: tuple[int, int]) -> bool:
    return type(value) is int and bounds[0] <= value <= bounds[1]


def assert_backfill(data: dict[str, Any]) -> None:
    """Every field of the seed's schema, nothing else, each with its documented type."""
    assert set(data) == REQUIRED | OPTIONAL
    assert is_int(data["transfer_backfill_id"], INT64)
    assert is_int(data["transfer_id"], INT64)
    assert DATE.match(data["range_start_date"])
    assert DATE.match(data["range_end_date"])
    assert data["range_start_date"] <= data["range_end_date"]
    assert UTC_TIME.match(data["created_time"])
    assert is_int(data["created_user_id"], INT64)
    for name in ("removed_time", "start_time", "end_time"):
        assert data[name] is None or UTC_TIME.match(data[name]), (name, data[name])
    assert data["removed_user_id"] is None or is_int(data["removed_user_id"], INT64)
    assert data["status"] in STATUSES
    for name in REQUIRED:
        if name.startswith("transfer_runs_"):
            assert is_int(data[name], INT32), name
    assert isinstance(data["error_report"], list)
    for entry in data["error_report"]:
        assert set(entry) == {"transfer_run_date", "error"}
        assert DATE.match(entry["transfer_run_date"])
        assert isinstance(entry["error"], str)
        assert len(entry["error"]) <= 1000


def assert_meta(body: dict[str, Any], response: Any) -> None:
    assert REQUEST_ID.match(body["meta"]["request_id"])
    assert body["meta"]["request_id"] == response.headers["X-Request-ID"]
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.content_type == "application/json"


async def call(client: Any, method: str, path: str, expect: int, **kw: Any) -> dict[str, Any]:
    """A request that must answer `expect` in Supermetrics' envelope (or error shape)."""
    response = await client.request(method, path, **kw)
    body: dict[str, Any] = await response.json()
    assert response.status == expect, f"{method} {path}: {response.status} {body}"
    assert_meta(body, response)
    if expect < 400:
        assert set(body) == {"meta", "data"}
        for item in body["data"] if isinstance(body["data"], list) else [body["data"]]:
            assert_backfill(item)
    else:
        assert_error(body)
    return body


def assert_error(body: dict[str, Any]) -> None:
    assert set(body) == {"meta", "error"}
    assert set(body["error"]) == {"code", "message", "description"}
    assert all(isinstance(v, str) and v for v in body["error"].values())
    assert len(body["error"]["code"]) <= 100
    assert len(body["error"]["message"]) <= 255
    assert len(body["error"]["description"]) <= 255


def without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "meta"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def idle(ctx: Context, token: str) -> AsyncIterator[TestClient[Any, Any]]:
    """The API with no worker: a backfill stays CREATED until the test moves it."""
    app = create_app(ctx.settings, ctx.usecases, ContextProbes(ctx, consuming=False), ctx.access)
    async with TestClient(TestServer(app), headers=bearer(token)) as test_client:
        yield test_client


@pytest.fixture
def gate() -> Iterator[Gate]:
    with gate_handler() as g:
        yield g


@pytest.fixture
async def key_id(ctx: Context, token: str) -> int:
    """The id of the `token` fixture's key: what created_user_id and removed_user_id show."""
    return (await ctx.access.authenticate(token)).key_id


async def make_transfer(
    client: Any, name: str = "daily", handler: dict[str, Any] | None = None, **extra: Any
) -> int:
    target = await make_target(client, name, handler=handler, **extra)
    return int(target["id"])


async def create(
    client: Any, transfer: int, start: str, end: str, expect: int = 200, team: int = 1
) -> dict[str, Any]:
    body = await call(
        client,
        "POST",
        f"/v1/teams/{team}/transfers/{transfer}/backfills",
        expect,
        json={"range_start": start, "range_end": end},
    )
    return body["data"] if expect == 200 else body


async def sm_status(client: Any, backfill_id: int) -> dict[str, Any]:
    return (await call(client, "GET", f"/v1/teams/1/backfills/{backfill_id}", 200))["data"]  # type: ignore[no-any-return]


# ----------------------------------------------------------------- the seed's example


async def test_the_update_example_as_written_cancels_the_backfill(
    idle: Any, token: str, key_id: int
) -> None:
    transfer = await make_transfer(idle)
    created = await create(idle, transfer, "2024-01-01", "2024-01-31")

    # curl --request PATCH --url https://dts-api.supermetrics.com/v1/teams/{team_id}/backfills/
    # {backfill_id} --header 'Authorization: Bearer <token>' --header 'Content-Type:
    # application/json' --data '{"status": "CANCELLED"}'
    response = await idle.patch(
        f"/v1/teams/1/backfills/{created['transfer_backfill_id']}",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        data='{\n  "status": "CANCELLED"\n}',
    )

    assert response.status == 200
    body = await response.json()
    assert_meta(body, response)
    assert set(body) == {"meta", "data"}
    data = body["data"]
    assert_backfill(data)
    assert data["transfer_backfill_id"] == created["transfer_backfill_id"]
    assert data["transfer_id"] == transfer
    assert data["range_start_date"] == "2024-01-01"
    assert data["range_end_date"] == "2024-01-31"
    assert data["status"] == "CANCELLED"
    assert data["created_user_id"] == key_id
    assert data["removed_user_id"] == key_id
    assert data["removed_time"] is not None
    assert data["end_time"] == data["removed_time"]
    # Cancelled before a worker planned it: no run was made, and none will be.
    assert data["transfer_runs_total"] == data["transfer_runs_created"] == 0
    native = await idle.get(f"/v1/backfills/{created['transfer_backfill_id']}")
    assert (await native.json())["runs_planned"] == 31
    # Not deleted: it is still there, cancelled.
    assert (await sm_status(idle, created["transfer_backfill_id"])) == data


async def test_every_endpoint_answers_the_documented_fields(idle: Any, key_id: int) -> None:
    transfer = await make_transfer(idle)
    created = await create(idle, transfer, "2024-03-01", "2024-03-03")
    assert created["status"] == "CREATED"
    assert created["created_user_id"] == key_id
    assert created["transfer_runs_total"] == 3
    assert created["error_report"] == []
    for name in ("removed_time", "removed_user_id", "start_time", "end_time"):
        assert created[name] is None, name
    created_at = datetime.strptime(created["created_time"], "%Y-%m-%dT%H:%M:%SZ")
    assert abs(created_at.replace(tzinfo=UTC) - datetime.now(UTC)).total_seconds() < 60

    bid = created["transfer_backfill_id"]
    one = await call(idle, "GET", f"/v1/teams/1/backfills/{bid}", 200)
    latest = await call(idle, "GET", f"/v1/teams/1/transfers/{transfer}/backfills/latest", 200)
    listed = await call(idle, "GET", "/v1/teams/1/backfills", 200)
    assert one["data"] == latest["data"] == created
    assert listed["data"] == [created]


# ------------------------------------------------------------------------------ behaviour


async def test_a_backfill_runs_one_transfer_run_per_day_newest_first(
    client: Any, key_id: int
) -> None:
    transfer = await make_transfer(client)
    created = await create(client, transfer, "2024-01-01", "2024-01-10")
    bid = created["transfer_backfill_id"]
    assert created["transfer_runs_total"] == 10

    await wait_backfill(client, bid, {"completed", "failed"})
    runs = await api(client, "GET", f"/v1/backfills/{bid}/runs?limit=100", 200)
    starts = [r["window_start"] for r in runs["data"]]
    assert starts == [f"2024-01-{day:02d}T00:00:00+00:00" for day in range(10, 0, -1)]
    assert all(r["state"] == "completed" for r in runs["data"])

    done = await sm_status(client, bid)
    assert done["status"] == "COMPLETED"
    assert done["range_start_date"] == "2024-01-01"
    assert done["range_end_date"] == "2024-01-10"
    assert done["transfer_runs_total"] == done["transfer_runs_created"] == 10
    assert done["transfer_runs_completed"] == 10
    assert done["transfer_runs_failed"] == 0
    assert done["start_time"] is not None
    assert done["end_time"] is not None
    assert done["start_time"] <= done["end_time"]
    assert done["removed_time"] is None
    assert done["removed_user_id"] is None
    assert done["created_user_id"] == key_id

    # A single day is one run.
    one_day = await create(client, transfer, "2024-02-29", "2024-02-29")
    assert one_day["transfer_runs_total"] == 1
    assert one_day["range_start_date"] == one_day["range_end_date"] == "2024-02-29"


async def test_latest_is_the_newest_backfill_of_the_transfer(idle: Any, db: Any) -> None:
    transfer = await make_transfer(idle)
    other = await make_transfer(idle, "other")
    path = f"/v1/teams/1/transfers/{transfer}/backfills/latest"

    never = await call(idle, "GET", path, 404)
    assert never["error"]["code"] == "NOT_FOUND"
    assert never["error"]["message"] == "Not Found"

    await create(idle, transfer, "2024-01-01", "2024-01-05")
    second = await create(idle, transfer, "2024-02-01", "2024-02-05")
    await create(idle, other, "2024-01-01", "2024-01-05")
    assert (await call(idle, "GET", path, 200))["data"] == second

    missing = await call(idle, "GET", "/v1/teams/1/transfers/999999/backfills/latest", 404)
    assert missing["error"]["code"] == "NOT_FOUND"
    # A table target is not a transfer.
    await db.execute("CREATE TABLE rows_here (id bigint PRIMARY KEY)")
    table = await make_target(idle, "tbl", "table", tables=["rows_here"])
    await call(idle, "GET", f"/v1/teams/1/transfers/{table['id']}/backfills/latest", 404)
    await create(idle, table["id"], "2024-01-01", "2024-01-02", expect=404)


async def test_the_list_holds_incomplete_backfills_newest_first(client: Any, gate: Gate) -> None:
    quick = await make_transfer(client, "quick")
    held = await make_transfer(client, "held", {"type": "gate"}, max_active_runs=1)

    completed = await create(client, quick, "2024-01-01", "2024-01-02")
    await wait_backfill(client, completed["transfer_backfill_id"], {"completed"})
    older = await create(client, held, "2024-01-01", "2024-01-03")
    newer = await create(client, held, "2024-02-01", "2024-02-03")
    await wait_until(lambda: _started(gate, 1), what="a run of the held transfer to start")

    listed = (await call(client, "GET", "/v1/teams/1/backfills", 200))["data"]
    assert [b["transfer_backfill_id"] for b in listed] == [
        newer["transfer_backfill_id"],
        older["transfer_backfill_id"],
    ]
    assert {b["status"] for b in listed} <= {"CREATED", "SCHEDULED", "RUNNING"}

    # Paused (the native API can pause) is still incomplete: listed, as SCHEDULED.
    await api(client, "POST", f"/v1/backfills/{newer['transfer_backfill_id']}/pause", 200)
    listed = (await call(client, "GET", "/v1/teams/1/backfills", 200))["data"]
    assert listed[0]["transfer_backfill_id"] == newer["transfer_backfill_id"]
    assert listed[0]["status"] == "SCHEDULED"
    assert listed[0]["end_time"] is None


async def _started(gate: Gate, count: int) -> bool:
    return len(gate.started) >= count


async def test_cancel_stops_queued_runs_while_the_running_one_completes(
    client: Any, gate: Gate, key_id: int
) -> None:
    transfer = await make_transfer(client, "held", {"type": "gate"}, max_active_runs=1)
    created = await create(client, transfer, "2024-01-01", "2024-01-05")
    bid = created["transfer_backfill_id"]
    await wait_until(lambda: _started(gate, 1), what="the first run to start")

    cancelled = (
        await call(
            client, "PATCH", f"/v1/teams/1/backfills/{bid}", 200, json={"status": "CANCELLED"}
        )
    )["data"]
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["removed_user_id"] == key_id
    assert cancelled["removed_time"] is not None
    assert cancelled["end_time"] == cancelled["removed_time"]
    assert cancelled["start_time"] is not None
    gate.release.set()

    async def running_one_finished() -> dict[str, Any] | None:
        body = await sm_status(client, bid)
        return body if body["transfer_runs_completed"] == 1 else None

    done = await wait_until(running_one_finished, what="the running run to complete")
    assert done is not None
    assert done["status"] == "CANCELLED"
    assert done["removed_time"] == cancelled["removed_time"]
    runs = await api(client, "GET", f"/v1/backfills/{bid}/runs", 200)
    states = [r["state"] for r in runs["data"]]
    # The newest day was running and completed; the other four never started.
    assert states == ["completed", "cancelled", "cancelled", "cancelled", "cancelled"]
    assert len(gate.started) == 1

    again = await call(
        client, "PATCH", f"/v1/teams/1/backfills/{bid}", 422, json={"status": "CANCELLED"}
    )
    assert again["error"]["code"] == "BACKFILL_NOT_CANCELLABLE"
    assert "CANCELLED" in again["error"]["description"]


async def test_a_completed_backfill_cannot_be_cancelled(client: Any) -> None:
    transfer = await make_transfer(client)
    created = await create(client, transfer, "2024-01-01", "2024-01-02")
    bid = created["transfer_backfill_id"]
    await wait_backfill(client, bid, {"completed"})
    refused = await call(
        client, "PATCH", f"/v1/teams/1/backfills/{bid}", 422, json={"status": "CANCELLED"}
    )
    assert refused["error"]["code"] == "BACKFILL_NOT_CANCELLABLE"
    assert "COMPLETED" in refused["error"]["description"]
    assert (await sm_status(client, bid))["status"] == "COMPLETED"


async def test_a_failed_backfill_reports_its_errors_and_can_be_cancelled(client: Any) -> None:
    # Divides by zero when run, not when prepared (the target's check prepares it).
    statement = "SELECT 1 / (0 * extract(epoch FROM $1::timestamptz))::int"
    transfer = await make_transfer(
        client, "broken", {"type": "sql", "options": {"statement": statement}}, max_attempts=1
    )
    created = await create(client, transfer, "2024-01-01", "2024-01-02")
    bid = created["transfer_backfill_id"]
    await wait_backfill(client, bid, {"failed"})

    failed = await sm_status(client, bid)
    assert failed["status"] == "FAILED"
    assert failed["end_time"] is not None
    assert failed["transfer_runs_failed"] == 2
    assert sorted(e["transfer_run_date"] for e in failed["error_report"]) == [
        "2024-01-01",
        "2024-01-02",
    ]
    assert all("division by zero" in e["error"] for e in failed["error_report"])
    listed = (await call(client, "GET", "/v1/teams/1/backfills", 200))["data"]
    assert [b["transfer_backfill_id"] for b in listed] == [bid]

    cancelled = (
        await call(
            client, "PATCH", f"/v1/teams/1/backfills/{bid}", 200, json={"status": "CANCELLED"}
        )
    )["data"]
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["end_time"] == cancelled["removed_time"]
    assert cancelled["error_report"] == failed["error_report"]
    assert (await call(client, "GET", "/v1/teams/1/backfills", 200))["data"] == []


async def test_overlapping_ranges_of_one_transfer_are_refused(idle: Any) -> None:
    transfer = await make_transfer(idle)
    other = await make_transfer(idle, "other")
    first = await create(idle, transfer, "2024-01-01", "2024-01-10")

    clash = await create(idle, transfer, "2024-01-10", "2024-01-20", expect=422)
    assert clash["error"]["code"] == "BACKFILL_OVERLAP"
    assert str(first["transfer_backfill_id"]) in clash["error"]["description"]
    # Next to it, or on another transfer, is fine.
    await create(idle, transfer, "2024-01-11", "2024-01-20")
    await create(idle, other, "2024-01-01", "2024-01-10")

    # Once the first is cancelled, its range is free again.
    await call(
        idle,
        "PATCH",
        f"/v1/teams/1/backfills/{first['transfer_backfill_id']}",
        200,
        json={"status": "CANCELLED"},
    )
    await create(idle, transfer, "2024-01-05", "2024-01-10")


async def test_another_teams_objects_are_not_found(idle: Any, ctx: Context) -> None:
    transfer = await make_transfer(idle)
    created = await create(idle, transfer, "2024-01-01", "2024-01-03")
    bid = created["transfer_backfill_id"]
    team = (await ctx.access.repo.create_team("other"))[0]
    theirs, _ = await ctx.access.create_key(team, {Scope.READ, Scope.WRITE})
    cancel = {"json": {"status": "CANCELLED"}}

    missing = await call(idle, "GET", "/v1/teams/1/backfills/999999", 404)
    assert missing["error"] == {
        "code": "NOT_FOUND",
        "message": "Not Found",
        "description": "The requested backfill could not be found or you do not have access to it.",
    }
    # Their key, in their team or in ours: exactly a missing backfill.
    for path in (f"/v1/teams/{team}/backfills/{bid}", f"/v1/teams/1/backfills/{bid}"):
        for method, kw in (("GET", {}), ("PATCH", cancel)):
            body = await call(idle, method, path, 404, headers=bearer(theirs), **kw)
            assert without_request_id(body) == without_request_id(missing), (method, path)
    # Our key, naming a team that is not its own.
    for method, kw in (("GET", {}), ("PATCH", cancel)):
        body = await call(idle, method, f"/v1/teams/{team}/backfills/{bid}", 404, **kw)
        assert without_request_id(body) == without_request_id(missing)
    await call(idle, "GET", f"/v1/teams/{team}/backfills", 404)
    await call(idle, "GET", f"/v1/teams/{team}/transfers/{transfer}/backfills/latest", 404)
    await create(idle, transfer, "2024-02-01", "2024-02-02", expect=404, team=team)
    theirs_create = await idle.post(
        f"/v1/teams/{team}/transfers/{transfer}/backfills",
        json={"range_start": "2024-02-01", "range_end": "2024-02-02"},
        headers=bearer(theirs),
    )
    assert theirs_create.status == 404
    assert (await call(idle, "GET", f"/v1/teams/{team}/backfills", 200, headers=bearer(theirs)))[
        "data"
    ] == []

    # Nothing of ours changed.
    assert (await sm_status(idle, bid))["status"] == "CREATED"
    assert len((await call(idle, "GET", "/v1/teams/1/backfills", 200))["data"]) == 1


async def test_drafts_and_table_backfills_are_not_supermetrics_backfills(
    idle: Any, ctx: Context, db: Any
) -> None:
    transfer = await make_transfer(idle)
    started = await create(idle, transfer, "2024-01-01", "2024-01-03")
    # A draft (as Mage makes them), newer than the started one.
    draft = await ctx.usecases.drafts.create(transfer, DraftSpec(), team_id=1)
    await call(idle, "GET", f"/v1/teams/1/backfills/{draft.id}", 404)
    await call(
        idle, "PATCH", f"/v1/teams/1/backfills/{draft.id}", 404, json={"status": "CANCELLED"}
    )
    latest = await call(idle, "GET", f"/v1/teams/1/transfers/{transfer}/backfills/latest", 200)
    assert latest["data"] == started

    await db.execute("CREATE TABLE rows_here (id bigint PRIMARY KEY)")
    await make_target(idle, "tbl", "table", tables=["rows_here"])
    table_backfill = await start_backfill(idle, "tbl")
    await call(idle, "GET", f"/v1/teams/1/backfills/{table_backfill['id']}", 404)

    listed = (await call(idle, "GET", "/v1/teams/1/backfills", 200))["data"]
    assert [b["transfer_backfill_id"] for b in listed] == [started["transfer_backfill_id"]]


async def test_the_native_api_sees_and_cancels_a_supermetrics_backfill(idle: Any) -> None:
    transfer = await make_transfer(idle)
    created = await create(idle, transfer, "2024-01-01", "2024-01-03")
    bid = created["transfer_backfill_id"]

    native = await api(idle, "GET", f"/v1/backfills/{bid}", 200)
    assert native["target_id"] == transfer
    assert native["state"] == "created"
    assert native["interval_type"] == "day"
    assert native["interval_units"] == 1
    assert native["time_zone"] == "UTC"
    assert native["order"] == "newest_first"
    assert native["runs_total"] == 3

    await api(idle, "POST", f"/v1/backfills/{bid}/cancel", 200)
    body = await sm_status(idle, bid)
    assert body["status"] == "CANCELLED"
    assert body["removed_time"] is not None
    assert body["end_time"] == body["removed_time"]


async def test_bad_requests_are_invalid_parameters(idle: Any) -> None:
    transfer = await make_transfer(idle)
    created = await create(idle, transfer, "2024-01-01", "2024-01-03")
    create_path = f"/v1/teams/1/transfers/{transfer}/backfills"
    patch_path = f"/v1/teams/1/backfills/{created['transfer_backfill_id']}"

    bad_creates: list[dict[str, Any]] = [
        {"json": {"range_start": "2024-02-01"}},
        {"json": {"range_end": "2024-02-01"}},
        {"json": {"range_start": "2024-13-01", "range_end": "2024-02-01"}},
        {"json": {"range_start": "2024-02-30", "range_end": "2024-03-01"}},
        {"json": {"range_start": "2024/02/01", "range_end": "2024-02-02"}},
        {"json": {"range_start": "2024-02-01T00:00:00Z", "range_end": "2024-02-02"}},
        {"json": {"range_start": 20240201, "range_end": "2024-02-02"}},
        {"json": {"range_start": None, "range_end": "2024-02-02"}},
        {"json": {"range_start": "2024-02-01", "range_end": "2024-02-02", "timezone": "UTC"}},
        {"json": {"range_start": "2024-02-05", "range_end": "2024-02-01"}},
        {"json": ["2024-02-01", "2024-02-02"]},
        {"data": "{not json", "headers": {"Content-Type": "application/json"}},
        {"data": ""},
    ]
    for kw in bad_creates:
        body = await call(idle, "POST", create_path, 400, **kw)
        assert body["error"]["code"] == "INVALID_PARAMETER", kw
        assert body["error"]["message"] == "Invalid Parameter"

    described = await call(
        idle,
        "POST",
        create_path,
        400,
        json={"range_start": "2024-02-05", "range_end": "2024-02-01"},
    )
    assert "range_start" in described["error"]["description"]
    unknown = await call(
        idle,
        "POST",
        create_path,
        400,
        json={"range_start": "2024-02-01", "range_end": "2024-02-02", "timezone": "UTC"},
    )
    assert "timezone" in unknown["error"]["description"]

    for kw in (
        {"json": {}},
        {"json": {"status": "RUNNING"}},
        {"json": {"status": "cancelled"}},
        {"json": {"status": "CANCELLED", "reason": "x"}},
        {"data": "nope"},
    ):
        body = await call(idle, "PATCH", patch_path, 400, **kw)
        assert body["error"]["code"] == "INVALID_PARAMETER", kw

    for path in (
        "/v1/teams/1/backfills/abc",
        "/v1/teams/1/backfills/0",
        "/v1/teams/1/backfills/-1",
        f"/v1/teams/1/backfills/{2**63}",
        "/v1/teams/one/backfills",
        "/v1/teams/0/backfills",
        "/v1/teams/1/transfers/x/backfills/latest",
    ):
        body = await call(idle, "GET", path, 400)
        assert body["error"]["code"] == "INVALID_PARAMETER", path

    # None of it made or changed a backfill.
    listed = (await call(idle, "GET", "/v1/teams/1/backfills", 200))["data"]
    assert listed == [created]


async def test_a_too_long_range_is_unprocessable(idle: Any) -> None:
    transfer = await make_transfer(idle)
    body = await create(idle, transfer, "0001-01-01", "9999-12-31", expect=422)
    assert body["error"]["code"] == "UNPROCESSABLE_ENTITY"
    assert "days" in body["error"]["description"]


async def test_auth_failures_come_in_supermetrics_shape(idle: Any, ctx: Context) -> None:
    transfer = await make_transfer(idle)
    created = await create(idle, transfer, "2024-01-01", "2024-01-03")
    path = f"/v1/teams/1/backfills/{created['transfer_backfill_id']}"

    for headers in ({"Authorization": ""}, bearer("bfk_not-a-key")):
        response = await idle.get(path, headers=headers)
        assert response.status == 401
        body = await response.json()
        assert_meta(body, response)
        assert_error(body)
        assert body["error"]["code"] == "API_KEY_INVALID"
        assert body["error"]["message"] == "Invalid API key"
        # The seed page's own description, not the native API's.
        assert body["error"]["description"] == "Provided API key was invalid."
        assert response.headers["WWW-Authenticate"].startswith("Bearer")

    reader, _ = await ctx.access.create_key(1, {Scope.READ})
    await call(idle, "GET", path, 200, headers=bearer(reader))
    denied = await call(
        idle, "PATCH", path, 403, headers=bearer(reader), json={"status": "CANCELLED"}
    )
    assert denied["error"]["code"] == "ACCESS_DENIED"
    assert denied["error"]["message"] == "Access Denied"
    assert denied["error"]["description"] == "You do not have permission to perform this operation."
    refused = await idle.post(
        f"/v1/teams/1/transfers/{transfer}/backfills",
        headers=bearer(reader),
        json={"range_start": "2024-03-01", "range_end": "2024-03-02"},
    )
    assert refused.status == 403
    assert (await sm_status(idle, created["transfer_backfill_id"]))["status"] == "CREATED"


async def test_unknown_paths_and_methods_come_in_supermetrics_shape(idle: Any) -> None:
    for path in ("/v1/teams/1/nothing", "/v1/teams/1/backfills/1/runs", "/v1/teams/"):
        response = await idle.get(path)
        body = await response.json()
        assert response.status == 404, path
        assert_meta(body, response)
        assert_error(body)
        assert body["error"]["code"] == "NOT_FOUND"

    response = await idle.delete("/v1/teams/1/backfills/1")
    assert response.status == 405
    body = await response.json()
    assert_meta(body, response)
    assert_error(body)
    assert body["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert "PATCH" in response.headers["Allow"]


class TestRateLimit:
    @pytest.fixture
    def settings(self, database: str, prefix: str) -> Settings:
        return make_settings(database, prefix, rate_limit_requests=2)

    async def test_too_many_requests_keep_the_rate_limit_headers(self, idle: Any) -> None:
        for _ in range(2):
            await call(idle, "GET", "/v1/teams/1/backfills", 200)
        body = await call(idle, "GET", "/v1/teams/1/backfills", 429)
        assert body["error"]["code"] == "TOO_MANY_REQUESTS"
        response = await idle.get("/v1/teams/1/backfills")
        assert response.status == 429
        assert int(response.headers["Retry-After"]) >= 1
        assert response.headers["X-RateLimit-Limit"] == "2"
        assert response.headers["X-RateLimit-Remaining"] == "0"
