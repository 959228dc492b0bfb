"""Fault 9: sinks and handlers that fail. A sink that fails its first two attempts of every
run (after delivering part of it) completes at attempt 3, resuming from its checkpoint, with
backoff and jitter between attempts; a handler that always fails fails its runs after
max_attempts with the error in error_report; a handler that hangs is cut off by the run
timeout, retried, then failed with a timeout error. Meanwhile a healthy backfill of another
target completes: one bad run never stops the others."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

import pytest

from orchestrator.context import Context
from orchestrator.handlers.registry import HANDLER_TYPES
from orchestrator.settings import Settings
from orchestrator.sinks.registry import SINK_TYPES
from tests.conftest import RunningWorker, make_settings
from tests.faults.checker import Findings, check_date_range_backfill, check_table_backfill
from tests.faults.plugins import Failing, FlakyPostgres, Hanging, registered
from tests.faults.scenario import (
    date_range_target,
    make_dest,
    make_source,
    record_run_history,
    start_backfill,
    table_target,
)
from tests.helpers import wait_until

pytestmark = pytest.mark.integration

RETRY_BASE = 0.2
RUN_TIMEOUT = 1.0


@pytest.fixture
def settings(database: str, prefix: str) -> Settings:
    return make_settings(
        database,
        prefix,
        run_timeout_seconds=RUN_TIMEOUT,
        retry_base_seconds=RETRY_BASE,
        retry_max_seconds=2.0,
        read_batch_rows=50,
        read_batch_max_rows=50,  # fixed batches: a sink fails after a known number of them
        dispatch_sweep_seconds=0.1,
    )


async def healthy_neighbour(ctx: Context, db: Any) -> int:
    """A table backfill on another target, started alongside the bad ones."""
    await make_source(db, 600, name="good_src")
    await make_dest(db, "good_dst", like="good_src")
    await table_target(ctx, "good", source="good_src", dest="good_dst", chunk_size=200)
    return (await start_backfill(ctx, "good")).id


async def neighbour_completed(db: Any, neighbour: int, bad: Findings, *, before: bool) -> None:
    """The healthy backfill completed, exactly once; with `before`, while the bad one was still
    going (it did not wait for the bad run to end)."""
    found = await check_table_backfill(db, neighbour, source="good_src", dest="good_dst")
    if before:
        ended = bad.backfill["failed_at"] or bad.backfill["completed_at"]
        assert found.backfill["completed_at"] < ended, "the healthy backfill waited for the bad"


async def test_a_sink_failing_twice_completes_at_attempt_3_after_backoff(
    ctx: Context, db: Any, worker: RunningWorker
) -> None:
    await make_source(db, 600)
    await make_dest(db)
    await record_run_history(db)
    with registered(SINK_TYPES, FlakyPostgres(failures=2, deliver_before_failing=1)) as sink:
        await table_target(ctx, sink="flaky_postgres", chunk_size=200, max_attempts=3)
        backfill = await start_backfill(ctx, "copy")
        found = await check_table_backfill(db, backfill.id, within=30)

    assert len(found.runs) == 3
    assert all(r["attempt"] == 3 for r in found.runs), [r["attempt"] for r in found.runs]
    assert all(n == 2 for n in sink.failed.values()), dict(sink.failed)
    history = await db.fetch("SELECT * FROM run_history ORDER BY n")
    by_run: dict[int, list[Any]] = defaultdict(list)
    for h in history:
        by_run[h["run_id"]].append(h)
    delays = []
    for run_id, changes in by_run.items():
        retries = [h for h in changes if (h["old_state"], h["new_state"]) == ("running", "pending")]
        assert [h["attempt"] for h in retries] == [1, 2], run_id
        for retry in retries:
            assert f"sink unavailable (attempt {retry['attempt']})" in retry["error"]
            delay = (retry["not_before"] - retry["at"]).total_seconds()
            ceiling = RETRY_BASE * 2 ** (retry["attempt"] - 1)
            # not_before is now() + delay, now() being the transaction's start: a hair early.
            assert -0.05 <= delay <= ceiling, (delay, ceiling)
            delays.append(delay)
            # The retry is claimed by its message (queued -> running) or, when another run of
            # the backfill ends first, straight from pending by that run's worker.
            claim = next(
                h
                for h in changes
                if h["n"] > retry["n"]
                and (h["old_state"], h["new_state"])
                in {("queued", "running"), ("pending", "running")}
            )
            assert claim["at"] >= retry["not_before"], "claimed before its backoff was over"
            assert claim["attempt"] == retry["attempt"] + 1
    assert len(set(delays)) == len(delays) == 6, f"no jitter: {delays}"


async def test_a_handler_that_always_fails_fails_its_runs_with_the_error(
    ctx: Context, db: Any, worker: RunningWorker
) -> None:
    with registered(HANDLER_TYPES, Failing()) as failing:
        await date_range_target(ctx, "bad", {"type": "failing"}, max_attempts=3)
        neighbour = await healthy_neighbour(ctx, db)
        backfill = await start_backfill(ctx, "bad", start="2024-01-01", end="2024-01-02")
        found = await check_date_range_backfill(
            db, backfill.id, state="failed", within=30, executions=failing.finished
        )
    assert all(r["state"] == "failed" and r["attempt"] == 3 for r in found.runs)
    assert all(a == [1, 2, 3] for a in failing.attempts.values()), dict(failing.attempts)
    shown = await ctx.usecases.backfills.get(backfill.id, team_id=1)
    assert shown.error_report is not None
    assert len(shown.error_report) == 2
    assert all(
        e.attempt == 3 and e.error == "RuntimeError: always fails (attempt 3)"
        for e in shown.error_report
    ), shown.error_report
    await neighbour_completed(db, neighbour, found, before=False)


async def test_a_hanging_handler_is_timed_out_retried_and_failed(
    ctx: Context, db: Any, worker: RunningWorker
) -> None:
    with registered(HANDLER_TYPES, Hanging()) as hanging:
        await date_range_target(ctx, "stuck", {"type": "hanging"}, max_attempts=2)
        neighbour = await healthy_neighbour(ctx, db)
        backfill = await start_backfill(ctx, "stuck", start="2024-01-01", end="2024-01-01")
        found = await check_date_range_backfill(
            db, backfill.id, state="failed", within=30, executions=hanging.finished
        )
    (run,) = found.runs
    assert run["attempt"] == 2
    assert run["error"] == f"timed out after {RUN_TIMEOUT:g}s"
    assert hanging.attempts[run["id"]] == [1, 2]
    assert hanging.cancelled[run["id"]] == 2, "each timed-out attempt was cancelled"
    # Bounded: two attempts of about one timeout each, and a short backoff between them.
    took = found.backfill["failed_at"] - run["started_at"]
    assert took < timedelta(seconds=2 * RUN_TIMEOUT + RETRY_BASE + 3), took
    shown = await ctx.usecases.backfills.get(backfill.id, team_id=1)
    assert shown.error_report is not None
    assert [e.error for e in shown.error_report] == ["timed out after 1s"]
    await neighbour_completed(db, neighbour, found, before=True)


async def test_a_sink_hanging_on_a_locked_destination_is_timed_out_and_retried(
    ctx: Context, db: Any, worker: RunningWorker
) -> None:
    await make_source(db, 300)
    await make_dest(db)
    await record_run_history(db)
    await table_target(ctx, chunk_size=300, max_attempts=3)
    async with db.transaction():
        # The real postgres sink waits for this lock: a destination that stopped answering.
        await db.execute("LOCK TABLE dst IN ACCESS EXCLUSIVE MODE")
        backfill = await start_backfill(ctx, "copy")

        async def timed_out() -> bool:
            return bool(
                await db.fetchval(
                    "SELECT count(*) FROM run_history WHERE error = $1",
                    f"timed out after {RUN_TIMEOUT:g}s",
                )
            )

        await wait_until(timed_out, within=10, what="the first attempt to time out")
    found = await check_table_backfill(db, backfill.id, within=30)
    (run,) = found.runs
    assert run["attempt"] in (2, 3), run["attempt"]
    waiting = await db.fetchval(
        """SELECT count(*) FROM pg_stat_activity
           WHERE datname = current_database() AND wait_event_type = 'Lock'"""
    )
    assert waiting == 0, "a timed-out attempt left a statement waiting on the lock"
