"""`backfill sources list|grant|revoke`: the operator's side of source grants, as plain
functions over the grant store (the command-line wiring lives in orchestrator.cli)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from pydantic import ValidationError

from orchestrator.domain.grants import DEFAULT_STATEMENT_TIMEOUT_MS, SourceGrant
from orchestrator.errors import NotFound, ValidationFailed
from orchestrator.settings import Settings
from orchestrator.storage.grants import GrantRepository


def _grant_line(grant: SourceGrant) -> str:
    return (
        f"{grant.source}\tteam={grant.team_id}"
        f"\tread={','.join(grant.read_tables) or '-'}"
        f"\twrite={','.join(grant.write_tables) or '-'}"
        f"\tsql={'yes' if grant.sql_handler else 'no'}"
        f"\tstatement_timeout={grant.statement_timeout_ms / 1000:g}s"
    )


async def list_sources(
    settings: Settings, repo: GrantRepository, *, team: int | None, out: TextIO = sys.stdout
) -> None:
    """Configured sources (never their DSNs), then the grants."""
    for name in settings.source_names():
        unsafe = "\tunsafe" if settings.sources[name].unsafe else ""
        print(f"source\t{name}{unsafe}", file=out)
    for grant in await repo.list(team):
        configured = "" if grant.source in settings.sources else "\t(not configured here)"
        print(f"grant\t{_grant_line(grant)}{configured}", file=out)


async def grant_source(
    settings: Settings,
    repo: GrantRepository,
    *,
    source: str,
    team: int,
    read: Sequence[str] = (),
    write: Sequence[str] = (),
    sql: bool = False,
    statement_timeout_seconds: float | None = None,
    err: TextIO = sys.stderr,
) -> SourceGrant:
    """Creates the team's grant on the source, or replaces what it allows."""
    timeout_ms = (
        DEFAULT_STATEMENT_TIMEOUT_MS
        if statement_timeout_seconds is None
        else max(1, int(statement_timeout_seconds * 1000))
    )
    try:
        grant = SourceGrant(
            team_id=team,
            source=source,
            read_tables=list(read),
            write_tables=list(write),
            sql_handler=sql,
            statement_timeout_ms=timeout_ms,
        )
    except ValidationError as exc:
        raise ValidationFailed(
            "invalid grant: " + "; ".join(str(e["msg"]) for e in exc.errors())
        ) from None
    if source not in settings.sources:
        # Allowed: the processes that serve the API may be configured apart from this shell.
        print(f"note: no source named {source!r} is configured in this environment", file=err)
    stored = await repo.put(grant)
    print(f"granted\t{_grant_line(stored)}", file=err)
    return stored


async def revoke_source(
    repo: GrantRepository, *, source: str, team: int, err: TextIO = sys.stderr
) -> None:
    """The team's next run on the source is refused; runs already running finish."""
    if not await repo.delete(team, source):
        raise NotFound(f"team {team} has no grant on source {source!r}")
    print(f"revoked\t{source}\tteam={team}", file=err)
