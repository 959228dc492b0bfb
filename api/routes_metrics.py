"""GET /metrics: this process's Prometheus metrics in the text exposition format. Open unless
BACKFILL_OPS_AUTH is set, like the other ops endpoints (api/auth.py)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from api.keys import SERVICE_KEY
from orchestrator.metrics import scrape

routes = web.RouteTableDef()


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    body = await scrape(request.app[SERVICE_KEY].overview)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
