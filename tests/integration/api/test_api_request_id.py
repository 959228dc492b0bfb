from __future__ import annotations

import re

import pytest
import structlog

from tests.integration.api.conftest import Client


async def test_a_sane_request_id_is_echoed_and_bound(
    client: Client, request_ids_seen: list[str | None]
) -> None:
    response = await client.get("/v1/targets", headers={"X-Request-ID": "abc.DEF_123-x"})

    assert response.headers["X-Request-ID"] == "abc.DEF_123-x"
    assert request_ids_seen == ["abc.DEF_123-x"]


@pytest.mark.parametrize("given", [None, "", "has space", "a" * 129, "semi;colon", "ünï"])
async def test_a_missing_or_odd_request_id_is_replaced(
    client: Client, request_ids_seen: list[str | None], given: str | None
) -> None:
    headers = {} if given is None else {"X-Request-ID": given}

    response = await client.get("/v1/targets", headers=headers)

    generated = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert request_ids_seen == [generated]


async def test_the_longest_sane_request_id_is_kept(client: Client) -> None:
    given = "a" * 128

    response = await client.get("/ops/health", headers={"X-Request-ID": given})

    assert response.headers["X-Request-ID"] == given


async def test_each_request_gets_its_own_id(client: Client) -> None:
    first = await client.get("/ops/health")
    second = await client.get("/ops/health")

    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/nowhere"), ("PUT", "/v1/targets"), ("GET", "/v1/targets/404")],
)
async def test_error_responses_carry_the_id_too(client: Client, method: str, path: str) -> None:
    response = await client.request(method, path, headers={"X-Request-ID": "err-1"})

    assert response.status >= 400
    assert response.headers["X-Request-ID"] == "err-1"
    body = await response.json(content_type="application/problem+json")
    assert body["request_id"] == "err-1"


async def test_one_access_log_line_per_request_without_the_query(client: Client) -> None:
    with structlog.testing.capture_logs() as logs:
        await client.get("/v1/targets?limit=5&after=1")

    [line] = [e for e in logs if e["event"] == "http_request"]
    assert line["method"] == "GET"
    assert line["path"] == "/v1/targets"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float)
    assert "limit" not in repr(line)
