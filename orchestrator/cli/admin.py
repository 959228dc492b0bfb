"""Operator commands that work on the database directly: keys and teams."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from orchestrator.access import AccessService
from orchestrator.cli import output
from orchestrator.cli.errors import UsageError
from orchestrator.cli.options import JsonOpt
from orchestrator.cli.server import run_migrations, run_server, start
from orchestrator.domain.keys import KeyInfo, Scope

ALLOWED_SCOPES = ", ".join(s.value for s in Scope)


def parse_scopes(text: str) -> set[Scope]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise UsageError(f"--scope: give at least one of {ALLOWED_SCOPES}")
    scopes = set()
    for name in names:
        try:
            scopes.add(Scope(name))
        except ValueError:
            raise UsageError(
                f"--scope: {name!r} is not a scope; allowed: {ALLOWED_SCOPES}"
            ) from None
    return scopes


def parse_expiry(text: str, now: datetime) -> datetime:
    """An ISO 8601 date or time in the future; without a zone it is taken as UTC."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"--expires: {text!r} is not an ISO 8601 date or time; "
            "allowed: e.g. 2030-01-31 or 2030-01-31T12:00:00+00:00"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if when <= now:
        raise UsageError(
            f"--expires: {text!r} is in the past; a key must expire after now "
            f"({now.isoformat(timespec='seconds')})"
        )
    return when


def key_state(key: KeyInfo, now: datetime) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


def with_access(action: Callable[[AccessService], Awaitable[None]]) -> None:
    settings = start()

    async def work() -> None:
        from orchestrator.storage.access import AccessRepository
        from orchestrator.storage.database import open_pool

        await run_migrations(settings, create=False)
        pool = await open_pool(settings.database_url.get_secret_value(), min_size=1, max_size=2)
        try:
            await action(AccessService(settings, AccessRepository(pool)))
        finally:
            await pool.close()

    run_server(work())


keys = typer.Typer(help="Manage API keys (on the database directly).", no_args_is_help=True)
teams = typer.Typer(help="Manage teams (on the database directly).", no_args_is_help=True)


@keys.command("create")
def keys_create(
    team: Annotated[int, typer.Option(help="the team the key belongs to")] = 1,
    scope: Annotated[
        str, typer.Option(help=f"comma-separated, from: {ALLOWED_SCOPES}")
    ] = "read,write",
    name: Annotated[str | None, typer.Option(help="a label for people")] = None,
    expires: Annotated[
        str | None, typer.Option(help="ISO 8601 time (future) after which the key stops working")
    ] = None,
) -> None:
    """Create a key; prints the token once, alone on stdout."""
    # Checked before anything connects, so a typo costs nothing and changes nothing.
    scopes = parse_scopes(scope)
    expires_at = parse_expiry(expires, datetime.now(UTC)) if expires else None

    async def create(access: AccessService) -> None:
        token, info = await access.create_key(team, scopes, name=name, expires_at=expires_at)
        output.notice(
            f"created key {info.prefix} for team {info.team_id} "
            f"with scopes {','.join(info.scopes)}; the token (shown once):"
        )
        print(token)

    with_access(create)


@keys.command("list")
def keys_list(
    team: Annotated[int | None, typer.Option(help="only this team's keys")] = None,
    json_out: JsonOpt = False,
) -> None:
    """List keys (never their tokens), each active, expired or revoked."""

    async def listing(access: AccessService) -> None:
        now = await access.repo.now()
        found = await access.repo.list_keys(team)
        rows: list[dict[str, Any]] = [
            {**k.model_dump(mode="json"), "state": key_state(k, now)} for k in found
        ]
        if json_out:
            output.print_json(rows)
            return
        output.table(
            ["prefix", "team", "scopes", "state", "expires", "name"],
            (
                [r["prefix"], r["team_id"], ",".join(r["scopes"]), r["state"], r["expires_at"],
                 r["name"]]
                for r in rows
            ),
        )  # fmt: skip

    with_access(listing)


@keys.command("revoke")
def keys_revoke(prefix: Annotated[str, typer.Argument(help="the key's prefix")]) -> None:
    """Revoke a key by its prefix."""

    async def revoke(access: AccessService) -> None:
        await access.revoke_key(prefix)
        output.notice(f"revoked {prefix}")

    with_access(revoke)


@teams.command("create")
def teams_create(name: str) -> None:
    """Create a team; prints its id and name."""

    async def create(access: AccessService) -> None:
        team_id, created = await access.repo.create_team(name)
        print(f"{team_id}\t{created}")

    with_access(create)


@teams.command("list")
def teams_list(json_out: JsonOpt = False) -> None:
    """List teams."""

    async def listing(access: AccessService) -> None:
        found = await access.repo.list_teams()
        if json_out:
            output.print_json([{"id": i, "name": n} for i, n in found])
            return
        for team_id, name in found:
            print(f"{team_id}\t{name}")

    with_access(listing)
