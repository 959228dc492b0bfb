"""Keys, scopes, team isolation, input limits and rate limits against the running app."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestrator.context import Context
from orchestrator.domain.keys import Scope
from orchestrator.settings import Settings
from tests.conftest import grant_source, make_settings
from tests.helpers import api, backfill_body, make_target, start_backfill, target_body

pytestmark = pytest.mark.integration

SECRET_PASSWORD = "s3cr3t-pa55word-never-shown"


@pytest.fixture
def settings(database: str, prefix: str) -> Settings:
    # A source whose DSN carries a password, to prove it never leaves the server.
    return make_settings(
        database,
        prefix,
        rate_limit_requests=1000,
        max_runs_per_backfill=1000,
        sources={"warehouse": database.replace("root@", f"root:{SECRET_PASSWORD}@")},
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def seed(client: Any, db: Any) -> dict[str, Any]:
    await db.execute("CREATE TABLE t (id int PRIMARY KEY)")
    await db.execute("INSERT INTO t SELECT generate_series(1, 50)")
    target = await make_target(client, "t", "table")
    backfill = await start_backfill(client, "t")
    return {"target": target, "backfill": backfill}


async def test_requests_without_a_valid_key_get_401_with_a_challenge(
    client: Any, ctx: Context
) -> None:
    expired, _ = await ctx.access.create_key(
        1, {Scope.READ}, expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    revoked, info = await ctx.access.create_key(1, {Scope.READ})
    await ctx.access.revoke_key(info.prefix)
    cases = {
        "missing": {"Authorization": ""},
        "not bearer": {"Authorization": "Basic dXNlcjpwYXNz"},
        "unknown": bearer("bfk_" + "x" * 43),
        "wrong secret, right prefix": bearer(revoked[:12] + "y" * 43),
        "expired": bearer(expired),
        "revoked": bearer(revoked),
    }
    for name, headers in cases.items():
        response = await client.get("/v1/targets", headers=headers)
        assert response.status == 401, name
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), name
        assert response.content_type == "application/problem+json", name
        body = await response.json()
        assert body["code"] == "unauthorized", name
        assert body["request_id"] == response.headers["X-Request-ID"], name


async def test_a_key_without_the_scope_gets_403(client: Any, ctx: Context, db: Any) -> None:
    await seed(client, db)
    reader, _ = await ctx.access.create_key(1, {Scope.READ})
    writer, _ = await ctx.access.create_key(1, {Scope.WRITE})
    await api(client, "GET", "/v1/targets", 200, headers=bearer(reader))
    body = await api(client, "POST", "/v1/backfills/1/pause", 403, headers=bearer(reader))
    assert body["code"] == "forbidden"
    assert "write" in body["detail"]
    await api(client, "GET", "/v1/backfills", 403, headers=bearer(writer))


async def test_whoami_tells_any_valid_key_its_team_and_scopes(client: Any, ctx: Context) -> None:
    team, _ = await ctx.access.repo.create_team("whoami")
    writer, info = await ctx.access.create_key(team, {Scope.WRITE})

    # A key without `read` may still ask what it may do; the dashboard relies on it.
    body = await api(client, "GET", "/v1/whoami", 200, headers=bearer(writer))

    assert body == {"key_id": info.id, "prefix": info.prefix, "team_id": team, "scopes": ["write"]}
    await api(client, "GET", "/v1/whoami", 401, headers=bearer("bfk_not-a-key"))


async def test_another_teams_objects_do_not_exist_for_it(
    client: Any, ctx: Context, db: Any
) -> None:
    mine = await seed(client, db)
    team, _ = await ctx.access.repo.create_team("other")
    theirs, _ = await ctx.access.create_key(team, {Scope.READ, Scope.WRITE})
    headers = bearer(theirs)
    bid, tid = mine["backfill"]["id"], mine["target"]["id"]
    buuid = mine["backfill"]["uuid"]
    missing_bid, missing_tid = bid + 1000, tid + 1000

    def same_as_missing(body: dict[str, Any], real: Any, missing: Any) -> None:
        assert body["status"] == 404
        assert body["code"] == "not_found"
        expected = dict(missing_body[str(missing)])
        expected["detail"] = expected["detail"].replace(str(missing), str(real))
        assert {k: v for k, v in body.items() if k != "request_id"} == {
            k: v for k, v in expected.items() if k != "request_id"
        }

    missing_body: dict[str, dict[str, Any]] = {}
    checks = [
        ("GET", "/v1/backfills/{}", bid, missing_bid),
        ("GET", "/v1/backfills/{}/runs", bid, missing_bid),
        ("POST", "/v1/backfills/{}/cancel", bid, missing_bid),
        ("POST", "/v1/backfills/{}/pause", bid, missing_bid),
        ("POST", "/v1/backfills/{}/resume", bid, missing_bid),
        ("GET", "/v1/targets/{}", tid, missing_tid),
        ("PATCH", "/v1/targets/{}", tid, missing_tid),
        ("DELETE", "/v1/targets/{}", tid, missing_tid),
    ]
    for method, path, real, missing in checks:
        kw: dict[str, Any] = {"json": {"max_attempts": 2}} if method == "PATCH" else {}
        missing_body[str(missing)] = await api(
            client, method, path.format(missing), 404, headers=headers, **kw
        )
        body = await api(client, method, path.format(real), 404, headers=headers, **kw)
        same_as_missing(body, real, missing)
    await api(client, "GET", f"/v1/backfills/{buuid}", 404, headers=headers)
    # Lists show only the team's own objects; by name, another team's target is unknown.
    assert (await api(client, "GET", "/v1/backfills", 200, headers=headers))["data"] == []
    assert (await api(client, "GET", "/v1/targets", 200, headers=headers))["data"] == []
    body = await api(client, "POST", "/v1/backfills", 422, headers=headers, json=backfill_body("t"))
    assert body["errors"][0]["pointer"] == "/target"
    # The owner still sees everything, unchanged.
    assert (await api(client, "GET", f"/v1/backfills/{bid}", 200))["state"] != "cancelled"
    # Names are per team: the other team may use the same one (on a source granted to it).
    await db.execute("CREATE TABLE u (id int PRIMARY KEY)")
    await grant_source(ctx, team, read=("public.u",), write=())
    await api(
        client,
        "POST",
        "/v1/targets",
        201,
        headers=headers,
        json=target_body("t", "table", tables=["u"]),
    )


async def test_bad_input_is_refused_clearly_and_changes_nothing(client: Any, db: Any) -> None:
    await seed(client, db)
    before = await db.fetchval("SELECT count(*) FROM backfills")
    response = await client.post(
        "/v1/backfills", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    body = await api(client, "POST", "/v1/backfills", 422, json=backfill_body("t", colour="red"))
    assert body["errors"][0]["pointer"] == "/colour"
    response = await client.post(
        "/v1/backfills",
        data=io.BytesIO(b'{"target": "' + b"x" * (2 * 1024 * 1024) + b'"}'),
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 413
    assert (await response.json())["code"] == "payload_too_large"
    body = await api(
        client,
        "POST",
        "/v1/backfills",
        422,
        json=backfill_body("t", start="2024-01-01", end="2024-01-02"),
    )
    assert {e["pointer"] for e in body["errors"]} >= {"/start", "/end"}
    assert await db.fetchval("SELECT count(*) FROM backfills") == before


async def test_a_backfill_of_too_many_runs_is_refused_saying_why(client: Any) -> None:
    await make_target(client, "n")
    body = await api(
        client,
        "POST",
        "/v1/backfills",
        422,
        json=backfill_body(
            "n", start="2000-01-01T00:00:00Z", end="2030-01-01T00:00:00Z", interval_type="minute"
        ),
    )
    assert "limit of 1000" in body["detail"]


async def test_a_table_backfill_of_too_many_runs_is_refused(client: Any, db: Any) -> None:
    await db.execute("CREATE TABLE big (id int PRIMARY KEY)")
    await db.execute("INSERT INTO big SELECT generate_series(1, 3000)")
    await db.execute("ANALYZE big")
    await make_target(client, "big", "table")
    body = await api(client, "POST", "/v1/backfills", 422, json=backfill_body("big", chunk_size=1))
    assert body["errors"][0]["pointer"] == "/chunk_size"
    assert "limit of 1000 runs" in body["detail"]
    await start_backfill(client, "big", chunk_size=10)


async def test_request_ids_round_trip(client: Any) -> None:
    sent = f"req-{uuid.uuid4().hex}"
    response = await client.get("/v1/targets", headers={"X-Request-ID": sent})
    assert response.headers["X-Request-ID"] == sent
    response = await client.get("/v1/targets/999999", headers={"X-Request-ID": sent})
    assert (await response.json())["request_id"] == sent
    generated = await client.get("/v1/targets")
    assert len(generated.headers["X-Request-ID"]) >= 16


async def test_no_secret_in_any_response_or_log_line(
    client: Any, ctx: Context, db: Any, token: str, capfd: pytest.CaptureFixture[str]
) -> None:
    await seed(client, db)
    await db.execute("CREATE TABLE w (id int PRIMARY KEY)")
    bodies = [
        await (
            await client.post(
                "/v1/targets",
                json=target_body(
                    "w",
                    "table",
                    source="warehouse",
                    sink={"type": "postgres", "options": {"source": "warehouse", "table": "w"}},
                ),
            )
        ).text(),
        await (
            await client.post(
                "/v1/targets",
                json=target_body("x", "table", source="nowhere", tables=["w"]),
            )
        ).text(),
        await (await client.get("/v1/targets")).text(),
        await (await client.get("/ops/overview")).text(),
        await (await client.get("/v1/targets", headers=bearer(token + "x"))).text(),
    ]
    out, err = capfd.readouterr()
    for text in [*bodies, out, err]:
        assert SECRET_PASSWORD not in text
        assert token not in text
        assert ctx.settings.database_url.get_secret_value() not in text
    assert "warehouse" in bodies[0]


class TestRateLimits:
    @pytest.fixture
    def settings(self, database: str, prefix: str) -> Settings:
        return make_settings(
            database, prefix, rate_limit_requests=5, rate_limit_period_seconds=3600
        )

    async def test_a_key_over_its_limit_gets_429_with_headers(
        self, client: Any, ctx: Context
    ) -> None:
        remaining = []
        for _ in range(5):
            response = await client.get("/v1/targets")
            assert response.status == 200
            assert response.headers["X-RateLimit-Limit"] == "5"
            remaining.append(int(response.headers["X-RateLimit-Remaining"]))
        assert remaining == [4, 3, 2, 1, 0]
        response = await client.get("/v1/targets")
        assert response.status == 429
        assert int(response.headers["Retry-After"]) >= 1
        assert response.headers["X-RateLimit-Remaining"] == "0"
        assert (await response.json())["code"] == "rate_limited"
        # Another key has its own budget.
        other, _ = await ctx.access.create_key(1, {Scope.READ})
        assert (await client.get("/v1/targets", headers=bearer(other))).status == 200

    async def test_the_limit_holds_across_api_processes(
        self, client: Any, ctx: Context, token: str
    ) -> None:
        """Two apps (as two API processes would) share one key's counter in Postgres."""
        from aiohttp.test_utils import TestClient, TestServer

        from api.app import create_app
        from orchestrator.probes import ContextProbes

        second = create_app(
            ctx.settings, ctx.usecases, ContextProbes(ctx, consuming=False), ctx.access
        )
        async with TestClient(TestServer(second), headers=bearer(token)) as other_process:
            statuses = []
            for i in range(6):
                use = client if i % 2 else other_process
                statuses.append((await use.get("/v1/targets")).status)
        assert statuses == [200] * 5 + [429]


