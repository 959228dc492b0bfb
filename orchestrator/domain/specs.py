"""What a user asks for: the inputs to create targets and backfills.

The REST API and the `command.create` message both carry these, so a backfill made over HTTP
and one published straight to RabbitMQ go through the same validation."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from orchestrator.domain.models import HandlerSpec, IntervalType, Reprocess, RunOrder, SinkSpec
from orchestrator.domain.storable import StorableJson, StorableText

_IDENT = r"[A-Za-z_][A-Za-z0-9_$]{0,62}"
TABLE_RE = re.compile(rf"^(?:{_IDENT}\.)?{_IDENT}$")
COLUMN_RE = re.compile(rf"^{_IDENT}$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _date_or_datetime(value: object) -> object:
    """A bare `YYYY-MM-DD` is a date (its end is inclusive); anything else a datetime."""
    if isinstance(value, str) and _DATE_ONLY.match(value):
        return date.fromisoformat(value)
    return value


DateOrDatetime = Annotated[datetime | date, BeforeValidator(_date_or_datetime)]


def qualify_table(name: str) -> str:
    """`orders` -> `public.orders`; the schema defaults to public."""
    return name if "." in name else f"public.{name}"


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _not_all_digits(value: str) -> str:
    # Paths take "an id or a name", and digits mean an id.
    if value.isdigit():
        raise ValueError("a name cannot be all digits (it would read as an id)")
    return value


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


TimeZone = Annotated[str, AfterValidator(_known_zone)]

Name = Annotated[
    str,
    Field(min_length=1, max_length=128, pattern=NAME_RE.pattern),
    AfterValidator(_not_all_digits),
]
Column = Annotated[str, Field(min_length=1, max_length=63, pattern=COLUMN_RE.pattern)]
TableName = Annotated[str, Field(min_length=1, max_length=127, pattern=TABLE_RE.pattern)]


class _TargetCommon(_Spec):
    name: Name
    max_active_runs: int = Field(default=4, ge=1, le=1000)
    max_attempts: int = Field(default=3, ge=1, le=100)


class TableTargetSpec(_TargetCommon):
    kind: Literal["table"] = "table"
    source: Name = "main"
    tables: list[TableName] = Field(min_length=1, max_length=100)
    sort_column: Column | None = None
    sink: SinkSpec
    chunk_size: int = Field(default=1000, ge=1, le=1_000_000)

    @field_validator("tables")
    @classmethod
    def _qualify(cls, tables: list[str]) -> list[str]:
        qualified = [qualify_table(t) for t in tables]
        if len(set(qualified)) != len(qualified):
            raise ValueError("tables must not repeat")
        return qualified


class DateRangeTargetSpec(_TargetCommon):
    kind: Literal["date_range"] = "date_range"
    handler: HandlerSpec
    variables: StorableJson = Field(default_factory=dict)
    interval_type: IntervalType = IntervalType.DAY
    interval_units: int = Field(default=1, ge=1, le=10_000)


TargetSpec = Annotated[TableTargetSpec | DateRangeTargetSpec, Field(discriminator="kind")]


def _no_null_defaults(schema: dict[str, Any]) -> None:
    # A left-out field defaults to "unchanged", which JSON Schema cannot say; a null default
    # on a field that refuses null would be a lie, so the schema shows none.
    for prop in schema.get("properties", {}).values():
        allows_null = {"type": "null"} in prop.get("anyOf", [])
        if prop.get("default", 0) is None and not allows_null:
            del prop["default"]


class TargetPatch(_Spec):
    """Fields a target may change. Kind and source tables are fixed once created. A field
    left out stays as it is; null is refused (the schema does not offer it), except for
    sort_column, where null means "sort by the key"."""

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra=_no_null_defaults)

    name: Name | SkipJsonSchema[None] = None
    sort_column: Column | None = None
    sink: SinkSpec | SkipJsonSchema[None] = None
    handler: HandlerSpec | SkipJsonSchema[None] = None
    variables: StorableJson | SkipJsonSchema[None] = None
    chunk_size: Annotated[int, Field(ge=1, le=1_000_000)] | SkipJsonSchema[None] = None
    interval_type: IntervalType | SkipJsonSchema[None] = None
    interval_units: Annotated[int, Field(ge=1, le=10_000)] | SkipJsonSchema[None] = None
    max_active_runs: Annotated[int, Field(ge=1, le=1000)] | SkipJsonSchema[None] = None
    max_attempts: Annotated[int, Field(ge=1, le=100)] | SkipJsonSchema[None] = None

    @field_validator(
        "name",
        "sink",
        "handler",
        "variables",
        "chunk_size",
        "interval_type",
        "interval_units",
        "max_active_runs",
        "max_attempts",
    )
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Absent means "unchanged"; an explicit null would clear a value the target needs.
        # (sort_column may be null: it means "sort by the key".)
        if value is None:
            raise ValueError("may be left out, but not null")
        return value


BIGINT_MAX = 2**63 - 1

# A backfill's weight in the fair share of the dispatch capacity (1 lowest, 10 highest).
Priority = Annotated[
    int, Field(ge=1, le=10, description="Weight in the fair share of workers (1 to 10)")
]

# Throttles, across all workers together; changeable while the backfill runs.
RunsPerMinute = Annotated[
    float, Field(gt=0, le=1_000_000, description="Runs started per minute, at most")
]
RowsPerSecond = Annotated[
    float,
    Field(gt=0, le=1_000_000_000, description="Rows delivered per second, at most (tables)"),
]


class BackfillSpec(_Spec):
    """A backfill of one target. Table fields apply to table targets, window fields to
    date-range targets; the service checks which against the target's kind."""

    target: Annotated[int, Field(ge=1, le=BIGINT_MAX)] | Name = Field(
        description="The target's id or name"
    )
    name: Annotated[StorableText, Field(max_length=256)] | None = None
    # table
    table: TableName | None = None
    chunk_size: int | None = Field(default=None, ge=1, le=1_000_000)
    # date range
    start: DateOrDatetime | None = None
    end: DateOrDatetime | None = None
    interval_type: IntervalType | None = None
    interval_units: int | None = Field(default=None, ge=1, le=10_000)
    end_inclusive: bool = Field(
        default=False,
        description="For a datetime end: also make the window that starts exactly at end. "
        "A date end always includes its whole day.",
    )
    time_zone: TimeZone = "UTC"
    order: RunOrder = RunOrder.OLDEST_FIRST
    reprocess: Reprocess = Field(
        default=Reprocess.ALL,
        description="all: every window; none: skip windows an earlier backfill of the "
        "target completed; failed: only windows whose latest earlier run failed.",
    )
    variables: StorableJson = Field(default_factory=dict)
    # both
    max_active_runs: int | None = Field(default=None, ge=1, le=1000)
    max_attempts: int | None = Field(default=None, ge=1, le=100)
    max_runs_per_minute: RunsPerMinute | None = None
    max_rows_per_second: RowsPerSecond | None = None
    priority: Priority = 5

    @field_validator("table")
    @classmethod
    def _qualify(cls, value: str | None) -> str | None:
        return qualify_table(value) if value is not None else None


