"""The server commands: migrate, up (API + workers), api, worker."""

from __future__ import annotations

import asyncio
import errno
import gc
import os
import signal
import socket
import sys
from collections.abc import Coroutine
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import structlog
import typer
from aiohttp import web
from aiormq.exceptions import ChannelPreconditionFailed

from orchestrator import eventloop
from orchestrator.access import AccessService
from orchestrator.cli.config import load_settings, unknown_variables
from orchestrator.cli.errors import CliError, Exit
from orchestrator.errors import OrchestratorError
from orchestrator.logs import configure_logging
from orchestrator.settings import Settings
from orchestrator.storage.migrate import ensure_database, migrate

log = structlog.get_logger("backfill")


def database_name(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/") or "postgres"


async def connect_existing(dsn: str) -> asyncpg.Connection[Any]:
    """A connection to the configured database, which must exist: only `up` and `migrate`
    create it, so a mistyped name is reported instead of becoming a new database."""
    try:
        return await asyncpg.connect(dsn)
    except asyncpg.InvalidCatalogNameError:
        raise CliError(
            f"database {database_name(dsn)!r} does not exist; check BACKFILL_DATABASE_URL, "
            "or create it with `backfill migrate`"
        ) from None


async def run_migrations(settings: Settings, *, create: bool = False) -> list[int]:
    dsn = settings.database_url.get_secret_value()
    if create:
        await ensure_database(dsn)
    conn = await connect_existing(dsn)
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


def listen(host: str, port: int) -> socket.socket:
    """Binds the API's socket before anything else starts, so a port in use fails the start
    at once: no pool opened, no worker row written, nothing to clean up."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family, backlog=128)
    except socket.gaierror as exc:
        raise CliError(
            f"cannot listen on {host}:{port}: {exc.strerror} (BACKFILL_HTTP_HOST)"
        ) from None
    except OSError as exc:
        hint = (
            "; another process listens there: stop it or set BACKFILL_HTTP_PORT"
            if exc.errno == errno.EADDRINUSE
            else ""
        )
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}{hint}") from None


async def serve(settings: Settings, *, api: bool, consume: bool, create_database: bool) -> None:
    # Imported here so `backfill migrate` does not pay for the whole application.
    from api.app import create_app
    from orchestrator.cli.ops_server import OpsServer
    from orchestrator.context import open_context
    from orchestrator.probes import ContextProbes
    from workers.process import Worker

    sock = listen(settings.http_host, settings.http_port) if api else None
    try:
        await run_migrations(settings, create=create_database)
        # `backfill up` (the quick start) makes the demo source; the parts run apart use it.
        settings = await with_demo_source(settings, make=api and consume)
        stop = asyncio.Event()
        _install_signals(stop)
        async with open_context(settings) as ctx:
            # Every source's role is vetted now, so a bad one is in the log before anyone uses it.
            await ctx.sources.check_all()
            runner: web.AppRunner | None = None
            if sock is not None:
                await _bootstrap(ctx.access)
                app = create_app(
                    settings, ctx.usecases, ContextProbes(ctx, consuming=consume), ctx.access
                )
                runner = web.AppRunner(app, access_log=None, handle_signals=False)
                await runner.setup()
                await web.SockSite(runner, sock).start()
                host, port = sock.getsockname()[:2]
                log.info("api_listening", host=host, port=port)
            settle_heap()
            # The worker starts last: whatever failed above left no worker behind.
            worker = Worker(
                ctx, consume=consume, ops=None if api else OpsServer(ctx, consuming=consume)
            )
            worker_task = asyncio.create_task(worker.run(), name="worker")
            stopped = asyncio.create_task(stop.wait())
            crashed: BaseException | None = None
            try:
                done, _ = await asyncio.wait(
                    {stopped, worker_task}, return_when=asyncio.FIRST_COMPLETED
                )
                crashed = worker_task.exception() if worker_task in done else None
                if crashed is not None:
                    log.error("worker_crashed", error=repr(crashed))
            finally:
                worker.stop()
                if runner is not None:
                    await runner.cleanup()
                await asyncio.gather(worker_task, return_exceptions=True)
                stopped.cancel()
            if crashed is not None:
                raise crashed  # a supervisor must see a failure (exit status 1), not a clean stop
    finally:
        if sock is not None:
            sock.close()


def settle_heap() -> None:
    """What start-up made (modules, the app, pools, settings) lives as long as the process:
    frozen, it leaves the collector's full passes. Unfrozen, each full pass walked all of it
    while every request in flight waited: 30 ms and more at a time on this machine, the
    slowest answers of the API under load."""
    gc.collect()
    gc.freeze()


async def with_demo_source(settings: Settings, *, make: bool = True) -> Settings:
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


def start(settings: Settings | None = None) -> Settings:
    """Settings for a server command, with logging configured and unknown BACKFILL_*
    variables reported in the log."""
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.log_json)
    for name, closest in unknown_variables():
        log.warning("unknown_setting_ignored", variable=name, did_you_mean=closest)
    return settings


def run_server(work: Coroutine[Any, Any, object]) -> None:
    """Runs a server command's coroutine (on uvloop); known start-up failures end as one log
    line."""
    try:
        eventloop.run(work)
    except OrchestratorError as exc:
        log.error("command_failed", code=exc.code, error=exc.detail)
        raise typer.Exit(Exit.USAGE) from None
    except ChannelPreconditionFailed as exc:
        # A queue declared earlier with other arguments (a changed BACKFILL_DELIVERY_LIMIT):
        # the broker keeps the old ones until the queue is deleted.
        log.error(
            "startup_failed",
            error=str(exc),
            hint="a queue exists with other arguments; restore the earlier setting, or drain "
            "and delete the queue so it is declared again with the new ones",
        )
        raise typer.Exit(Exit.ERROR) from None
    except CliError as exc:
        log.error("startup_failed", error=exc.message)
        raise typer.Exit(exc.code) from None
    except (OSError, asyncpg.PostgresError) as exc:
        # Connection refused and friends: say what failed without a traceback or a DSN.
        log.error("startup_failed", error=f"{type(exc).__name__}: {exc}")
        raise typer.Exit(Exit.ERROR) from None


def register(app: typer.Typer) -> None:
    @app.command("migrate")
    def migrate_command() -> None:
        """Create the configured database if missing and apply migrations."""
        settings = start()

        async def work() -> None:
            applied = await run_migrations(settings, create=True)
            log.info("migrated", applied=applied)

        run_server(work())

    @app.command("up")
    def up_command() -> None:
        """API and workers in one process (creates the database and migrates first)."""
        settings = start()
        run_server(serve(settings, api=True, consume=True, create_database=True))

    @app.command("api")
    def api_command() -> None:
        """The HTTP API (with an outbox relay); the database must exist."""
        settings = start()
        run_server(serve(settings, api=True, consume=False, create_database=False))

    @app.command("worker")
    def worker_command() -> None:
        """Planner, executor, relay and maintenance loops; the database must exist."""
        settings = start()
        run_server(serve(settings, api=False, consume=True, create_database=False))
