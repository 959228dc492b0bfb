"""The attacks of issue 10, replayed with a second team's write key against the real API and
Postgres. Twice: without a grant (our checks refuse them), and with the widest grant an
operator could give that team on the source (the database role refuses them)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.context import Context
from tests.conftest import SOURCE_ROLE, grant_source
from tests.helpers import api, backfill_body, make_target, target_body, wait_until
from tests.security.conftest import Team

pytestmark = pytest.mark.integration

MARK = "pwned"

# A file the database server can read (it runs on this host), with contents no error may
# carry: if pg_read_file worked, they would show up somewhere.
CANARY = Path(f"/tmp/bf_canary_{os.getpid()}")


def attacks(team_id: int) -> dict[str, str]:
    return {
        "admin key": (
            "INSERT INTO api_keys (team_id, prefix, secret_hash, scopes, name) "
            f"VALUES (1, 'bfk_{MARK}00', '\\x00'::bytea, '{{admin}}', '{MARK}')"
        ),
        "admin key, qualified": (
            "INSERT INTO orchestrator.api_keys (team_id, prefix, secret_hash, scopes, name) "
            f"VALUES (1, 'bfk_{MARK}01', '\\x01'::bytea, '{{admin}}', '{MARK}')"
        ),
        "steal a target": f"UPDATE targets SET team_id = {team_id}",
        "steal a target, qualified": f"UPDATE orchestrator.targets SET team_id = {team_id}",
        "drop a table": "DROP TABLE public.precious",
        "publish any command": (
            "INSERT INTO orchestrator.outbox (routing_key, payload) "
            f"VALUES ('command.cancel', '{{\"{MARK}\": true}}')"
        ),
        "read a server file": f"SELECT pg_read_file('{CANARY}')",
        "run a program": "COPY (SELECT 1) TO PROGRAM 'id'",
        "become root again": (
            f"SELECT set_config('role', 'root', false), pg_read_file('{CANARY}')"
        ),
        "roles in an error": (
            "SELECT CAST((SELECT string_agg(rolname || ':' || coalesce(rolpassword, ''), ',') "
            "FROM pg_authid) AS int)"
        ),
        "keys in an error": (
            "SELECT CAST((SELECT string_agg(prefix || ':' || array_to_string(scopes, '+'), ',') "
            "FROM orchestrator.api_keys) AS int)"
        ),
    }


@pytest.fixture
def canary() -> Iterator[str]:
    secret = f"canary-{uuid.uuid4().hex}"
    CANARY.write_text(secret)
    CANARY.chmod(0o644)
    yield secret
    CANARY.unlink(missing_ok=True)


async def snapshot(db: Any) -> dict[str, Any]:
    return {
        "api_keys": await db.fetch(
            "SELECT id, team_id, prefix, scopes, revoked_at FROM orchestrator.api_keys ORDER BY id"
        ),
        "team1_targets": await db.fetch(
            "SELECT id, team_id, name FROM orchestrator.targets WHERE name = 'victim'"
        ),
        "precious": await db.fetch("SELECT * FROM public.precious ORDER BY id"),
        "marked_outbox": await db.fetchval(
            f"SELECT count(*) FROM orchestrator.outbox WHERE payload::text LIKE '%{MARK}%'"
        ),
    }


@pytest.fixture
async def victim(client: Any, db: Any) -> None:
    """Team 1's data and state: a table, and a target over it."""
    await db.execute(
        "CREATE TABLE precious (id int PRIMARY KEY, secret text NOT NULL);"
        "INSERT INTO precious VALUES (1, 'team one only'), (2, 'also mine')"
    )
    await make_target(client, "victim", kind="table", tables=["precious"])


def leaks(texts: list[str], canary: str, team1_prefixes: list[str]) -> list[str]:
    found = []
    for text in texts:
        for secret in (canary, SOURCE_ROLE, "root:", *team1_prefixes):
            if secret in text:
                found.append(f"{secret!r} in {text[:300]}")
    return found


async def test_without_a_grant_every_attack_is_refused_at_creation(
    client: Any, db: Any, intruder: Team, victim: None, canary: str
) -> None:
    before = await snapshot(db)
    texts = []
    for name, statement in attacks(intruder.id).items():
        body = await api(
            client,
            "POST",
            "/v1/targets",
            403,
            headers=intruder.headers,
            json=target_body(
                f"attack-{len(texts)}",
                handler={"type": "sql", "options": {"source": "main", "statement": statement}},
            ),
        )
        assert body["code"] == "not_granted", name
        assert body["detail"] == "the sql handler on source 'main' is not granted to this team"
        texts.append(str(body))
    assert await db.fetchval("SELECT count(*) FROM targets WHERE team_id = $1", intruder.id) == 0
    assert await snapshot(db) == before
    prefixes = [r["prefix"] for r in before["api_keys"]]
    assert leaks(texts, canary, prefixes) == []


