"""The app serves the OpenAPI document and the reference page it describes, every route is in
the document, and the problems it answers with validate against the document's model."""

from __future__ import annotations

import re
from typing import Any

from api.compat.dialect import dialect_of_path
from api.compat.registry import DIALECTS
from api.openapi import openapi_document
from api.problem_schema import Problem
from orchestrator.storage.database import Pool
from tests.helpers import operations
from tests.integration.api.conftest import Client
from tests.integration.api.seed import add_target


async def test_every_route_is_documented_and_every_operation_is_routed(client: Client) -> None:
    routed = {
        (route.method, route.resource.canonical)
        for route in client.app.router.routes()
        if route.method != "HEAD"
        and route.resource is not None
        # The compatibility APIs are documented by the systems they copy
        # (docs/compatibility.md), not by this document.
        and dialect_of_path(DIALECTS, route.resource.canonical) is None
    }

    documented = set(operations(openapi_document()))

    assert routed - documented == set(), "routes missing from api/openapi.py ENDPOINTS"
    assert documented - routed == set(), "documented operations that no route serves"


async def test_live_problems_validate_against_the_problem_model(client: Client) -> None:
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/v1/targets/nope", {}),
        ("GET", "/v1/backfills?limit=0&bogus=1", {}),
        ("POST", "/v1/targets", {"json": {"kind": "table"}}),
        ("GET", "/v1/targets", {"headers": {"Authorization": "Bearer wrong"}}),
    ]
    for method, path, kwargs in cases:
        response = await client.request(method, path, **kwargs)
        assert response.content_type == "application/problem+json"
        Problem.model_validate(await response.json(content_type=None))


async def test_openapi_json_serves_the_document(client: Client) -> None:
    response = await client.get("/openapi.json")

    assert response.status == 200
    assert response.content_type == "application/json"
    assert "X-Request-ID" in response.headers
    assert await response.json() == openapi_document()


async def test_reference_page_is_self_contained_html_listing_every_path(
    client: Client, pool: Pool
) -> None:
    await add_target(pool, "not-in-the-reference")

    response = await client.get("/docs/reference")

    assert response.status == 200
    assert response.content_type == "text/html"
    assert "X-Request-ID" in response.headers
    html = await response.text()
    assert html.startswith("<!doctype html>")
    for (_, path), op in operations(openapi_document()).items():
        assert f"<code>{path}</code>" in html
        assert f'id="op-{op["operationId"]}"' in html
    for name in openapi_document()["components"]["schemas"]:
        assert f'id="schema-{name}"' in html
    # Nothing loaded from elsewhere: no scripts at all, no external stylesheets or fonts.
    assert "<script" not in html.lower()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert not re.search(r"@import|url\(", html, re.I)
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert "not-in-the-reference" not in html  # the document only: no data read
