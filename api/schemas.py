"""Response models: what the API promises to render, separate from the domain models.

Each `from_domain` names every field it copies, so a field added to a domain model (a lease
token, a secret) is not published until someone decides it should be."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from api.render import iso_datetime
from orchestrator.domain.models import (
    Backfill,
    ErrorEntry,
    HandlerSpec,
    IntervalType,
    Reprocess,
    RunOrder,
    SinkSpec,
    Target,
    TargetKind,
    TransferRun,
)
from orchestrator.domain.progress import Progress
from orchestrator.domain.states import BackfillState, RunState
from orchestrator.usecases.paging import Page
from orchestrator.usecases.preview import DryRun

Timestamp = Annotated[datetime, PlainSerializer(iso_datetime, return_type=str)]

ItemT = TypeVar("ItemT", bound=BaseModel)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class PluginOut(_Out):
    """A sink or handler: its type and the options the user configured."""

    type: str
    options: dict[str, Any]

    @classmethod
    def from_domain(cls, spec: SinkSpec | HandlerSpec | None) -> PluginOut | None:
        return None if spec is None else cls(type=spec.type, options=dict(spec.options))


class TargetOut(_Out):
    id: int
    uuid: UUID
    name: str
    kind: TargetKind
    source: str | None
    tables: list[str]
    sort_column: str | None
    sink: PluginOut | None
    handler: PluginOut | None
    variables: dict[str, Any]
    chunk_size: int
    interval_type: IntervalType
    interval_units: int
    max_active_runs: int
    max_attempts: int
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def from_domain(cls, target: Target) -> TargetOut:
        return cls(
            id=target.id,
            uuid=target.uuid,
            name=target.name,
            kind=target.kind,
            source=target.source,
            tables=list(target.tables),
            sort_column=target.sort_column,
            sink=PluginOut.from_domain(target.sink),
            handler=PluginOut.from_domain(target.handler),
            variables=dict(target.variables),
            chunk_size=target.chunk_size,
            interval_type=target.interval_type,
            interval_units=target.interval_units,
            max_active_runs=target.max_active_runs,
            max_attempts=target.max_attempts,
            created_at=target.created_at,
            updated_at=target.updated_at,
        )


class ErrorEntryOut(_Out):
    run_id: int
    window_start: Timestamp | None
    window_end: Timestamp | None
    lower_key: list[str] | None
    upper_key: list[str] | None
    attempt: int
    error: str

    @classmethod
    def from_domain(cls, entry: ErrorEntry) -> ErrorEntryOut:
        return cls(
            run_id=entry.run_id,
            window_start=entry.window_start,
            window_end=entry.window_end,
            lower_key=entry.lower_key,
            upper_key=entry.upper_key,
            attempt=entry.attempt,
            error=entry.error,
        )


class ProgressOut(_Out):
    """How far a backfill is and how fast it moves. `fraction`: done/total (rows for a table
    backfill whose rows were counted, runs otherwise), null while the total is unknown.
    `rows_per_second` and `runs_per_minute`: over the last `window_seconds` (or since the
    backfill started, if later), from the runs' checkpoints; null before it started.
    `eta_seconds`/`eta`: at the current rate, null unless it is moving (created, scheduled,
    running) at a known rate toward a known total."""

    fraction: float | None
    rows_per_second: float | None
    runs_per_minute: float | None
    eta_seconds: float | None
    eta: Timestamp | None
    window_seconds: int

    @classmethod
    def from_domain(cls, progress: Progress) -> ProgressOut:
        return cls(
            fraction=progress.fraction,
            rows_per_second=progress.rows_per_second,
            runs_per_minute=progress.runs_per_minute,
            eta_seconds=progress.eta_seconds,
            eta=progress.eta,
            window_seconds=progress.window_seconds,
        )


class PlanningOut(_Out):
    """How far planning has got: runs are cut while the first ones already execute."""

    done: bool = Field(description="Every run is planned")
    runs_created: int = Field(description="Runs cut so far")
    rows_planned: int | None = Field(
        description="Table backfills: about how many rows the planned runs cover"
    )
    fraction: float | None = Field(
        description="0 to 1: planned so far of the whole (null until the total is known)"
    )

    @classmethod
    def from_domain(cls, b: Backfill) -> PlanningOut:
        rows: int | None = None
        fraction: float | None = None
        if b.planning_done:
            fraction = 1.0
        if b.kind == TargetKind.TABLE and b.chunk_size:
            rows = b.runs_created * b.chunk_size
            if b.rows_initial_count is not None:
                rows = min(rows, b.rows_initial_count)
                if not b.planning_done and b.rows_initial_count > 0:
                    fraction = min(1.0, rows / b.rows_initial_count)
        elif not b.planning_done and b.runs_total > 0:
            fraction = min(1.0, b.runs_created / b.runs_total)
        return cls(
            done=b.planning_done, runs_created=b.runs_created, rows_planned=rows, fraction=fraction
        )


class BackfillOut(_Out):
    id: int
    uuid: UUID
    command_id: UUID | None
    target_id: int
    kind: TargetKind
    name: str | None
    state: BackfillState
    table: str | None
    sort_column: str | None
    chunk_size: int | None
    start: Timestamp | None
    end: Timestamp | None
    end_inclusive: bool
    reprocess: Reprocess
    max_runs_per_minute: float | None
    max_rows_per_second: float | None
    priority: int
    interval_type: IntervalType | None
    interval_units: int | None
    time_zone: str | None
    order: RunOrder | None
    variables: dict[str, Any]
    max_active_runs: int
    max_attempts: int
    rows_initial_count: int | None
    planning: PlanningOut
    rows_processed_count: int
    rows_ingested_count: int
    runs_total: int = Field(
        description="The runs the backfill has or will have. While planning: a date range's "
        "planned windows, a table's runs made so far. Once planning is done, or stopped by a "
        "cancel, exactly the runs that exist (`runs_created`)."
    )
    runs_created: int = Field(description="The runs that exist: made by the planner so far.")
    runs_planned: int | None = Field(
        description="The runs its plan makes: a date range's windows from creation, a "
        "table's (or a filtered date range's) once planning is done; null until known. A "
        "cancel during planning leaves it as planned, while `runs_total` drops to the runs "
        "that exist."
    )
    planning_done: bool = Field(description="Whether the planner has made every run.")
    runs_completed: int
    runs_failed: int
    runs_cancelled: int
    error_report: list[ErrorEntryOut]
    progress: ProgressOut
    created_at: Timestamp
    started_at: Timestamp | None
    updated_at: Timestamp
    completed_at: Timestamp | None
    cancelled_at: Timestamp | None
    failed_at: Timestamp | None
    paused_at: Timestamp | None

    @classmethod
    def from_domain(cls, backfill: Backfill, progress: Progress) -> BackfillOut:
        return cls(
            id=backfill.id,
            uuid=backfill.uuid,
            command_id=backfill.command_id,
            target_id=backfill.target_id,
            kind=backfill.kind,
            name=backfill.name,
            state=backfill.state,
            table=backfill.table_name,
            sort_column=backfill.sort_column,
            chunk_size=backfill.chunk_size,
            start=backfill.range_start,
            end=backfill.range_end,
            end_inclusive=backfill.end_inclusive,
            reprocess=backfill.reprocess,
            max_runs_per_minute=backfill.max_runs_per_minute,
            max_rows_per_second=backfill.max_rows_per_second,
            priority=backfill.priority,
            interval_type=backfill.interval_type,
            interval_units=backfill.interval_units,
            time_zone=backfill.time_zone,
            order=backfill.run_order,
            variables=dict(backfill.variables),
            max_active_runs=backfill.max_active_runs,
            max_attempts=backfill.max_attempts,
            rows_initial_count=backfill.rows_initial_count,
            planning=PlanningOut.from_domain(backfill),
            rows_processed_count=backfill.rows_processed_count,
            rows_ingested_count=backfill.rows_ingested_count,
            runs_total=backfill.runs_total,
            runs_created=backfill.runs_created,
            runs_planned=backfill.runs_planned,
            planning_done=backfill.planning_done,
            runs_completed=backfill.runs_completed,
            runs_failed=backfill.runs_failed,
            runs_cancelled=backfill.runs_cancelled,
            error_report=[ErrorEntryOut.from_domain(e) for e in backfill.error_report],
            progress=ProgressOut.from_domain(progress),
            created_at=backfill.created_at,
            started_at=backfill.started_at,
            updated_at=backfill.updated_at,
            completed_at=backfill.completed_at,
            cancelled_at=backfill.cancelled_at,
            failed_at=backfill.failed_at,
            paused_at=backfill.paused_at,
        )


class RunOut(_Out):
    """A transfer run as stored, minus its lease token: whoever holds the token can write the
    run's final state."""

    id: int
    backfill_id: int
    seq: int
    state: RunState
    lower_key: list[str] | None
    upper_key: list[str] | None
    window_start: Timestamp | None
    window_end: Timestamp | None
    cursor: list[str] | None
    attempt: int
    lease_expires_at: Timestamp | None
    worker_id: str | None
    not_before: Timestamp | None
    rows_processed: int
    rows_ingested: int
    error: str | None
    created_at: Timestamp
    queued_at: Timestamp | None
    started_at: Timestamp | None
    finished_at: Timestamp | None
    updated_at: Timestamp

    @classmethod
    def from_domain(cls, run: TransferRun) -> RunOut:
        return cls(
            id=run.id,
            backfill_id=run.backfill_id,
            seq=run.seq,
            state=run.state,
            lower_key=run.lower_key,
            upper_key=run.upper_key,
            window_start=run.window_start,
            window_end=run.window_end,
            cursor=run.cursor,
            attempt=run.attempt,
            lease_expires_at=run.lease_expires_at,
            worker_id=run.worker_id,
            not_before=run.not_before,
            rows_processed=run.rows_processed,
            rows_ingested=run.rows_ingested,
            error=run.error,
            created_at=run.created_at,
            queued_at=run.queued_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            updated_at=run.updated_at,
        )


