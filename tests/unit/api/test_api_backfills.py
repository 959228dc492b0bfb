from __future__ import annotations

import pytest
from api_fakes import DATE_RANGE_TARGET, NOW, Client, FakeService

from orchestrator.domain.states import BackfillState, RunState

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
    "interval_type",
    "interval_units",
    "time_zone",
    "order",
    "variables",
    "max_active_runs",
    "max_attempts",
    "rows_initial_count",
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


async def test_create_backfill_answers_201_with_location(
    client: Client, service: FakeService
) -> None:
    await client.post("/v1/targets", json=DATE_RANGE_TARGET)

    response = await client.post(
        "/v1/backfills",
        json={"target": DATE_RANGE_TARGET["name"], "start": "2024-01-01", "end": "2024-01-31"},
    )

    assert response.status == 201
    body = await response.json()
    assert set(body) == BACKFILL_FIELDS
    assert response.headers["Location"] == f"/v1/backfills/{body['id']}"
    assert body["state"] == "created"
    name, kwargs = service.calls[-1]
    assert name == "create_backfill"
    assert kwargs["spec"].target == DATE_RANGE_TARGET["name"]
    # Over HTTP the service picks the command id; create_backfill always announces the
    # command (only the queue consumer's apply_create may not).
    assert kwargs["command_id"] is None


async def test_backfill_renders_domain_names_under_api_names(
    client: Client, service: FakeService
) -> None:
    backfill = service.add_backfill(
        table_name="public.orders", error_report=[service.failed_entry()]
    )

    body = await (await client.get(f"/v1/backfills/{backfill.id}")).json()

    assert body["uuid"] == str(backfill.uuid)
    assert body["table"] == "public.orders"
    assert body["start"] == "2024-04-01T12:00:00+00:00"
    assert body["end"] == "2024-05-01T12:00:00+00:00"
    assert body["order"] == "oldest_first"
    assert body["time_zone"] == "Europe/Berlin"
    assert body["error_report"] == [
        {
            "run_id": 7,
            "window_start": "2024-05-01T12:00:00+00:00",
            "window_end": "2024-05-01T12:00:00+00:00",
            "lower_key": None,
            "upper_key": None,
            "attempt": 3,
            "error": "boom",
        }
    ]
    # The command id is shown so a producer can match what its command.create made.
    assert body["command_id"] == (str(backfill.command_id) if backfill.command_id else None)
    assert "table_name" not in body


async def test_get_backfill_by_uuid(client: Client, service: FakeService) -> None:
    backfill = service.add_backfill()

    response = await client.get(f"/v1/backfills/{backfill.uuid}")

    assert response.status == 200
    assert (await response.json())["id"] == backfill.id
    assert service.calls[-1] == ("get_backfill", {"backfill_id": backfill.uuid})


async def test_get_backfill_with_unparseable_id_is_404(client: Client) -> None:
    response = await client.get("/v1/backfills/not-a-uuid")

    assert response.status == 404
    assert (await response.json())["code"] == "not_found"


async def test_get_unknown_backfill_is_404(client: Client) -> None:
    response = await client.get("/v1/backfills/12345")

    assert response.status == 404


async def test_list_backfills_filters_by_repeated_and_comma_separated_states(
    client: Client, service: FakeService
) -> None:
    service.add_backfill(state=BackfillState.RUNNING)
    service.add_backfill(state=BackfillState.PAUSED)
    service.add_backfill(state=BackfillState.COMPLETED)
    service.add_backfill(state=BackfillState.FAILED, target_id=2)

    response = await client.get(
        "/v1/backfills?state=running,paused&state=failed&target_id=1&limit=10"
    )

    assert response.status == 200
    body = await response.json()
    assert [b["state"] for b in body["data"]] == ["paused", "running"]
    assert body["next_after"] is None
    assert service.calls[-1] == (
        "list_backfills",
        {
            "target_id": 1,
            "states": [BackfillState.RUNNING, BackfillState.PAUSED, BackfillState.FAILED],
            "after": None,
            "limit": 10,
        },
    )


