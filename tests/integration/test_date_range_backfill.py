"""Date-range backfills end to end with the sql handler, and the controls on them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.gate import Gate, gate_handler
from tests.helpers import (
    api,
    backfill_body,
    backfill_state,
    make_target,
    start_backfill,
    wait_backfill,
    wait_until,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def gate() -> Iterator[Gate]:
    with gate_handler() as g:
        yield g


async def test_a_90_day_backfill_writes_one_aggregate_row_per_day(client: Any, db: Any) -> None:
    await db.execute("CREATE TABLE events (id bigserial PRIMARY KEY, at timestamptz NOT NULL)")
    # Day d of the range has d + 1 events, so each day's aggregate is distinct and checkable.
    await db.execute(
        """INSERT INTO events (at)
           SELECT '2024-01-01'::timestamptz + d * interval '1 day' + k * interval '1 minute'
           FROM generate_series(0, 89) d, generate_series(0, 89) k WHERE k <= d"""
    )
    await db.execute("CREATE TABLE daily (day timestamptz PRIMARY KEY, events bigint NOT NULL)")
    statement = (
        "INSERT INTO daily (day, events) SELECT $1, count(*) FROM events "
        "WHERE at >= $1 AND at < $2 "
        "ON CONFLICT (day) DO UPDATE SET events = EXCLUDED.events"
    )
    await make_target(
        client, "daily-events", handler={"type": "sql", "options": {"statement": statement}}
    )
    created = await start_backfill(
        client,
        "daily-events",
        start="2024-01-01",
        end="2024-03-30",
        interval_type="day",
        time_zone="UTC",
        order="newest_first",
    )
    assert created["runs_total"] == 90

    done = await wait_backfill(client, created["id"], {"completed", "failed"})
    assert done["state"] == "completed", done
    assert done["runs_completed"] == 90
    assert done["rows_processed_count"] == 90
    rows = await db.fetch("SELECT day, events FROM daily ORDER BY day")
    assert len(rows) == 90
    assert [r["events"] for r in rows] == list(range(1, 91))

    runs = await api(client, "GET", f"/v1/backfills/{created['id']}/runs?limit=100", 200)
    starts = [r["window_start"] for r in runs["data"]]
    assert starts == sorted(starts, reverse=True), "newest_first runs are planned newest first"


async def test_overlapping_ranges_of_one_target_conflict(client: Any, gate: Gate) -> None:
    await make_target(client, "g", handler={"type": "gate"})
    await start_backfill(client, "g", start="2024-01-01", end="2024-01-10")
    body = await api(
        client,
        "POST",
        "/v1/backfills",
        409,
        json=backfill_body("g", start="2024-01-10", end="2024-01-20"),
    )
    assert body["code"] == "conflict"
    await start_backfill(client, "g", start="2024-01-11", end="2024-01-20")


async def test_pause_holds_new_runs_and_resume_finishes(client: Any, db: Any, gate: Gate) -> None:
    await make_target(client, "g", handler={"type": "gate"}, max_active_runs=2)
    created = await start_backfill(client, "g", start="2024-01-01", end="2024-01-06")
    bid = created["id"]

    async def two_running() -> bool:
        return len(gate.started) == 2

    await wait_until(two_running, what="two runs started")
    paused = await api(client, "POST", f"/v1/backfills/{bid}/pause", 200)
    assert paused["state"] == "paused"
    assert paused["paused_at"]
    gate.release.set()

    async def running_ones_finished() -> dict[str, Any] | None:
        body = await backfill_state(client, bid)
        return body if body["runs_completed"] == 2 else None

    body = await wait_until(running_ones_finished, what="the two running runs to finish")
    assert body["state"] == "paused"
    # Nothing new started while paused: still exactly the two runs that were running.
    assert len(gate.started) == 2
    states = await db.fetch(
        "SELECT state, count(*) AS n FROM transfer_runs WHERE backfill_id = $1 GROUP BY state", bid
    )
    assert {r["state"]: r["n"] for r in states} == {"completed": 2, "pending": 4}

    # Pausing again is answered with the backfill unchanged (safe to retry).
    body = await api(client, "POST", f"/v1/backfills/{bid}/pause", 200)
    assert body["state"] == "paused"
    assert body["paused_at"] == paused["paused_at"]
    resumed = await api(client, "POST", f"/v1/backfills/{bid}/resume", 200)
    assert resumed["state"] == "running"
    done = await wait_backfill(client, bid, {"completed", "failed"})
    assert done["state"] == "completed"
    assert done["runs_completed"] == 6
    assert len(gate.started) == 6


async def test_cancel_aborts_queued_runs_while_running_ones_finish(
    client: Any, db: Any, gate: Gate
) -> None:
    await make_target(client, "g", handler={"type": "gate"}, max_active_runs=3)
    created = await start_backfill(client, "g", start="2024-01-01", end="2024-01-20")
    bid = created["id"]

    async def three_running() -> bool:
        return len(gate.started) == 3

    await wait_until(three_running, what="three runs started")
    cancelled = await api(client, "POST", f"/v1/backfills/{bid}/cancel", 200)
    assert cancelled["state"] == "cancelled"
    assert cancelled["cancelled_at"]
    assert cancelled["runs_cancelled"] == 17
    gate.release.set()

    async def running_ones_rolled_up() -> dict[str, Any] | None:
        body = await backfill_state(client, bid)
        return body if body["runs_completed"] == 3 else None

    body = await wait_until(running_ones_rolled_up, what="the running runs to finish")
    assert body["state"] == "cancelled"
    assert body["runs_completed"] + body["runs_cancelled"] == body["runs_total"] == 20
    assert body["rows_processed_count"] == 3
    late = await db.fetchval(
        """SELECT count(*) FROM transfer_runs r JOIN backfills b ON b.id = r.backfill_id
           WHERE b.id = $1 AND r.started_at > b.cancelled_at""",
        bid,
    )
    assert late == 0, "a run started after the cancel committed"
    assert len(gate.started) == 3
    left_open = await db.fetchval(
        "SELECT count(*) FROM transfer_runs WHERE backfill_id = $1 "
        "AND state IN ('pending', 'queued', 'running')",
        bid,
    )
    assert left_open == 0

    # Cancelling again is answered with the backfill unchanged (safe to retry).
    again = await api(client, "POST", f"/v1/backfills/{bid}/cancel", 200)
    assert again["state"] == "cancelled"
    assert again["cancelled_at"] == cancelled["cancelled_at"]


async def test_cancel_racing_claims_never_lets_a_run_start_after_it(client: Any, db: Any) -> None:
    """Many short runs claimed as fast as the worker can, and a cancel in the middle."""
    await make_target(client, "n", max_active_runs=8)
    for trial in range(5):
        created = await start_backfill(
            client,
            "n",
            start=f"{2000 + trial}-01-01T00:00:00Z",
            end=f"{2000 + trial}-01-02T00:00:00Z",
            interval_type="minute",
            interval_units=5,
        )
        bid = created["id"]

        async def some_done(bid: int = bid) -> bool:
            return (await backfill_state(client, bid))["runs_completed"] >= 5

        await wait_until(some_done, what="a few runs done")
        await api(client, "POST", f"/v1/backfills/{bid}/cancel", 200)

        async def settled(bid: int = bid) -> bool:
            n = await db.fetchval(
                "SELECT count(*) FROM transfer_runs WHERE backfill_id = $1 "
                "AND state IN ('pending', 'queued', 'running')",
                bid,
            )
            return n == 0

        await wait_until(settled, what="no open runs")
        late = await db.fetchval(
            """SELECT count(*) FROM transfer_runs r JOIN backfills b ON b.id = r.backfill_id
               WHERE b.id = $1 AND r.started_at > b.cancelled_at""",
            bid,
        )
        assert late == 0
        body = await backfill_state(client, bid)
        assert body["runs_completed"] + body["runs_cancelled"] == body["runs_total"] == 288
