"""CORS preflights on every API, answered without a key, and the allowed origin on every
answer: `*` on the compatibility APIs and nothing on the native API unless
BACKFILL_CORS_ORIGINS says otherwise."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from orchestrator.settings import Settings
from tests.conftest import make_settings
from tests.helpers import make_target

pytestmark = pytest.mark.integration

APP = "https://app.example.com"


@pytest.fixture
async def anonymous(client: Any) -> AsyncIterator[tuple[Any, aiohttp.ClientSession]]:
    """The test client (with a key) and a session without one, as a browser's preflight."""
    async with aiohttp.ClientSession() as session:
        yield client, session


async def preflight(
    session: aiohttp.ClientSession, client: Any, path: str, method: str, origin: str = APP
) -> aiohttp.ClientResponse:
    return await session.options(
        client.make_url(path),
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


@pytest.mark.parametrize(
    ("path", "method", "methods"),
    [
        ("/v1/teams/1/backfills/7", "PATCH", {"GET", "PATCH"}),
        ("/v1/teams/1/transfers/3/backfills", "POST", {"POST"}),
        ("/api/sinks/kafka-ids/backfills", "POST", {"GET", "POST"}),
        ("/api/sinks/kafka-ids/backfills/e0c918bb-12a2-4810-94a3-387cd672a478", "PATCH",
         {"GET", "PATCH"}),
    ],
)  # fmt: skip
async def test_compatibility_preflights_allow_any_origin(
    anonymous: Any, path: str, method: str, methods: set[str]
) -> None:
    client, session = anonymous
    response = await preflight(session, client, path, method)
    assert response.status == 204, await response.text()
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    allowed = {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}
    assert methods | {"OPTIONS"} <= allowed
    assert "authorization" in response.headers["Access-Control-Allow-Headers"].lower()


async def test_mage_keeps_its_own_preflight_answer(anonymous: Any) -> None:
    client, session = anonymous
    response = await preflight(session, client, "/api/backfills/3", "PUT")
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert (
        response.headers["Access-Control-Allow-Methods"] == "DELETE, GET, PATCH, POST, PUT, OPTIONS"
    )
    assert response.headers["Access-Control-Allow-Headers"] == "*"


async def test_the_native_api_answers_preflights_but_allows_no_origin_by_default(
    anonymous: Any,
) -> None:
    client, session = anonymous
    response = await preflight(session, client, "/v1/backfills", "POST")
    assert response.status == 204
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Origin" not in response.headers
    answer = await client.get("/v1/targets", headers={"Origin": APP})
    assert answer.status == 200
    assert "Access-Control-Allow-Origin" not in answer.headers


async def test_a_preflight_on_a_path_that_does_not_exist_is_not_answered(client: Any) -> None:
    response = await client.options(
        "/v1/nothing-here", headers={"Origin": APP, "Access-Control-Request-Method": "GET"}
    )
    assert response.status == 404


async def test_error_answers_carry_the_origin_too(client: Any) -> None:
    response = await client.get("/v1/teams/1/backfills/999", headers={"Origin": APP})
    assert response.status == 404
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "X-RateLimit-Remaining" in response.headers["Access-Control-Expose-Headers"]


class TestConfiguredOrigins:
    @pytest.fixture
    def settings(self, database: str, prefix: str) -> Settings:
        return make_settings(database, prefix, cors_origins=[APP])

    async def test_only_the_listed_origin_is_allowed_on_every_api(self, anonymous: Any) -> None:
        client, session = anonymous
        for path, method in (("/v1/backfills", "POST"), ("/v1/teams/1/backfills/7", "PATCH")):
            allowed = await preflight(session, client, path, method)
            assert allowed.status == 204
            assert allowed.headers["Access-Control-Allow-Origin"] == APP
            assert "Origin" in allowed.headers.getall("Vary")
            other = await preflight(session, client, path, method, origin="https://evil.test")
            assert other.status == 204
            assert "Access-Control-Allow-Origin" not in other.headers

        await make_target(client, "r")
        listed = await client.get("/v1/targets", headers={"Origin": APP})
        assert listed.headers["Access-Control-Allow-Origin"] == APP
        # The list narrows the compatibility APIs' usual `*` as well.
        foreign = await client.get("/v1/teams/1/backfills", headers={"Origin": "https://evil.test"})
        assert foreign.status == 200
        assert "Access-Control-Allow-Origin" not in foreign.headers
