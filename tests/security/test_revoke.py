"""A grant revoked while a backfill runs stops it before its next run; granting again and
retrying completes it. Through the operator's own commands (orchestrator.cli_sources)."""

from __future__ import annotations

import io
from typing import Any

import pytest

from orchestrator import cli_sources
from orchestrator.context import Context
from tests.conftest import grant_source
from tests.helpers import api, backfill_body, wait_until
from tests.security.conftest import Team, team_target

pytestmark = pytest.mark.integration

WINDOWS = 12


async def backfill(client: Any, team: Team, backfill_id: int) -> dict[str, Any]:
    body: dict[str, Any] = await api(
        client, "GET", f"/v1/backfills/{backfill_id}", 200, headers=team.headers
    )
    return body


async def test_a_revoked_grant_stops_the_next_run_and_a_regrant_and_retry_complete_it(
    client: Any, ctx: Context, db: Any, intruder: Team
) -> None:
    await db.execute("CREATE TABLE ticks (day date PRIMARY KEY, n int NOT NULL)")
    await grant_source(ctx, intruder.id, read=(), write=("public.ticks",), sql=True)
    await team_target(
        client, intruder, "ticks", kind="date_range", max_active_runs=1,
        handler={"type": "sql", "options": {"statement": (
            "INSERT INTO ticks SELECT $1::date, 1 FROM pg_sleep(0.2) "
            "ON CONFLICT (day) DO UPDATE SET n = ticks.n + 1"
        )}},
    )  # fmt: skip
    started = await api(
        client, "POST", "/v1/backfills", 201, headers=intruder.headers,
        json=backfill_body("ticks", start="2024-01-01", end=f"2024-01-{WINDOWS:02d}"),
    )  # fmt: skip
    bid = started["id"]

    async def two_done() -> bool:
        return (await backfill(client, intruder, bid))["runs_completed"] >= 2

    await wait_until(two_done, what="two runs completed")
    repo = ctx.usecases.grants.repo
    await cli_sources.revoke_source(repo, source="main", team=intruder.id, err=io.StringIO())
    completed_at_revoke = await db.fetchval("SELECT count(*) FROM ticks")

    async def failed() -> dict[str, Any] | None:
        body = await backfill(client, intruder, bid)
        return body if body["state"] == "failed" else None

    stopped = await wait_until(failed, what="the backfill to stop")
    # At most the run already running when the grant went finishes; no run starts after.
    assert stopped["runs_completed"] <= completed_at_revoke + 1 < WINDOWS
    assert await db.fetchval("SELECT count(*) FROM ticks") == stopped["runs_completed"]
    assert "is not granted to this team" in str(stopped["error_report"])

    await cli_sources.grant_source(
        ctx.settings, repo, source="main", team=intruder.id, write=["public.ticks"], sql=True,
        err=io.StringIO(),
    )  # fmt: skip
    await api(client, "POST", f"/v1/backfills/{bid}/retry", 200, headers=intruder.headers)

    async def completed() -> dict[str, Any] | None:
        body = await backfill(client, intruder, bid)
        return body if body["state"] == "completed" else None

    done = await wait_until(completed, what="the retried backfill to complete")
    assert done["runs_completed"] == WINDOWS
    assert await db.fetchval("SELECT count(*) FROM ticks") == WINDOWS
