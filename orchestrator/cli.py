"""The `backfill` command: migrate, up (API + workers), api, worker."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime

import asyncpg
import structlog
from aiohttp import web
from aiormq.exceptions import ChannelPreconditionFailed

from orchestrator import eventloop
from orchestrator.access import AccessService
from orchestrator.domain.keys import Scope
from orchestrator.errors import OrchestratorError
from orchestrator.logs import configure_logging
from orchestrator.settings import Settings
from orchestrator.storage.migrate import ensure_database, migrate

log = structlog.get_logger("backfill")


async def run_migrations(settings: Settings) -> list[int]:
    dsn = settings.database_url.get_secret_value()
    await ensure_database(dsn)
    conn = await asyncpg.connect(dsn)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


def _install_signals(stop: asyncio.Event) -> None:
    """First SIGTERM/SIGINT: graceful stop. Second: exit at once."""
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.warning("second_signal_exiting_now", signal=signum)
            os._exit(128 + signum)
        log.info("shutdown_requested", signal=signum)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)


async def serve(settings: Settings, *, api: bool, consume: bool) -> None:
    # Imported here so `backfill migrate` does not pay for the whole application.
    from api.app import create_app
    from orchestrator.context import open_context
    from orchestrator.probes import ContextProbes
    from workers.process import Worker

    await run_migrations(settings)
    settings = await _with_demo_source(settings)
    stop = asyncio.Event()
    _install_signals(stop)
    async with open_context(settings) as ctx:
        # Every source's role is vetted now, so a bad one is in the log before anyone uses it.
        await ctx.sources.check_all()
        worker = Worker(ctx, consume=consume, serve_ops=not api)
        worker_task = asyncio.create_task(worker.run(), name="worker")
        runner: web.AppRunner | None = None
        if api:
            await _bootstrap(ctx.access)
            app = create_app(
                settings, ctx.service, ContextProbes(ctx, consuming=consume), ctx.access
            )
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, settings.http_host, settings.http_port)
            await site.start()
            log.info("api_listening", host=settings.http_host, port=settings.http_port)
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({stopped, worker_task}, return_when=asyncio.FIRST_COMPLETED)
        crashed = worker_task.exception() if worker_task in done else None
        if crashed is not None:
            log.error("worker_crashed", error=repr(crashed))
        worker.stop()
        if runner is not None:
            await runner.cleanup()
        await asyncio.gather(worker_task, return_exceptions=True)
        stopped.cancel()
        if crashed is not None:
            raise crashed  # a supervisor must see a failure (exit status 1), not a clean stop


async def _with_demo_source(settings: Settings, *, make: bool = True) -> Settings:
    """The settings with the `demo` source, made on first start when `make`."""
    from orchestrator.sources.demo import ensure_demo_source, stored_demo_source
    from orchestrator.storage.migrate import SCHEMA

    conn = await asyncpg.connect(
        settings.database_url.get_secret_value(), server_settings={"search_path": SCHEMA}
    )
    try:
        if make:
            return await ensure_demo_source(settings, conn)
        return await stored_demo_source(settings, conn)
    finally:
        await conn.close()


async def _sources_command(settings: Settings, args: argparse.Namespace) -> None:
    from orchestrator import cli_sources
    from orchestrator.storage.database import open_pool
    from orchestrator.storage.grants import GrantRepository

    await run_migrations(settings)
    settings = await _with_demo_source(settings, make=False)
    pool = await open_pool(settings.database_url.get_secret_value(), min_size=1, max_size=2)
    try:
        repo = GrantRepository(pool)
        if args.sources_command == "list":
            await cli_sources.list_sources(settings, repo, team=args.team)
        elif args.sources_command == "grant":
            await cli_sources.grant_source(
                settings,
                repo,
                source=args.source,
                team=args.team,
                read=args.read,
                write=args.write,
                sql=args.sql,
                statement_timeout_seconds=args.statement_timeout,
            )
        else:
            await cli_sources.revoke_source(repo, source=args.source, team=args.team)
    finally:
        await pool.close()


def _add_sources_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sources = sub.add_parser("sources", help="grant sources to teams").add_subparsers(
        dest="sources_command", required=True
    )
    sources.add_parser("list", help="configured sources and grants").add_argument(
        "--team", type=int
    )
    grant = sources.add_parser("grant", help="grant a source to a team (replaces its grant)")
    grant.add_argument("source")
    grant.add_argument("--team", type=int, required=True)
    grant.add_argument(
        "--read", action="append", default=[], help="schema.table or schema.* (repeatable)"
    )
    grant.add_argument(
        "--write", action="append", default=[], help="schema.table or schema.* (repeatable)"
    )
    grant.add_argument("--sql", action="store_true", help="the sql handler may run there")
    grant.add_argument("--statement-timeout", type=float, help="seconds (default 60)")
    revoke = sources.add_parser("revoke", help="revoke a team's grant on a source")
    revoke.add_argument("source")
    revoke.add_argument("--team", type=int, required=True)


async def _bootstrap(access: AccessService) -> None:
    token = await access.ensure_bootstrap_key()
    if token is not None:
        # Shown once, on the console, outside the structured log (a supervisor may still keep
        # the console). Set BACKFILL_BOOTSTRAP_TOKEN to start with a key of your own instead.
        print(
            "\nNo API key existed, so one was created for team 1 with every scope.\n"
            f"Keep it now; it is not stored and will not be shown again:\n\n    {token}\n",
            file=sys.stderr,
            flush=True,
        )


async def _with_access(
    settings: Settings, action: Callable[[AccessService], Awaitable[None]]
) -> None:
    from orchestrator.storage.access import AccessRepository
    from orchestrator.storage.database import open_pool

    await run_migrations(settings)
    pool = await open_pool(settings.database_url.get_secret_value(), min_size=1, max_size=2)
    try:
        await action(AccessService(settings, AccessRepository(pool)))
    finally:
        await pool.close()


def _keys_command(args: argparse.Namespace) -> Callable[[AccessService], Awaitable[None]]:
    async def create(access: AccessService) -> None:
        scopes = {Scope(s.strip()) for s in args.scope.split(",") if s.strip()}
        expires = datetime.fromisoformat(args.expires) if args.expires else None
        token, info = await access.create_key(args.team, scopes, name=args.name, expires_at=expires)
        print(
            f"created key {info.prefix} for team {info.team_id} "
            f"with scopes {','.join(info.scopes)}; the token (shown once):",
            file=sys.stderr,
        )
        print(token)

    async def listing(access: AccessService) -> None:
        for key in await access.repo.list_keys(args.team):
            state = "revoked" if key.revoked_at else "active"
            print(
                f"{key.prefix}\tteam={key.team_id}\tscopes={','.join(key.scopes)}\t{state}"
                f"\texpires={key.expires_at.isoformat() if key.expires_at else '-'}"
                f"\tname={key.name or '-'}"
            )

    async def revoke(access: AccessService) -> None:
        await access.revoke_key(args.prefix)
        print(f"revoked {args.prefix}", file=sys.stderr)

    return {"create": create, "list": listing, "revoke": revoke}[args.keys_command]


def _teams_command(args: argparse.Namespace) -> Callable[[AccessService], Awaitable[None]]:
    async def create(access: AccessService) -> None:
        team_id, name = await access.repo.create_team(args.name)
        print(f"{team_id}\t{name}")

    async def listing(access: AccessService) -> None:
        for team_id, name in await access.repo.list_teams():
            print(f"{team_id}\t{name}")

    return {"create": create, "list": listing}[args.teams_command]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="backfill", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="create the database if missing and apply migrations")
    sub.add_parser("up", help="API and workers in one process")
    sub.add_parser("api", help="the HTTP API (with an outbox relay)")
    sub.add_parser("worker", help="planner, executor, relay and maintenance loops")
    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(
        dest="keys_command", required=True
    )
    create = keys.add_parser("create", help="create a key; prints the token once")
    create.add_argument("--team", type=int, default=1)
    create.add_argument("--scope", default="read,write", help="comma-separated: read,write,admin")
    create.add_argument("--name")
    create.add_argument("--expires", help="ISO 8601 time after which the key stops working")
    keys.add_parser("list", help="list keys (never their tokens)").add_argument("--team", type=int)
    keys.add_parser("revoke", help="revoke a key by its prefix").add_argument("prefix")
    teams = sub.add_parser("teams", help="manage teams").add_subparsers(
        dest="teams_command", required=True
    )
    teams.add_parser("create", help="create a team").add_argument("name")
    teams.add_parser("list", help="list teams")
    _add_sources_parser(sub)
    args = parser.parse_args(argv)

    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    try:
        if args.command == "migrate":
            applied = asyncio.run(run_migrations(settings))
            log.info("migrated", applied=applied)
        elif args.command == "up":
            eventloop.run(serve(settings, api=True, consume=True))
        elif args.command == "api":
            eventloop.run(serve(settings, api=True, consume=False))
        elif args.command == "keys":
            asyncio.run(_with_access(settings, _keys_command(args)))
        elif args.command == "teams":
            asyncio.run(_with_access(settings, _teams_command(args)))
        elif args.command == "sources":
            asyncio.run(_sources_command(settings, args))
        else:
            eventloop.run(serve(settings, api=False, consume=True))
    except OrchestratorError as exc:
        log.error("command_failed", code=exc.code, error=exc.detail)
        sys.exit(2)
    except ChannelPreconditionFailed as exc:
        # A queue declared earlier with other arguments (a changed BACKFILL_DELIVERY_LIMIT):
        # the broker keeps the old ones until the queue is deleted.
        log.error(
            "startup_failed",
            error=str(exc),
            hint="a queue exists with other arguments; restore the earlier setting, or drain "
            "and delete the queue so it is declared again with the new ones",
        )
        sys.exit(1)
    except (OSError, asyncpg.PostgresError) as exc:
        # Connection refused and friends: say what failed without a traceback or a DSN.
        log.error("startup_failed", error=f"{type(exc).__name__}: {exc}")
        sys.exit(1)


if __name__ == "__main__":
    main()