class DraftSpec(_Spec):
    """A date-range backfill stored before it starts (Mage creates backfills this way, then
    starts them with an update). Every field may be missing until it starts; as an update,
    only the fields given change (`model_fields_set`)."""

    name: Annotated[StorableText, Field(max_length=256)] | None = None
    start: DateOrDatetime | None = None
    end: DateOrDatetime | None = None
    end_inclusive: bool = False
    interval_type: IntervalType | None = None
    interval_units: int | None = Field(default=None, ge=1, le=10_000)
    time_zone: TimeZone = "UTC"
    order: RunOrder = RunOrder.OLDEST_FIRST
    variables: StorableJson = Field(default_factory=dict)


# The fields of a backfill that re-planning changes (before any run has started).
PLAN_FIELDS = frozenset(
    {
        "start",
        "end",
        "end_inclusive",
        "interval_type",
        "interval_units",
        "time_zone",
        "order",
        "variables",
    }
)


class BackfillPatch(_Spec):
    """What a backfill may change. Its window, interval, zone, order and variables change
    only while no run has started (a draft, or created/scheduled/paused before its first
    run): the backfill is planned again. The name, max_active_runs and the throttles change
    at any time. A field left out stays as it is; null is refused except for name and the
    throttles (null clears them)."""

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra=_no_null_defaults)

    name: Annotated[StorableText, Field(max_length=256)] | None = None
    start: DateOrDatetime | SkipJsonSchema[None] = None
    end: DateOrDatetime | SkipJsonSchema[None] = None
    end_inclusive: bool | SkipJsonSchema[None] = None
    interval_type: IntervalType | SkipJsonSchema[None] = None
    interval_units: Annotated[int, Field(ge=1, le=10_000)] | SkipJsonSchema[None] = None
    time_zone: TimeZone | SkipJsonSchema[None] = None
    order: RunOrder | SkipJsonSchema[None] = None
    variables: StorableJson | SkipJsonSchema[None] = None
    max_active_runs: Annotated[int, Field(ge=1, le=1000)] | SkipJsonSchema[None] = None
    # null removes the throttle
    max_runs_per_minute: RunsPerMinute | None = None
    max_rows_per_second: RowsPerSecond | None = None
    priority: Priority | SkipJsonSchema[None] = None

    @field_validator(
        "start",
        "end",
        "end_inclusive",
        "interval_type",
        "interval_units",
        "time_zone",
        "order",
        "variables",
        "max_active_runs",
        "priority",
    )
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be left out, but not null")
        return value
