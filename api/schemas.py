"""Response models: what the API promises to render, separate from the domain models.

A response model reads its fields from the domain object's attributes of the same name
(`from_attributes`; a `validation_alias` where the API's name differs). Only the fields
declared here are read, so a field added to a domain model (a lease token, a secret) is not
published until someone declares it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from api.render import iso_datetime
from api.views import planning_figures
from orchestrator.domain.models import (
    Backfill,
    IntervalType,
    Reprocess,
    RunOrder,
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
    model_config = ConfigDict(frozen=True, from_attributes=True)


class _With:
    """An object's attributes with some added: a response field the domain object does not
    hold (a backfill's progress), for `model_validate` to read beside the rest."""

    def __init__(self, source: object, added: Mapping[str, Any]) -> None:
        self._source = source
        self._added = added

    def __getattr__(self, name: str) -> Any:
        if name in self._added:
            return self._added[name]
        return getattr(self._source, name)


class PluginOut(_Out):
    """A sink or handler: its type and the options the user configured."""

    type: str
    options: dict[str, Any]


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
        return cls.model_validate(target)


class ErrorEntryOut(_Out):
    run_id: int
    window_start: Timestamp | None
    window_end: Timestamp | None
    lower_key: list[str] | None
    upper_key: list[str] | None
    attempt: int
    error: str


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
        rows, fraction = planning_figures(b)
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
    table: str | None = Field(validation_alias="table_name")
    sort_column: str | None
    chunk_size: int | None
    start: Timestamp | None = Field(validation_alias="range_start")
    end: Timestamp | None = Field(validation_alias="range_end")
    end_inclusive: bool
    reprocess: Reprocess
    max_runs_per_minute: float | None
    max_rows_per_second: float | None
    priority: int
    interval_type: IntervalType | None
    interval_units: int | None
    time_zone: str | None
    order: RunOrder | None = Field(validation_alias="run_order")
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
        added = {"planning": PlanningOut.from_domain(backfill), "progress": progress}
        return cls.model_validate(_With(backfill, added))


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
        return cls.model_validate(run)


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
        return cls.model_validate(result)
