"""Asking for the state a backfill is already in: answered with the backfill unchanged, as a
client retrying after a timeout needs, with nothing written or announced. Supermetrics keeps
its documented refusal for final states."""

from __future__ import annotations

from typing import Any

import pytest

from tests.gate import gate_handler
from tests.helpers import api, make_target, start_backfill, wait_until

pytestmark = pytest.mark.integration


async def _outbox(db: Any) -> int:
    return int(await db.fetchval("SELECT count(*) FROM outbox"))


async def _repeat(client: Any, db: Any, bid: int, action: str, state: str) -> None:
    """Does `action` (which must lead to `state`) a second time and checks nothing moved."""
    before = await api(client, "GET", f"/v1/backfills/{bid}", 200)
    assert before["state"] == state
    outbox = await _outbox(db)
    again = await api(client, "POST", f"/v1/backfills/{bid}/{action}", 200)
    assert again == before
    assert await _outbox(db) == outbox, f"a repeated {action} wrote to the outbox"


async def test_repeated_pause_resume_and_cancel_answer_200_and_change_nothing(
    client: Any, db: Any
) -> None:
    with gate_handler() as gate:
        await make_target(client, "g", handler={"type": "gate"}, max_active_runs=1)
        created = await start_backfill(client, "g", start="2024-01-01", end="2024-01-04")
        bid = created["id"]

        async def one_running() -> bool:
            return len(gate.started) == 1

        await wait_until(one_running, what="a run started")
        await api(client, "POST", f"/v1/backfills/{bid}/pause", 200)
        await _repeat(client, db, bid, "pause", "paused")
        await api(client, "POST", f"/v1/backfills/{bid}/resume", 200)
        await _repeat(client, db, bid, "resume", "running")
        await api(client, "POST", f"/v1/backfills/{bid}/cancel", 200)
        await _repeat(client, db, bid, "cancel", "cancelled")
        # Through the uuid as well, and the final state still refuses what it cannot do.
        await api(client, "POST", f"/v1/backfills/{created['uuid']}/cancel", 200)
        refused = await api(client, "POST", f"/v1/backfills/{bid}/resume", 422)
        assert refused["code"] == "invalid_state_transition"
        events = await db.fetchval(
            "SELECT count(*) FROM outbox WHERE routing_key = 'event.backfill.cancelled'"
        )
        assert events == 1


async def test_cancelling_a_completed_backfill_is_still_refused(client: Any) -> None:
    await make_target(client, "n")
    created = await start_backfill(client, "n", start="2024-01-01", end="2024-01-01")

    async def completed() -> bool:
        body = await api(client, "GET", f"/v1/backfills/{created['id']}", 200)
        return bool(body["state"] == "completed")

    await wait_until(completed, what="the backfill completed")
    refused = await api(client, "POST", f"/v1/backfills/{created['id']}/cancel", 422)
    assert refused["code"] == "invalid_state_transition"
    assert refused["current_state"] == "completed"
