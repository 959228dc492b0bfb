"""`backfill up` as an operator runs it: a real process, configured only through BACKFILL_*
environment variables, driven only over HTTP, stopped with SIGTERM.

Only the `database` and `prefix` fixtures are used (no in-process worker), so the subprocess is
the one and only consumer: everything that happens is its doing."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import pytest

from tests.conftest import AMQP_URL, source_dsn
from tests.helpers import api, make_target, start_backfill, wait_backfill, wait_until

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
# Postgres here trusts local connections, so a password in the DSN is accepted and ignored:
# it is there only to prove that it never reaches the log.
PASSWORD = "e2e-Secr3t-never-logged"
# The bootstrap key the process is told to create: scripts start with a known token.
TOKEN = "bfk_e2e-bootstrap-token-0123456789abcdefghijkl"
REQUEST_ID = "e2e-trace-42"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def backfill_command() -> list[str]:
    # The console script of this virtualenv first (PATH may not include it), then PATH.
    script = shutil.which("backfill", path=str(Path(sys.executable).parent)) or shutil.which(
        "backfill"
    )
    if script is not None:
        return [script, "up"]
    return [sys.executable, "-m", "orchestrator.cli", "up"]


def service_env(database: str, prefix: str, **settings: str) -> dict[str, str]:
    """The environment of a `backfill` process under test: the caller's without its own
    BACKFILL_* variables, this test's database and broker prefix, short timings so leases and
    sweeps happen within a test's deadline, and the `main` source as an operator configures
    it (the grant to team 1 rides on the test template; no demo role for a throwaway
    database). `settings` adds or overrides BACKFILL_<NAME> values."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKFILL_")}
    env.update(
        {
            "BACKFILL_DATABASE_URL": database,
            "BACKFILL_AMQP_URL": AMQP_URL,
            "BACKFILL_AMQP_PREFIX": prefix,
            "BACKFILL_HTTP_HOST": "127.0.0.1",
            "BACKFILL_DISPATCH_SWEEP_SECONDS": "0.3",
            "BACKFILL_REAPER_SECONDS": "0.3",
            "BACKFILL_HEARTBEAT_SECONDS": "0.5",
            "BACKFILL_OUTBOX_POLL_SECONDS": "0.2",
            "BACKFILL_LEASE_SECONDS": "5",
            "BACKFILL_SHUTDOWN_GRACE_SECONDS": "5",
            "BACKFILL_SOURCES": json.dumps({"main": source_dsn(database)}),
            "BACKFILL_DEMO_SOURCE": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update({f"BACKFILL_{name.upper()}": value for name, value in settings.items()})
    return env


def with_password(dsn: str) -> str:
    parts = urlsplit(dsn)
    user, _, host = parts.netloc.rpartition("@")
    user = user.split(":", 1)[0] or "root"
    return urlunsplit(parts._replace(netloc=f"{user}:{PASSWORD}@{host}"))


@contextmanager
def log_file(path: Path) -> Iterator[IO[bytes]]:
    with path.open("wb") as f:
        yield f


def read_log(path: Path) -> str:
    return path.read_text(errors="replace")


async def wait_ready(http: aiohttp.ClientSession, proc: asyncio.subprocess.Process) -> None:
    async def ready() -> bool:
        if proc.returncode is not None:
            raise AssertionError(f"backfill up exited early with {proc.returncode}")
        try:
            async with http.get("/ops/ready") as response:
                return response.status == 200
        except aiohttp.ClientConnectionError:
            return False  # not listening yet

    await wait_until(ready, within=30, what="GET /ops/ready to answer 200")


async def table_backfill(http: aiohttp.ClientSession, db: asyncpg.Connection[Any]) -> None:
    await db.execute(
        """CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, price numeric(10, 2),
                               tags text[], seen_at timestamptz NOT NULL);
           INSERT INTO items
           SELECT g, 'item ' || g, g * 0.25, ARRAY['t' || g % 3],
                  '2024-01-01'::timestamptz + g * interval '1 second'
           FROM generate_series(1, 3000) g;
           CREATE TABLE items_copy (LIKE items INCLUDING ALL);"""
    )
    await make_target(
        http,
        "items-copy",
        "table",
        tables=["items"],
        chunk_size=250,
        sink={"type": "postgres", "options": {"table": "items_copy"}},
    )
    created = await start_backfill(http, "items-copy")
    done = await wait_backfill(http, created["id"], {"completed", "failed", "cancelled"})
    assert done["state"] == "completed", done
    assert done["rows_initial_count"] == done["rows_processed_count"] == 3000
    assert done["runs_total"] == done["runs_completed"] == 12
    different = await db.fetchval(
        "SELECT count(*) FROM items i FULL JOIN items_copy c USING (id) WHERE i IS DISTINCT FROM c"
    )
    assert different == 0
    assert await db.fetchval("SELECT count(*) FROM items_copy") == 3000


async def date_range_backfill(http: aiohttp.ClientSession) -> None:
    await make_target(http, "daily")
    created = await start_backfill(http, "daily", start="2024-01-01", end="2024-01-10")
    done = await wait_backfill(http, created["id"], {"completed", "failed", "cancelled"})
    assert done["state"] == "completed", done
    assert done["runs_total"] == done["runs_completed"] == 10
    runs = (await api(http, "GET", f"/v1/backfills/{created['id']}/runs", 200))["data"]
    assert len(runs) == 10
    assert runs[0]["window_start"].startswith("2024-01-01")
    assert runs[-1]["window_start"].startswith("2024-01-10")
    assert all(a["window_end"] == b["window_start"] for a, b in itertools.pairwise(runs))


async def cancelled_backfill(http: aiohttp.ClientSession, db: asyncpg.Connection[Any]) -> None:
    """A long backfill (365 windows of 0.1 s, two at a time) cancelled while it runs."""
    await make_target(
        http,
        "slow",
        max_active_runs=2,
        handler={"type": "sql", "options": {"statement": "SELECT pg_sleep(0.1)"}},
    )
    created = await start_backfill(http, "slow", start="2023-01-01", end="2023-12-31")
    path = f"/v1/backfills/{created['id']}"

    async def under_way() -> bool:
        body = await api(http, "GET", path, 200)
        return bool(body["state"] == "running" and body["runs_completed"] >= 2)

    await wait_until(under_way, what="the slow backfill to be under way")
    cancelled = await api(http, "POST", f"{path}/cancel", 200)
    assert cancelled["state"] == "cancelled"
    # A retried cancel is answered with the backfill as it is, not an error.
    again = await api(http, "POST", f"{path}/cancel", 200)
    assert again["state"] == "cancelled"
    assert again["cancelled_at"] == cancelled["cancelled_at"]

    async def settled() -> dict[str, Any] | None:
        body: dict[str, Any] = await api(http, "GET", path, 200)
        ended = body["runs_completed"] + body["runs_failed"] + body["runs_cancelled"]
        return body if ended == body["runs_total"] else None

    final = await wait_until(settled, what="the runs still running at the cancel to end")
    assert final is not None
    assert final["state"] == "cancelled"
    assert final["runs_total"] == 365
    assert final["runs_failed"] == 0
    assert 2 <= final["runs_completed"] < 365
    assert final["runs_cancelled"] == 365 - final["runs_completed"]
    started_after_cancel = await db.fetchval(
        """SELECT count(*) FROM transfer_runs r JOIN backfills b ON b.id = r.backfill_id
           WHERE b.id = $1 AND r.started_at > b.cancelled_at""",
        created["id"],
    )
    assert started_after_cancel == 0


def check_log(text: str) -> None:
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "the process logged nothing"
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"a log line is not JSON: {line!r}") from None
    events = [e.get("event") for e in entries]
    for expected in ("api_listening", "worker_started", "shutdown_requested", "worker_stopped"):
        assert expected in events, expected
    http_lines = [e for e in entries if e.get("event") == "http_request"]
    assert http_lines
    missing = [e for e in http_lines if not e.get("request_id")]
    assert missing == [], missing[:3]
    assert any(e["request_id"] == REQUEST_ID and e["path"] == "/v1/backfills" for e in http_lines)
    assert PASSWORD not in text
    assert TOKEN not in text
    assert f":{PASSWORD}@" not in text
    assert "guest:guest@" not in text


async def test_backfill_up_serves_runs_and_stops_cleanly(
    database: str, prefix: str, tmp_path: Path
) -> None:
    port = free_port()
    env = service_env(
        database,
        prefix,
        database_url=with_password(database),
        http_port=str(port),
        bootstrap_token=TOKEN,
    )
    log_path = tmp_path / "backfill-up.log"
    with log_file(log_path) as out:
        proc = await asyncio.create_subprocess_exec(
            *backfill_command(), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    db = await asyncpg.connect(database, server_settings={"search_path": "public, orchestrator"})
    try:
        async with aiohttp.ClientSession(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"}
        ) as http:
            await wait_ready(http, proc)
            await table_backfill(http, db)
            await date_range_backfill(http)
            await cancelled_backfill(http, db)

            async with http.get("/v1/backfills", headers={"X-Request-ID": REQUEST_ID}) as r:
                assert r.status == 200
                assert r.headers["X-Request-ID"] == REQUEST_ID
            overview = await api(http, "GET", "/ops/overview", 200)
            assert overview["backfills"] == {"completed": 2, "cancelled": 1}
            mine = [w for w in overview["workers"] if w["pid"] == proc.pid]
            assert len(mine) == 1, overview["workers"]
            assert mine[0]["stopped_at"] is None
            assert set(mine[0]["roles"]) >= {"planner", "executor"}
            # Its heartbeat says how many runs it executes at once; unpinned, that is the
            # capacity dispatch shares out.
            assert mine[0]["concurrency"] == 16
            assert overview["dispatch_capacity"] == {"runs": 16, "pinned": False}

        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
        stopped = await db.fetchval("SELECT stopped_at FROM workers WHERE pid = $1", proc.pid)
        assert stopped is not None, "the worker did not record that it stopped"
        check_log(read_log(log_path))
    except BaseException:
        print(f"----- backfill up log ({log_path}) -----\n{read_log(log_path)}")
        raise
    finally:
        await db.close()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
