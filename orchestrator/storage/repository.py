"""Every read and write of the orchestrator's tables. Transactions are composed here, so each
state change, its counters and the messages announcing it commit together or not at all."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from orchestrator.domain.models import Backfill, ErrorEntry, Target, TransferRun
from orchestrator.domain.states import (
    BACKFILL_ACTIVE,
    BACKFILL_DISPATCHABLE,
    BACKFILL_FINAL,
    BACKFILL_TERMINAL,
    BackfillState,
    RunState,
    action_holds,
    action_target,
    check_backfill_transition,
    sources_for,
    valid_actions,
)
from orchestrator.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from orchestrator.storage.database import Conn, Pool
from orchestrator.storage.queries import q

B = BackfillState

# What starting or re-planning a draft may set.
_DEFINITION_COLUMNS = frozenset(
    {
        "state",
        "name",
        "range_start",
        "range_end",
        "end_is_date",
        "end_inclusive",
        "range_input",
        "covered_from",
        "covered_to",
        "interval_type",
        "interval_units",
        "time_zone",
        "run_order",
        "reprocess",
        "variables",
        "runs_total",
        "runs_planned",
        "max_active_runs",
        "max_runs_per_minute",
        "max_rows_per_second",
        "priority",
    }
)

# A backfill may be re-planned until its first run starts.
REPLANNABLE = frozenset({B.CREATED, B.SCHEDULED, B.PAUSED})


def backfill_event(event: str, row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    """The payload of a backfill.* event: enough to act on without reading the API."""
    return {
        "type": event,
        "event_id": str(uuid4()),
        "backfill_id": row["id"],
        "backfill_uuid": str(row["uuid"]),
        "command_id": str(row["command_id"]),
        "target_id": row["target_id"],
        "state": row["state"],
        "rows_processed_count": row["rows_processed_count"],
        "rows_ingested_count": row["rows_ingested_count"],
        "runs_total": row["runs_total"],
        "runs_completed": row["runs_completed"],
        "runs_failed": row["runs_failed"],
        "runs_cancelled": row["runs_cancelled"],
        # The database's clock, like every other timestamp of the system.
        "occurred_at": row["updated_at"].isoformat(),
    }


async def enqueue(conn: Conn, routing_key: str, payload: dict[str, Any]) -> None:
    await conn.execute(q("enqueue"), routing_key, payload)


async def lock_backfill(conn: Conn, backfill_id: int) -> asyncpg.Record:
    row = await conn.fetchrow(q("lock_backfill"), backfill_id)
    if row is None:
        raise NotFound(f"backfill {backfill_id} not found")
    return row


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


_UNTHROTTLED = 2**31 - 1


async def dispatch_limits(
    conn: Conn, backfill: asyncpg.Record, capacity: int | None
) -> tuple[int, int]:
    """(how many runs the backfill may have queued or running, how many more its
    runs-per-minute throttle lets start now). Gives back queued runs beyond its fair share.
    The caller holds the backfill lock."""
    limit = backfill["max_active_runs"]
    if capacity is not None:
        share = await conn.fetchval(q("fair_share"), backfill["id"], capacity)
        limit = min(limit, share or limit)
        await conn.fetch(q("unqueue_excess"), backfill["id"], limit)
    allowed = _UNTHROTTLED
    if backfill["max_runs_per_minute"] is not None:
        # Whole tokens only; the rest accrues, and the dispatch sweep comes back for it.
        allowed = int(await conn.fetchval(q("refill_run_tokens"), backfill["id"]))
    return limit, allowed


async def one(conn: Conn, name: str, *args: Any) -> asyncpg.Record:
    """A statement that must return a row (its guard was checked under the lock)."""
    row = await conn.fetchrow(q(name), *args)
    if row is None:
        raise Conflict(f"{name} matched nothing: the row changed concurrently")
    return row


async def set_state(conn: Conn, backfill_id: int, state: BackfillState) -> asyncpg.Record:
    return await one(conn, "set_backfill_state", backfill_id, state.value, sources_for(state))


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


@dataclass(frozen=True)
class ClaimedRun:
    run: TransferRun
    backfill: asyncpg.Record
    # The target as it was when the run was claimed (read once per claiming transaction).
    target: Target | None = None


@dataclass(frozen=True)
class Checkpointed:
    """A checkpoint that counted, with what the run needs to know for its next batch."""

    max_rows_per_second: float | None


class Repository:
    def __init__(
        self, pool: Pool, *, capacity: int | None = None, cancel_inline_runs: int = 1000
    ) -> None:
        self.pool = pool
        # The dispatch capacity shared out by priority; None: each backfill alone.
        self.capacity = capacity
        # A cancel marks up to this many pending runs itself; more are marked afterwards
        # (sweep_cancelled_runs), so a cancel takes the same time however big the backfill.
        self.cancel_inline_runs = cancel_inline_runs

    # ---------------------------------------------------------------- targets

    async def insert_target(self, values: dict[str, Any]) -> Target:
        try:
            row = await self.pool.fetchrow(
                q("insert_target"),
                values["name"],
                values["kind"],
                values.get("source"),
                values.get("tables", []),
                values.get("sort_column"),
                values.get("sink"),
                values.get("handler"),
                values.get("variables", {}),
                values.get("chunk_size", 1000),
                values.get("interval_type", "day"),
                values.get("interval_units", 1),
                values["max_active_runs"],
                values["max_attempts"],
                values["team_id"],
            )
        except asyncpg.UniqueViolationError:
            raise Conflict(f"a target named {values['name']!r} already exists") from None
        assert row is not None
        return Target.from_row(row)

    async def get_target(self, target: int | str | UUID, team_id: int | None) -> Target:
        """By id or uuid (any team when team_id is None) or by name (names are per team; a
        name without a team means team 1, the default)."""
        if isinstance(target, int):
            row = await self.pool.fetchrow(q("get_target_by_id"), target, team_id)
        elif isinstance(target, UUID):
            row = await self.pool.fetchrow(q("get_target_by_uuid"), target, team_id)
        else:
            row = await self.pool.fetchrow(q("get_target_by_name"), target, team_id or 1)
        if row is None:
            raise NotFound(f"target {target!r} not found")
        return Target.from_row(row)

    async def list_targets(self, team_id: int, after: int | None, limit: int) -> list[Target]:
        rows = await self.pool.fetch(q("list_targets"), after, limit, team_id)
        return [Target.from_row(r) for r in rows]

    async def update_target(self, target_id: int, team_id: int, changes: dict[str, Any]) -> Target:
        if not changes:
            return await self.get_target(target_id, team_id)
        # Column names come from TargetPatch's fields, never from the request body's keys.
        allowed = {
            "name",
            "sort_column",
            "sink",
            "handler",
            "variables",
            "chunk_size",
            "interval_type",
            "interval_units",
            "max_active_runs",
            "max_attempts",
        }
        assert set(changes) <= allowed, set(changes) - allowed
        sets = ", ".join(f"{col} = ${i}" for i, col in enumerate(changes, start=3))
        try:
            row = await self.pool.fetchrow(
                f"UPDATE targets SET {sets}, updated_at = now() "
                "WHERE id = $1 AND team_id = $2 RETURNING *",
                target_id,
                team_id,
                *changes.values(),
            )
        except asyncpg.UniqueViolationError:
            raise Conflict(f"a target named {changes.get('name')!r} already exists") from None
        if row is None:
            raise NotFound(f"target {target_id} not found")
        return Target.from_row(row)

    async def delete_target(self, target_id: int, team_id: int) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            if await conn.fetchrow(q("get_target_by_id"), target_id, team_id) is None:
                raise NotFound(f"target {target_id} not found")
            await conn.execute(q("lock_target"), target_id)
            if await conn.fetchval(q("target_has_active_backfill"), target_id):
                raise Conflict(
                    f"target {target_id} has an active backfill; cancel it before deleting"
                )
            await conn.execute(q("delete_target_backfills"), target_id)
            status = await conn.execute(q("delete_target"), target_id)
            if status.endswith(" 0"):
                raise NotFound(f"target {target_id} not found")

    # -------------------------------------------------------------- backfills

    async def insert_backfill(
        self, values: dict[str, Any], *, announce_create: dict[str, Any] | None
    ) -> tuple[Backfill, bool]:
        """Inserts unless a backfill with the same command id exists (then returns it and
        False). Refuses an overlap with an active backfill of the same target. A draft
        (`state: draft` in values) is stored without the overlap check: it holds nothing
        until it starts."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(q("lock_target"), values["target_id"])
            # Looked up under the target's lock: copies of one command handled at once then
            # find the first one's backfill, instead of failing the overlap check against it.
            existing = await conn.fetchrow(q("backfill_by_command"), values["command_id"])
            if existing is not None:
                return await self._with_report(conn, existing), False
            if values.get("state") != B.DRAFT:
                await self._refuse_overlap(conn, values)
            cols = list(values)
            placeholders = ", ".join(f"${i}" for i in range(1, len(cols) + 1))
            row = await conn.fetchrow(
                f"INSERT INTO backfills ({', '.join(cols)}) VALUES ({placeholders}) RETURNING *",
                *values.values(),
            )
            assert row is not None
            if announce_create is not None:
                await enqueue(conn, "command.create", announce_create)
            await enqueue(conn, "event.backfill.created", backfill_event("backfill.created", row))
            return Backfill.from_row(row), True

    async def _overlap(self, conn: Conn, values: dict[str, Any], exclude: int = 0) -> int | None:
        """The active backfill of the same target that `values` (a backfill to be) would
        clash with, other than `exclude`: the same table, or an overlapping date range."""
        if values["kind"] == "table":
            other = await conn.fetchval(
                q("active_table_backfill"), values["target_id"], values["table_name"], exclude
            )
        else:
            other = await conn.fetchval(
                q("overlapping_range_backfill"),
                values["target_id"],
                values["covered_from"],
                values["covered_to"],
                exclude,
            )
        return None if other is None else int(other)

    async def _refuse_overlap(self, conn: Conn, values: dict[str, Any], exclude: int = 0) -> None:
        """Conflict on an overlap. The caller holds the target's lock, so two overlapping
        creates cannot both pass."""
        other = await self._overlap(conn, values, exclude)
        if other is None:
            return
        # The uuid too: the ids some APIs show (Sequin's) are uuids, not this integer.
        other_uuid = await conn.fetchval("SELECT uuid FROM backfills WHERE id = $1", other)
        what = (
            f"backfill {other} ({other_uuid}) of {values['table_name']} is still active on "
            "this target; cancel it or wait for it to finish"
            if values["kind"] == "table"
            else f"the range overlaps active backfill {other} ({other_uuid}) of the same target"
        )
        raise Conflict(
            what,
            extra={"conflicting_backfill_id": other, "conflicting_backfill_uuid": str(other_uuid)},
        )

    async def find_overlap(self, values: dict[str, Any]) -> int | None:
        """The active backfill a backfill with `values` would conflict with, if any (for a
        dry run: read without the target's lock, so a create can still lose a race)."""
        async with self.pool.acquire() as conn:
            return await self._overlap(conn, values)

    async def start_draft(
        self,
        backfill_id: int,
        values: dict[str, Any],
        *,
        announce_create: dict[str, Any],
    ) -> Backfill:
        """Turns a draft into a backfill (state created) with its planned values, checked
        for overlaps like a new backfill, and sends `announce_create` so a worker plans it.
        InvalidTransition unless it is a draft."""
        async with self.pool.acquire() as conn, conn.transaction():
            # The target first, then the backfill: the order every other path takes.
            current = await conn.fetchrow(q("get_backfill_by_id"), backfill_id, None)
            if current is None:
                raise NotFound(f"backfill {backfill_id} not found")
            await conn.execute(q("lock_target"), current["target_id"])
            row = await lock_backfill(conn, backfill_id)
            check_backfill_transition(BackfillState(row["state"]), B.CREATED)
            await self._refuse_overlap(
                conn, {"kind": row["kind"], "target_id": row["target_id"], **values}
            )
            row = await self._update_backfill(conn, backfill_id, values | {"state": B.CREATED})
            await enqueue(conn, "command.create", announce_create)
            return await self._with_report(conn, row)

    async def replan(
        self, backfill_id: int, values: dict[str, Any], *, announce_create: dict[str, Any]
    ) -> Backfill:
        """Gives a backfill that has not started a new window (values from the service, as
        for a new backfill): its runs are dropped, planning starts over, and the
        `command.create` hands it to a planner. InvalidTransition once a run has started."""
        async with self.pool.acquire() as conn, conn.transaction():
            current = await conn.fetchrow(q("get_backfill_by_id"), backfill_id, None)
            if current is None:
                raise NotFound(f"backfill {backfill_id} not found")
            await conn.execute(q("lock_target"), current["target_id"])
            row = await lock_backfill(conn, backfill_id)
            state = BackfillState(row["state"])
            if row["started_at"] is not None or state not in REPLANNABLE:
                raise InvalidTransition(
                    "backfill", state.value, "re-plan", valid_actions(state), action=True
                )
            await self._refuse_overlap(
                conn, {"kind": row["kind"], "target_id": row["target_id"], **values}, backfill_id
            )
            await conn.execute(q("drop_runs"), backfill_id)
            await conn.fetchrow(q("reset_planning"), backfill_id)
            row = await self._update_backfill(conn, backfill_id, values)
            await enqueue(conn, "command.create", announce_create)
            return await self._with_report(conn, row)

    async def update_settings(self, backfill_id: int, changes: dict[str, Any]) -> Backfill:
        """Name and max_active_runs, at any time; a larger max_active_runs dispatches more at
        once."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await lock_backfill(conn, backfill_id)
            if changes:
                row = await self._update_backfill(conn, backfill_id, changes)
                await dispatch(conn, row, self.capacity)
            return await self._with_report(conn, row)

    async def update_draft(self, backfill_id: int, changes: dict[str, Any]) -> Backfill:
        """Changes a backfill's definition. Anything but the name changes only while it is a
        draft (checked under the lock, so a start racing with it wins or loses cleanly)."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await lock_backfill(conn, backfill_id)
            if set(changes) - {"name"} and row["state"] != B.DRAFT:
                state = BackfillState(row["state"])
                raise InvalidTransition(
                    "backfill", state.value, "re-plan", valid_actions(state), action=True
                )
            if changes:
                row = await self._update_backfill(conn, backfill_id, changes)
            return await self._with_report(conn, row)

    async def _update_backfill(
        self, conn: Conn, backfill_id: int, changes: dict[str, Any]
    ) -> asyncpg.Record:
        # Column names come from the service's own dicts, never from a request's keys.
        assert set(changes) <= _DEFINITION_COLUMNS, set(changes) - _DEFINITION_COLUMNS
        sets = ", ".join(f"{col} = ${i}" for i, col in enumerate(changes, start=2))
        row = await conn.fetchrow(
            f"UPDATE backfills SET {sets}, updated_at = now() WHERE id = $1 RETURNING *",
            backfill_id,
            *changes.values(),
        )
        assert row is not None
        return row

    async def latest_backfill(self, target_id: int, team_id: int) -> Backfill:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(q("latest_backfill"), target_id, team_id)
            if row is None:
                raise NotFound(f"target {target_id} has no backfill")
            return await self._with_report(conn, row)

    async def delete_backfill(self, backfill_id: int, *, by: int | None) -> Backfill:
        """Cancels the backfill if it is still active (running runs finish) and hides it
        from every API. Returns it as it was when deleted."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await lock_backfill(conn, backfill_id)
            if BackfillState(row["state"]) not in BACKFILL_TERMINAL:
                row = await self._cancel(conn, backfill_id, by)
            row = await one(conn, "mark_backfill_deleted", backfill_id)
            return await self._with_report(conn, row)

    async def _cancel(self, conn: Conn, backfill_id: int, by: int | None) -> asyncpg.Record:
        n = await conn.fetchval(q("cancel_runs"), backfill_id, self.cancel_inline_runs)
        row = await set_state(conn, backfill_id, B.CANCELLED)
        # Cancelled while planning: no more runs will be made (runs_planned keeps the plan).
        row = await conn.fetchrow(q("settle_runs_total"), backfill_id) or row
        if by is not None:
            row = await one(conn, "set_cancelled_by", backfill_id, by)
        if n:
            row = await one(conn, "add_cancelled_runs", backfill_id, n)
        await enqueue(conn, "event.backfill.cancelled", backfill_event("backfill.cancelled", row))
        return row

    async def _with_report(self, conn: Conn, row: asyncpg.Record) -> Backfill:
        # runs_failed counts the failed runs: without one there is no report to read.
        reports = await self._error_reports(conn, [row["id"]] if row["runs_failed"] else [])
        return Backfill.from_row(row, reports.get(row["id"]))

    async def _error_reports(self, conn: Conn, ids: Sequence[int]) -> dict[int, list[ErrorEntry]]:
        if not ids:
            return {}
        out: dict[int, list[ErrorEntry]] = {}
        for r in await conn.fetch(q("error_reports"), list(ids)):
            entry = ErrorEntry(
                run_id=r["run_id"],
                window_start=r["window_start"],
                window_end=r["window_end"],
                lower_key=r["lower_key"],
                upper_key=r["upper_key"],
                attempt=r["attempt"],
                error=r["error"],
            )
            out.setdefault(r["backfill_id"], []).append(entry)
        return out

    async def _backfill_row(
        self, conn: Conn, backfill_id: int | UUID, team_id: int | None
    ) -> asyncpg.Record:
        if isinstance(backfill_id, UUID):
            row = await conn.fetchrow(q("get_backfill_by_uuid"), backfill_id, team_id)
        else:
            row = await conn.fetchrow(q("get_backfill_by_id"), backfill_id, team_id)
        if row is None:
            raise NotFound(f"backfill {backfill_id} not found")
        return row

    async def get_backfill(self, backfill_id: int | UUID, team_id: int | None) -> Backfill:
        async with self.pool.acquire() as conn:
            row = await self._backfill_row(conn, backfill_id, team_id)
            return await self._with_report(conn, row)

    async def backfill_id_of(self, backfill_id: int | UUID, team_id: int | None) -> int:
        """The integer id of a backfill the team can see; NotFound otherwise."""
        async with self.pool.acquire() as conn:
            return int((await self._backfill_row(conn, backfill_id, team_id))["id"])

    async def backfill_by_command(self, command_id: UUID) -> Backfill | None:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(q("backfill_by_command"), command_id)
            return await self._with_report(conn, row) if row is not None else None

    async def list_backfills(
        self,
        team_id: int,
        target_id: int | None,
        states: list[str] | None,
        after: int | None,
        limit: int,
    ) -> list[Backfill]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(q("list_backfills"), target_id, states, after, limit, team_id)
            reports = await self._error_reports(conn, [r["id"] for r in rows if r["runs_failed"]])
            return [Backfill.from_row(r, reports.get(r["id"])) for r in rows]

    async def offset_page(
        self, team_id: int, target_id: int | None, kind: str | None, offset: int, limit: int
    ) -> tuple[list[Backfill], int]:
        """A page by offset and the total it is a page of, both counted by the database."""
        async with self.pool.acquire() as conn:
            args = (team_id, target_id, kind)
            rows = await conn.fetch(q("offset_page_backfills"), *args, offset, limit)
            total = await conn.fetchval(q("count_backfills"), *args)
            reports = await self._error_reports(conn, [r["id"] for r in rows if r["runs_failed"]])
            return [Backfill.from_row(r, reports.get(r["id"])) for r in rows], int(total)

    async def list_runs(
        self, backfill_id: int, states: list[str] | None, after: int | None, limit: int
    ) -> list[TransferRun]:
        rows = await self.pool.fetch(q("list_runs"), backfill_id, states, after, limit)
        return [TransferRun.from_row(r) for r in rows]

    async def change_state(
        self,
        backfill_id: int,
        action: str,
        *,
        command_id: UUID | None = None,
        command: dict[str, Any] | None = None,
        by: int | None = None,
        repeat_ok: bool = True,
    ) -> Backfill:
        """Cancel, pause or resume, with the runs that go with it, in one transaction.
        `command`, if given, goes to the outbox; `command_id` is recorded as applied so the
        same command arriving from the queue changes nothing. `by` is the acting key.
        A backfill already where the action leads is returned unchanged, with nothing sent,
        unless `repeat_ok` is false (then it is refused like any invalid action)."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await lock_backfill(conn, backfill_id)
            if repeat_ok and action_holds(BackfillState(row["state"]), action):
                if command_id is not None:
                    await conn.fetchval(
                        q("record_command"), command_id, f"command.{action}", backfill_id
                    )
                return await self._with_report(conn, row)
            new_state = action_target(
                BackfillState(row["state"]), action, started=row["started_at"] is not None
            )
            if new_state == B.CANCELLED:
                row = await self._cancel(conn, backfill_id, by)
            elif new_state == B.PAUSED:
                await conn.fetchval(q("unqueue_runs"), backfill_id)
                row = await set_state(conn, backfill_id, B.PAUSED)
                await enqueue(conn, "event.backfill.paused", backfill_event("backfill.paused", row))
            else:
                row = await set_state(conn, backfill_id, new_state)
                await enqueue(
                    conn, "event.backfill.resumed", backfill_event("backfill.resumed", row)
                )
                row = await maybe_finish(conn, row)
                await dispatch(conn, row, self.capacity)
            if command_id is not None:
                await conn.fetchval(
                    q("record_command"), command_id, f"command.{action}", backfill_id
                )
            if command is not None:
                await enqueue(conn, command["type"], command)
            return await self._with_report(conn, row)

    async def retry_failed(self, backfill_id: int) -> Backfill:
        """Puts every failed run back to pending with a fresh attempt count, and a failed
        backfill back to running, in one transaction; dispatch tops up at once.
        InvalidTransition from a final state; ValidationFailed when nothing failed."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await lock_backfill(conn, backfill_id)
            state = BackfillState(row["state"])
            if state in BACKFILL_FINAL or state == B.DRAFT:
                raise InvalidTransition(
                    "backfill", state.value, "retry", valid_actions(state), action=True
                )
            n = await conn.fetchval(q("retry_failed_runs"), backfill_id)
            if not n:
                raise ValidationFailed(
                    f"backfill {backfill_id} has no failed runs to retry",
                    extra={"current_state": state.value},
                )
            row = await one(conn, "uncount_failed_runs", backfill_id, n)
            if state == B.FAILED:
                row = await set_state(conn, backfill_id, B.RUNNING)
            await dispatch(conn, row, self.capacity)
            return await self._with_report(conn, row)

    async def record_command(self, command_id: UUID, kind: str, backfill_id: int | None) -> bool:
        """True if this command had not been applied before (and now counts as applied)."""
        got = await self.pool.fetchval(q("record_command"), command_id, kind, backfill_id)
        return got is not None

    async def command_applied(self, command_id: UUID) -> bool:
        return bool(
            await self.pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM applied_commands WHERE command_id = $1)", command_id
            )
        )

    # ---------------------------------------------------------------- planning

    async def claim_planning(
        self, backfill_id: int, token: UUID, lease: float
    ) -> asyncpg.Record | None:
        return await self.pool.fetchrow(q("claim_planning"), backfill_id, token, lease)

    async def planning_candidates(self, limit: int) -> list[int]:
        return [r["id"] for r in await self.pool.fetch(q("planning_candidates"), limit)]

    async def take_rows(self, backfill_id: int, rows: int) -> float:
        """Seconds to wait before delivering `rows` under the backfill's rows-per-second
        throttle (0 without one)."""
        # One statement, alone in its transaction: the lock it takes is the only one held.
        got = await self.pool.fetchrow(q("take_row_tokens"), backfill_id, rows)
        if got is None or got["row_tokens"] >= 0:
            return 0.0
        return float(-got["row_tokens"] / got["max_rows_per_second"])

    async def earlier_outcomes(
        self, target_id: int, backfill_id: int, starts: list[datetime]
    ) -> dict[tuple[datetime, datetime], str]:
        """(window_start, window_end) -> the state of that window's latest finished run in
        the target's other backfills, for the windows starting at `starts`."""
        rows = await self.pool.fetch(q("earlier_window_outcomes"), target_id, backfill_id, starts)
        return {(r["window_start"], r["window_end"]): r["state"] for r in rows}

    async def set_upper_bound(self, backfill_id: int, token: UUID, upper: list[str]) -> None:
        await self.pool.execute(q("set_upper_bound"), backfill_id, token, upper)

    async def set_initial_count(self, backfill_id: int, count: int) -> None:
        await self.pool.execute(q("set_initial_count"), backfill_id, count)

    async def add_runs(
        self,
        backfill_id: int,
        token: UUID,
        runs: list[dict[str, Any]],
        *,
        cursor: list[str] | None,
        next_seq: int,
        done: bool,
        total: int | None,
        lease: float,
    ) -> asyncpg.Record | None:
        """Inserts a batch of planned runs, stores the planning cursor and tops up dispatch,
        in one transaction. None means stop planning: cancelled, or the lease was lost."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await lock_backfill(conn, backfill_id)
            if row["planner_token"] != token or row["state"] in (
                B.CANCELLED,
                B.COMPLETED,
                B.FAILED,
            ):
                return None
            status = await conn.execute(q("insert_runs"), backfill_id, runs)
            inserted = int(status.rsplit(" ", 1)[1])
            row = await one(
                conn,
                "advance_planning",
                backfill_id,
                token,
                cursor,
                next_seq,
                done,
                total,
                lease,
                inserted,
            )
            row = await maybe_finish(conn, row)
            await dispatch(conn, row, self.capacity)
            return row

    # --------------------------------------------------------------- execution

    async def claim_run(
        self, run_id: int, backfill_id: int, token: UUID, lease: float, worker_id: str
    ) -> ClaimedRun | None:
        async with self.pool.acquire() as conn, conn.transaction():
            backfill = await conn.fetchrow(q("lock_backfill"), backfill_id)
            if backfill is None or backfill["state"] not in BACKFILL_DISPATCHABLE:
                return None
            run = await conn.fetchrow(q("claim_run"), run_id, token, lease, worker_id)
            if run is None:
                return None
            await conn.execute(q("mark_backfill_started"), backfill_id)
            return ClaimedRun(TransferRun.from_row(run), backfill)

    async def heartbeat(self, run_id: int, token: UUID, lease: float) -> bool:
        return await self.pool.fetchval(q("heartbeat_run"), run_id, token, lease) is not None

    async def checkpoint(
        self,
        run_id: int,
        backfill_id: int,
        token: UUID,
        cursor: list[str],
        processed: int,
        ingested: int,
        lease: float,
    ) -> Checkpointed | None:
        """Stores progress after a delivered batch and rolls the rows up, fenced by the lease:
        None means this worker lost the run and must stop writing. Safe to retry: a
        checkpoint whose commit went through but whose answer was lost finds its cursor
        stored already (cursors only move forward) and adds nothing twice. The answer
        carries the backfill's current rows-per-second throttle, read under the lock this
        takes anyway, so a change made while the run works reaches it at no extra cost."""
        async with self.pool.acquire() as conn, conn.transaction():
            backfill = await lock_backfill(conn, backfill_id)
            done = Checkpointed(max_rows_per_second=backfill["max_rows_per_second"])
            stored = await conn.fetchrow(q("owned_run_cursor"), run_id, token)
            if stored is None:
                return None
            if stored["cursor"] == cursor:
                return done
            ok = await conn.fetchval(
                q("checkpoint_run"), run_id, token, cursor, processed, ingested, lease
            )
            if ok is None:
                return None
            await conn.execute(q("add_rows"), backfill_id, processed, ingested)
            return done

    async def complete_run(
        self, run_id: int, backfill_id: int, token: UUID, processed: int, ingested: int
    ) -> TransferRun | None:
        """The completed run, with its row totals over every attempt and checkpoint; None
        if the lease was lost. `processed`/`ingested` are rows not checkpointed yet."""
        async with self.pool.acquire() as conn, conn.transaction():
            await lock_backfill(conn, backfill_id)
            run = await conn.fetchrow(q("complete_run"), run_id, token, processed, ingested)
            if run is None:
                return None
            await conn.execute(q("add_rows"), backfill_id, processed, ingested)
            row = await one(conn, "count_run_end", backfill_id, 1, 0)
            row = await maybe_finish(conn, row)
            await dispatch(conn, row, self.capacity)
            return TransferRun.from_row(run)

    async def fail_attempt(
        self,
        run_id: int,
        backfill_id: int,
        token: UUID,
        error: str,
        *,
        retry_in: float | None,
    ) -> RunState | None:
        """Ends a failed attempt: back to pending after `retry_in` seconds, or failed for good
        when `retry_in` is None (attempts used up). None if the lease was lost."""
        async with self.pool.acquire() as conn, conn.transaction():
            backfill = await lock_backfill(conn, backfill_id)
            return await end_attempt(conn, backfill, run_id, token, error, retry_in, self.capacity)

    async def release_run(self, run_id: int, backfill_id: int, token: UUID) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            backfill = await lock_backfill(conn, backfill_id)
            released = await conn.fetchval(q("release_run"), run_id, token)
            if released is None:
                return False
            if backfill["state"] == B.CANCELLED:
                # Cancelled meanwhile: the handed-back run must not wait for a dispatch.
                n = await conn.fetchval(q("cancel_pending_run"), run_id)
                await one(conn, "add_cancelled_runs", backfill_id, n)
            else:
                await dispatch(conn, backfill, self.capacity)
            return True

    async def reap_expired(self, limit: int) -> int:
        """Runs whose lease expired go back to pending (attempt already counted at claim) or
        fail once their attempts are used up."""
        reaped = 0
        for r in await self.pool.fetch(q("expired_leases"), limit):
            async with self.pool.acquire() as conn, conn.transaction():
                backfill = await lock_backfill(conn, r["backfill_id"])
                run = await conn.fetchrow(
                    "SELECT * FROM transfer_runs WHERE id = $1 AND state = 'running' "
                    "AND lease_expires_at < now() FOR UPDATE",
                    r["id"],
                )
                if run is None:
                    continue
                error = f"lease expired (worker {run['worker_id']} stopped heartbeating)"
                retry_in = 0.0 if run["attempt"] < backfill["max_attempts"] else None
                await end_attempt(
                    conn, backfill, run["id"], run["lease_token"], error, retry_in, self.capacity
                )
                reaped += 1
        return reaped

    async def sweep_cancelled_runs(self, chunk: int) -> int:
        """Marks the pending runs of cancelled backfills cancelled (their cancel counted
        them), a chunk per transaction; returns how many."""
        swept = 0
        while True:
            n = len(await self.pool.fetch(q("sweep_cancelled_runs"), chunk))
            swept += n
            if n < chunk:
                return swept

    async def dispatch_due(self, limit: int) -> int:
        queued = 0
        for backfill_id in [
            r["id"] for r in await self.pool.fetch(q("dispatchable_backfills"), limit)
        ]:
            async with self.pool.acquire() as conn, conn.transaction():
                queued += await dispatch(
                    conn, await lock_backfill(conn, backfill_id), self.capacity
                )
        return queued

    async def redispatch_stale(self, older_than: float, limit: int) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(q("stale_queued"), older_than, limit)
            for r in rows:
                await enqueue(
                    conn,
                    "run.dispatch",
                    {
                        "type": "run.dispatch",
                        "run_id": r["id"],
                        "backfill_id": r["backfill_id"],
                    },
                )
            return len(rows)

    # ------------------------------------------------------------------ outbox

    async def prune_outbox(self, older_than: float) -> None:
        await self.pool.execute(q("prune_outbox"), older_than)

    # ------------------------------------------------------------------ workers

    async def worker_seen(self, worker_id: str, hostname: str, pid: int, roles: list[str]) -> None:
        await self.pool.execute(q("worker_seen"), worker_id, hostname, pid, roles)

    async def worker_stopped(self, worker_id: str) -> None:
        await self.pool.execute(q("worker_stopped"), worker_id)

    async def overview(self, stale_after_seconds: float = 30.0) -> dict[str, Any]:
        async with self.pool.acquire() as conn:
            backfills = {r["state"]: r["n"] for r in await conn.fetch(q("overview_backfills"))}
            runs = {r["state"]: r["n"] for r in await conn.fetch(q("overview_runs"))}
            oldest = await conn.fetchrow(q("overview_oldest_pending"))
            workers = await conn.fetch(q("overview_workers"), stale_after_seconds)
            outbox = await conn.fetchrow(q("overview_outbox"))
        assert outbox is not None
        return {
            "backfills": backfills,
            "runs": runs,
            "oldest_pending_run": dict(oldest) if oldest is not None else None,
            "workers": [dict(w) for w in workers],
            "outbox": {"unsent": outbox["unsent"], "oldest_unsent_at": outbox["oldest"]},
        }

    async def active_backfill_progress(self, limit: int) -> list[dict[str, Any]]:
        """The counters of up to `limit` active backfills, oldest first (for the metrics)."""
        rows = await self.pool.fetch(
            q("active_backfill_progress"), sorted(s.value for s in BACKFILL_ACTIVE), limit
        )
        return [dict(r) for r in rows]
