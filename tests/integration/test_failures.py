"""Failed attempts retry with backoff and then fail the run into error_report; a lease left
behind by a dead worker is returned by the reaper; events announce what happened."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aio_pika
import pytest
from pydantic import BaseModel, ConfigDict

from orchestrator.context import Context
from orchestrator.handlers.base import Handler, WindowRun
from orchestrator.handlers.registry import HANDLER_TYPES
from orchestrator.plugins.resources import Resources
from tests.conftest import AMQP_URL
from tests.helpers import api, make_target, start_backfill, wait_backfill, wait_until

pytestmark = pytest.mark.integration


class _NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Flaky:
    """Fails the first `failures` attempts of every window, then succeeds."""

    name = "flaky"
    options_model: type[BaseModel] = _NoOptions

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts: dict[int, list[int]] = {}

    async def validate(self, options: BaseModel, resources: Resources) -> None:
        return None

    async def open(self, options: BaseModel, resources: Resources) -> Handler:
        return self

    async def run(self, window: WindowRun) -> int | None:
        self.attempts.setdefault(window.run_id, []).append(window.attempt)
        if window.attempt <= self.failures:
            raise RuntimeError(f"boom on attempt {window.attempt}")
        return 1

    async def close(self) -> None:
        return None


@pytest.fixture
def flaky() -> Iterator[Flaky]:
    handler = Flaky(failures=2)
    HANDLER_TYPES[handler.name] = handler
    yield handler
    HANDLER_TYPES.pop(handler.name, None)


@pytest.fixture
async def events(ctx: Context) -> AsyncIterator[aio_pika.abc.AbstractQueue]:
    """A listener bound to every event, as another service would bind one."""
    connection = await aio_pika.connect(AMQP_URL)
    channel = await connection.channel()
    queue = await channel.declare_queue(f"{ctx.settings.amqp_prefix}.test-events", exclusive=True)
    await queue.bind(ctx.settings.amqp_prefix, "event.#")
    yield queue
    await connection.close()


async def collect(queue: aio_pika.abc.AbstractQueue, want: set[str]) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    async def arrived() -> bool:
        message = await queue.get(fail=False, no_ack=True)
        if message is not None:
            seen.append(json.loads(message.body))
        return want <= {e["type"] for e in seen}

    await wait_until(arrived, what=f"events {want}")
    return seen


async def test_attempts_retry_then_succeed(client: Any, flaky: Flaky) -> None:
    await make_target(client, "f", handler={"type": "flaky"}, max_attempts=3)
    created = await start_backfill(client, "f", start="2024-01-01", end="2024-01-04")
    done = await wait_backfill(client, created["id"], {"completed", "failed"})
    assert done["state"] == "completed"
    assert done["runs_completed"] == 4
    assert done["runs_failed"] == 0
    assert all(a == [1, 2, 3] for a in flaky.attempts.values()), flaky.attempts


async def test_attempts_used_up_fail_the_run_and_the_backfill(
    client: Any, flaky: Flaky, events: aio_pika.abc.AbstractQueue
) -> None:
    flaky.failures = 99
    await make_target(client, "f", handler={"type": "flaky"}, max_attempts=2)
    created = await start_backfill(client, "f", start="2024-01-01", end="2024-01-02")
    done = await wait_backfill(client, created["id"], {"completed", "failed"})
    assert done["state"] == "failed"
    assert done["failed_at"]
    assert done["runs_failed"] == 2
    report = done["error_report"]
    assert len(report) == 2
    assert {r["window_start"] for r in report} == {
        "2024-01-01T00:00:00+00:00",
        "2024-01-02T00:00:00+00:00",
    }
    assert all(r["attempt"] == 2 and "boom on attempt 2" in r["error"] for r in report)
    assert all(a == [1, 2] for a in flaky.attempts.values())

    seen = await collect(events, {"backfill.created", "run.failed", "backfill.failed"})
    failed = next(e for e in seen if e["type"] == "backfill.failed")
    assert failed["backfill_id"] == created["id"]
    assert failed["runs_failed"] == 2
    assert sum(1 for e in seen if e["type"] == "run.failed") == 2

    # A failed backfill can be cancelled; it keeps its record.
    cancelled = await api(client, "POST", f"/v1/backfills/{created['id']}/cancel", 200)
    assert cancelled["state"] == "cancelled"


async def test_a_lease_left_by_a_dead_worker_is_reaped_and_the_run_finishes(
    ctx: Context, client: Any, db: Any
) -> None:
    await make_target(client, "n", max_active_runs=1)
    created = await start_backfill(client, "n", start="2024-01-01", end="2024-01-01")
    bid = created["id"]
    done = await wait_backfill(client, bid, {"completed"})
    assert done["runs_completed"] == 1

    # Stage what a worker that died mid-run leaves: a running run with a lease that expires.
    run_id = await db.fetchval("SELECT id FROM transfer_runs WHERE backfill_id = $1", bid)
    await db.execute(
        """UPDATE transfer_runs SET state = 'running', lease_token = $2, worker_id = 'dead',
               lease_expires_at = now() + interval '200 milliseconds', finished_at = NULL
           WHERE id = $1""",
        run_id,
        uuid.uuid4(),
    )
    await db.execute(
        """UPDATE backfills SET state = 'running', runs_completed = 0, completed_at = NULL
           WHERE id = $1""",
        bid,
    )

    finished = await wait_backfill(client, bid, {"completed", "failed"})
    assert finished["state"] == "completed"
    run = await db.fetchrow("SELECT * FROM transfer_runs WHERE id = $1", run_id)
    assert run["state"] == "completed"
    assert run["attempt"] == 2, "the reaped attempt counts"
    assert run["worker_id"] != "dead"


async def test_a_target_with_an_active_backfill_cannot_be_deleted(client: Any) -> None:
    target = await make_target(client, "n")
    created = await start_backfill(
        client, "n", start="2024-01-01T00:00:00Z", end="2025-01-01T00:00:00Z", interval_type="hour"
    )
    await api(client, "POST", f"/v1/backfills/{created['id']}/pause", 200)
    body = await api(client, "DELETE", f"/v1/targets/{target['id']}", 409)
    assert body["code"] == "conflict"
    await api(client, "POST", f"/v1/backfills/{created['id']}/cancel", 200)
    await api(client, "DELETE", f"/v1/targets/{target['id']}", 204)
    await api(client, "GET", f"/v1/targets/{target['id']}", 404)
    await api(client, "GET", f"/v1/backfills/{created['id']}", 404)


async def test_the_outbox_listener_recovers_and_never_blocks_shutdown(
    ctx: Context, db: Any
) -> None:
    from tests.conftest import RunningWorker
    from workers.process import Worker

    running = RunningWorker(Worker(ctx))
    await running.start()

    async def listener_pids() -> list[int]:
        rows = await db.fetch(
            """SELECT pid FROM pg_stat_activity
               WHERE datname = current_database() AND query LIKE 'LISTEN%'"""
        )
        return [r["pid"] for r in rows]

    first = await wait_until(listener_pids, what="the relay listening")
    await db.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) pid", first)

    async def relistened() -> list[int]:
        return [p for p in await listener_pids() if p not in first]

    await wait_until(relistened, what="the relay listening again on a new connection")
    await running.stop()  # bounded inside: fails the test if shutdown hangs


class TestStopping:
    @pytest.fixture
    def settings(self, database: str, prefix: str) -> Any:
        from tests.conftest import make_settings

        # The capacity pinned above the one slot: dispatch messages wait for it.
        return make_settings(
            database,
            prefix,
            worker_concurrency=1,
            dispatch_capacity=16,
            shutdown_grace_seconds=0.3,
        )

    async def test_a_stopping_worker_starts_no_new_run(self, ctx: Context, db: Any) -> None:
        """Dispatches waiting for an executor slot when the worker stops are handed back
        to the queue, not claimed once a slot frees up."""
        from orchestrator.domain.specs import BackfillSpec, DateRangeTargetSpec
        from tests.conftest import RunningWorker
        from tests.gate import gate_handler
        from workers.process import Worker

        with gate_handler() as gate:
            await ctx.usecases.targets.create(
                DateRangeTargetSpec.model_validate(
                    {
                        "name": "g",
                        "handler": {"type": "gate"},
                        "max_active_runs": 4,
                    }
                ),
                team_id=1,
            )
            await ctx.usecases.backfills.create(
                BackfillSpec.model_validate(
                    {
                        "target": "g",
                        "start": "2024-01-01",
                        "end": "2024-01-08",
                    }
                ),
                team_id=1,
            )
            running = RunningWorker(Worker(ctx))
            await running.start()

            async def one_running_three_waiting() -> bool:
                queued = await db.fetchval(
                    "SELECT count(*) FROM transfer_runs WHERE state = 'queued'"
                )
                return len(gate.started) == 1 and queued == 3

            await wait_until(one_running_three_waiting, what="one run held, three waiting")
            await running.stop()
            # As when the process exits: whatever the worker still held goes back to the queue.
            await ctx.broker.close()
            connection = await aio_pika.connect(AMQP_URL)
            channel = await connection.channel()

            async def dispatches_back_in_the_queue() -> bool:
                queue = await channel.declare_queue(
                    ctx.settings.amqp_prefix + ".runs", passive=True
                )
                return (queue.declaration_result.message_count or 0) >= 3

            await wait_until(dispatches_back_in_the_queue, what="waiting dispatches requeued")
            assert len(gate.started) == 1, "a run started after the worker stopped"
            states = dict(
                await db.fetch("SELECT state, count(*) FROM transfer_runs GROUP BY state")
            )
            # The held run was handed back at once (attempt not counted), nothing is running.
            assert "running" not in states
            held = await db.fetchrow(
                "SELECT state, attempt FROM transfer_runs ORDER BY seq LIMIT 1"
            )
            assert held["attempt"] == 0
            await connection.close()
