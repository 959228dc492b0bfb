"""GET /metrics: this process's Prometheus metrics in the text exposition format. Open unless
BACKFILL_OPS_AUTH is set, like the other ops endpoints (api/auth.py)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from api.keys import PROBES_KEY, USECASES_KEY
from orchestrator.metrics import scrape

routes = web.RouteTableDef()


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    usecases = request.app[USECASES_KEY]
    body = await scrape(
        usecases.ops.overview,
        read_active=usecases.ops.active_backfill_progress,
        read_queues=request.app[PROBES_KEY].queue_stats,
    )
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
