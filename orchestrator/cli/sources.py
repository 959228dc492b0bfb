"""`backfill sources list|grant|revoke`: the operator grants sources to teams, on the database
directly (the functions are in orchestrator.cli_sources)."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator.cli.server import run_migrations, run_server, start, with_demo_source

sources = typer.Typer(
    help="Grant sources to teams (on the database directly).", no_args_is_help=True
)

TeamOpt = Annotated[int, typer.Option(help="the team")]


def _run(command: str, **kwargs: object) -> None:
    settings = start()

    async def work() -> None:
        from orchestrator import cli_sources
        from orchestrator.storage.database import open_pool
        from orchestrator.storage.grants import GrantRepository

        await run_migrations(settings, create=False)
        known = await with_demo_source(settings, make=False)
        pool = await open_pool(known.database_url.get_secret_value(), min_size=1, max_size=2)
        try:
            repo = GrantRepository(pool)
            if command == "list":
                await cli_sources.list_sources(known, repo, team=kwargs["team"])  # type: ignore[arg-type]
            elif command == "grant":
                await cli_sources.grant_source(known, repo, **kwargs)  # type: ignore[arg-type]
            else:
                await cli_sources.revoke_source(repo, **kwargs)  # type: ignore[arg-type]
        finally:
            await pool.close()

    run_server(work())


@sources.command("list")
def list_sources(
    team: Annotated[int | None, typer.Option(help="only this team's grants")] = None,
) -> None:
    """Configured sources (never their DSNs) and the grants."""
    _run("list", team=team)


@sources.command("grant")
def grant_source(
    source: str,
    team: TeamOpt,
    read: Annotated[
        list[str] | None, typer.Option(help="schema.table or schema.* (repeatable)")
    ] = None,
    write: Annotated[
        list[str] | None, typer.Option(help="schema.table or schema.* (repeatable)")
    ] = None,
    sql: Annotated[bool, typer.Option("--sql", help="the sql handler may run there")] = False,
    statement_timeout: Annotated[float | None, typer.Option(help="seconds (default 60)")] = None,
) -> None:
    """Grant a source to a team (replaces its grant)."""
    _run(
        "grant", source=source, team=team, read=read or [], write=write or [], sql=sql,
        statement_timeout_seconds=statement_timeout,
    )  # fmt: skip


@sources.command("revoke")
def revoke_source(source: str, team: TeamOpt) -> None:
    """Revoke a team's grant on a source."""
    _run("revoke", source=source, team=team)
