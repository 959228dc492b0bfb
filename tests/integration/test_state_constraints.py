"""The state machines live in orchestrator.domain.states; the migrations' CHECK constraints
repeat their states in the database. Read back from the live schema (pg_constraint), each
constraint must admit exactly the domain's states: a state added to the domain without a
migration (or the reverse) fails here, not in production."""

from __future__ import annotations

import re
from enum import StrEnum

import asyncpg
import pytest

from orchestrator.domain.states import BackfillState, RunState
from orchestrator.storage.migrate import SCHEMA

pytestmark = pytest.mark.integration

_LITERAL = re.compile(r"'([^']*)'::text")


async def _state_checks(conn: asyncpg.Connection, table: str) -> list[str]:  # type: ignore[type-arg]
    """The definitions of the CHECK constraints on `table` that read only its state."""
    rows = await conn.fetch(
        """
        SELECT pg_get_constraintdef(c.oid) AS definition
        FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
        WHERE c.conrelid = $1::regclass AND c.contype = 'c' AND a.attname = 'state'
          AND cardinality(c.conkey) = 1
        """,
        f"{SCHEMA}.{table}",
    )
    return [r["definition"] for r in rows]


@pytest.mark.parametrize(
    ("table", "machine"),
    [("backfills", BackfillState), ("transfer_runs", RunState)],
    ids=["backfills", "transfer_runs"],
)
async def test_the_state_check_admits_exactly_the_domains_states(
    database: str, table: str, machine: type[StrEnum]
) -> None:
    conn = await asyncpg.connect(database)
    try:
        (definition,) = await _state_checks(conn, table)
        admitted = set(_LITERAL.findall(definition))
        assert admitted == {s.value for s in machine}, definition
    finally:
        await conn.close()