class TestOpsAuth:
    @pytest.fixture
    def settings(self, database: str, prefix: str) -> Settings:
        return make_settings(database, prefix, ops_auth=True)

    async def test_ops_endpoints_can_be_closed_but_health_stays_open(
        self, client: Any, token: str
    ) -> None:
        anonymous = {"Authorization": ""}
        assert (await client.get("/ops/health", headers=anonymous)).status == 200
        assert (await client.get("/ops/ready", headers=anonymous)).status == 401
        assert (await client.get("/ops/overview", headers=anonymous)).status == 401
        assert (await client.get("/ops/ready")).status == 200


async def test_admin_keys_manage_their_teams_keys_over_the_api(client: Any, ctx: Context) -> None:
    created = await api(
        client, "POST", "/v1/keys", 201, json={"scopes": ["read"], "name": "dashboard"}
    )
    token, prefix = created["token"], created["key"]["prefix"]
    assert token.startswith(prefix)
    assert "secret_hash" not in created["key"]
    assert (await client.get("/v1/targets", headers=bearer(token))).status == 200
    listed = await api(client, "GET", "/v1/keys", 200)
    assert prefix in {k["prefix"] for k in listed["data"]}
    assert all("token" not in k for k in listed["data"])
    # Without admin, keys cannot be managed.
    await api(client, "GET", "/v1/keys", 403, headers=bearer(token))
    # Another team's admin cannot see or revoke this team's keys.
    team, _ = await ctx.access.repo.create_team("other")
    their_admin, _ = await ctx.access.create_key(team, {Scope.ADMIN, Scope.READ})
    assert (await api(client, "GET", "/v1/keys", 200, headers=bearer(their_admin)))["data"]
    await api(client, "DELETE", f"/v1/keys/{prefix}", 404, headers=bearer(their_admin))
    await api(client, "DELETE", f"/v1/keys/{prefix}", 204)
    assert (await client.get("/v1/targets", headers=bearer(token))).status == 401


async def test_the_first_start_makes_one_key_and_only_once(ctx: Context) -> None:
    first = await ctx.access.ensure_bootstrap_key()
    assert first is not None
    principal = await ctx.access.authenticate(first)
    assert principal.team_id == 1
    assert principal.scopes == frozenset(Scope)
    assert await ctx.access.ensure_bootstrap_key() is None


async def test_text_postgres_cannot_store_is_a_422_not_a_500(client: Any) -> None:
    """Found by fuzzing: a NUL or an unpaired surrogate in variables became a 500."""
    for bad in ('{"k\\u0000": 1}', '{"k": "\\ud941"}'):
        body = (
            '{"name": "n", "kind": "date_range", "handler": {"type": "noop"}, '
            f'"variables": {bad}}}'
        )
        response = await client.post(
            "/v1/targets", data=body, headers={"Content-Type": "application/json"}
        )
        assert response.status == 422, await response.text()
        assert (await response.json())["errors"][0]["pointer"].startswith("/variables")
