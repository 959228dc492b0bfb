"""While Postgres cannot be reached the API answers 503 with Retry-After, quickly, in every
API's own error shape, and serves again once the database is back."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from orchestrator.context import Context, open_context
from orchestrator.domain.keys import ALL_SCOPES
from orchestrator.probes import ContextProbes
from tests.conftest import make_settings
from tests.faults.proxy import TcpProxy
from tests.helpers import api

pytestmark = pytest.mark.integration

# Well below a client's patience: "never a hang".
ANSWER_WITHIN = 10.0


def through(proxy: TcpProxy, dsn: str) -> str:
    parts = urlsplit(dsn)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"{proxy.listen_host}:{proxy.port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


@pytest.fixture
async def proxied(
    database: str, prefix: str
) -> AsyncIterator[tuple[TcpProxy, TestClient[Any, Any], Context]]:
    """The API (no worker) over a context whose every database connection goes through a
    proxy the test can cut."""
    parts = urlsplit(database)
    async with await TcpProxy.open(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        settings = make_settings(through(proxy, database), prefix)
        async with open_context(settings) as ctx:
            token, _ = await ctx.access.create_key(1, set(ALL_SCOPES), name="tests")
            app = create_app(
                settings, ctx.usecases, ContextProbes(ctx, consuming=False), ctx.access
            )
            headers = {"Authorization": f"Bearer {token}"}
            async with TestClient(TestServer(app), headers=headers) as client:
                yield proxy, client, ctx


async def timed(client: Any, method: str, path: str) -> tuple[int, dict[str, str], Any, float]:
    started = time.monotonic()
    response = await client.request(method, path)
    body = await response.json()
    return response.status, dict(response.headers), body, time.monotonic() - started


async def test_the_api_answers_503_while_the_database_is_down_and_recovers(
    proxied: tuple[TcpProxy, Any, Context],
) -> None:
    proxy, client, _ = proxied
    await api(client, "GET", "/v1/backfills", 200)

    proxy.refuse()
    await proxy.cut()

    for path in ("/v1/backfills", "/v1/targets", "/api/sinks/x/backfills"):
        status, headers, body, took = await timed(client, "GET", path)
        assert status == 503, (path, body)
        assert headers["Retry-After"] == "5"
        assert took < ANSWER_WITHIN, (path, took)
    # The native shape says what is wrong; the compat ones carry it in theirs.
    _, _, native, _ = await timed(client, "GET", "/v1/backfills")
    assert native["code"] == "service_unavailable"

    status, _, ready, _ = await timed(client, "GET", "/ops/ready")
    assert status == 503
    assert ready["checks"]["postgres"] is False

    await proxy.accept()
    await api(client, "GET", "/v1/backfills", 200)
    await api(client, "GET", "/ops/ready", 200)
