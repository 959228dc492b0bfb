"""Sequin's sink backfill API against the real service: the seed pages' requests as written,
Sequin's fields and types, its states and transitions, and its error shapes."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from orchestrator.context import Context
from orchestrator.probes import ContextProbes
from tests.helpers import api, make_target, wait_backfill

pytestmark = pytest.mark.integration

FIELDS = {
    "id",
    "state",
    "table",
    "inserted_at",
    "updated_at",
    "canceled_at",
    "completed_at",
    "sink_consumer",
    "rows_initial_count",
    "rows_processed_count",
    "rows_ingested_count",
    "sort_column",
}
SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
MICROS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@pytest.fixture
async def idle(ctx: Context, token: str) -> AsyncIterator[TestClient[Any, Any]]:
    """The API with no worker: a backfill stays active until the test moves it, so state
    changes are tested without racing the backfill to its end."""
    app = create_app(ctx.settings, ctx.usecases, ContextProbes(ctx, consuming=False), ctx.access)
    headers = {"Authorization": f"Bearer {token}"}
    async with TestClient(TestServer(app), headers=headers) as test_client:
        yield test_client


async def make_sink(client: Any, db: Any, name: str = "kafka-ids", rows: int = 50) -> Any:
    await db.execute("CREATE TABLE IF NOT EXISTS benchmark_records (id bigint PRIMARY KEY)")
    await db.execute("CREATE TABLE IF NOT EXISTS other_records (id bigint PRIMARY KEY)")
    await db.execute(
        "INSERT INTO benchmark_records SELECT g FROM generate_series(1, $1) g "
        "ON CONFLICT DO NOTHING",
        rows,
    )
    return await make_target(client, name, "table", tables=["benchmark_records"], chunk_size=10)


def assert_sequin_backfill(body: dict[str, Any]) -> None:
    """The documented fields, exactly, with the documented types and Sequin's formats."""
    assert set(body) == FIELDS
    uuid.UUID(body["id"])
    assert body["state"] in {"active", "paused", "completed", "failed", "cancelled"}
    for name in ("table", "sink_consumer", "sort_column"):
        assert isinstance(body[name], str), name
    assert SECONDS.match(body["inserted_at"])
    assert SECONDS.match(body["updated_at"])
    for name in ("canceled_at", "completed_at"):
        assert body[name] is None or MICROS.match(body[name]), (name, body[name])
    for name in ("rows_initial_count", "rows_processed_count", "rows_ingested_count"):
        assert type(body[name]) is int, name


# ------------------------------------------------------------------- the seeds' examples


