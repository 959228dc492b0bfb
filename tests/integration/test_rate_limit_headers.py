"""Every answer to a counted request carries X-RateLimit-Limit and X-RateLimit-Remaining:
successes and errors, in every API's own error shape (Supermetrics lists them on its 422)."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.context import Context
from orchestrator.domain.keys import Scope
from orchestrator.settings import Settings
from tests.conftest import make_settings
from tests.helpers import make_target

pytestmark = pytest.mark.integration

LIMIT = 1000


@pytest.fixture
def settings(database: str, prefix: str) -> Settings:
    return make_settings(database, prefix, rate_limit_requests=LIMIT)


# (method, path, body, expected HTTP status); every one is an error answer.
ERRORS = [
    # native problem+json
    ("GET", "/v1/backfills/999999", None, 404),
    ("POST", "/v1/backfills", {"target": "nope"}, 422),
    ("GET", "/v1/no-such-path", None, 404),
    ("DELETE", "/v1/backfills", None, 405),
    # Sequin
    ("GET", "/api/sinks/nope/backfills", None, 404),
    ("POST", "/api/sinks/t/backfills", {"bogus": 1}, 422),
    # Supermetrics
    ("GET", "/v1/teams/1/backfills/999999", None, 404),
    ("PATCH", "/v1/teams/1/backfills/1", {"status": "RUNNING"}, 400),
    (
        "POST",
        "/v1/teams/1/transfers/{range}/backfills",
        {"range_start": "2024-01-02", "range_end": "2024-01-01"},
        400,
    ),
    # Mage: errors are HTTP 200 unless real codes are asked for
    ("GET", "/api/backfills/999999", None, 200),
    ("GET", "/api/backfills/999999?_http_error_codes=true", None, 404),
    ("POST", "/api/pipelines/{range_name}/backfills", {"backfill": {"bogus": 1}}, 200),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), ERRORS)
async def test_error_answers_carry_the_rate_limit_headers(
    client: Any, db: Any, method: str, path: str, body: Any, status: int
) -> None:
    await db.execute("CREATE TABLE t (id bigint PRIMARY KEY)")
    rng = await make_target(client, "r")
    await make_target(client, "t", kind="table")
    path = path.format(range=rng["id"], range_name="r")
    response = await client.request(method, path, json=body)
    assert response.status == status, await response.text()
    assert response.headers["X-RateLimit-Limit"] == str(LIMIT)
    remaining = int(response.headers["X-RateLimit-Remaining"])
    # Two targets were made first; this request was the third counted.
    assert remaining == LIMIT - 3


async def test_a_supermetrics_422_carries_them(client: Any) -> None:
    """The seed page lists both headers on its UnprocessableEntity answer."""
    rng = await make_target(client, "r")
    path = f"/v1/teams/1/transfers/{rng['id']}/backfills"
    body = {"range_start": "2024-01-01", "range_end": "2024-01-05"}
    assert (await client.post(path, json=body)).status == 200
    clash = await client.post(path, json=body)
    assert clash.status == 422
    assert (await clash.json())["error"]["code"] == "BACKFILL_OVERLAP"
    assert clash.headers["X-RateLimit-Limit"] == str(LIMIT)
    assert clash.headers["X-RateLimit-Remaining"] == str(LIMIT - 3)


async def test_a_key_without_the_scope_gets_403_with_the_headers(client: Any, ctx: Context) -> None:
    reader, _ = await ctx.access.create_key(1, {Scope.READ})
    response = await client.post(
        "/v1/targets", json={}, headers={"Authorization": f"Bearer {reader}"}
    )
    assert response.status == 403
    assert response.headers["X-RateLimit-Limit"] == str(LIMIT)
    assert response.headers["X-RateLimit-Remaining"] == str(LIMIT - 1)