async def test_with_the_widest_grant_the_database_role_refuses_every_attack(
    client: Any, ctx: Context, db: Any, intruder: Team, victim: None, canary: str
) -> None:
    # Everything an operator may grant on `main`: every table of public, writes, the sql
    # handler. What is left to stop the attacks is the source's database role.
    await grant_source(ctx, intruder.id, read=("*.*",), write=("*.*",), sql=True)
    before = await snapshot(db)
    texts: list[str] = []
    outcomes: dict[str, str] = {}
    for i, (name, statement) in enumerate(attacks(intruder.id).items()):
        response = await client.post(
            "/v1/targets",
            headers=intruder.headers,
            json=target_body(
                f"attack-{i}",
                handler={"type": "sql", "options": {"source": "main", "statement": statement}},
            ),
        )
        body = await response.json()
        texts.append(str(body))
        if response.status != 201:
            # Refused when the statement was prepared: it names what the role cannot see.
            assert response.status == 422, (name, body)
            outcomes[name] = "refused at creation"
            continue
        started = await api(
            client, "POST", "/v1/backfills", 201, headers=intruder.headers,
            json=backfill_body(f"attack-{i}", start="2024-01-01", end="2024-01-01"),
        )  # fmt: skip
        done = await _wait(client, intruder, started["id"])
        texts.append(str(done))
        assert done["state"] == "failed", (name, done)
        outcomes[name] = "failed when run"
    assert set(outcomes) == set(attacks(intruder.id))
    after = await snapshot(db)
    assert after == before
    prefixes = [r["prefix"] for r in before["api_keys"]]
    assert leaks(texts, canary, prefixes) == []
    # Each refusal says why, in the database's words about what the team asked for.
    joined = "\n".join(texts)
    assert "permission denied" in joined


async def _wait(client: Any, team: Team, backfill_id: int) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        body: dict[str, Any] = await api(
            client, "GET", f"/v1/backfills/{backfill_id}", 200, headers=team.headers
        )
        return body if body["state"] in {"completed", "failed"} else None

    return await wait_until(probe, within=60, what=f"backfill {backfill_id} to end")


async def test_table_targets_and_sinks_on_catalogs_and_the_orchestrator_are_refused(
    client: Any, ctx: Context, db: Any, intruder: Team, victim: None
) -> None:
    await grant_source(ctx, intruder.id, read=("*.*",), write=("*.*",), sql=True)
    cases = [
        {"tables": ["pg_catalog.pg_authid"], "sink": {"type": "null"}},
        {"tables": ["orchestrator.api_keys"], "sink": {"type": "null"}},
        {"tables": ["information_schema.tables"], "sink": {"type": "null"}},
        # The rabbitmq sink reads its ranges itself (as JSON Postgres renders): same refusal.
        {
            "tables": ["orchestrator.api_keys"],
            "sink": {"type": "rabbitmq", "options": {"exchange": "amq.topic"}},
        },
        *(
            {
                "tables": ["precious"],
                "sink": {"type": "postgres", "options": {"table": table}},
            }
            for table in ("orchestrator.api_keys", "orchestrator.backfills", "pg_catalog.pg_authid")
        ),
    ]
    for i, fields in enumerate(cases):
        body = await api(
            client, "POST", "/v1/targets", 403, headers=intruder.headers,
            json=target_body(f"catalog-{i}", "table", **fields),
        )  # fmt: skip
        assert body["code"] == "not_granted", fields
    assert await db.fetchval("SELECT count(*) FROM targets WHERE team_id = $1", intruder.id) == 0


async def test_a_rabbitmq_sink_on_the_orchestrators_own_exchanges_is_refused(
    client: Any, ctx: Context, db: Any, intruder: Team, victim: None
) -> None:
    """Rows published where the orchestrator consumes would be commands naming any team."""
    await grant_source(ctx, intruder.id, read=("*.*",), write=("*.*",), sql=True)
    prefix = ctx.settings.amqp_prefix
    for i, exchange in enumerate((prefix, f"{prefix}.dead", "amq.default")):
        body = await api(
            client, "POST", "/v1/targets", 422, headers=intruder.headers,
            json=target_body(
                f"own-exchange-{i}", "table", tables=["precious"],
                sink={"type": "rabbitmq",
                      "options": {"exchange": exchange, "routing_key": "command.create"}},
            ),
        )  # fmt: skip
        assert "orchestrator's own" in body["detail"], body
    assert await db.fetchval("SELECT count(*) FROM targets WHERE team_id = $1", intruder.id) == 0
    # A change is checked like a create, and leaves the target as it was.
    sink = {"type": "rabbitmq", "options": {"exchange": "amq.topic"}}
    target = await api(
        client, "POST", "/v1/targets", 201, headers=intruder.headers,
        json=target_body("own-exchange-patch", "table", tables=["precious"], sink=sink),
    )  # fmt: skip
    await api(
        client, "PATCH", f"/v1/targets/{target['id']}", 422, headers=intruder.headers,
        json={"sink": {"type": "rabbitmq", "options": {"exchange": prefix}}},
    )  # fmt: skip
    stored = await api(client, "GET", f"/v1/targets/{target['id']}", 200, headers=intruder.headers)
    assert stored["sink"]["options"]["exchange"] == "amq.topic"
