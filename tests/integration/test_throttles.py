"""Throttles measured over runs of several seconds: the observed rate is within 10 % of the
limit (a tolerance, not a tight timing), across two workers sharing the backfill, and a
throttle changed while the backfill runs takes effect."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from orchestrator.context import Context, open_context
from tests.conftest import RunningWorker, make_settings
from tests.helpers import api, make_target, start_backfill, wait_backfill, wait_until
from workers.process import Worker

pytestmark = pytest.mark.integration

TOLERANCE = 0.10


@pytest.fixture
async def second_worker(database: str, prefix: str, worker: Any) -> AsyncIterator[Context]:
    """Another worker process's worth (its own pools and broker connection): a throttle
    holds across workers, not per worker."""
    async with open_context(make_settings(database, prefix, read_batch_rows=250)) as ctx:
        running = RunningWorker(Worker(ctx))
        await running.start()
        yield ctx
        await running.stop()


async def test_runs_per_minute_holds_across_workers(
    client: Any, db: Any, second_worker: Context
) -> None:
    await make_target(client, "n")
    created = await start_backfill(
        client,
        "n",
        start="2024-01-01T00:00:00",
        end="2024-01-01T00:31:00",
        interval_type="minute",
        max_active_runs=4,
        max_runs_per_minute=360,  # 6 a second
    )
    await wait_backfill(client, created["id"], {"completed"}, within=60)
    starts = await db.fetch(
        "SELECT started_at, worker_id FROM transfer_runs WHERE backfill_id = $1 "
        "ORDER BY started_at",
        created["id"],
    )
    assert len(starts) == 31
    span = (starts[-1]["started_at"] - starts[0]["started_at"]).total_seconds()
    rate = (len(starts) - 1) / span
    assert abs(rate - 6.0) / 6.0 <= TOLERANCE, f"{rate:.2f} runs/s over {span:.1f}s"
    assert len({s["worker_id"] for s in starts}) == 2, "both workers took runs"


async def make_table(db: Any, rows: int) -> None:
    await db.execute("CREATE TABLE items (id bigint PRIMARY KEY, v text)")
    await db.execute("INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, $1) g", rows)


async def test_rows_per_second_holds_across_workers(
    client: Any, db: Any, second_worker: Context
) -> None:
    await make_table(db, 12_000)
    await make_target(client, "items", "table", chunk_size=1000)
    created = await start_backfill(client, "items", max_active_runs=4, max_rows_per_second=3000)
    done = await wait_backfill(client, created["id"], {"completed"}, within=60)
    assert done["rows_processed_count"] == 12_000
    span = await db.fetchval(
        "SELECT extract(epoch FROM max(finished_at) - min(started_at)) FROM transfer_runs "
        "WHERE backfill_id = $1",
        created["id"],
    )
    rate = 12_000 / float(span)
    assert abs(rate - 3000) / 3000 <= TOLERANCE, f"{rate:.0f} rows/s over {float(span):.1f}s"


async def test_a_throttle_changed_while_running_takes_effect(client: Any, db: Any) -> None:
    await make_table(db, 30_000)
    await make_target(client, "items", "table", chunk_size=1000)
    created = await start_backfill(client, "items", max_rows_per_second=1000)
    bid = created["id"]

    async def moving() -> bool:
        body = await api(client, "GET", f"/v1/backfills/{bid}", 200)
        return bool(body["rows_processed_count"] >= 1000)

    # At 1,000 rows a second the whole table would take 30 s.
    await wait_until(moving, what="rows flowing under the first throttle")
    changed = await api(
        client, "PATCH", f"/v1/backfills/{bid}", 200, json={"max_rows_per_second": 20_000}
    )
    assert changed["max_rows_per_second"] == 20_000
    left = 30_000 - changed["rows_processed_count"]
    patched_at = await db.fetchval("SELECT updated_at FROM backfills WHERE id = $1", bid)
    done = await wait_backfill(client, bid, {"completed"}, within=30)
    finished_at = await db.fetchval("SELECT completed_at FROM backfills WHERE id = $1", bid)
    rate = left / (finished_at - patched_at).total_seconds()
    assert rate > 5_000, f"{rate:.0f} rows/s after raising the limit to 20,000"
    assert done["rows_processed_count"] == 30_000

    # null removes the throttle.
    cleared = await api(
        client, "PATCH", f"/v1/backfills/{bid}", 200, json={"max_rows_per_second": None}
    )
    assert cleared["max_rows_per_second"] is None
