"""The moves of the run and backfill state machines that several stores make under the
backfill's row lock: a backfill's state set, its runs dispatched (fair share, throttle),
its end when every run has ended, a failed attempt retried or failed for good.

Rows stay asyncpg records in here: these functions compose transactions inside storage,
and the stores hand domain models up."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import asyncpg

from orchestrator.domain.states import (
    BACKFILL_DISPATCHABLE,
    BackfillState,
    RunState,
    sources_for,
)
from orchestrator.errors import Conflict, NotFound
from orchestrator.storage.commands import backfill_event, enqueue
from orchestrator.storage.database import Conn
from orchestrator.storage.queries import q

B = BackfillState

# No runs-per-minute throttle: as many runs as the other limits allow.
UNTHROTTLED = 2**31 - 1


async def lock_backfill(conn: Conn, backfill_id: int) -> asyncpg.Record:
    row = await conn.fetchrow(q("lock_backfill"), backfill_id)
    if row is None:
        raise NotFound(f"backfill {backfill_id} not found")
    return row


async def one(conn: Conn, name: str, *args: Any) -> asyncpg.Record:
    """A statement that must return a row (its guard was checked under the lock)."""
    row = await conn.fetchrow(q(name), *args)
    if row is None:
        raise Conflict(f"{name} matched nothing: the row changed concurrently")
    return row


async def set_state(conn: Conn, backfill_id: int, state: BackfillState) -> asyncpg.Record:
    return await one(conn, "set_backfill_state", backfill_id, state.value, sources_for(state))


async def dispatch(conn: Conn, backfill: asyncpg.Record, capacity: int | None = None) -> int:
    """Top up queued runs. The caller holds the backfill lock (lock_backfill). With a
    `capacity`, the backfill gets at most its fair share of it by priority (and gives back
    queued runs beyond that share), so a big backfill cannot crowd out a small urgent one."""
    if backfill["state"] not in BACKFILL_DISPATCHABLE:
        return 0
    limit, allowed = await dispatch_limits(conn, backfill, capacity)
    if allowed <= 0:
        return 0
    rows = await conn.fetch(q("dispatch_runs"), backfill["id"], limit, allowed)
    if rows and backfill["max_runs_per_minute"] is not None:
        await conn.execute(q("spend_run_tokens"), backfill["id"], len(rows))
    return len(rows)


async def dispatch_limits(
    conn: Conn, backfill: asyncpg.Record, capacity: int | None
) -> tuple[int, int]:
    """(how many runs the backfill may have queued or running, how many more its
    runs-per-minute throttle lets start now). Gives back queued runs beyond its fair share.
    The caller holds the backfill lock."""
    limit = backfill["max_active_runs"]
    if capacity is not None:
        # The share, with the queued runs beyond it given back, in one statement.
        share = await conn.fetchval(q("share_of_capacity"), backfill["id"], capacity)
        limit = min(limit, share or limit)
    allowed = UNTHROTTLED
    if backfill["max_runs_per_minute"] is not None:
        # Whole tokens only; the rest accrues, and the dispatch sweep comes back for it.
        allowed = int(await conn.fetchval(q("refill_run_tokens"), backfill["id"]))
    return limit, allowed


async def maybe_finish(conn: Conn, backfill: asyncpg.Record) -> asyncpg.Record:
    """When planning is done and every run is terminal, the backfill ends: completed, or
    failed if any run failed. Cancelled and paused backfills keep their state."""
    ended = backfill["runs_completed"] + backfill["runs_failed"] + backfill["runs_cancelled"]
    if (
        backfill["state"] in (B.SCHEDULED, B.RUNNING)
        and backfill["planning_done"]
        and ended >= backfill["runs_total"]
    ):
        final = B.FAILED if backfill["runs_failed"] else B.COMPLETED
        row = await set_state(conn, backfill["id"], final)
        event = f"backfill.{final.value}"
        await enqueue(conn, f"event.{event}", backfill_event(event, row))
        return row
    return backfill


async def end_attempt(
    conn: Conn,
    backfill: asyncpg.Record,
    run_id: int,
    token: UUID,
    error: str,
    retry_in: float | None,
    capacity: int | None = None,
) -> RunState | None:
    """A failed attempt, from the executor or the reaper: retried after `retry_in` seconds
    (never for a cancelled backfill), or failed for good with its counters, event and
    the backfill's end. The caller holds the backfill lock. None if the lease was lost."""
    if retry_in is not None and backfill["state"] != B.CANCELLED:
        retried = await conn.fetchrow(q("retry_run"), run_id, token, error, retry_in)
        if retried is None:
            return None
        await dispatch(conn, backfill, capacity)
        return RunState.PENDING
    run = await conn.fetchrow(q("fail_run"), run_id, token, error)
    if run is None:
        return None
    row = await one(conn, "count_run_end", backfill["id"], 0, 1)
    event = {
        "type": "run.failed",
        "event_id": str(uuid4()),
        "backfill_id": backfill["id"],
        "run_id": run_id,
        "attempt": run["attempt"],
        "error": error,
        "occurred_at": run["finished_at"].isoformat(),
    }
    await enqueue(conn, "event.run.failed", event)
    row = await maybe_finish(conn, row)
    await dispatch(conn, row, capacity)
    return RunState.FAILED
