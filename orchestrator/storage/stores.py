"""The stores of one process, built once from its pool: what processes construct and hand
to the workers and use cases, each taking the stores of its own aggregates."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.storage.backfills import BackfillStore
from orchestrator.storage.batches import Batches
from orchestrator.storage.commands import CommandStore, Outbox
from orchestrator.storage.database import Pool
from orchestrator.storage.grants import GrantRepository
from orchestrator.storage.maintenance import MaintenanceStore
from orchestrator.storage.planning import PlanningStore
from orchestrator.storage.progress import ProgressStore
from orchestrator.storage.runs import RunStore
from orchestrator.storage.targets import TargetStore


@dataclass(frozen=True)
class Storage:
    pool: Pool
    targets: TargetStore
    backfills: BackfillStore
    planning: PlanningStore
    runs: RunStore
    batches: Batches
    commands: CommandStore
    outbox: Outbox
    maintenance: MaintenanceStore
    progress: ProgressStore
    grants: GrantRepository

    @staticmethod
    def capacity(setting: int | None) -> int:
        """The capacity the stores pass to dispatch for BACKFILL_DISPATCH_CAPACITY: pinned,
        or (unset) 0, which the dispatch statements read as the summed concurrency of the
        executor workers whose heartbeats say they are up."""
        return setting if setting is not None else 0

    @classmethod
    def build(
        cls, pool: Pool, *, capacity: int | None = None, cancel_inline_runs: int = 1000
    ) -> Storage:
        """`capacity`: the dispatch capacity shared out by priority (None: each backfill
        alone; 0: the live workers', see `capacity()`); `cancel_inline_runs`: how many
        pending runs a cancel marks itself."""
        return cls(
            pool=pool,
            targets=TargetStore(pool),
            backfills=BackfillStore(pool, capacity=capacity, cancel_inline_runs=cancel_inline_runs),
            planning=PlanningStore(pool, capacity=capacity),
            runs=RunStore(pool, capacity=capacity),
            batches=Batches(pool, capacity=capacity),
            commands=CommandStore(pool),
            outbox=Outbox(pool),
            maintenance=MaintenanceStore(pool, capacity=capacity),
            progress=ProgressStore(pool),
            grants=GrantRepository(pool),
        )
