"""Frozen domain models. API schemas and message schemas live elsewhere and map onto these."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.domain.states import BackfillState, RunState
from orchestrator.domain.storable import StorableJson


class TargetKind(StrEnum):
    TABLE = "table"
    DATE_RANGE = "date_range"


class IntervalType(StrEnum):
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


class Reprocess(StrEnum):
    """Which windows of a date range a backfill runs, given what earlier backfills of the
    same target did."""

    ALL = "all"  # every window
    NONE = "none"  # skip windows an earlier backfill completed
    FAILED = "failed"  # only windows whose latest earlier run failed

    def keeps(self, earlier: str | None) -> bool:
        """Whether a window is run, given the state of its latest finished run in an
        earlier backfill of the target (None: never run)."""
        if self is Reprocess.NONE:
            return earlier != "completed"
        if self is Reprocess.FAILED:
            return earlier == "failed"
        return True


class RunOrder(StrEnum):
    OLDEST_FIRST = "oldest_first"
    NEWEST_FIRST = "newest_first"


class RowLike(Protocol):
    """What a storage row offers (an asyncpg Record, a dict), without importing a driver."""

    def items(self) -> Iterable[tuple[str, Any]]: ...


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def _from_mapping(cls, row: RowLike, **extra: Any) -> Any:
        """Builds from a storage row, keeping only this model's fields (rows carry more)."""
        fields = cls.model_fields
        # One pass over the row's columns: `name in record` on an asyncpg Record costs
        # about a microsecond a column, which made this the costliest step of a read.
        data = {k: v for k, v in row.items() if k in fields}
        data.update(extra)
        return cls.model_validate(data)


class SinkSpec(_Frozen):
    """Where a table backfill delivers rows. `type` picks the sink; `options` are its own."""

    type: str
    options: StorableJson = Field(default_factory=dict)


class HandlerSpec(_Frozen):
    """What a date-range run executes for its window."""

    type: str
    options: StorableJson = Field(default_factory=dict)


class Target(_Frozen):
    id: int
    uuid: UUID
    team_id: int = 1
    name: str
    kind: TargetKind
    source: str | None = None
    tables: list[str] = Field(default_factory=list)
    sort_column: str | None = None
    sink: SinkSpec | None = None
    handler: HandlerSpec | None = None
    variables: dict[str, Any] = Field(default_factory=dict)
    chunk_size: int = 1000
    interval_type: IntervalType = IntervalType.DAY
    interval_units: int = 1
    max_active_runs: int = 4
    max_attempts: int = 3
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: RowLike) -> Target:
        return cls._from_mapping(row)  # type: ignore[no-any-return]


class ErrorEntry(_Frozen):
    """One failed run in a backfill's error report."""

    run_id: int
    window_start: datetime | None = None
    window_end: datetime | None = None
    lower_key: list[str] | None = None
    upper_key: list[str] | None = None
    attempt: int
    error: str


class Backfill(_Frozen):
    id: int
    uuid: UUID
    team_id: int = 1
    target_id: int
    kind: TargetKind
    name: str | None = None
    state: BackfillState
    command_id: UUID | None = None
    # The API keys that created and cancelled it (None: a command from another service).
    created_by: int | None = None
    cancelled_by: int | None = None
    # table backfills
    table_name: str | None = None
    sort_column: str | None = None
    key_columns: list[str] | None = None
    chunk_size: int | None = None
    # date-range backfills
    range_start: datetime | None = None
    range_end: datetime | None = None
    end_is_date: bool = False
    end_inclusive: bool = False
    # start and end exactly as given (ISO strings), which a draft starts from.
    range_input: dict[str, Any] | None = None
    interval_type: IntervalType | None = None
    interval_units: int | None = None
    time_zone: str | None = None
    run_order: RunOrder | None = None
    reprocess: Reprocess = Reprocess.ALL
    variables: dict[str, Any] = Field(default_factory=dict)
    max_active_runs: int
    max_attempts: int
    max_runs_per_minute: float | None = None
    max_rows_per_second: float | None = None
    priority: int = 5
    planning_done: bool = False
    rows_initial_count: int | None = None
    rows_processed_count: int = 0
    rows_ingested_count: int = 0
    runs_total: int = 0
    runs_created: int = 0
    runs_planned: int | None = None
    runs_completed: int = 0
    runs_failed: int = 0
    runs_cancelled: int = 0
    error_report: list[ErrorEntry] = Field(default_factory=list)
    created_at: datetime
    started_at: datetime | None = None
    updated_at: datetime
    completed_at: datetime | None = None
    cancelled_at: datetime | None = None
    failed_at: datetime | None = None
    paused_at: datetime | None = None

    @classmethod
    def from_row(cls, row: RowLike, error_report: list[ErrorEntry] | None = None) -> Backfill:
        return cls._from_mapping(row, error_report=error_report or [])  # type: ignore[no-any-return]


class TransferRun(_Frozen):
    id: int
    backfill_id: int
    seq: int
    state: RunState
    lower_key: list[str] | None = None  # exclusive; None means from the start
    upper_key: list[str] | None = None  # inclusive
    window_start: datetime | None = None
    window_end: datetime | None = None
    cursor: list[str] | None = None  # last key delivered (table runs)
    attempt: int = 0
    lease_token: UUID | None = None
    lease_expires_at: datetime | None = None
    worker_id: str | None = None
    not_before: datetime | None = None
    rows_processed: int = 0
    rows_ingested: int = 0
    error: str | None = None
    created_at: datetime
    queued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime

    @classmethod
    def from_row(cls, row: RowLike) -> TransferRun:
        return cls._from_mapping(row)  # type: ignore[no-any-return]


class Window(_Frozen):
    """One date-range window, [start, end)."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class TableScan:
    """What a table backfill's planner and runs read its table by."""

    table_name: str
    key_columns: list[str]
    key_types: list[str]
    chunk_size: int


class BackfillRow(Backfill):
    """A backfill with what only the workers read: the planner's lease and progress (where a
    planner that takes over resumes) and the key types of a table backfill."""

    key_types: list[str] | None = None
    upper_bound: list[str] | None = None
    planning_cursor: list[str] | None = None
    planning_seq: int = 0
    planner_token: UUID | None = None

    @property
    def table(self) -> TableScan:
        """The scan of a table backfill (every table backfill stores all four)."""
        if (
            self.table_name is None
            or self.key_columns is None
            or self.key_types is None
            or self.chunk_size is None
        ):
            raise ValueError(f"backfill {self.id} is not a table backfill")
        return TableScan(self.table_name, self.key_columns, self.key_types, self.chunk_size)

    @classmethod
    def from_row(cls, row: RowLike, error_report: list[ErrorEntry] | None = None) -> BackfillRow:
        return cls._from_mapping(row, error_report=error_report or [])  # type: ignore[no-any-return]
