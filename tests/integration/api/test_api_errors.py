from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
import structlog
from aiohttp import ClientResponse

from api.body import MAX_BODY_BYTES
from orchestrator.errors import Conflict, Unavailable
from tests.integration.api.bodies import TABLE_TARGET
from tests.integration.api.conftest import Client

PROBLEM_KEYS = {"type", "title", "status", "detail", "code", "request_id", "errors"}


async def problem(response: ClientResponse) -> dict[str, Any]:
    """The body of a problem response, after checking what every one of them must carry."""
    assert response.content_type == "application/problem+json"
    body: dict[str, Any] = await response.json(content_type="application/problem+json")
    assert set(body) >= PROBLEM_KEYS
    assert body["status"] == response.status
    assert body["type"] == f"https://backfill-orchestrator.dev/problems/{body['code']}"
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b'{"kind": "table",', "The request body is not valid JSON."),
        (b"[1, 2]", "The request body must be a JSON object."),
        (b"", "The request body must be a JSON object; it is empty."),
        (b'{"n": NaN}', "The request body is not valid JSON."),
        (b"\xff\xfe", "The request body is not valid JSON."),
    ],
)
async def test_body_that_is_not_a_json_object_is_400(
    client: Client, raw: bytes, detail: str
) -> None:
    response = await client.post(
        "/v1/targets", data=raw, headers={"Content-Type": "application/json"}
    )

    assert response.status == 400
    body = await problem(response)
    assert body["code"] == "bad_request"
    assert body["detail"] == detail


async def test_every_field_error_is_listed_with_a_pointer(client: Client) -> None:
    response = await client.post(
        "/v1/targets",
        json={
            "kind": "table",
            "name": "has spaces",
            "tables": ["ok", "not a table"],
            "sink": {"type": 1, "options": {}, "url": "x"},
            "chunk_size": 0,
            "colour": "blue",
        },
    )

    assert response.status == 422
    body = await problem(response)
    assert body["code"] == "validation_failed"
    pointers = {e["pointer"] for e in body["errors"]}
    assert pointers == {
        "/name",
        "/tables/1",
        "/sink/type",
        "/sink/url",
        "/chunk_size",
        "/colour",
    }
    assert {"pointer": "/colour", "message": "Extra inputs are not permitted"} in body["errors"]
    assert (await (await client.get("/v1/targets")).json())["data"] == []


async def test_field_errors_never_echo_the_input(client: Client) -> None:
    secret = "hunter2-super-secret"
    response = await client.post(
        "/v1/targets",
        json={**TABLE_TARGET, "chunk_size": secret, "kind": secret + "x"},
    )

    assert response.status == 422
    assert secret not in await response.text()


async def test_missing_and_unknown_discriminator_point_at_kind(client: Client) -> None:
    missing = await problem(await client.post("/v1/targets", json={"name": "x"}))
    unknown = await problem(await client.post("/v1/targets", json={"kind": "queue"}))

    assert missing["errors"] == [{"pointer": "/kind", "message": "Field required"}]
    assert unknown["errors"] == [
        {"pointer": "/kind", "message": "Input should be one of 'table', 'date_range'"}
    ]


async def test_missing_fields_point_at_where_they_belong(client: Client) -> None:
    body = await problem(await client.post("/v1/targets", json={"kind": "date_range"}))

    assert body["errors"] == [
        {"pointer": "/name", "message": "Field required"},
        {"pointer": "/handler", "message": "Field required"},
    ]


async def test_plain_union_members_do_not_leak_into_pointers(client: Client) -> None:
    body = await problem(
        await client.post("/v1/backfills", json={"target": "bad name!", "start": "nope"})
    )

    assert {e["pointer"] for e in body["errors"]} == {"/target", "/start"}


async def test_unknown_route_is_404_problem(client: Client) -> None:
    body = await problem(await client.get("/v1/nothing-here"))

    assert body["status"] == 404
    assert body["code"] == "not_found"


