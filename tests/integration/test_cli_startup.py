"""Starting the service and the operator commands: bad values are one line naming the value
and what is allowed (exit 2), typos never create a database, unknown settings are pointed
out, a port in use fails cleanly, and the overview tells live workers from stale ones."""

from __future__ import annotations

import json
import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from orchestrator.context import Context
from orchestrator.domain.keys import Scope
from tests.clirun import backfill, environment
from tests.conftest import AMQP_URL, PG_ADMIN, db_url
from tests.helpers import api, wait_until

pytestmark = pytest.mark.integration


def server_env(database: str, prefix: str, **more: str) -> dict[str, str]:
    return environment(
        BACKFILL_DATABASE_URL=database,
        BACKFILL_AMQP_URL=AMQP_URL,
        BACKFILL_AMQP_PREFIX=prefix,
        BACKFILL_LOG_JSON="true",
        **more,
    )


async def orchestrator_db(database: str) -> asyncpg.Connection[Any]:
    return await asyncpg.connect(database, server_settings={"search_path": "orchestrator"})


async def key_count(database: str) -> int:
    conn = await orchestrator_db(database)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM api_keys"))
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("--scope", "read,bogus"), ("'bogus'", "read, write, admin")),
        (("--scope", " , "), ("--scope", "read, write, admin")),
        (("--expires", "tomorrow"), ("'tomorrow'", "ISO 8601", "2030-01-31")),
        (("--expires", "2020-01-01"), ("'2020-01-01'", "in the past")),
        (("--team", "one"), ("--team", "'one'")),
    ],
)
async def test_keys_create_refuses_bad_values_in_one_line(
    database: str, prefix: str, args: tuple[str, ...], needles: tuple[str, ...]
) -> None:
    before = await key_count(database)
    result = await backfill("keys", "create", *args, env=server_env(database, prefix))
    assert result.code == 2, result
    result.assert_one_error_line(*needles)
    assert await key_count(database) == before


async def test_an_invalid_setting_is_one_line_naming_the_variable(
    database: str, prefix: str
) -> None:
    env = server_env(database, prefix, BACKFILL_HTTP_PORT="abc")
    env["BACKFILL_DATABASE_URL"] = "postgresql://user:s3cret@127.0.0.1:5432/x"
    env["BACKFILL_SOURCES"] = '{"a": 1'  # invalid, and its value is a secret
    result = await backfill("up", env=env)
    assert result.code == 2, result
    line = result.assert_one_error_line(
        "BACKFILL_HTTP_PORT='abc'", "valid integer", "BACKFILL_SOURCES"
    )
    assert "s3cret" not in result.stderr
    assert '{"a": 1' not in line


async def test_keys_list_shows_expired_and_revoked_keys_as_such(
    ctx: Context, database: str, prefix: str
) -> None:
    access = ctx.access
    _, active = await access.create_key(1, {Scope.READ}, name="active")
    _, expired = await access.create_key(
        1, {Scope.READ}, name="expired", expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    _, revoked = await access.create_key(1, {Scope.READ}, name="revoked")
    await access.revoke_key(revoked.prefix)

    result = await backfill("keys", "list", "--json", env=server_env(database, prefix))

    assert result.code == 0, result
    states = {k["prefix"]: k["state"] for k in json.loads(result.stdout)}
    assert states == {active.prefix: "active", expired.prefix: "expired", revoked.prefix: "revoked"}


async def database_exists(name: str) -> bool:
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        return bool(await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await admin.close()


async def test_only_migrate_and_up_create_the_database(prefix: str) -> None:
    name = f"bf_typo_{uuid.uuid4().hex[:10]}"
    env = server_env(db_url(name), prefix)
    try:
        for args in (("teams", "list"), ("keys", "list"), ("worker",)):
            result = await backfill(*args, env=env)
            assert result.code == 1, (args, result)
            assert "Traceback" not in result.stderr
            [line] = [json.loads(x) for x in result.error_lines]
            assert line["event"] == "startup_failed"
            assert f"database {name!r} does not exist" in line["error"]
            assert not await database_exists(name), args

        migrated = await backfill("migrate", env=env)
        assert migrated.code == 0, migrated
        assert await database_exists(name)
        listed = await backfill("teams", "list", env=env)
        assert listed.code == 0, listed
    finally:
        admin = await asyncpg.connect(PG_ADMIN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def test_unknown_variables_are_named_with_the_closest_setting(
    database: str, prefix: str
) -> None:
    env = server_env(database, prefix, BACKFILL_PORT="18181")
    server = await backfill("teams", "list", env=env)
    assert server.code == 0, server
    warnings = [json.loads(x) for x in server.error_lines]
    assert {
        "variable": "BACKFILL_PORT", "did_you_mean": "BACKFILL_HTTP_PORT",
    }.items() <= warnings[0].items()  # fmt: skip

    client_env = environment(BACKFILL_TOKN="x", BACKFILL_URL="http://127.0.0.1:9")
    client = await backfill("targets", "list", env=client_env)
    assert client.error_lines[0] == (
        "backfill: warning: BACKFILL_TOKN matches no setting and is ignored; "
        "did you mean BACKFILL_TOKEN?"
    )


async def test_a_port_in_use_fails_in_one_line_and_records_no_worker(
    database: str, prefix: str
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = server_env(database, prefix, BACKFILL_HTTP_PORT=str(port))
        result = await backfill("up", env=env)

    assert result.code == 1, result
    assert "Traceback" not in result.stderr
    assert "pool is closed" not in result.stderr
    [line] = [json.loads(x) for x in result.error_lines]
    assert line["event"] == "startup_failed"
    assert f"127.0.0.1:{port}" in line["error"]
    assert "address already in use" in line["error"].lower()
    conn = await orchestrator_db(database)
    try:
        assert await conn.fetchval("SELECT count(*) FROM workers") == 0
    finally:
        await conn.close()


async def test_overview_marks_workers_alive_stale_or_stopped(
    client: Any, db: asyncpg.Connection[Any], worker: Any
) -> None:
    await db.execute(
        """INSERT INTO workers (id, hostname, pid, roles, started_at, last_seen_at, stopped_at)
           VALUES ('gone', 'h', 1, '{executor}', now() - interval '2 hours',
                   now() - interval '1 hour', NULL),
                  ('done', 'h', 2, '{executor}', now() - interval '2 hours',
                   now() - interval '1 hour', now() - interval '1 hour')"""
    )
    # Seen a moment ago, but its heartbeat vouched for it only until then: as stale as the
    # capacity counts it (not at all), whatever the reader's own heartbeat period.
    await db.execute(
        """INSERT INTO workers (id, hostname, pid, roles, concurrency, live_until)
           VALUES ('lapsed', 'h', 3, '{executor}', 4, now() - interval '1 second')"""
    )

    async def beating() -> dict[str, str] | None:
        body = await api(client, "GET", "/ops/overview", 200)
        seen = {w["id"]: w["status"] for w in body["workers"]}
        return seen if worker.worker.worker_id in seen else None

    seen = await wait_until(beating, what="the worker's first heartbeat")
    assert seen == {
        worker.worker.worker_id: "alive",
        "gone": "stale",
        "done": "stopped",
        "lapsed": "stale",
    }