async def test_list_backfills_pages_newest_first(client: Client, service: FakeService) -> None:
    for _ in range(3):
        service.add_backfill()

    first = await (await client.get("/v1/backfills?limit=2")).json()
    second = await (await client.get(f"/v1/backfills?limit=2&after={first['next_after']}")).json()

    assert [b["id"] for b in first["data"]] == [3, 2]
    assert [b["id"] for b in second["data"]] == [1]
    assert second["next_after"] is None


async def test_list_backfills_rejects_unknown_state(client: Client, service: FakeService) -> None:
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
    assert not [name for name, _ in service.calls if name == "list_backfills"]


async def test_list_backfills_rejects_unknown_parameter(client: Client) -> None:
    response = await client.get("/v1/backfills?stat=running")

    assert response.status == 422
    assert (await response.json())["errors"] == [
        {"parameter": "stat", "message": "Unknown query parameter"}
    ]


async def test_cancel_pause_resume(client: Client, service: FakeService) -> None:
    backfill = service.add_backfill(state=BackfillState.RUNNING, started_at=NOW)

    paused = await client.post(f"/v1/backfills/{backfill.id}/pause")
    resumed = await client.post(f"/v1/backfills/{backfill.uuid}/resume")
    cancelled = await client.post(f"/v1/backfills/{backfill.id}/cancel")

    assert [paused.status, resumed.status, cancelled.status] == [200, 200, 200]
    assert (await paused.json())["state"] == "paused"
    assert (await resumed.json())["state"] == "running"
    body = await cancelled.json()
    assert body["state"] == "cancelled"
    assert body["cancelled_at"] == "2024-05-01T12:00:00+00:00"


async def test_cancelling_a_completed_backfill_is_422_with_valid_states(
    client: Client, service: FakeService
) -> None:
    backfill = service.add_backfill(state=BackfillState.COMPLETED)

    response = await client.post(f"/v1/backfills/{backfill.id}/cancel")

    assert response.status == 422
    assert response.content_type == "application/problem+json"
    body = await response.json()
    assert body["code"] == "invalid_state_transition"
    assert body["type"] == "https://backfill-orchestrator.dev/problems/invalid_state_transition"
    assert body["title"] == "Invalid state transition"
    assert body["valid_states"] == []
    assert body["current_state"] == "completed"
    assert body["requested_state"] == "cancelled"
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
    client: Client, service: FakeService, state: BackfillState, action: str
) -> None:
    backfill = service.add_backfill(state=state)

    response = await client.post(f"/v1/backfills/{backfill.id}/{action}")

    assert response.status == 200
    assert (await response.json())["state"] == state.value


async def test_pausing_a_completed_backfill_lists_the_valid_moves(
    client: Client, service: FakeService
) -> None:
    backfill = service.add_backfill(state=BackfillState.COMPLETED)

    response = await client.post(f"/v1/backfills/{backfill.id}/pause")

    assert response.status == 422
    assert (await response.json())["valid_states"] == []


async def test_list_runs_hides_lease_token(client: Client, service: FakeService) -> None:
    backfill = service.add_backfill()
    service.add_runs(backfill.id, [RunState.COMPLETED, RunState.RUNNING, RunState.PENDING])

    response = await client.get(f"/v1/backfills/{backfill.id}/runs?limit=2")

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


async def test_list_runs_filters_by_state(client: Client, service: FakeService) -> None:
    backfill = service.add_backfill()
    service.add_runs(backfill.id, [RunState.COMPLETED, RunState.FAILED, RunState.PENDING])

    response = await client.get(f"/v1/backfills/{backfill.uuid}/runs?state=failed,pending")

    body = await response.json()
    assert [r["state"] for r in body["data"]] == ["failed", "pending"]
    assert service.calls[-1][1]["states"] == [RunState.FAILED, RunState.PENDING]


async def test_list_runs_rejects_backfill_states(client: Client, service: FakeService) -> None:
    backfill = service.add_backfill()

    response = await client.get(f"/v1/backfills/{backfill.id}/runs?state=paused")

    assert response.status == 422
    assert (await response.json())["errors"][0]["parameter"] == "state"
