"""Backfills as the API and the commands see them: created (checked for overlaps under the
target's lock), read with their error reports, paged, re-planned, cancelled, paused,
resumed, retried and deleted. Each change commits with its runs, counters and the messages
announcing it, or not at all."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg

from orchestrator.domain.models import Backfill, ErrorEntry
from orchestrator.domain.states import (
    BACKFILL_FINAL,
    BACKFILL_REPLANNABLE,
    BACKFILL_TERMINAL,
    BackfillState,
    action_holds,
    action_target,
    check_backfill_transition,
    valid_actions,
)
from orchestrator.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from orchestrator.storage.commands import backfill_event, enqueue, record_command
from orchestrator.storage.database import Conn, Pool
from orchestrator.storage.lifecycle import dispatch, lock_backfill, maybe_finish, one, set_state
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


class BackfillStore:
    def __init__(
        self, pool: Pool, *, capacity: int | None = None, cancel_inline_runs: int = 1000
    ) -> None:
        self.pool = pool
        # The dispatch capacity shared out by priority; None: each backfill alone.
        self.capacity = capacity
        # A cancel marks up to this many pending runs itself; more are marked afterwards
        # (sweep_cancelled_runs), so a cancel takes the same time however big the backfill.
        self.cancel_inline_runs = cancel_inline_runs

    async def insert(
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
            if row["started_at"] is not None or state not in BACKFILL_REPLANNABLE:
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

    async def latest(self, target_id: int, team_id: int) -> Backfill:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(q("latest_backfill"), target_id, team_id)
            if row is None:
                raise NotFound(f"target {target_id} has no backfill")
            return await self._with_report(conn, row)

    async def delete(self, backfill_id: int, *, by: int | None) -> Backfill:
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

    async def get(self, backfill_id: int | UUID, team_id: int | None) -> Backfill:
        async with self.pool.acquire() as conn:
            row = await self._backfill_row(conn, backfill_id, team_id)
            return await self._with_report(conn, row)

    async def id_of(self, backfill_id: int | UUID, team_id: int | None) -> int:
        """The integer id of a backfill the team can see; NotFound otherwise."""
        async with self.pool.acquire() as conn:
            return int((await self._backfill_row(conn, backfill_id, team_id))["id"])

    async def by_command(self, command_id: UUID) -> Backfill | None:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(q("backfill_by_command"), command_id)
            return await self._with_report(conn, row) if row is not None else None

    async def page(
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
                    await record_command(conn, command_id, f"command.{action}", backfill_id)
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
                await record_command(conn, command_id, f"command.{action}", backfill_id)
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
