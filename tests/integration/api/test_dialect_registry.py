"""A compatibility dialect is one module declaring a `Dialect`, plus a line in the registry:
a toy one, declared here and handed to the app, gets its routes, its error shape and its key
header without any other file knowing about it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api import create_app
from api.compat.dialect import Dialect
from api.compat.failure import Failure
from api.compat.registry import DIALECTS
from api.render import json_response
from orchestrator.access import AccessService
from orchestrator.errors import NotFound
from orchestrator.settings import Settings
from orchestrator.usecases import UseCases
from tests.integration.api.conftest import Client
from tests.integration.api.probes import FakeProbes

toy_routes = web.RouteTableDef()


@toy_routes.get("/toy/things/{thing}")
async def get_thing(request: web.Request) -> web.Response:
    thing = request.match_info["thing"]
    if thing != "known":
        raise NotFound(f"no thing {thing!r}")
    return json_response({"thing": thing})


def render_toy_error(request: web.Request, failure: Failure) -> web.Response:
    return json_response(
        {"oops": failure.detail, "why": failure.code},
        status=failure.status,
        headers=failure.headers,
    )


TOY = Dialect(
    name="toy",
    prefixes=("/toy/",),
    paths=("/toy",),
    routes=toy_routes,
    render_error=render_toy_error,
    key_header="X-Toy-Key",
)


@pytest.fixture
async def toy_client(
    settings: Settings, usecases: UseCases, probes: FakeProbes, access: AccessService
) -> AsyncIterator[Client]:
    app = create_app(settings, usecases, probes, access, dialects=(*DIALECTS, TOY))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_its_routes_are_served_with_a_key_in_its_own_header(
    toy_client: Client, token: str
) -> None:
    response = await toy_client.get("/toy/things/known", headers={"X-Toy-Key": token})

    assert response.status == 200
    assert await response.json() == {"thing": "known"}


async def test_its_errors_come_in_its_own_shape(toy_client: Client, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    missing = await toy_client.get("/toy/things/other", headers=headers)
    no_route = await toy_client.get("/toy/nothing/here", headers=headers)

    assert missing.status == 404
    assert await missing.json() == {"oops": "no thing 'other'", "why": "not_found"}
    assert no_route.status == 404
    assert (await no_route.json())["why"] == "not_found"


async def test_a_missing_key_names_its_header(toy_client: Client) -> None:
    response = await toy_client.get("/toy/things/known")

    assert response.status == 401
    assert await response.json() == {
        "oops": "missing API key: send 'X-Toy-Key: <key>' (or 'Authorization: Bearer <key>')",
        "why": "unauthorized",
    }
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="backfill"'


async def test_its_header_means_nothing_to_the_native_api(toy_client: Client, token: str) -> None:
    response = await toy_client.get("/v1/targets", headers={"X-Toy-Key": token})

    assert response.status == 401
    assert response.content_type == "application/problem+json"


async def test_browsers_may_send_its_key_header(toy_client: Client) -> None:
    # /toy/things/{thing} has no OPTIONS route: the CORS middleware answers the preflight.
    response = await toy_client.options("/toy/things/known")

    assert response.status == 204
    assert "X-Toy-Key" in response.headers["Access-Control-Allow-Headers"].split(", ")
