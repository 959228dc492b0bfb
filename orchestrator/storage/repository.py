"""TEMPORARY facade for the merge of issue 12: the old `Repository`, every method delegating
to the store of its aggregate (orchestrator.storage.stores.Storage), so that
orchestrator/service.py and api/ keep working while they are split into use cases in a
parallel branch. The integrator removes this module once they call the stores directly;
nothing new should import it. The method-by-method map is in the branch's report."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from orchestrator.domain.claims import Checkpointed, ClaimedRun
from orchestrator.domain.models import Backfill, BackfillRow, Target, TransferRun
from orchestrator.domain.states import BACKFILL_REPLANNABLE as REPLANNABLE
from orchestrator.domain.states import RunState
from orchestrator.storage.commands import backfill_event, enqueue
from orchestrator.storage.database import Pool
from orchestrator.storage.stores import Storage

# Re-exported for the modules that import them from here until the merge: REPLANNABLE
# (service.py), enqueue (storage/progress.py), backfill_event.
__all__ = ["REPLANNABLE", "Repository", "backfill_event", "enqueue"]


class Repository:
    def __init__(
        self,
        pool: Pool,
        *,
        capacity: int | None = None,
        cancel_inline_runs: int = 1000,
        storage: Storage | None = None,
    ) -> None:
        """`storage`: the process's stores, when it built them already (open_context)."""
        self.pool = pool
        self.capacity = capacity
        self.storage = storage or Storage.build(
            pool, capacity=capacity, cancel_inline_runs=cancel_inline_runs
        )

    # ---------------------------------------------------------------- targets

    async def insert_target(self, values: dict[str, Any]) -> Target:
        return await self.storage.targets.insert(values)

    async def get_target(self, target: int | str | UUID, team_id: int | None) -> Target:
        return await self.storage.targets.get(target, team_id)

    async def list_targets(self, team_id: int, after: int | None, limit: int) -> list[Target]:
        return await self.storage.targets.page(team_id, after, limit)

    async def update_target(self, target_id: int, team_id: int, changes: dict[str, Any]) -> Target:
        return await self.storage.targets.update(target_id, team_id, changes)

    async def delete_target(self, target_id: int, team_id: int) -> None:
        await self.storage.targets.delete(target_id, team_id)

    # -------------------------------------------------------------- backfills

    async def insert_backfill(
        self, values: dict[str, Any], *, announce_create: dict[str, Any] | None
    ) -> tuple[Backfill, bool]:
        return await self.storage.backfills.insert(values, announce_create=announce_create)

    async def find_overlap(self, values: dict[str, Any]) -> int | None:
        return await self.storage.backfills.find_overlap(values)

    async def start_draft(
        self, backfill_id: int, values: dict[str, Any], *, announce_create: dict[str, Any]
    ) -> Backfill:
        return await self.storage.backfills.start_draft(
            backfill_id, values, announce_create=announce_create
        )

    async def replan(
        self, backfill_id: int, values: dict[str, Any], *, announce_create: dict[str, Any]
    ) -> Backfill:
        return await self.storage.backfills.replan(
            backfill_id, values, announce_create=announce_create
        )

    async def update_settings(self, backfill_id: int, changes: dict[str, Any]) -> Backfill:
        return await self.storage.backfills.update_settings(backfill_id, changes)

    async def update_draft(self, backfill_id: int, changes: dict[str, Any]) -> Backfill:
        return await self.storage.backfills.update_draft(backfill_id, changes)

    async def latest_backfill(self, target_id: int, team_id: int) -> Backfill:
        return await self.storage.backfills.latest(target_id, team_id)

    async def delete_backfill(self, backfill_id: int, *, by: int | None) -> Backfill:
        return await self.storage.backfills.delete(backfill_id, by=by)

    async def get_backfill(self, backfill_id: int | UUID, team_id: int | None) -> Backfill:
        return await self.storage.backfills.get(backfill_id, team_id)

    async def backfill_id_of(self, backfill_id: int | UUID, team_id: int | None) -> int:
        return await self.storage.backfills.id_of(backfill_id, team_id)

    async def backfill_by_command(self, command_id: UUID) -> Backfill | None:
        return await self.storage.backfills.by_command(command_id)

    async def list_backfills(
        self,
        team_id: int,
        target_id: int | None,
        states: list[str] | None,
        after: int | None,
        limit: int,
    ) -> list[Backfill]:
        return await self.storage.backfills.page(team_id, target_id, states, after, limit)

    async def offset_page(
        self, team_id: int, target_id: int | None, kind: str | None, offset: int, limit: int
    ) -> tuple[list[Backfill], int]:
        return await self.storage.backfills.offset_page(team_id, target_id, kind, offset, limit)

    async def list_runs(
        self, backfill_id: int, states: list[str] | None, after: int | None, limit: int
    ) -> list[TransferRun]:
        return await self.storage.runs.page(backfill_id, states, after, limit)

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
        return await self.storage.backfills.change_state(
            backfill_id, action, command_id=command_id, command=command, by=by, repeat_ok=repeat_ok
        )

    async def retry_failed(self, backfill_id: int) -> Backfill:
        return await self.storage.backfills.retry_failed(backfill_id)

    # --------------------------------------------------------------- commands

    async def record_command(self, command_id: UUID, kind: str, backfill_id: int | None) -> bool:
        return await self.storage.commands.record(command_id, kind, backfill_id)

    async def command_applied(self, command_id: UUID) -> bool:
        return await self.storage.commands.applied(command_id)

    # ---------------------------------------------------------------- planning

    async def claim_planning(
        self, backfill_id: int, token: UUID, lease: float
    ) -> BackfillRow | None:
        return await self.storage.planning.claim(backfill_id, token, lease)

    async def planning_candidates(self, limit: int) -> list[int]:
        return await self.storage.planning.candidates(limit)

    async def earlier_outcomes(
        self, target_id: int, backfill_id: int, starts: list[datetime]
    ) -> dict[tuple[datetime, datetime], str]:
        return await self.storage.planning.earlier_outcomes(target_id, backfill_id, starts)

    async def set_upper_bound(self, backfill_id: int, token: UUID, upper: list[str]) -> None:
        await self.storage.planning.set_upper_bound(backfill_id, token, upper)

    async def set_initial_count(self, backfill_id: int, count: int) -> None:
        await self.storage.planning.set_initial_count(backfill_id, count)

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
    ) -> BackfillRow | None:
        return await self.storage.planning.add_runs(
            backfill_id,
            token,
            runs,
            cursor=cursor,
            next_seq=next_seq,
            done=done,
            total=total,
            lease=lease,
        )

    # --------------------------------------------------------------- execution

    async def take_rows(self, backfill_id: int, rows: int) -> float:
        return await self.storage.runs.take_rows(backfill_id, rows)

    async def claim_run(
        self, run_id: int, backfill_id: int, token: UUID, lease: float, worker_id: str
    ) -> ClaimedRun | None:
        return await self.storage.runs.claim(run_id, backfill_id, token, lease, worker_id)

    async def heartbeat(self, run_id: int, token: UUID, lease: float) -> bool:
        return await self.storage.runs.heartbeat(run_id, token, lease)

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
        return await self.storage.runs.checkpoint(
            run_id, backfill_id, token, cursor, processed, ingested, lease
        )

    async def complete_run(
        self, run_id: int, backfill_id: int, token: UUID, processed: int, ingested: int
    ) -> TransferRun | None:
        return await self.storage.runs.complete(run_id, backfill_id, token, processed, ingested)

    async def fail_attempt(
        self,
        run_id: int,
        backfill_id: int,
        token: UUID,
        error: str,
        *,
        retry_in: float | None,
    ) -> RunState | None:
        return await self.storage.runs.fail_attempt(
            run_id, backfill_id, token, error, retry_in=retry_in
        )

    async def release_run(self, run_id: int, backfill_id: int, token: UUID) -> bool:
        return await self.storage.runs.release(run_id, backfill_id, token)

    # ------------------------------------------------------------- maintenance

    async def reap_expired(self, limit: int) -> int:
        return await self.storage.maintenance.reap_expired(limit)

    async def sweep_cancelled_runs(self, chunk: int) -> int:
        return await self.storage.maintenance.sweep_cancelled_runs(chunk)

    async def dispatch_due(self, limit: int) -> int:
        return await self.storage.maintenance.dispatch_due(limit)

    async def redispatch_stale(self, older_than: float, limit: int) -> int:
        return await self.storage.maintenance.redispatch_stale(older_than, limit)

    async def prune_outbox(self, older_than: float) -> None:
        await self.storage.maintenance.prune_outbox(older_than)

    async def worker_seen(self, worker_id: str, hostname: str, pid: int, roles: list[str]) -> None:
        await self.storage.maintenance.worker_seen(worker_id, hostname, pid, roles)

    async def worker_stopped(self, worker_id: str) -> None:
        await self.storage.maintenance.worker_stopped(worker_id)

    async def overview(self, stale_after_seconds: float = 30.0) -> dict[str, Any]:
        return (await self.storage.maintenance.overview(stale_after_seconds)).as_body()

    async def active_backfill_progress(self, limit: int) -> list[dict[str, Any]]:
        return await self.storage.maintenance.active_backfill_progress(limit)
