"""The HTTP side of a `backfill worker`: /metrics and /ops/health (with /ops/ready and
/ops/overview) on BACKFILL_HTTP_HOST:BACKFILL_METRICS_PORT, so a process that serves no API
can still be scraped and health-checked. A process that serves the API serves these on the
API's port instead and starts no second server.

BACKFILL_METRICS_PORT unset: nothing is served (logged once at start). 0: the system picks a
free port, logged in `ops_listening` (for several workers on one host, and for tests)."""

from __future__ import annotations

import structlog
from aiohttp import web

from api.ops_app import create_ops_app
from orchestrator.context import Context
from orchestrator.probes import ContextProbes

log = structlog.get_logger(__name__)


class OpsServer:
    def __init__(self, ctx: Context, *, consuming: bool) -> None:
        self._ctx = ctx
        self._consuming = consuming
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self) -> None:
        s = self._ctx.settings
        if s.metrics_port is None:
            log.info(
                "ops_not_served",
                hint="set BACKFILL_METRICS_PORT to serve /metrics and /ops/health",
            )
            return
        app = create_ops_app(
            s,
            self._ctx.usecases,
            ContextProbes(self._ctx, consuming=self._consuming),
            self._ctx.access,
        )
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, s.http_host, s.metrics_port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        # With port 0 the system chose one; the listening socket knows which.
        self.port = int(runner.addresses[0][1])
        log.info("ops_listening", host=s.http_host, port=self.port)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
