"""Fault 1: a worker process is SIGKILLed in the middle of a table run. Its lease runs out,
the reaper returns the run to pending (the attempt counts), another worker claims it and
resumes from the last checkpoint; the `postgres` sink ends with every row exactly once."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.context import Context
from tests.faults.checker import check_table_backfill
from tests.faults.processes import Workers
from tests.faults.scenario import (
    make_dest,
    make_source,
    running_run,
    start_backfill,
    table_target,
    until,
)

pytestmark = pytest.mark.integration


async def test_a_killed_workers_run_is_finished_by_another_exactly_once(
    ctx: Context, db: Any, workers: Workers
) -> None:
    await make_source(db, 6000)
    await make_dest(db, statement_delay=0.03)  # ~20 batches of 100 rows: ~1 s per run
    await table_target(ctx, chunk_size=2000, max_active_runs=2)
    await workers.start_ready(db, "a", "b", read_batch_rows=100)
    backfill = await start_backfill(ctx, "copy")

    run = await until(
        lambda: running_run(db, backfill.id, max_rows=1500), within=30, what="a run delivering rows"
    )
    victim = workers.by_worker_id(run["worker_id"])
    assert victim is not None, run["worker_id"]
    survivor = next(p for p in workers.started if p is not victim)
    victim.kill()
    assert await victim.wait_exit(10) == -9
    # Nothing writes this run's row until its lease runs out (2 s): what it has now is the
    # last checkpoint the killed worker committed.
    at_kill = await db.fetchrow("SELECT * FROM transfer_runs WHERE id = $1", run["id"])
    assert at_kill["state"] == "running"
    assert at_kill["worker_id"] == victim.worker_id
    assert at_kill["rows_processed"] > 0

    found = await check_table_backfill(db, backfill.id, within=60)

    final = next(r for r in found.runs if r["id"] == run["id"])
    assert final["worker_id"] == survivor.worker_id
    assert final["attempt"] == 2, "the killed attempt counts, the resumed one is the second"
    # Resumed from the checkpoint: the survivor wrote no key the killed worker had already
    # checkpointed (a batch delivered after the last checkpoint may be written again).
    rewritten = await db.fetchval(
        """SELECT count(*) FROM dst_audit
           WHERE app = $1 AND id > coalesce(($2::text[])[1]::bigint, 0)
             AND id <= ($3::text[])[1]::bigint""",
        survivor.name,
        at_kill["lower_key"],
        at_kill["cursor"],
    )
    assert rewritten == 0, f"{rewritten} checkpointed rows were delivered again"
    assert survivor.events("run_started", run_id=run["id"], attempt=2)
