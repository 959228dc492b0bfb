"""Names outside a team's grants are refused at creation with a 403 that does not tell a
missing source or table from a forbidden one, and nothing is made; the same checks hold for
commands from the queue, and an admin key sees its own team's grants."""

from __future__ import annotations

import json
import uuid
from typing import Any

import aio_pika
import pytest

from orchestrator.context import Context
from orchestrator.domain.keys import Scope
from orchestrator.messaging.topology import REASON_HEADER
from tests.conftest import AMQP_URL, grant_source
from tests.helpers import api, backfill_body, target_body, wait_until
from tests.security.conftest import Team, team_target

pytestmark = pytest.mark.integration


@pytest.fixture
async def tables(db: Any) -> None:
    await db.execute(
        "CREATE TABLE team1_src (id int PRIMARY KEY, v text);"
        "CREATE TABLE team1_dst (id int PRIMARY KEY, v text);"
        "CREATE TABLE team2_src (id int PRIMARY KEY, v text);"
        "CREATE TABLE team2_dst (id int PRIMARY KEY, v text);"
        "INSERT INTO team2_src SELECT i, 'v' || i FROM generate_series(1, 10) AS i"
    )


def table_target(name: str, tables: list[str], sink: dict[str, Any], source: str = "main") -> Any:
    return target_body(name, "table", source=source, tables=tables, sink=sink)


