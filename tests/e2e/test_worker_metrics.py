"""A `backfill worker` process as compose runs it: no API, /metrics and /ops/health on
BACKFILL_METRICS_PORT. Its counters move with the work it does, its per-backfill gauges live
exactly as long as the backfill is active, and commands count by where they came from.

The API runs in the test process (with no worker of its own), so the subprocess is the only
consumer: every run, row and queue command on its /metrics is its own doing."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from orchestrator.context import Context
from orchestrator.domain.keys import ALL_SCOPES
from orchestrator.probes import ContextProbes
from tests.alert_rules import PROMETHEUS_OWN, rule_metric_names
from tests.conftest import AMQP_URL
from tests.e2e.test_backfill_up import ROOT, free_port, log_file, read_log, service_env
from tests.helpers import make_target, start_backfill, wait_backfill, wait_until

pytestmark = pytest.mark.e2e

ROWS = 4000
CHUNK = 250

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def worker_command() -> list[str]:
    from tests.e2e.test_backfill_up import backfill_command

    return [*backfill_command()[:-1], "worker"]


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


@pytest.fixture
async def api_client(ctx: Context) -> AsyncIterator[TestClient[Any, Any]]:
    """The API in this process, without a worker: the subprocess does all the work."""
    token, _ = await ctx.access.create_key(1, set(ALL_SCOPES), name="e2e")
    app = create_app(ctx.settings, ctx.usecases, ContextProbes(ctx, consuming=False), ctx.access)
    async with TestClient(TestServer(app), headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


async def publish(prefix: str, body: dict[str, Any]) -> None:
    """A producer's command: no app_id, like any service that is not the orchestrator."""
    async with await aio_pika.connect(AMQP_URL) as connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(prefix)
        message = aio_pika.Message(
            json.dumps(body).encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT
        )
        await exchange.publish(message, routing_key=body["type"], mandatory=True)


