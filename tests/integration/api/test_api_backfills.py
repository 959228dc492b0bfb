from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import uuid4

import pytest

from orchestrator.domain.states import BackfillState, RunState
from orchestrator.storage.database import Pool
from tests.helpers import backfill_body
from tests.integration.api.bodies import DATE_RANGE_TARGET
from tests.integration.api.conftest import Client
from tests.integration.api.seed import NOW, add_backfill, add_runs, add_target

BACKFILL_FIELDS = {
    "id",
    "uuid",
    "target_id",
    "kind",
    "name",
    "state",
    "table",
    "sort_column",
    "chunk_size",
    "start",
    "end",
    "end_inclusive",
    "reprocess",
    "max_runs_per_minute",
    "max_rows_per_second",
    "priority",
    "progress",
    "interval_type",
    "interval_units",
    "time_zone",
    "order",
    "variables",
    "max_active_runs",
    "max_attempts",
    "rows_initial_count",
    "planning",
    "rows_processed_count",
    "rows_ingested_count",
    "runs_total",
    "runs_created",
    "runs_planned",
    "planning_done",
    "runs_completed",
    "runs_failed",
    "runs_cancelled",
    "error_report",
    "created_at",
    "started_at",
    "updated_at",
    "completed_at",
    "cancelled_at",
    "failed_at",
    "paused_at",
    "command_id",
}


@pytest.fixture
async def target_id(pool: Pool) -> int:
    """Target 1, which the seeded backfills belong to."""
    return await add_target(pool)


@pytest.fixture
def seeded(pool: Pool, target_id: int) -> Callable[..., Awaitable[dict[str, Any]]]:
    """`seeded(**fields)`: a backfill of target 1 stored as the workers would leave it."""

    async def add(**fields: Any) -> dict[str, Any]:
        return await add_backfill(pool, fields.pop("target_id", target_id), **fields)

    return add


async def test_create_backfill_answers_201_with_location(client: Client, pool: Pool) -> None:
    target = await (await client.post("/v1/targets", json=DATE_RANGE_TARGET)).json()

    response = await client.post(
        "/v1/backfills",
        json=backfill_body(DATE_RANGE_TARGET["name"], start="2024-01-01", end="2024-01-31"),
    )

    assert response.status == 201
    body = await response.json()
    assert set(body) == BACKFILL_FIELDS
    assert response.headers["Location"] == f"/v1/backfills/{body['id']}"
    assert body["state"] == "created"
    assert body["target_id"] == target["id"]
    # Over HTTP the service picks the command id, and always announces the command (only
    # the queue consumer's apply_create may not).
    assert body["command_id"] is not None
    announced = await pool.fetch("SELECT routing_key, payload FROM outbox")
    commands = [m["payload"] for m in announced if m["routing_key"] == "command.create"]
    assert [c["command_id"] for c in commands] == [body["command_id"]]


async def test_backfill_renders_domain_names_under_api_names(
    client: Client, pool: Pool, seeded: Any
) -> None:
    backfill = await seeded(table_name="public.orders")
    [failed] = await add_runs(pool, backfill["id"], [RunState.FAILED], attempt=3, error="boom")

    body = await (await client.get(f"/v1/backfills/{backfill['id']}")).json()

    assert body["uuid"] == str(backfill["uuid"])
    assert body["table"] == "public.orders"
    assert body["start"] == "2024-04-01T12:00:00+00:00"
    assert body["end"] == "2024-05-01T12:00:00+00:00"
    assert body["order"] == "oldest_first"
    assert body["time_zone"] == "Europe/Berlin"
    assert body["error_report"] == [
        {
            "run_id": failed,
            "window_start": "2024-05-02T12:00:00+00:00",
            "window_end": "2024-05-03T12:00:00+00:00",
            "lower_key": None,
            "upper_key": None,
            "attempt": 3,
            "error": "boom",
        }
    ]
    # The command id is shown so a producer can match what its command.create made.
    command_id = await pool.fetchval("SELECT command_id FROM backfills WHERE id = $1", body["id"])
    assert body["command_id"] == str(command_id)
    assert "table_name" not in body


async def test_get_backfill_by_uuid(client: Client, seeded: Any) -> None:
    backfill = await seeded()

    response = await client.get(f"/v1/backfills/{backfill['uuid']}")

    assert response.status == 200
    body = await response.json()
    assert body["id"] == backfill["id"]
    assert body == await (await client.get(f"/v1/backfills/{backfill['id']}")).json()


async def test_get_backfill_with_unparseable_id_is_404(client: Client) -> None:
    response = await client.get("/v1/backfills/not-a-uuid")

    assert response.status == 404
    assert (await response.json())["code"] == "not_found"


async def test_get_unknown_backfill_is_404(client: Client) -> None:
    response = await client.get("/v1/backfills/12345")

    assert response.status == 404


async def test_list_backfills_filters_by_repeated_and_comma_separated_states(
    client: Client, pool: Pool, seeded: Any
) -> None:
    await seeded(state=BackfillState.RUNNING)
    await seeded(state=BackfillState.PAUSED)
    await seeded(state=BackfillState.COMPLETED)
    await seeded(state=BackfillState.FAILED, target_id=await add_target(pool, "other"))

    response = await client.get(
        "/v1/backfills?state=running,paused&state=failed&target_id=1&limit=10"
    )

    assert response.status == 200
    body = await response.json()
    assert [b["state"] for b in body["data"]] == ["paused", "running"]
    assert body["next_after"] is None
    # The failed one is of the other target: the states and the target filter both hold.
    everything = await (await client.get("/v1/backfills?state=running,paused,failed")).json()
    assert [b["state"] for b in everything["data"]] == ["failed", "paused", "running"]