async def test_the_create_example_as_written_starts_an_active_backfill(
    idle: Any, db: Any, token: str
) -> None:
    await make_sink(idle, db)
    # `curl -X POST ".../api/sinks/kafka-ids/backfills" -H "Authorization: Bearer ..."`:
    # no body and no Content-Type.
    response = await idle.post(
        "/api/sinks/kafka-ids/backfills", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status == 200
    body = await response.json()
    assert_sequin_backfill(body)
    assert body["state"] == "active"
    assert body["sink_consumer"] == "kafka-ids"
    assert body["table"] == "public.benchmark_records"
    assert body["sort_column"] == "id"
    assert body["canceled_at"] is None
    assert body["completed_at"] is None


async def test_the_list_example_as_written_lists_the_sinks_backfills(
    client: Any, db: Any, token: str
) -> None:
    await make_sink(client, db, rows=54)
    created = await api(client, "POST", "/api/sinks/kafka-ids/backfills", 200)
    await wait_for_state(client, created["id"], "completed")

    response = await client.get(
        "/api/sinks/kafka-ids/backfills", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status == 200
    body = await response.json()
    assert set(body) == {"data"}
    [item] = body["data"]
    assert_sequin_backfill(item)
    assert item["id"] == created["id"]
    assert item["state"] == "completed"
    assert item["rows_initial_count"] == 54
    assert item["rows_processed_count"] == 54
    assert item["rows_ingested_count"] == 54
    assert item["completed_at"] is not None


async def test_the_update_example_as_written_cancels_the_backfill(
    idle: Any, db: Any, token: str
) -> None:
    await make_sink(idle, db)
    created = await api(idle, "POST", "/api/sinks/kafka-ids/backfills", 200)

    response = await idle.patch(
        f"/api/sinks/kafka-ids/backfills/{created['id']}",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        data='{"state": "cancelled"}',
    )

    assert response.status == 200
    body = await response.json()
    assert_sequin_backfill(body)
    assert body["state"] == "cancelled"
    assert body["canceled_at"] is not None


# ------------------------------------------------------------------------------ behaviour


async def wait_for_state(client: Any, backfill_uuid: str, state: str) -> dict[str, Any]:
    native = await api(client, "GET", f"/v1/backfills/{backfill_uuid}", 200)
    await wait_backfill(client, native["id"], {"completed", "failed", "cancelled"})
    body = await api(client, "GET", f"/api/sinks/kafka-ids/backfills/{backfill_uuid}", 200)
    assert body["state"] == state, body
    return body  # type: ignore[no-any-return]


async def test_a_sink_is_found_by_id_uuid_or_name(idle: Any, db: Any) -> None:
    sink = await make_sink(idle, db)
    for ref in (str(sink["id"]), sink["uuid"], sink["name"]):
        body = await api(idle, "GET", f"/api/sinks/{ref}/backfills", 200)
        assert body == {"data": []}

    missing = await api(idle, "GET", "/api/sinks/nope/backfills", 404)
    assert missing == {
        "summary": "Not found: No `sink consumer` found matching the provided ID or name"
    }


async def test_a_date_range_target_is_not_a_sink(idle: Any) -> None:
    await make_target(idle, "daily")
    await api(idle, "GET", "/api/sinks/daily/backfills", 404)


async def test_create_takes_a_table_with_or_without_its_schema(idle: Any, db: Any) -> None:
    await make_sink(idle, db)
    body = await api(
        idle, "POST", "/api/sinks/kafka-ids/backfills", 200, json={"table": "benchmark_records"}
    )
    assert body["table"] == "public.benchmark_records"
    await api(idle, "PATCH", f"/api/sinks/kafka-ids/backfills/{body['id']}", 200,
              json={"state": "cancelled"})  # fmt: skip
    again = await api(
        idle,
        "POST",
        "/api/sinks/kafka-ids/backfills",
        200,
        json={"table": "public.benchmark_records"},
    )
    assert again["table"] == "public.benchmark_records"


async def test_create_refuses_unknown_fields_in_sequins_words(idle: Any, db: Any) -> None:
    await make_sink(idle, db)
    body = await api(
        idle, "POST", "/api/sinks/kafka-ids/backfills", 422, json={"table": "x", "sort": "id"}
    )
    # The first unknown key is named, as Sequin does.
    assert body == {"summary": "Unknown field: sort", "validation_errors": {}}
    assert (await api(idle, "GET", "/api/sinks/kafka-ids/backfills", 200)) == {"data": []}


async def test_create_needs_a_table_of_the_sink(idle: Any, db: Any) -> None:
    await make_sink(idle, db)
    await make_target(idle, "two-tables", "table", tables=["benchmark_records", "other_records"])
    missing = await api(idle, "POST", "/api/sinks/two-tables/backfills", 422)
    assert missing["summary"] == "Validation failed"
    assert list(missing["validation_errors"]) == ["table"]

    foreign = await api(
        idle, "POST", "/api/sinks/kafka-ids/backfills", 422, json={"table": "other_records"}
    )
    assert list(foreign["validation_errors"]) == ["table"]

    malformed = await api(
        idle, "POST", "/api/sinks/kafka-ids/backfills", 422, json={"table": "a b"}
    )
    assert list(malformed["validation_errors"]) == ["table"]

    broken = await idle.post(
        "/api/sinks/kafka-ids/backfills",
        data="{not json",
        headers={"Content-Type": "application/json"},
    )
    assert broken.status == 400
    assert set(await broken.json()) == {"summary"}


async def test_one_active_or_paused_backfill_per_sink_and_table(idle: Any, db: Any) -> None:
    await make_sink(idle, db)
    first = await api(idle, "POST", "/api/sinks/kafka-ids/backfills", 200)
    clash = await api(idle, "POST", "/api/sinks/kafka-ids/backfills", 422)
    # Sequin's changeset shape, naming the active backfill by the id Sequin shows.
    assert clash["summary"] == "Validation failed"
    assert list(clash["validation_errors"]) == ["table"]
    [message] = clash["validation_errors"]["table"]
    assert first["id"] in message
    assert "active" in message

    await api(
        idle, "PATCH", f"/api/sinks/kafka-ids/backfills/{first['id']}", 200,
        json={"state": "paused"},
    )  # fmt: skip
    await api(idle, "POST", "/api/sinks/kafka-ids/backfills", 422)

    await api(
        idle, "PATCH", f"/api/sinks/kafka-ids/backfills/{first['id']}", 200,
        json={"state": "cancelled"},
    )  # fmt: skip
    await api(idle, "POST", "/api/sinks/kafka-ids/backfills", 200)


async def test_states_move_as_sequins_do(idle: Any, db: Any) -> None:
    await make_sink(idle, db)
    created = await api(idle, "POST", "/api/sinks/kafka-ids/backfills", 200)
    path = f"/api/sinks/kafka-ids/backfills/{created['id']}"

    async def move(state: str, expect: int = 200) -> Any:
        return await api(idle, "PATCH", path, expect, json={"state": state})

    assert (await move("active"))["state"] == "active"  # unchanged: nothing happens
    assert (await move("paused"))["state"] == "paused"
    assert (await api(idle, "GET", f"/v1/backfills/{created['id']}", 200))["state"] == "paused"
    assert (await move("paused"))["state"] == "paused"
    assert (await move("active"))["state"] == "active"
    assert (await move("cancelled"))["state"] == "cancelled"

    refused = await move("active", 422)
    assert refused["summary"] == "Validation failed"
    assert refused["validation_errors"] == {
        "state": ["invalid state transition from cancelled to active; valid: none "
                  "(cancelled is final)"]
    }  # fmt: skip
    assert (await move("cancelled"))["state"] == "cancelled"

    unknown = await move("completed", 422)
    assert unknown["validation_errors"] == {"state": ["must be one of active, paused, cancelled"]}

    extra = await api(idle, "PATCH", path, 422, json={"state": "active", "table": "x"})
    assert extra["summary"] == "Unknown field: table"


async def test_a_backfill_runs_to_completion_and_counts_its_rows(client: Any, db: Any) -> None:
    await make_sink(client, db, rows=95)
    created = await api(client, "POST", "/api/sinks/kafka-ids/backfills", 200)
    done = await wait_for_state(client, created["id"], "completed")
    assert done["rows_processed_count"] == 95
    assert done["rows_ingested_count"] == 95
    assert done["rows_initial_count"] == 95
    assert MICROS.match(done["completed_at"])
    # A finished backfill never moves again.
    refused = await api(
        client,
        "PATCH",
        f"/api/sinks/kafka-ids/backfills/{created['id']}",
        422,
        json={"state": "cancelled"},
    )
    assert "completed is final" in refused["validation_errors"]["state"][0]


async def test_the_native_api_sees_and_cancels_a_sequin_backfill(idle: Any, db: Any) -> None:
    await make_sink(idle, db)
    created = await api(idle, "POST", "/api/sinks/kafka-ids/backfills", 200)
    native = await api(idle, "GET", f"/v1/backfills/{created['id']}", 200)
    assert native["uuid"] == created["id"]
    assert native["table"] == "public.benchmark_records"

    await api(idle, "POST", f"/v1/backfills/{native['id']}/cancel", 200)
    body = await api(idle, "GET", f"/api/sinks/kafka-ids/backfills/{created['id']}", 200)
    assert body["state"] == "cancelled"


async def test_a_backfill_is_found_only_under_its_own_sink(idle: Any, db: Any) -> None:
    await make_sink(idle, db)
    await make_sink(idle, db, name="other-sink")
    created = await api(idle, "POST", "/api/sinks/kafka-ids/backfills", 200)

    body = await api(idle, "GET", f"/api/sinks/other-sink/backfills/{created['id']}", 404)
    assert body == {"summary": "Not found: No `backfill` found matching the provided ID or name"}
    await api(idle, "GET", "/api/sinks/kafka-ids/backfills/not-a-uuid", 404)
    await api(idle, "GET", f"/api/sinks/kafka-ids/backfills/{uuid.uuid4()}", 404)


async def test_errors_come_in_sequins_shapes(idle: Any, db: Any) -> None:
    await make_sink(idle, db)
    unauthorised = await idle.get(
        "/api/sinks/kafka-ids/backfills", headers={"Authorization": "Bearer nope"}
    )
    assert unauthorised.status == 401
    assert set(await unauthorised.json()) == {"summary"}

    no_route = await idle.get("/api/sinks/kafka-ids/backfills/x/y")
    assert no_route.status == 404
    assert await no_route.json() == {"errors": {"detail": "Not Found"}}

    wrong_method = await idle.delete("/api/sinks/kafka-ids/backfills")
    assert wrong_method.status == 405
    assert await wrong_method.json() == {"errors": {"detail": "Method Not Allowed"}}
