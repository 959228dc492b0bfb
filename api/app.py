"""The application factory."""

from __future__ import annotations

from aiohttp import web

from api import (
    key_cache,
    routes_backfills,
    routes_docs,
    routes_keys,
    routes_metrics,
    routes_ops,
    routes_sources,
    routes_targets,
    routes_ui,
    routes_whoami,
)
from api.auth import auth_middleware
from api.compat.dialect import DIALECTS_KEY, Dialect
from api.compat.registry import DIALECTS
from api.edge import edge_middleware
from api.errors import error_middleware
from api.keys import ACCESS_KEY, PROBES_KEY, SETTINGS_KEY, USECASES_KEY
from api.probes import OpsProbes
from orchestrator.access import AccessService
from orchestrator.settings import Settings
from orchestrator.usecases import UseCases


def create_app(
    settings: Settings,
    usecases: UseCases,
    probes: OpsProbes,
    access: AccessService,
    *,
    dialects: tuple[Dialect, ...] = DIALECTS,
) -> web.Application:
    """The caller owns the use cases' and the probes' connections; the app only uses them.
    `dialects` are the compatibility APIs served beside the native one (tests add their own).

    Run it with aiohttp's own access log off (`access_log=None`): the edge middleware
    writes one structured line per request instead."""
    app = web.Application(
        # Outermost first. The edge middleware counts, ids, logs and adds the CORS and
        # rate-limit headers to every answer (api/edge.py); the error middleware turns every
        # failure into a response that the edge still sees. Auth sits inside the error
        # middleware, so 401/403/429 leave as problem+json too.
        middlewares=[edge_middleware, error_middleware, auth_middleware],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS_KEY] = settings
    app[USECASES_KEY] = usecases
    app[ACCESS_KEY] = access
    app[PROBES_KEY] = probes
    key_cache.install(app, access, settings.database_url.get_secret_value())
    app.add_routes(routes_targets.routes)
    app.add_routes(routes_backfills.routes)
    app.add_routes(routes_keys.routes)
    app.add_routes(routes_sources.routes)
    app.add_routes(routes_ops.routes)
    app.add_routes(routes_docs.routes)
    app.add_routes(routes_metrics.routes)
    app.add_routes(routes_whoami.routes)
    app.add_routes(routes_ui.routes)
    # Their paths decide the error shape and key header, so the middlewares find them here.
    app[DIALECTS_KEY] = dialects
    for dialect in dialects:
        app.add_routes(dialect.routes)
    return app