async def test_list_backfills_pages_newest_first(client: Client, seeded: Any) -> None:
    for _ in range(3):
        await seeded()

    first = await (await client.get("/v1/backfills?limit=2")).json()
    second = await (await client.get(f"/v1/backfills?limit=2&after={first['next_after']}")).json()

    assert [b["id"] for b in first["data"]] == [3, 2]
    assert [b["id"] for b in second["data"]] == [1]
    assert second["next_after"] is None


async def test_list_backfills_rejects_unknown_state(client: Client) -> None:
    response = await client.get("/v1/backfills?state=running,sleeping")

    assert response.status == 422
    body = await response.json()
    assert body["code"] == "validation_failed"
    assert body["errors"] == [
        {
            "parameter": "state",
            "message": "Input should be one of draft, created, scheduled, running, paused, "
            "completed, failed, cancelled",
        }
    ]


async def test_list_backfills_rejects_unknown_parameter(client: Client) -> None:
    response = await client.get("/v1/backfills?stat=running")

    assert response.status == 422
    assert (await response.json())["errors"] == [
        {"parameter": "stat", "message": "Unknown query parameter"}
    ]


async def test_cancel_pause_resume(client: Client, seeded: Any) -> None:
    backfill = await seeded(state=BackfillState.RUNNING, started_at=NOW)

    paused = await client.post(f"/v1/backfills/{backfill['id']}/pause")
    resumed = await client.post(f"/v1/backfills/{backfill['uuid']}/resume")
    cancelled = await client.post(f"/v1/backfills/{backfill['id']}/cancel")

    assert [paused.status, resumed.status, cancelled.status] == [200, 200, 200]
    assert (await paused.json())["state"] == "paused"
    assert (await resumed.json())["state"] == "running"
    body = await cancelled.json()
    assert body["state"] == "cancelled"
    assert body["cancelled_at"] is not None
    assert body["cancelled_at"] > body["started_at"]


async def test_cancelling_a_completed_backfill_is_422_with_valid_states(
    client: Client, seeded: Any
) -> None:
    backfill = await seeded(state=BackfillState.COMPLETED)

    response = await client.post(f"/v1/backfills/{backfill['id']}/cancel")

    assert response.status == 422
    assert response.content_type == "application/problem+json"
    body = await response.json()
    assert body["code"] == "invalid_state_transition", body
    assert body["type"] == "https://backfill-orchestrator.dev/problems/invalid_state_transition"
    assert body["title"] == "Invalid state transition"
    # An action refused, named as the action (the in-memory fake this test once ran against
    # answered with the state it leads to: requested_state "cancelled", valid_states []).
    assert body["valid_actions"] == []
    assert body["current_state"] == "completed"
    assert body["requested_action"] == "cancel"
    assert "completed" in body["detail"]


@pytest.mark.parametrize(
    ("state", "action"),
    [
        (BackfillState.CANCELLED, "cancel"),
        (BackfillState.PAUSED, "pause"),
        (BackfillState.RUNNING, "resume"),
    ],
)
async def test_asking_for_the_state_it_is_in_answers_200_unchanged(
    client: Client, seeded: Any, state: BackfillState, action: str
) -> None:
    backfill = await seeded(state=state, started_at=NOW)

    response = await client.post(f"/v1/backfills/{backfill['id']}/{action}")

    assert response.status == 200
    assert (await response.json())["state"] == state.value


async def test_pausing_a_completed_backfill_lists_the_valid_actions(
    client: Client, seeded: Any
) -> None:
    backfill = await seeded(state=BackfillState.COMPLETED)

    response = await client.post(f"/v1/backfills/{backfill['id']}/pause")

    assert response.status == 422
    assert (await response.json())["valid_actions"] == []


async def test_list_runs_hides_lease_token(client: Client, pool: Pool, seeded: Any) -> None:
    backfill = await seeded()
    states = [RunState.COMPLETED, RunState.RUNNING, RunState.PENDING]
    await add_runs(pool, backfill["id"], states, lease_token=uuid4())

    response = await client.get(f"/v1/backfills/{backfill['id']}/runs?limit=2")

    assert response.status == 200
    body = await response.json()
    assert [r["seq"] for r in body["data"]] == [1, 2]
    assert body["next_after"] == 2
    run = body["data"][0]
    assert "lease_token" not in run
    assert run["lease_expires_at"] == "2024-05-01T12:00:00+00:00"
    assert set(run) == {
        "id",
        "backfill_id",
        "seq",
        "state",
        "lower_key",
        "upper_key",
        "window_start",
        "window_end",
        "cursor",
        "attempt",
        "lease_expires_at",
        "worker_id",
        "not_before",
        "rows_processed",
        "rows_ingested",
        "error",
        "created_at",
        "queued_at",
        "started_at",
        "finished_at",
        "updated_at",
    }


async def test_list_runs_filters_by_state(client: Client, pool: Pool, seeded: Any) -> None:
    backfill = await seeded()
    states = [RunState.COMPLETED, RunState.FAILED, RunState.PENDING]
    await add_runs(pool, backfill["id"], states)

    response = await client.get(f"/v1/backfills/{backfill['uuid']}/runs?state=failed,pending")

    body = await response.json()
    assert [r["state"] for r in body["data"]] == ["failed", "pending"]
    assert [r["seq"] for r in body["data"]] == [2, 3]


async def test_list_runs_rejects_backfill_states(client: Client, seeded: Any) -> None:
    backfill = await seeded()

    response = await client.get(f"/v1/backfills/{backfill['id']}/runs?state=paused")

    assert response.status == 422
    assert (await response.json())["errors"][0]["parameter"] == "state"
