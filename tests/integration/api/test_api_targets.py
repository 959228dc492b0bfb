from __future__ import annotations

import pytest

from orchestrator.storage.database import Pool
from tests.integration.api.bodies import DATE_RANGE_TARGET, TABLE_TARGET
from tests.integration.api.conftest import Client
from tests.integration.api.seed import add_target

pytestmark = pytest.mark.usefixtures("orders_table")

TARGET_FIELDS = {
    "id",
    "uuid",
    "name",
    "kind",
    "source",
    "tables",
    "sort_column",
    "sink",
    "handler",
    "variables",
    "chunk_size",
    "interval_type",
    "interval_units",
    "max_active_runs",
    "max_attempts",
    "created_at",
    "updated_at",
}


async def test_create_table_target_answers_201_with_every_field(client: Client) -> None:
    response = await client.post("/v1/targets", json=TABLE_TARGET)

    assert response.status == 201, await response.text()
    body = await response.json()
    assert set(body) == TARGET_FIELDS
    assert body["id"] == 1
    assert body["kind"] == "table"
    assert body["tables"] == ["public.orders"]
    assert body["sink"] == TABLE_TARGET["sink"]
    assert body["handler"] is None
    assert body["created_at"] == body["updated_at"]
    assert response.headers["Location"] == "/v1/targets/1"
    assert await (await client.get("/v1/targets/1")).json() == body


async def test_create_date_range_target(client: Client) -> None:
    response = await client.post("/v1/targets", json=DATE_RANGE_TARGET)

    assert response.status == 201
    body = await response.json()
    assert body["kind"] == "date_range"
    assert body["handler"] == DATE_RANGE_TARGET["handler"]
    assert body["interval_type"] == "hour"
    assert body["variables"] == {"region": "eu"}
    assert await (await client.get(f"/v1/targets/{body['id']}")).json() == body


async def test_list_targets_pages_with_next_after(client: Client) -> None:
    for n in range(3):
        await client.post("/v1/targets", json={**TABLE_TARGET, "name": f"t{n}"})

    first = await (await client.get("/v1/targets", params={"limit": "2"})).json()
    second = await (await client.get("/v1/targets", params={"after": "2", "limit": "2"})).json()

    assert [t["name"] for t in first["data"]] == ["t0", "t1"]
    assert first["next_after"] == 2
    assert [t["name"] for t in second["data"]] == ["t2"]
    assert second["next_after"] is None


async def test_list_targets_defaults_limit(client: Client, pool: Pool) -> None:
    assert await (await client.get("/v1/targets")).json() == {"data": [], "next_after": None}
    for n in range(51):
        await add_target(pool, f"t{n:02}")

    response = await client.get("/v1/targets")

    assert response.status == 200
    body = await response.json()
    assert len(body["data"]) == 50
    assert body["next_after"] == body["data"][-1]["id"]


async def test_list_targets_rejects_bad_paging(client: Client) -> None:
    response = await client.get("/v1/targets", params={"after": "x", "limit": "501"})

    assert response.status == 422
    body = await response.json()
    assert body["code"] == "validation_failed"
    assert {e["parameter"] for e in body["errors"]} == {"after", "limit"}
    assert all("pointer" not in e for e in body["errors"])


async def test_get_target_by_id_and_by_name(client: Client) -> None:
    await client.post("/v1/targets", json=TABLE_TARGET)

    by_id = await client.get("/v1/targets/1")
    by_name = await client.get(f"/v1/targets/{TABLE_TARGET['name']}")

    assert by_id.status == by_name.status == 200
    assert (await by_id.json()) == (await by_name.json())
    assert (await by_id.json())["id"] == 1


async def test_get_unknown_target_is_404_problem(client: Client) -> None:
    response = await client.get("/v1/targets/999")

    assert response.status == 404
    assert response.content_type == "application/problem+json"
    body = await response.json()
    assert body["code"] == "not_found"
    assert body["type"] == "https://backfill-orchestrator.dev/problems/not_found"


async def test_patch_target(client: Client) -> None:
    created = await (await client.post("/v1/targets", json=TABLE_TARGET)).json()

    response = await client.patch("/v1/targets/1", json={"chunk_size": 50, "max_attempts": 5})

    assert response.status == 200
    body = await response.json()
    assert body["chunk_size"] == 50
    assert body["max_attempts"] == 5
    # Stored, and only the two fields changed.
    stored = await (await client.get("/v1/targets/1")).json()
    assert stored == body
    unchanged = {k: v for k, v in created.items() if k not in {"chunk_size", "max_attempts"}}
    assert {k: v for k, v in body.items() if k in unchanged and k != "updated_at"} == {
        k: v for k, v in unchanged.items() if k != "updated_at"
    }


async def test_patch_by_name_is_404(client: Client) -> None:
    response = await client.patch("/v1/targets/some-name", json={"chunk_size": 50})

    assert response.status == 404


async def test_patch_rejects_unknown_field(client: Client) -> None:
    await client.post("/v1/targets", json=TABLE_TARGET)

    response = await client.patch("/v1/targets/1", json={"kind": "date_range"})

    assert response.status == 422
    errors = (await response.json())["errors"]
    assert errors == [{"pointer": "/kind", "message": "Extra inputs are not permitted"}]


async def test_delete_target(client: Client) -> None:
    await client.post("/v1/targets", json=TABLE_TARGET)

    response = await client.delete("/v1/targets/1")

    assert response.status == 204
    assert await response.read() == b""
    assert (await client.get("/v1/targets/1")).status == 404
