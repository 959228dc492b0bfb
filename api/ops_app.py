"""The ops endpoints alone (/ops/health, /ops/ready, /ops/overview, /metrics), for a process
that serves no API: a `backfill worker` serves them on BACKFILL_METRICS_PORT
(orchestrator/cli/ops_server.py). Same handlers, same BACKFILL_OPS_AUTH rule as on the API's
port."""

from __future__ import annotations

from aiohttp import web

from api import routes_metrics, routes_ops
from api.auth import auth_middleware
from api.errors import error_middleware
from api.keys import ACCESS_KEY, PROBES_KEY, SETTINGS_KEY, USECASES_KEY
from api.probes import OpsProbes
from api.request_id import request_id_middleware
from orchestrator.access import AccessService
from orchestrator.settings import Settings
from orchestrator.usecases import UseCases


def create_ops_app(
    settings: Settings, usecases: UseCases, probes: OpsProbes, access: AccessService
) -> web.Application:
    """The caller owns the connections, as with create_app. Scrapes and health checks are
    not logged or counted per request: they come every few seconds and say nothing new."""
    app = web.Application(middlewares=[request_id_middleware, error_middleware, auth_middleware])
    app[SETTINGS_KEY] = settings
    app[USECASES_KEY] = usecases
    app[ACCESS_KEY] = access
    app[PROBES_KEY] = probes
    app.add_routes(routes_ops.routes)
    app.add_routes(routes_metrics.routes)
    return app