class PageOut(_Out, Generic[ItemT]):
    """A keyset page: pass `next_after` back as `after`; null means this is the last page."""

    data: list[ItemT]
    next_after: int | None


def targets_page(page: Page[Target]) -> PageOut[TargetOut]:
    return PageOut[TargetOut](
        data=[TargetOut.from_domain(t) for t in page.items], next_after=page.next_after
    )


def backfills_page(page: Page[Backfill], progress: dict[int, Progress]) -> PageOut[BackfillOut]:
    return PageOut[BackfillOut](
        data=[BackfillOut.from_domain(b, progress[b.id]) for b in page.items],
        next_after=page.next_after,
    )


def runs_page(page: Page[TransferRun]) -> PageOut[RunOut]:
    return PageOut[RunOut](
        data=[RunOut.from_domain(r) for r in page.items], next_after=page.next_after
    )


class PlannedRunOut(_Out):
    """A run a backfill would make: a key range (table) or a window (date range)."""

    seq: int
    lower_key: list[str] | None
    upper_key: list[str] | None
    window_start: Timestamp | None
    window_end: Timestamp | None


class DryRunOut(_Out):
    """What creating the backfill would do; nothing was created."""

    dry_run: bool = True
    target_id: int
    kind: TargetKind
    runs_total: int | None
    rows_estimate: int | None
    conflicting_backfill_id: int | None
    runs: list[PlannedRunOut]
    next_after: int | None

    @classmethod
    def from_domain(cls, result: DryRun) -> DryRunOut:
        return cls(
            target_id=result.target_id,
            kind=result.kind,
            runs_total=result.runs_total,
            rows_estimate=result.rows_estimate,
            conflicting_backfill_id=result.conflicting_backfill_id,
            runs=[
                PlannedRunOut(
                    seq=r.seq,
                    lower_key=r.lower_key,
                    upper_key=r.upper_key,
                    window_start=r.window_start,
                    window_end=r.window_end,
                )
                for r in result.runs
            ],
            next_after=result.next_after,
        )
