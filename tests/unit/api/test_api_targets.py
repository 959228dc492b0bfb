from __future__ import annotations

from api_fakes import DATE_RANGE_TARGET, TABLE_TARGET, Client, FakeService

from orchestrator.domain.specs import DateRangeTargetSpec, TableTargetSpec, TargetPatch

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


async def test_create_table_target_answers_201_with_every_field(
    client: Client, service: FakeService
) -> None:
    response = await client.post("/v1/targets", json=TABLE_TARGET)

    assert response.status == 201
    body = await response.json()
    assert set(body) == TARGET_FIELDS
    assert body["id"] == 1
    assert body["kind"] == "table"
    assert body["tables"] == ["public.orders"]
    assert body["sink"] == TABLE_TARGET["sink"]
    assert body["handler"] is None
    assert body["created_at"] == "2024-05-01T12:00:00+00:00"
    assert response.headers["Location"] == "/v1/targets/1"
    assert isinstance(service.calls[0][1]["spec"], TableTargetSpec)


async def test_create_date_range_target(client: Client, service: FakeService) -> None:
    response = await client.post("/v1/targets", json=DATE_RANGE_TARGET)

    assert response.status == 201
    body = await response.json()
    assert body["kind"] == "date_range"
    assert body["handler"] == DATE_RANGE_TARGET["handler"]
    assert body["interval_type"] == "hour"
    assert isinstance(service.calls[0][1]["spec"], DateRangeTargetSpec)


async def test_list_targets_pages_with_next_after(client: Client, service: FakeService) -> None:
    for n in range(3):
        await client.post("/v1/targets", json={**TABLE_TARGET, "name": f"t{n}"})

    first = await (await client.get("/v1/targets", params={"limit": "2"})).json()
    second = await (await client.get("/v1/targets", params={"after": "2", "limit": "2"})).json()

    assert [t["name"] for t in first["data"]] == ["t0", "t1"]
    assert first["next_after"] == 2
    assert [t["name"] for t in second["data"]] == ["t2"]
    assert second["next_after"] is None


async def test_list_targets_defaults_limit(client: Client, service: FakeService) -> None:
    response = await client.get("/v1/targets")

    assert response.status == 200
    assert await response.json() == {"data": [], "next_after": None}
    assert service.calls[-1] == ("list_targets", {"after": None, "limit": 50})


async def test_list_targets_rejects_bad_paging(client: Client) -> None:
    response = await client.get("/v1/targets", params={"after": "x", "limit": "501"})

    assert response.status == 422
    body = await response.json()
    assert body["code"] == "validation_failed"
    assert {e["parameter"] for e in body["errors"]} == {"after", "limit"}
    assert all("pointer" not in e for e in body["errors"])


async def test_get_target_by_id_and_by_name(client: Client, service: FakeService) -> None:
    await client.post("/v1/targets", json=TABLE_TARGET)

    by_id = await client.get("/v1/targets/1")
    by_name = await client.get(f"/v1/targets/{TABLE_TARGET['name']}")

    assert by_id.status == by_name.status == 200
    assert (await by_id.json()) == (await by_name.json())
    lookups = [kwargs["target"] for name, kwargs in service.calls if name == "get_target"]
    assert lookups == [1, TABLE_TARGET["name"]]


async def test_get_unknown_target_is_404_problem(client: Client) -> None:
    response = await client.get("/v1/targets/999")

    assert response.status == 404
    assert response.content_type == "application/problem+json"
    body = await response.json()
    assert body["code"] == "not_found"
    assert body["type"] == "https://backfill-orchestrator.dev/problems/not_found"


async def test_patch_target(client: Client, service: FakeService) -> None:
    await client.post("/v1/targets", json=TABLE_TARGET)

    response = await client.patch("/v1/targets/1", json={"chunk_size": 50, "max_attempts": 5})

    assert response.status == 200
    body = await response.json()
    assert body["chunk_size"] == 50
    assert body["max_attempts"] == 5
    name, kwargs = service.calls[-1]
    assert name == "update_target"
    assert kwargs["target_id"] == 1
    assert kwargs["patch"] == TargetPatch(chunk_size=50, max_attempts=5)


async def test_patch_by_name_is_404(client: Client) -> None:
    response = await client.patch("/v1/targets/some-name", json={"chunk_size": 50})

    assert response.status == 404


async def test_patch_rejects_unknown_field(client: Client) -> None:
    await client.post("/v1/targets", json=TABLE_TARGET)

    response = await client.patch("/v1/targets/1", json={"kind": "date_range"})

    assert response.status == 422
    errors = (await response.json())["errors"]
    assert errors == [{"pointer": "/kind", "message": "Extra inputs are not permitted"}]


async def test_delete_target(client: Client, service: FakeService) -> None:
    await client.post("/v1/targets", json=TABLE_TARGET)

    response = await client.delete("/v1/targets/1")

    assert response.status == 204
    assert await response.read() == b""
    assert (await client.get("/v1/targets/1")).status == 404
