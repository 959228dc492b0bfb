"""Rows written straight into the test database, for states the API cannot reach in one
request (a running backfill, failed runs, a worker's heartbeat). Only the setup goes below the
service; what the tests then read goes through the API and the real service."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from orchestrator.domain.states import RunState
from orchestrator.storage.database import Pool

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

BACKFILL_DEFAULTS: dict[str, Any] = {
    "kind": "date_range",
    "state": "created",
    "range_start": NOW - timedelta(days=30),
    "range_end": NOW,
    "interval_type": "day",
    "interval_units": 1,
    "time_zone": "Europe/Berlin",
    "run_order": "oldest_first",
    "max_active_runs": 4,
    "max_attempts": 3,
    "team_id": 1,
}


async def add_target(pool: Pool, name: str = "seeded") -> int:
    """A date-range target running `noop`, as POST /v1/targets would store it."""
    target_id: int = await pool.fetchval(
        "INSERT INTO targets (name, kind, handler, max_active_runs, max_attempts, team_id)"
        " VALUES ($1, 'date_range', $2, 4, 3, 1) RETURNING id",
        name,
        {"type": "noop", "options": {}},  # the pool's codec writes jsonb from Python values
    )
    return target_id


async def add_backfill(pool: Pool, target_id: int, **fields: Any) -> dict[str, Any]:
    """A backfill row of `target_id` with the fields given over the defaults; its id and uuid."""
    values = {**BACKFILL_DEFAULTS, "target_id": target_id, **fields}
    names = ", ".join(values)
    slots = ", ".join(f"${i}" for i in range(2, len(values) + 2))
    row = await pool.fetchrow(
        f"INSERT INTO backfills (command_id, {names}) VALUES ($1, {slots}) RETURNING id, uuid",
        uuid.uuid4(),
        *values.values(),
    )
    assert row is not None
    return dict(row)


async def add_runs(
    pool: Pool, backfill_id: int, states: Iterable[RunState], **fields: Any
) -> list[int]:
    """Runs of `backfill_id`, one per state, seq from 1, one day each from NOW; their ids.
    The backfill's counters follow, as the workers keep them."""
    ids = []
    states = list(states)
    for seq, state in enumerate(states, start=1):
        values = {
            "backfill_id": backfill_id,
            "seq": seq,
            "state": state.value,
            "window_start": NOW + timedelta(days=seq),
            "window_end": NOW + timedelta(days=seq + 1),
            "lease_expires_at": NOW,
            **fields,
        }
        names = ", ".join(values)
        slots = ", ".join(f"${i}" for i in range(1, len(values) + 1))
        ids.append(
            await pool.fetchval(
                f"INSERT INTO transfer_runs ({names}) VALUES ({slots}) RETURNING id",
                *values.values(),
            )
        )
    counted = {s: sum(1 for x in states if x == s) for s in RunState}
    await pool.execute(
        "UPDATE backfills SET runs_total = runs_total + $2, runs_created = runs_created + $2,"
        " runs_completed = runs_completed + $3, runs_failed = runs_failed + $4,"
        " runs_cancelled = runs_cancelled + $5 WHERE id = $1",
        backfill_id,
        len(states),
        counted[RunState.COMPLETED],
        counted[RunState.FAILED],
        counted[RunState.CANCELLED],
    )
    return ids


async def add_worker(
    pool: Pool, worker_id: str, roles: list[str], concurrency: int | None = None
) -> None:
    """A worker that has just sent its heartbeat, executing `concurrency` runs at once."""
    await pool.execute(
        "INSERT INTO workers (id, hostname, pid, roles, concurrency, live_until) "
        "VALUES ($1, 'test-host', 1, $2, $3, now() + interval '30 seconds')",
        worker_id,
        roles,
        concurrency,
    )