async def refused(client: Any, team: Team, body: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = await api(
        client, "POST", "/v1/targets", 403, headers=team.headers, json=body
    )
    assert answer["code"] == "not_granted"
    return answer


async def test_names_outside_the_grant_are_refused_at_creation_and_make_nothing(
    client: Any, ctx: Context, db: Any, intruder: Team, tables: None
) -> None:
    await grant_source(ctx, intruder.id, read=("public.team2_*",), write=("public.team2_*",))
    null = {"type": "null"}
    into = {"type": "postgres", "options": {"table": "team1_dst"}}
    # An ungranted source answers like an ungranted table, whether it exists or not.
    for source in ("warehouse", "nowhere"):
        body = await refused(client, intruder, table_target("s", ["team2_src"], null, source))
        assert (
            body["detail"]
            == f"reading public.team2_src on source {source!r} is not granted to this team"
        )
    # An ungranted table: one that exists (team 1's) and one that does not read the same.
    existing = await refused(client, intruder, table_target("t", ["team1_src"], null))
    missing = await refused(client, intruder, table_target("t", ["team1_gone"], null))
    assert existing["detail"].replace("team1_src", "X") == missing["detail"].replace(
        "team1_gone", "X"
    )
    # Catalogs and the orchestrator's schema, read or written.
    await refused(client, intruder, table_target("c", ["pg_catalog.pg_class"], null))
    await refused(client, intruder, table_target("o", ["orchestrator.targets"], null))
    orchestrator_sink = {"type": "postgres", "options": {"table": "orchestrator.outbox"}}
    await refused(client, intruder, table_target("o2", ["team2_src"], orchestrator_sink))
    # Another team's destination.
    body = await refused(client, intruder, table_target("d", ["team2_src"], into))
    assert body["errors"] == [
        {
            "pointer": "/sink/options/table",
            "message": "writing public.team1_dst on source 'main' is not granted to this team",
        }
    ]
    # A sql handler where the grant has none, and on a source not granted at all.
    await grant_source(ctx, intruder.id, read=("public.team2_*",), write=(), sql=False)
    for source in ("main", "nowhere"):
        await api(
            client,
            "POST",
            "/v1/targets",
            403,
            headers=intruder.headers,
            json=target_body(
                "q", handler={"type": "sql", "options": {"source": source, "statement": "SELECT 1"}}
            ),
        )
    assert await db.fetchval("SELECT count(*) FROM targets WHERE team_id = $1", intruder.id) == 0
    # Within the grant, the same team may go ahead.
    await grant_source(ctx, intruder.id, read=("public.team2_*",), write=("public.team2_*",))
    await team_target(
        client, intruder, "mine", tables=["team2_src"],
        sink={"type": "postgres", "options": {"table": "team2_dst"}},
    )  # fmt: skip


async def test_a_patch_is_checked_like_a_create(
    client: Any, ctx: Context, db: Any, intruder: Team, tables: None
) -> None:
    await grant_source(ctx, intruder.id, read=("public.team2_*",), write=("public.team2_*",))
    target = await team_target(client, intruder, "mine", tables=["team2_src"])
    body = await api(
        client, "PATCH", f"/v1/targets/{target['id']}", 403, headers=intruder.headers,
        json={"sink": {"type": "postgres", "options": {"table": "team1_dst"}}},
    )  # fmt: skip
    assert body["code"] == "not_granted"
    stored = await api(client, "GET", f"/v1/targets/{target['id']}", 200, headers=intruder.headers)
    assert stored["sink"] == {"type": "null", "options": {}}


async def test_a_backfill_on_a_revoked_grant_is_refused_from_the_api_and_the_queue(
    client: Any, ctx: Context, db: Any, intruder: Team, tables: None, worker: Any
) -> None:
    await grant_source(ctx, intruder.id, read=("public.team2_*",), write=())
    await team_target(client, intruder, "mine", tables=["team2_src"])
    await ctx.usecases.grants.repo.delete(intruder.id, "main")
    body = await api(
        client, "POST", "/v1/backfills", 403, headers=intruder.headers, json=backfill_body("mine")
    )
    assert body["code"] == "not_granted"
    # The same command published straight to the broker, naming that team: dead-lettered.
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(ctx.settings.amqp_prefix)
        command = {
            "type": "command.create",
            "command_id": str(uuid.uuid4()),
            "team_id": intruder.id,
            "backfill": {"target": "mine"},
        }
        await exchange.publish(
            aio_pika.Message(json.dumps(command).encode()), routing_key="command.create"
        )
        dead = await channel.get_queue(f"{ctx.settings.amqp_prefix}.dead")

        async def dead_letter() -> Any:
            return await dead.get(fail=False, no_ack=True)

        message = await wait_until(dead_letter, what="the command to be dead-lettered")
        assert str(message.headers[REASON_HEADER]).startswith("not_granted:")
    finally:
        await connection.close()
    assert await db.fetchval("SELECT count(*) FROM backfills WHERE team_id = $1", intruder.id) == 0


async def test_an_admin_key_sees_its_own_teams_grants_and_never_a_dsn(
    client: Any, ctx: Context, intruder: Team
) -> None:
    await grant_source(ctx, intruder.id, source="lab", read=("lab.*",), write=(), sql=False)
    mine = await api(client, "GET", "/v1/sources", 200)
    assert mine["data"] == [
        {
            "source": "main",
            "read_tables": ["public.*"],
            "write_tables": ["public.*"],
            "sql_handler": True,
            "statement_timeout_ms": 60000,
            "granted_at": mine["data"][0]["granted_at"],
            "updated_at": mine["data"][0]["updated_at"],
        }
    ]
    assert "postgresql://" not in json.dumps(mine)
    admin, _ = await ctx.access.create_key(intruder.id, {Scope.ADMIN, Scope.READ})
    theirs = await api(
        client, "GET", "/v1/sources", 200, headers={"Authorization": f"Bearer {admin}"}
    )
    assert [g["source"] for g in theirs["data"]] == ["lab"]
    # A write key is not an admin key.
    await api(client, "GET", "/v1/sources", 403, headers=intruder.headers)


async def test_a_compatibility_api_refuses_in_its_own_shape(
    client: Any, ctx: Context, db: Any, intruder: Team, tables: None
) -> None:
    await grant_source(ctx, intruder.id, read=("public.team2_*",), write=())
    await team_target(client, intruder, "mine", tables=["team2_src"])
    await ctx.usecases.grants.repo.delete(intruder.id, "main")
    # Sequin's error body for a refusal: {"summary": …} with the status.
    body = await api(client, "POST", "/api/sinks/mine/backfills", 403, headers=intruder.headers)
    assert body == {
        "summary": "reading public.team2_src on source 'main' is not granted to this team"
    }
    assert await db.fetchval("SELECT count(*) FROM backfills WHERE team_id = $1", intruder.id) == 0
