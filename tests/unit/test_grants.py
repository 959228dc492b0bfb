"""Grant patterns, and the system schemas no grant reaches."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orchestrator.domain.grants import Access, DataNeed, SourceGrant, matches, within
from orchestrator.error_text import error_text, redact


@pytest.mark.parametrize(
    ("pattern", "table", "expected"),
    [
        ("analytics.orders", "analytics.orders", True),
        ("analytics.*", "analytics.orders", True),
        ("analytics.*", "analyticsx.orders", False),
        ("analytics.*", "public.orders", False),
        ("public.team2_*", "public.team2_orders", True),
        ("public.team2_*", "public.team1_orders", False),
        ("PUBLIC.Orders", "public.orders", True),  # unquoted names fold to lower case
        ("*.*", "sales.orders", True),
    ],
)
def test_patterns(pattern: str, table: str, expected: bool) -> None:
    assert matches(pattern, table) is expected


@pytest.mark.parametrize(
    "table",
    [
        "pg_catalog.pg_authid",
        "information_schema.tables",
        "pg_toast.pg_toast_1262",
        "orchestrator.api_keys",
        "ORCHESTRATOR.api_keys",
        "pg_temp_3.shadow",
        "pg_toast_temp_3.x",
    ],
)
def test_system_schemas_are_outside_every_grant(table: str) -> None:
    assert not within(["*.*"], table)
    assert not SourceGrant(team_id=1, source="s", read_tables=["*.*"]).may_read(table)


@pytest.mark.parametrize(
    "pattern", ["orders", "pg_catalog.*", "orchestrator.api_keys", "a.b.c", "public.x;drop"]
)
def test_a_grant_refuses_unqualified_and_system_patterns(pattern: str) -> None:
    with pytest.raises(ValidationError):
        SourceGrant(team_id=1, source="s", read_tables=[pattern])


def test_needs_against_a_grant() -> None:
    grant = SourceGrant(
        team_id=2, source="s", read_tables=["public.*"], write_tables=["public.out"]
    )
    assert DataNeed("s", Access.READ, "public.a").allowed_by(grant)
    assert not DataNeed("s", Access.WRITE, "public.a").allowed_by(grant)
    assert DataNeed("s", Access.WRITE, "public.out").allowed_by(grant)
    assert not DataNeed("s", Access.SQL).allowed_by(grant)
    assert not DataNeed("s", Access.READ, "public.a").allowed_by(None)
    assert grant.sql_writes
    assert not SourceGrant(team_id=2, source="s", sql_handler=True).sql_writes


def test_refusals_read_the_same_for_any_name() -> None:
    one = DataNeed("x", Access.READ, "public.exists").refusal()
    other = DataNeed("x", Access.READ, "public.missing").refusal()
    assert one.replace("exists", "?") == other.replace("missing", "?")


def test_error_text_is_bounded_and_carries_no_connection_string() -> None:
    text = error_text(
        RuntimeError("could not reach postgresql://etl:hunter2@db:5432/wh " + "x" * 5000)
    )
    assert "hunter2" not in text
    assert len(text) <= 1000
    assert "host=db password=hunter2" not in redact("host=db password=hunter2")
    assert redact("POST https://hooks.example.com/x refused") == (
        "POST https://hooks.example.com/x refused"
    )
