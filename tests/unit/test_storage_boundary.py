"""Storage hands domain models up, never driver rows; and the SQL takes its states from the
domain's state machines instead of writing them out."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestrator.domain.states import BackfillState, RunState
from orchestrator.storage import queries

ROOT = Path(__file__).resolve().parents[2]
STORAGE = ROOT / "orchestrator" / "storage"
SQL = STORAGE / "sql"

# asyncpg's row type, however it is spelled or imported.
_RECORD = re.compile(r"asyncpg\.Record\b|from asyncpg(\.\w+)* import [^\n]*\bRecord\b")


# Rows of the sources (the tables a backfill copies) are not the orchestrator's storage: a
# composite column of a source table arrives as a Record, and the encoder turns it to JSON.
SOURCE_ROWS = {"orchestrator/sinks/encoding.py"}


def _above_storage() -> list[Path]:
    files = [*ROOT.joinpath("orchestrator").rglob("*.py"), *ROOT.joinpath("workers").rglob("*.py")]
    files += ROOT.joinpath("api").rglob("*.py")
    return sorted(
        p for p in files if STORAGE not in p.parents and str(p.relative_to(ROOT)) not in SOURCE_ROWS
    )


def test_the_check_finds_what_it_looks_for() -> None:
    assert _RECORD.search("def f(row: asyncpg.Record) -> None: ...")
    assert _RECORD.search("from asyncpg import Pool, Record")
    assert not _RECORD.search("pool: asyncpg.Pool[Any]")
    assert len(_above_storage()) > 50


@pytest.mark.parametrize("path", _above_storage(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_above_storage_names_asyncpg_record(path: Path) -> None:
    found = _RECORD.search(path.read_text())
    assert found is None, f"{path.relative_to(ROOT)} names {found.group(0) if found else ''}"


_STATES = "|".join(sorted({s.value for s in BackfillState} | {s.value for s in RunState}))
_STATE_LITERAL = re.compile(rf"'({_STATES})'")


@pytest.mark.parametrize("path", sorted(SQL.glob("*.sql")), ids=lambda p: p.name)
def test_sql_writes_no_state_of_its_own(path: Path) -> None:
    """A state in the SQL is `{run.pending}` or `{backfill.ACTIVE}`, rendered from the domain
    when loaded (orchestrator/storage/queries.py); a quoted state would escape it."""
    found = _STATE_LITERAL.findall(path.read_text())
    assert found == [], f"{path.name} writes states itself: {found}"


def test_every_block_renders_from_the_domain() -> None:
    blocks = queries._load()
    assert not [name for name, text in blocks.items() if "{" in text or "}" in text]
    assert "state IN ('created', 'paused', 'running', 'scheduled')" in blocks["claim_planning"]


def test_an_unknown_state_or_set_fails_at_load() -> None:
    with pytest.raises(ValueError, match="drafted"):
        queries.render("state = {backfill.drafted}")
    with pytest.raises(AttributeError, match="RUN_WAITING"):
        queries.render("state IN {run.WAITING}")
    assert queries.render("{run.ACTIVE}") == "('queued', 'running')"
