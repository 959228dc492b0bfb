"""What the run log lines say: `run_completed` carries the run's row totals."""

from __future__ import annotations

from typing import Any

import pytest
import structlog

from orchestrator.settings import Settings
from tests.conftest import make_settings
from tests.helpers import make_target, start_backfill, wait_backfill

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(database: str, prefix: str) -> Settings:
    return make_settings(database, prefix, read_batch_rows=7)


async def test_run_completed_logs_the_rows_of_each_table_run(client: Any, db: Any) -> None:
    await db.execute("CREATE TABLE items (id bigint PRIMARY KEY)")
    await db.execute("INSERT INTO items SELECT g FROM generate_series(1, 50) g")
    # Reads of 7 rows checkpoint several times per run: the totals add up every batch.
    await make_target(client, "items", "table", chunk_size=20)
    with structlog.testing.capture_logs() as logs:
        created = await start_backfill(client, "items")
        done = await wait_backfill(client, created["id"], {"completed", "failed"})
    assert done["state"] == "completed"
    completed = [e for e in logs if e["event"] == "run_completed"]
    assert sorted(e["rows"] for e in completed) == [10, 20, 20]
    assert sorted(e["rows_ingested"] for e in completed) == [10, 20, 20]