async def test_a_worker_process_serves_metrics_that_move_with_its_work(
    ctx: Context, api_client: Any, database: str, prefix: str, tmp_path: Path
) -> None:
    port = free_port()
    env = service_env(database, prefix, metrics_port=str(port), log_json="true")
    log_path = tmp_path / "backfill-worker.log"
    with log_file(log_path) as out:
        proc = await asyncio.create_subprocess_exec(
            *worker_command(), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    db = await asyncpg.connect(database, server_settings={"search_path": "public, orchestrator"})
    try:
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as http:

            async def get(path: str) -> tuple[int, str]:
                async with http.get(path) as response:
                    return response.status, await response.text()

            async def ready() -> bool:
                if proc.returncode is not None:
                    raise AssertionError(f"backfill worker exited early with {proc.returncode}")
                try:
                    return (await get("/ops/ready"))[0] == 200
                except aiohttp.ClientConnectionError:
                    return False

            await wait_until(ready, within=30, what="the worker's /ops/ready to answer 200")
            status, body = await get("/ops/health")
            assert (status, json.loads(body)) == (200, {"status": "ok"})

            async def scrape() -> Samples:
                status, text = await get("/metrics")
                assert status == 200
                return parse(text)

            before = await scrape()
            # The library's default collectors are on.
            assert {"process_cpu_seconds_total", "process_resident_memory_bytes"} <= names(before)
            assert "python_info" in names(before)
            assert value(before, "backfill_queue_consumers", queue=f"{prefix}.runs", role="runs")
            assert value(before, "backfill_workers_alive", role="executor") >= 1

            await db.execute(
                f"""CREATE TABLE items (id bigint PRIMARY KEY, seen_at timestamptz NOT NULL);
                    INSERT INTO items SELECT g, now() FROM generate_series(1, {ROWS}) g;"""
            )
            await make_target(api_client, "items", kind="table", chunk_size=CHUNK)
            # Throttled, so it is still running when its gauges are looked at.
            created = await start_backfill(api_client, "items", max_rows_per_second=2000)
            bid = str(created["id"])

            async def moving() -> Samples | None:
                now = await scrape()
                rows = value(now, "backfill_active_rows_processed", backfill_id=bid)
                return now if 0 < rows < ROWS else None

            during = await wait_until(moving, what="rows to move on the worker's /metrics")
            assert value(during, "backfill_rows_processed_total") > value(
                before, "backfill_rows_processed_total"
            )
            info = {
                labels: v for (name, labels), v in during.items() if name == "backfill_active_info"
            }
            assert [dict(labels) for labels in info] == [
                {
                    "backfill_id": bid,
                    "target_id": str(created["target_id"]),
                    "team_id": "1",
                    "kind": "table",
                    "state": "running",
                }
            ]
            assert value(during, "backfill_active_rows_estimated", backfill_id=bid) == ROWS
            ratio = value(during, "backfill_active_progress_ratio", backfill_id=bid)
            assert 0 < ratio < 1

            # A producer pauses and resumes it through the queue: counted as source=queue.
            for action in ("pause", "resume"):
                await publish(
                    prefix,
                    {
                        "type": f"command.{action}",
                        "command_id": str(uuid.uuid4()),
                        "backfill_id": int(bid),
                    },
                )
                expected = "paused" if action == "pause" else "running"

                async def moved(expected: str = expected) -> bool:
                    state = await db.fetchval("SELECT state FROM backfills WHERE id = $1", int(bid))
                    return bool(state == expected)

                await wait_until(moved, what=f"the backfill to be {expected}")

            done = await wait_backfill(api_client, int(bid), {"completed", "failed", "cancelled"})
            assert done["state"] == "completed"

            async def counted() -> Samples | None:
                now = await scrape()
                runs = value(
                    now, "backfill_runs_finished_total", kind="table", outcome="completed"
                ) - value(before, "backfill_runs_finished_total", kind="table", outcome="completed")
                return now if runs >= done["runs_total"] else None

            after = await wait_until(counted, what="the worker to count every completed run")

        def moved_by(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        completed = {"kind": "table", "outcome": "completed"}
        assert moved_by("backfill_runs_finished_total", **completed) == done["runs_total"]
        assert moved_by("backfill_run_duration_seconds_count", kind="table") >= done["runs_total"]
        # A pause lets running runs finish and puts queued ones back: no row is read twice.
        assert moved_by("backfill_rows_processed_total") == ROWS
        assert moved_by("backfill_outbox_published_total") > 0
        for action in ("pause", "resume"):
            command = {"type": f"command.{action}", "source": "queue", "outcome": "applied"}
            assert moved_by("backfill_commands_total", **command) == 1
        # The API's own command.create came back through the queue: counted by the API
        # (source=api, in this test's process), never again by the worker.
        assert not any(
            name == "backfill_commands_total" and dict(labels)["type"] == "command.create"
            for name, labels in after
        )
        # The backfill ended: its per-backfill series are gone.
        assert not any(dict(labels).get("backfill_id") == bid for _, labels in after)
        assert value(after, "backfill_backfills", state="completed") == 1
        assert value(after, "backfill_database_up") == 1
        assert value(after, "backfill_broker_up") == 1
        # Every metric the alert rules use is on a live worker's /metrics.
        live = names(during) | names(after)
        missing = set(rule_metric_names()) - live - PROMETHEUS_OWN
        assert missing == set(), (
            f"the alert rules use metrics this worker does not export: {missing}"
        )
    except BaseException:
        print(f"----- backfill worker log ({log_path}) -----\n{read_log(log_path)}")
        raise
    finally:
        await db.close()
        if proc.returncode is None:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), timeout=30)

    lines = read_log(log_path).splitlines()
    events = [json.loads(line).get("event") for line in lines if line.startswith("{")]
    assert "ops_listening" in events
    assert proc.returncode == 0


async def test_a_worker_whose_metrics_port_is_taken_fails_to_start(
    database: str, prefix: str, tmp_path: Path
) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKFILL_")}
    env.update(
        {
            "BACKFILL_DATABASE_URL": database,
            "BACKFILL_AMQP_URL": AMQP_URL,
            "BACKFILL_AMQP_PREFIX": prefix,
            "BACKFILL_METRICS_PORT": str(taken.getsockname()[1]),
            "BACKFILL_LOG_JSON": "true",
            "BACKFILL_DEMO_SOURCE": "false",
        }
    )
    try:
        proc = await asyncio.create_subprocess_exec(
            *worker_command(), cwd=ROOT, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    finally:
        taken.close()

    assert proc.returncode == 1, out.decode()
    lines = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    failed = [e for e in lines if e["event"] == "startup_failed"]
    assert failed, out.decode()
    assert "address already in use" in failed[0]["error"]
    assert not any(e["event"] == "worker_started" for e in lines), "it took no work"
