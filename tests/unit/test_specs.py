from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from orchestrator.domain.models import IntervalType, RunOrder
from orchestrator.domain.specs import (
    BackfillSpec,
    DateRangeTargetSpec,
    TableTargetSpec,
    TargetPatch,
    TargetSpec,
    qualify_table,
)

TARGETS: TypeAdapter[TableTargetSpec | DateRangeTargetSpec] = TypeAdapter(TargetSpec)

INJECTIONS = [
    "users; drop table x",
    "users;drop table x",
    "users --",
    "users/*x*/",
    'users"',
    "users'",
    "public.users; select 1",
    "a.b.c",
    ".users",
    "users.",
    "1users",
    "users\n",
    "users\x00",
    "us ers",
    "",
    "x" * 64,
]


def table_target(**overrides: Any) -> dict[str, Any]:
    return {
        "kind": "table",
        "name": "t",
        "tables": ["orders"],
        "sink": {"type": "null"},
    } | overrides


def test_schema_defaults_to_public() -> None:
    assert qualify_table("orders") == "public.orders"
    assert qualify_table("sales.orders") == "sales.orders"
    spec = TableTargetSpec.model_validate(table_target(tables=["orders", "sales.orders"]))
    assert spec.tables == ["public.orders", "sales.orders"]
    assert BackfillSpec(target=1, table="orders").table == "public.orders"
    assert BackfillSpec(target=1).table is None


def test_repeated_tables_after_qualifying_are_rejected() -> None:
    with pytest.raises(ValidationError, match="must not repeat"):
        TableTargetSpec.model_validate(table_target(tables=["orders", "public.orders"]))


def test_defaults() -> None:
    spec = BackfillSpec(target="nightly")
    assert spec.time_zone == "UTC"
    assert spec.order is RunOrder.OLDEST_FIRST
    assert spec.variables == {}
    target = DateRangeTargetSpec.model_validate({"name": "d", "handler": {"type": "noop"}})
    assert target.interval_type is IntervalType.DAY
    assert target.interval_units == 1
    assert target.max_attempts == 3


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (BackfillSpec, {"target": 1, "bogus": 1}),
        (TableTargetSpec, table_target(chunk=5)),
        (DateRangeTargetSpec, {"name": "d", "handler": {"type": "noop"}, "units": 2}),
        (TargetPatch, {"kind": "table"}),
    ],
)
def test_unknown_fields_are_rejected(model: type[Any], data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        model.model_validate(data)


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "../etc/passwd", "/etc/passwd", "UTC "])
def test_bad_time_zone_is_rejected(zone: str) -> None:
    with pytest.raises(ValidationError, match="unknown time zone"):
        BackfillSpec(target=1, time_zone=zone)


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata"])
def test_known_time_zones_pass(zone: str) -> None:
    assert BackfillSpec(target=1, time_zone=zone).time_zone == zone


@pytest.mark.parametrize("as_json", [False, True])
def test_date_only_strings_are_dates(as_json: bool) -> None:
    data = '{"target": 1, "start": "2024-01-01", "end": "2024-01-03"}'
    spec = (
        BackfillSpec.model_validate_json(data)
        if as_json
        else BackfillSpec.model_validate({"target": 1, "start": "2024-01-01", "end": "2024-01-03"})
    )
    assert type(spec.start) is date
    assert type(spec.end) is date
    assert spec.start == date(2024, 1, 1)


@pytest.mark.parametrize("as_json", [False, True])
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-01T10:00:00", datetime(2024, 1, 1, 10)),
        ("2024-01-01T00:00:00", datetime(2024, 1, 1)),
        ("2024-01-01 10:30", datetime(2024, 1, 1, 10, 30)),
        ("2024-01-01T10:00:00Z", datetime(2024, 1, 1, 10, tzinfo=UTC)),
    ],
)
def test_datetime_strings_are_datetimes(text: str, expected: datetime, as_json: bool) -> None:
    spec = (
        BackfillSpec.model_validate_json(f'{{"target": 1, "start": "{text}"}}')
        if as_json
        else BackfillSpec.model_validate({"target": 1, "start": text})
    )
    assert isinstance(spec.start, datetime)
    assert spec.start == expected
    assert (spec.start.tzinfo is None) == (expected.tzinfo is None)


