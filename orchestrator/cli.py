"""The `backfill` command: migrate, up (API + workers), api, worker."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

import asyncpg
import structlog
from aiohttp import web
from aiormq.exceptions import ChannelPreconditionFailed

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
    stop = asyncio.Event()
    _install_signals(stop)
    async with open_context(settings) as ctx:
        worker = Worker(ctx, consume=consume)
        worker_task = asyncio.create_task(worker.run(), name="worker")
        runner: web.AppRunner | None = None
        if api:
            app = create_app(settings, ctx.service, ContextProbes(ctx, consuming=consume))
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, settings.http_host, settings.http_port)
            await site.start()
            log.info("api_listening", host=settings.http_host, port=settings.http_port)
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({stopped, worker_task}, return_when=asyncio.FIRST_COMPLETED)
        if worker_task in done and worker_task.exception() is not None:
            log.error("worker_crashed", error=repr(worker_task.exception()))
        worker.stop()
        if runner is not None:
            await runner.cleanup()
        await asyncio.gather(worker_task, return_exceptions=True)
        stopped.cancel()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="backfill", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="create the database if missing and apply migrations")
    sub.add_parser("up", help="API and workers in one process")
    sub.add_parser("api", help="the HTTP API (with an outbox relay)")
    sub.add_parser("worker", help="planner, executor, relay and maintenance loops")
    args = parser.parse_args(argv)

    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    try:
        if args.command == "migrate":
            applied = asyncio.run(run_migrations(settings))
            log.info("migrated", applied=applied)
        elif args.command == "up":
            asyncio.run(serve(settings, api=True, consume=True))
        elif args.command == "api":
            asyncio.run(serve(settings, api=True, consume=False))
        else:
            asyncio.run(serve(settings, api=False, consume=True))
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
