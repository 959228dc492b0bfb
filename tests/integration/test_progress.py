"""Progress against the real database: rates come from the runs' own timestamps (a run's rows
spread over its span, the share inside the last minute counted), the overview adds them up,
and workers publish one backfill.progress event per backfill and period."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import asyncpg
import pytest
from aio_pika.abc import AbstractQueue

from orchestrator.context import Context
from orchestrator.messaging.progress_event import BackfillProgressEvent
from orchestrator.storage.progress import ProgressStore
from tests.conftest import AMQP_URL
from tests.helpers import api, make_target, start_backfill, wait_backfill, wait_until

pytestmark = pytest.mark.integration


async def finished_backfill(client: Any, name: str, days: int = 4) -> dict[str, Any]:
    await make_target(client, name)
    created = await start_backfill(client, name, start="2024-01-01", end=f"2024-01-{days:02d}")
    done = await wait_backfill(client, created["id"], {"completed", "failed"})
    assert done["state"] == "completed"
    return done  # type: ignore[no-any-return]


async def stage_runs(db: asyncpg.Connection[Any], backfill_id: int) -> None:
    """Four runs with known spans around now(), the backfill running for an hour:
    seq 0 ran from 90 s to 30 s ago (600 rows: half of its span is in the window);
    seq 1 from 20 s to 10 s ago (100 rows, all inside); seq 2 is still running, last written
    5 s ago (50 rows); seq 3 ended two minutes ago (outside)."""
    await db.execute(
        """UPDATE backfills SET state = 'running', completed_at = NULL,
                  started_at = now() - interval '1 hour', runs_completed = 3
           WHERE id = $1""",
        backfill_id,
    )
    spans = [
        (0, "completed", 90, 30, 600),
        (1, "completed", 20, 10, 100),
        (2, "running", 10, None, 50),
        (3, "completed", 180, 120, 1000),
    ]
    for seq, state, began, ended, rows in spans:
        await db.execute(
            """UPDATE transfer_runs SET state = $3, rows_processed = $6,
                      started_at = now() - make_interval(secs => $4),
                      finished_at = now() - make_interval(secs => $5),
                      updated_at = coalesce(now() - make_interval(secs => $5),
                                            now() - interval '5 seconds')
               WHERE backfill_id = $1 AND seq = $2""",
            backfill_id,
            seq,
            state,
            began,
            ended,
            rows,
        )


async def test_rates_come_from_the_runs_spans_in_the_last_minute(
    client: Any, db: asyncpg.Connection[Any]
) -> None:
    done = await finished_backfill(client, "daily")
    assert done["progress"]["fraction"] == 1.0
    assert done["progress"]["eta"] is None
    await stage_runs(db, done["id"])

    body = await api(client, "GET", f"/v1/backfills/{done['id']}", 200)
    progress = body["progress"]

    # 300 + 100 + 50 rows and 2 ended runs in 60 s (the clock moved a little since staging).
    assert progress["rows_per_second"] == pytest.approx(450 / 60, rel=0.02)
    assert progress["runs_per_minute"] == 2.0
    assert progress["window_seconds"] == 60
    assert progress["fraction"] == 0.75  # 3 of 4 runs
    # One run left at 2 runs a minute.
    assert progress["eta_seconds"] == pytest.approx(30.0, abs=0.5)
    assert progress["eta"] is not None

    listed = await api(client, "GET", "/v1/backfills", 200)
    [same] = [b["progress"] for b in listed["data"] if b["id"] == done["id"]]
    assert same["runs_per_minute"] == 2.0
    assert same["rows_per_second"] == pytest.approx(450 / 60, rel=0.02)

    overview = await api(client, "GET", "/ops/overview", 200)
    [active] = [b for b in overview["active_backfills"] if b["id"] == done["id"]]
    assert active["state"] == "running"
    assert active["progress"]["runs_per_minute"] == 2.0
    assert overview["throughput"]["rows_per_second"] == pytest.approx(450 / 60, rel=0.02)
    assert overview["throughput"]["runs_per_minute"] == 2.0


async def test_another_backfills_runs_do_not_move_its_rates(
    client: Any, db: asyncpg.Connection[Any]
) -> None:
    mine = await finished_backfill(client, "mine")
    other = await finished_backfill(client, "other")
    # Measured over a whole window, so the rate stays put while the test goes on.
    await db.execute(
        "UPDATE backfills SET started_at = now() - interval '1 hour' WHERE id = $1", mine["id"]
    )
    before = (await api(client, "GET", f"/v1/backfills/{mine['id']}", 200))["progress"]
    await db.execute("INSERT INTO teams (id, name) VALUES (2, 'two') ON CONFLICT DO NOTHING")
    await db.execute("UPDATE backfills SET team_id = 2 WHERE id = $1", other["id"])
    await stage_runs(db, other["id"])

    after = (await api(client, "GET", f"/v1/backfills/{mine['id']}", 200))["progress"]

    # Its own four runs ended seconds ago and stay in the window; the other's add nothing.
    assert after["runs_per_minute"] == before["runs_per_minute"] == 4.0
    assert after["rows_per_second"] == before["rows_per_second"] == 0.0
    await api(client, "GET", f"/v1/backfills/{other['id']}", 404)


@pytest.fixture
async def progress_events(ctx: Context) -> AsyncIterator[AbstractQueue]:
    connection = await aio_pika.connect(AMQP_URL)
    channel = await connection.channel()
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(ctx.settings.amqp_prefix, "event.backfill.progress")
    yield queue
    await connection.close()


async def test_one_progress_event_per_running_backfill_and_period(
    client: Any, ctx: Context, db: asyncpg.Connection[Any], progress_events: AbstractQueue
) -> None:
    done = await finished_backfill(client, "evented")
    await stage_runs(db, done["id"])
    # As if no event had gone out yet; the in-process worker sweeps too, so the claim, not
    # this test, decides who publishes.
    await db.execute("UPDATE backfills SET progress_published_at = NULL")
    store = ProgressStore(ctx.pool)
    sent = await store.publish_progress_events(period=3600)
    again = await store.publish_progress_events(period=3600)

    received: list[dict[str, Any]] = []

    async def arrived() -> bool:
        while (message := await progress_events.get(fail=False, no_ack=True)) is not None:
            assert message.type == "backfill.progress"
            received.append(json.loads(message.body))
        return bool(received)

    await wait_until(arrived, within=15, what="a backfill.progress event")
    assert sent + again <= 1  # the worker's own sweep may have claimed it first
    event = BackfillProgressEvent.model_validate(received[0])
    assert event.backfill_id == done["id"]
    assert event.state == "running"
    assert event.progress.runs_per_minute == 2.0
    assert event.progress.fraction == 0.75
    published = await db.fetchval(
        "SELECT count(*) FROM outbox WHERE routing_key = 'event.backfill.progress'"
    )
    assert published == 1