def test_python_date_and_datetime_objects_keep_their_type() -> None:
    spec = BackfillSpec(target=1, start=date(2024, 1, 1), end=datetime(2024, 2, 1))
    assert type(spec.start) is date
    assert type(spec.end) is datetime


@pytest.mark.parametrize("text", ["2024-13-01", "2024-02-30", "yesterday", "2024-01-01\n"])
def test_bad_dates_are_rejected(text: str) -> None:
    with pytest.raises(ValidationError):
        BackfillSpec.model_validate({"target": 1, "start": text})


@pytest.mark.parametrize("table", INJECTIONS)
def test_table_names_reject_injection(table: str) -> None:
    with pytest.raises(ValidationError):
        BackfillSpec(target=1, table=table)
    with pytest.raises(ValidationError):
        TableTargetSpec.model_validate(table_target(tables=[table]))


@pytest.mark.parametrize("column", [*INJECTIONS, "public.id"])
def test_columns_reject_injection(column: str) -> None:
    with pytest.raises(ValidationError):
        TableTargetSpec.model_validate(table_target(sort_column=column))
    with pytest.raises(ValidationError):
        TargetPatch(sort_column=column)


@pytest.mark.parametrize("table", ["orders", "_x", "sales.orders", "a$b", "T1.c_2", "x" * 63])
def test_plain_identifiers_pass(table: str) -> None:
    assert BackfillSpec(target=1, table=table).table == qualify_table(table)


@pytest.mark.parametrize("name", ["users; drop table x", "", "-x", "a b", "x" * 129])
def test_names_are_restricted(name: str) -> None:
    with pytest.raises(ValidationError):
        BackfillSpec(target=name)
    with pytest.raises(ValidationError):
        TableTargetSpec.model_validate(table_target(name=name))


def test_target_union_picks_by_kind() -> None:
    table = TARGETS.validate_python(table_target())
    assert isinstance(table, TableTargetSpec)
    assert table.source == "main"
    date_range = TARGETS.validate_python(
        {"kind": "date_range", "name": "d", "handler": {"type": "noop"}, "interval_type": "week"}
    )
    assert isinstance(date_range, DateRangeTargetSpec)
    assert date_range.interval_type is IntervalType.WEEK


def test_target_union_reports_errors_for_the_chosen_kind_only() -> None:
    # A table target without its sink fails as a table target, not as "matches no member".
    with pytest.raises(ValidationError) as info:
        TARGETS.validate_python({"kind": "table", "name": "t", "tables": ["orders"]})
    locations = [e["loc"] for e in info.value.errors()]
    assert locations == [("table", "sink")]


@pytest.mark.parametrize("data", [{"name": "t"}, {"kind": "view", "name": "t"}])
def test_target_union_needs_a_known_kind(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TARGETS.validate_python(data)


@pytest.mark.parametrize(
    "data",
    [
        {"target": 1, "interval_units": 0},
        {"target": 1, "chunk_size": 0},
        {"target": 1, "max_attempts": 101},
        {"target": 1, "order": "random"},
        {"target": 1, "interval_type": "fortnight"},
    ],
)
def test_bounds_and_enums(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        BackfillSpec.model_validate(data)


def test_specs_are_frozen() -> None:
    spec = BackfillSpec(target=1)
    with pytest.raises(ValidationError):
        spec.time_zone = "Europe/Berlin"  # type: ignore[misc]


@pytest.mark.parametrize("bad", ["a\x00b", "\ud941"])
def test_text_postgres_cannot_store_is_refused_anywhere_in_variables(bad: str) -> None:
    """Found by fuzzing: NUL and unpaired surrogates reached jsonb and became a 500."""
    from pydantic import ValidationError

    from orchestrator.domain.specs import BackfillSpec

    for variables in ({bad: 1}, {"k": bad}, {"k": [{"deep": bad}]}):
        with pytest.raises(ValidationError):
            BackfillSpec(target=1, variables=variables)
    with pytest.raises(ValidationError):
        BackfillSpec(target=1, name=bad)
