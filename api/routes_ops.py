"""/ops: liveness, readiness and an overview for operators. Not versioned: these are read by
orchestrators and dashboards, not API clients."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from aiohttp import web

from api.keys import PROBES_KEY, USECASES_KEY
from api.render import json_response

log = structlog.get_logger(__name__)

routes = web.RouteTableDef()

# A hung dependency must read as "not ready" rather than hang the caller's health check,
# which usually gives up long before a TCP timeout would.
PROBE_TIMEOUT_SECONDS = 5.0


@routes.get("/ops/health")
async def health(request: web.Request) -> web.Response:
    # Liveness only: it must not fail because Postgres or RabbitMQ did, or the process gets
    # restarted for someone else's outage.
    return json_response({"status": "ok"})


@routes.get("/ops/ready")
async def ready(request: web.Request) -> web.Response:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
            results = await request.app[PROBES_KEY].readiness()
        checks = {name: bool(ok) for name, ok in results.items()}
    except Exception:
        log.warning("readiness_probe_failed", exc_info=True)
        checks = {"readiness": False}
    body: dict[str, Any] = {"checks": checks}
    # Sources as last vetted; an `unsafe` one (role checks skipped) is always worth seeing.
    source_states = getattr(request.app[PROBES_KEY], "source_states", None)
    if source_states is not None:
        body["sources"] = source_states()
    if all(checks.values()):
        return json_response({"status": "ready", **body})
    return json_response({"status": "unavailable", **body}, status=503)


@routes.get("/ops/overview")
async def overview(request: web.Request) -> web.Response:
    body: dict[str, Any] = dict(await request.app[USECASES_KEY].ops.overview())
    queues: dict[str, int] | None
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
            queues = dict(await request.app[PROBES_KEY].queue_depths())
    except Exception:
        # The overview is most wanted when something is broken; the database half of it is
        # still worth showing without the broker half.
        log.warning("queue_depth_probe_failed", exc_info=True)
        queues = None
    body["queues"] = queues
    return json_response(body)
