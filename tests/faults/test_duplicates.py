"""Fault 6: messages delivered more than once, and workers racing. The same `command.create`
published 10 times makes one backfill; every `run.dispatch` delivered twice, to two workers,
executes each run once; two executors claiming the same runs at the same moment: one wins
each, the other changes nothing."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from orchestrator.context import Context, open_context
from orchestrator.handlers.registry import HANDLER_TYPES
from orchestrator.settings import Settings
from tests.conftest import RunningWorker
from tests.faults.checker import check_date_range_backfill, check_table_backfill
from tests.faults.conftest import Producer
from tests.faults.plugins import Counting, registered
from tests.faults.scenario import (
    date_range_target,
    make_dest,
    make_source,
    start_backfill,
    table_target,
)
from tests.helpers import wait_until
from workers.executor import Executor
from workers.planner import Planner

pytestmark = pytest.mark.integration


async def audit_doubles(db: Any) -> int:
    """Keys written to dst more than once: 0 means no chunk was delivered twice."""
    return int(
        await db.fetchval(
            "SELECT count(*) FROM (SELECT id FROM dst_audit GROUP BY id HAVING count(*) > 1) d"
        )
    )


async def test_the_same_create_published_ten_times_makes_one_backfill(
    ctx: Context, db: Any, worker: RunningWorker, producer: Producer
) -> None:
    await make_source(db, 2000)
    await make_dest(db)
    await table_target(ctx, chunk_size=250)
    command_id = uuid.uuid4()
    command = {
        "type": "command.create",
        "command_id": str(command_id),
        "backfill": {"target": "copy"},
    }
    await asyncio.gather(*(producer.send("command.create", command) for _ in range(10)))

    async def created() -> Any:
        return await db.fetchval("SELECT id FROM backfills WHERE command_id = $1", command_id)

    backfill_id = await wait_until(created, what="the backfill of the command")
    found = await check_table_backfill(db, backfill_id, within=30)
    await producer.drained("commands")
    assert await db.fetchval("SELECT count(*) FROM backfills") == 1
    assert len(found.runs) == 8
    assert all(r["attempt"] == 1 for r in found.runs)
    assert await audit_doubles(db) == 0, "a run was executed twice"


async def test_duplicate_creates_are_acknowledged_not_dead_lettered(
    ctx: Context, db: Any, worker: RunningWorker, producer: Producer
) -> None:
    """Duplicates in flight together, made certain: the test holds the per-target lock under
    which a backfill is inserted until several deliveries of the command wait for it. Each
    must find the first one's backfill, not fail the overlap check against it and be
    dead-lettered as a conflict (found by this suite; fixed in e42ad9e by looking the command
    id up under the target lock)."""
    await make_source(db, 200)
    await make_dest(db)
    target = await table_target(ctx, chunk_size=250)
    command_id = uuid.uuid4()
    command = {
        "type": "command.create",
        "command_id": str(command_id),
        "backfill": {"target": "copy"},
    }
    async with db.transaction():
        await db.execute("SELECT pg_advisory_xact_lock(8123, $1::int)", target.id)
        await asyncio.gather(*(producer.send("command.create", command) for _ in range(10)))

        async def waiting() -> bool:
            n = await db.fetchval(
                """SELECT count(*) FROM pg_stat_activity
                   WHERE datname = current_database() AND wait_event = 'advisory'"""
            )
            return bool(n >= 2)

        await wait_until(waiting, within=10, what="two deliveries waiting on the target lock")

    async def created() -> Any:
        return await db.fetchval("SELECT id FROM backfills WHERE command_id = $1", command_id)

    backfill_id = await wait_until(created, what="the backfill of the command")
    await check_table_backfill(db, backfill_id, within=30)
    await producer.drained("commands")
    dead = await producer.dead_letters()
    reasons = [str((m.headers or {}).get("x-backfill-dead-reason")) for m in dead]
    assert reasons == [], f"{len(reasons)} duplicates dead-lettered: {reasons[:2]}"


async def test_every_dispatch_delivered_twice_to_two_workers_runs_each_run_once(
    ctx: Context,
    db: Any,
    worker: RunningWorker,
    second_worker: RunningWorker,
    producer: Producer,
) -> None:
    # Every run.dispatch written to the outbox is written twice: each is published, and the
    # two copies go to whichever of the two workers is free.
    await db.execute(
        """CREATE FUNCTION dup_dispatch() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
               IF pg_trigger_depth() = 1 THEN
                   INSERT INTO outbox (routing_key, payload) VALUES (NEW.routing_key, NEW.payload);
               END IF;
               RETURN NULL;
           END $$;
           CREATE TRIGGER dup_dispatch AFTER INSERT ON outbox FOR EACH ROW
               WHEN (NEW.routing_key = 'run.dispatch') EXECUTE FUNCTION dup_dispatch();"""
    )
    await make_source(db, 4000)
    await make_dest(db)
    await table_target(ctx, chunk_size=200, max_active_runs=4)
    backfill = await start_backfill(ctx, "copy")

    found = await check_table_backfill(db, backfill.id, within=30)
    await producer.drained("runs")
    assert len(found.runs) == 20
    # A run that ends is replaced by the worker that ran it, with no message: the messages
    # are those of the first runs (as many as max_active_runs allows), each sent twice.
    sent = await db.fetch(
        "SELECT payload->>'run_id' AS run_id, count(*) AS n FROM outbox"
        " WHERE routing_key = 'run.dispatch' GROUP BY 1"
    )
    assert len(sent) >= 4, "the first runs were dispatched by message"
    assert all(d["n"] == 2 for d in sent), "every dispatch was sent twice"
    assert all(r["attempt"] == 1 for r in found.runs), "a duplicate started a second attempt"
    assert await audit_doubles(db) == 0, "a run was executed twice"
    assert {r["worker_id"] for r in found.runs} == {
        worker.worker.worker_id,
        second_worker.worker.worker_id,
    }, "both workers took part"
    assert await producer.dead_letters() == []


async def test_two_executors_racing_for_each_run_claim_it_once(
    ctx: Context, db: Any, settings: Settings
) -> None:
    with registered(HANDLER_TYPES, Counting()) as counting:
        await date_range_target(ctx, "race", {"type": "counting"}, max_active_runs=60)
        backfill = await start_backfill(ctx, "race", start="2024-01-01", end="2024-02-29")
        # No worker runs: plan here, which queues runs (as many as the dispatch allows).
        await Planner(settings, ctx.storage, ctx.sources).plan(backfill.id)

        async with open_context(settings) as ctx_b:
            racers = [
                Executor(settings, ctx.storage, ctx.resources, "racer-a"),
                Executor(settings, ctx_b.storage, ctx_b.resources, "racer-b"),
            ]

            async def race(run_id: int) -> list[Any]:
                return list(await asyncio.gather(*(r.claim(run_id, backfill.id) for r in racers)))

            winners_by: dict[str, int] = {"racer-a": 0, "racer-b": 0}
            raced = 0
            while True:
                queued = [
                    r["id"]
                    for r in await db.fetch(
                        "SELECT id FROM transfer_runs WHERE backfill_id = $1 AND state = 'queued'",
                        backfill.id,
                    )
                ]
                if not queued:
                    break
                # Both executors claim every queued run at the same moment.
                results = await asyncio.gather(*(race(run_id) for run_id in queued))
                winners: list[tuple[Executor, Any]] = []
                for run_id, pair in zip(queued, results, strict=True):
                    won = [(racer, c) for racer, c in zip(racers, pair, strict=True) if c]
                    assert len(won) == 1, f"run {run_id}: {len(won)} claims succeeded"
                    winners.append(won[0])
                    winners_by[won[0][1][0].run.worker_id] += 1
                raced += len(queued)
                attempts = await db.fetch(
                    "SELECT attempt FROM transfer_runs WHERE id = ANY($1::bigint[])", queued
                )
                assert all(r["attempt"] == 1 for r in attempts), "a losing claim counted"
                # A dispatch arriving while the run runs claims nothing.
                late = await asyncio.gather(*(race(run_id) for run_id in queued))
                assert all(c is None for pair in late for c in pair)
                await asyncio.gather(*(racer.execute(*claim) for racer, claim in winners))
                # Nor does one arriving after it ended.
                later = await asyncio.gather(*(race(run_id) for run_id in queued))
                assert all(c is None for pair in later for c in pair)
            assert raced == 60
            assert all(winners_by.values()), f"the race was one-sided: {winners_by}"

        await check_date_range_backfill(
            db, backfill.id, within=10, executions=counting.finished, exactly_once=True
        )
        assert all(a == [1] for a in counting.attempts.values())