async def test_wrong_method_is_405_problem_with_allow(client: Client) -> None:
    response = await client.put("/v1/targets")

    assert response.status == 405
    body = await problem(response)
    assert body["code"] == "method_not_allowed"
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}


async def test_oversized_body_is_413_problem(client: Client) -> None:
    response = await client.post(
        "/v1/targets",
        # A stream rather than bytes: aiohttp warns that a large bytes body blocks the loop.
        data=io.BytesIO(b"{" + b" " * MAX_BODY_BYTES + b"}"),
        headers={"Content-Type": "application/json"},
    )

    assert response.status == 413
    body = await problem(response)
    assert body["code"] == "payload_too_large"
    assert str(MAX_BODY_BYTES) in str(body["detail"])
    assert (await (await client.get("/v1/targets")).json())["data"] == []


@pytest.mark.usefixtures("orders_table")
async def test_orchestrator_error_renders_its_status_code_and_detail(client: Client) -> None:
    await client.post("/v1/targets", json=TABLE_TARGET)

    response = await client.post("/v1/targets", json=TABLE_TARGET)

    assert response.status == 409
    body = await problem(response)
    assert body["code"] == "conflict"
    assert body["title"] == Conflict.title
    assert body["detail"] == "a target named 'orders-to-search' already exists"


async def test_service_field_errors_pass_through(client: Client) -> None:
    body = await problem(await client.post("/v1/backfills", json={"target": "missing"}))

    assert body["status"] == 422
    assert body["errors"] == [{"pointer": "/target", "message": "target 'missing' not found"}]


async def test_unavailable_is_503(
    client: Client, fail_target_listing: Callable[[BaseException], None]
) -> None:
    fail_target_listing(Unavailable("the database is unreachable"))

    body = await problem(await client.get("/v1/targets"))

    assert body["status"] == 503
    assert body["code"] == "service_unavailable"


@pytest.mark.parametrize(
    "failure",
    [ConnectionRefusedError(111, "refused"), asyncpg.ConnectionDoesNotExistError("closed")],
)
async def test_a_database_that_cannot_be_reached_is_503_with_retry_after(
    client: Client, fail_target_listing: Callable[[BaseException], None], failure: Exception
) -> None:
    # The driver's own failures, which storage marks as DatabaseUnavailable: the API tells
    # them apart without importing storage or the driver.
    fail_target_listing(failure)

    response = await client.get("/v1/targets")
    body = await problem(response)

    assert body["status"] == 503
    assert body["code"] == "service_unavailable"
    assert body["detail"] == "The database cannot be reached right now; retry shortly."
    assert response.headers["Retry-After"] == "5"


async def test_unexpected_exception_is_a_logged_generic_500(
    client: Client, fail_target_listing: Callable[[BaseException], None]
) -> None:
    fail_target_listing(RuntimeError("password=hunter2 in a driver message"))

    with structlog.testing.capture_logs() as logs:
        response = await client.get("/v1/targets", headers={"X-Request-ID": "trace-me-1"})

    assert response.status == 500
    text = await response.text()
    assert "hunter2" not in text
    assert "Traceback" not in text
    assert "RuntimeError" not in text
    body = await problem(response)
    assert body["code"] == "internal_error"
    assert body["request_id"] == "trace-me-1"
    [entry] = [e for e in logs if e["event"] == "unhandled_error"]
    assert entry["log_level"] == "error"
    assert entry["exc_info"] is True


async def test_pointers_escape_slash_and_tilde(client: Client) -> None:
    body = await problem(await client.post("/v1/targets", json={**TABLE_TARGET, "a/b~c": 1}))

    assert body["errors"] == [{"pointer": "/a~1b~0c", "message": "Extra inputs are not permitted"}]


async def test_a_field_named_like_the_union_tag_keeps_its_pointer(client: Client) -> None:
    # "table" is both the tag pydantic puts in `loc` and, here, a stray field in the body.
    body = await problem(await client.post("/v1/targets", json={**TABLE_TARGET, "table": {"x": 1}}))

    assert body["errors"] == [{"pointer": "/table", "message": "Extra inputs are not permitted"}]
