"""A source's database role is the boundary a team's statement cannot talk its way out of,
so one that could reach further is refused on start and on first use, unless the operator
marks the source `unsafe`, which /ops/ready and the log then say."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from orchestrator.context import open_context
from orchestrator.domain.keys import Scope
from orchestrator.errors import SourceRefused
from orchestrator.probes import ContextProbes
from tests.conftest import (
    PG_ADMIN,
    as_role,
    create_login_role,
    drop_role,
    grant_source,
    make_settings,
)
from tests.helpers import api, target_body

pytestmark = pytest.mark.integration


async def test_a_superuser_source_is_refused_at_start_unless_marked_unsafe(
    database: str, prefix: str, capfd: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(
        database,
        prefix,
        sources={"as_root": database, "root_on_purpose": {"dsn": database, "unsafe": True}},
    )
    async with open_context(settings) as ctx:
        states = await ctx.sources.check_all()
        assert states == {"main": "ok", "as_root": "refused", "root_on_purpose": "unsafe"}
        with pytest.raises(SourceRefused) as refused:
            await ctx.sources.get("as_root")
        # The reasons go to the operator's log; the error says only that it is refused.
        assert "superuser" not in refused.value.detail
        app = create_app(settings, ctx.usecases, ContextProbes(ctx, consuming=False), ctx.access)
        async with TestClient(TestServer(app)) as client:
            ready = await api(client, "GET", "/ops/ready")
            assert ready["sources"] == states
    out, err = capfd.readouterr()
    assert "source_refused" in out + err
    assert "source_unsafe" in out + err
    assert "superuser" in out + err


@pytest.fixture
async def risky_roles(database: str) -> AsyncIterator[dict[str, str]]:
    """Login roles that each break one rule, on this test's database."""
    pid = os.getpid()
    roles = {
        "files": f"bf_sec_{pid}_files",
        "program": f"bf_sec_{pid}_program",
        "schema": f"bf_sec_{pid}_schema",
        "creator": f"bf_sec_{pid}_creator",
    }
    admin = await asyncpg.connect(PG_ADMIN)
    conn = await asyncpg.connect(database)
    try:
        for role in roles.values():
            await create_login_role(admin, role)
        await admin.execute(f'GRANT pg_read_server_files TO "{roles["files"]}"')
        await admin.execute(f'GRANT pg_execute_server_program TO "{roles["program"]}"')
        await admin.execute(f'ALTER ROLE "{roles["creator"]}" CREATEROLE')
        await conn.execute(f'GRANT USAGE ON SCHEMA orchestrator TO "{roles["schema"]}"')
        yield roles
    finally:
        for role in roles.values():
            await conn.execute(f'DROP OWNED BY "{role}"')
            await drop_role(admin, role)
        await conn.close()
        await admin.close()


async def test_roles_that_reach_server_files_programs_or_the_orchestrator_are_refused(
    database: str, prefix: str, risky_roles: dict[str, str]
) -> None:
    settings = make_settings(
        database,
        prefix,
        sources={name: as_role(database, role) for name, role in risky_roles.items()},
    )
    async with open_context(settings) as ctx:
        states = await ctx.sources.check_all()
    assert states == {"main": "ok", **dict.fromkeys(risky_roles, "refused")}


async def test_a_team_granted_a_refused_source_cannot_use_it(database: str, prefix: str) -> None:
    settings = make_settings(database, prefix, sources={"as_root": database})
    async with open_context(settings) as ctx:
        await grant_source(ctx, 1, source="as_root", sql=True)
        token, _ = await ctx.access.create_key(1, {Scope.READ, Scope.WRITE})
        app = create_app(settings, ctx.usecases, ContextProbes(ctx, consuming=False), ctx.access)
        headers = {"Authorization": f"Bearer {token}"}
        async with TestClient(TestServer(app), headers=headers) as client:
            body: Any = await api(
                client, "POST", "/v1/targets", 503,
                json=target_body("q", handler={"type": "sql",
                                "options": {"source": "as_root", "statement": "SELECT 1"}}),
            )  # fmt: skip
    assert body["code"] == "source_refused"
    assert database not in str(body)
