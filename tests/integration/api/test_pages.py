"""`GET /`, the dashboard's files, Swagger UI at /docs and GET /v1/whoami over HTTP."""

from __future__ import annotations

import re

import pytest

from api.routes_ui import DOCS_ASSETS, UI_ASSETS
from orchestrator.storage.database import Pool
from tests.integration.api.conftest import Client
from tests.integration.api.seed import add_target

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


async def test_root_sends_a_browser_to_the_dashboard(client: Client) -> None:
    response = await client.get(
        "/", headers={"Accept": BROWSER_ACCEPT, "Authorization": ""}, allow_redirects=False
    )

    assert response.status == 302
    assert response.headers["Location"] == "/ui/"
    assert response.headers["Vary"] == "Accept"


async def test_root_gives_an_api_client_links_without_a_key(client: Client) -> None:
    response = await client.get("/", headers={"Accept": "*/*", "Authorization": ""})

    assert response.status == 200
    body = await response.json()
    assert body["links"]["dashboard"] == "/ui/"
    assert body["links"]["docs"] == "/docs"
    assert body["links"]["backfills"] == "/v1/backfills"


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/ui/", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/app.css", "text/css"),
        ("/docs", "text/html"),
        ("/docs/swagger-ui-bundle.js", "text/javascript"),
        ("/docs/swagger-ui.css", "text/css"),
        ("/docs/swagger-init.js", "text/javascript"),
    ],
)
async def test_pages_and_their_files_are_open_and_under_a_strict_csp(
    client: Client, pool: Pool, path: str, content_type: str
) -> None:
    await add_target(pool, "only-with-a-key")

    response = await client.get(path, headers={"Authorization": ""})

    assert response.status == 200
    assert response.content_type == content_type
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "only-with-a-key" not in await response.text()  # no data without a key


@pytest.mark.parametrize("name", ["index.html", "nope.js", "..%2Fapp.py", "app.js.map"])
async def test_only_listed_files_are_served(client: Client, name: str) -> None:
    for folder in ("/ui/", "/docs/"):
        response = await client.get(folder + name)

        assert response.status == 404
        assert response.content_type == "application/problem+json"


async def test_the_pages_load_nothing_from_elsewhere_and_run_no_inline_code(
    client: Client,
) -> None:
    for path in ("/ui/", "/docs"):
        html = await (await client.get(path)).text()

        assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
        assert not re.search(r"<script(?![^>]*\bsrc=)", html, re.I), "inline script"
        assert not re.search(r"\son\w+\s*=", html, re.I), "inline event handler"
        assert "style=" not in html
    for asset in (*UI_ASSETS.values(), *DOCS_ASSETS.values()):
        assert asset.name != "index.html" or asset.content_type == "text/html"


async def test_whoami_names_the_key_its_team_and_scopes(client: Client, token: str) -> None:
    response = await client.get("/v1/whoami")

    assert response.status == 200
    assert await response.json() == {
        "key_id": 1,
        "prefix": token[:12],
        "team_id": 1,
        "scopes": ["admin", "read", "write"],
    }


async def test_whoami_needs_a_valid_key(client: Client) -> None:
    response = await client.get("/v1/whoami", headers={"Authorization": "Bearer nope"})

    assert response.status == 401
