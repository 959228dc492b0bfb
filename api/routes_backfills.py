"""/v1/backfills: start, watch, pause, resume and cancel backfills, and list their runs."""

from __future__ import annotations

from aiohttp import web

from api import params
from api.body import RequestBody
from api.keys import SERVICE_KEY
from api.render import json_response
from api.schemas import BackfillOut, backfills_page, runs_page
from orchestrator.domain.specs import BackfillSpec
from orchestrator.domain.states import BackfillState, RunState

routes = web.RouteTableDef()

BACKFILL_SPEC = RequestBody[BackfillSpec](BackfillSpec)

_PAGE = ("after", "limit")


@routes.post("/v1/backfills")
async def create_backfill(request: web.Request) -> web.Response:
    spec = await BACKFILL_SPEC.parse(request)
    backfill = await request.app[SERVICE_KEY].create_backfill(spec)
    return json_response(
        BackfillOut.from_domain(backfill),
        status=201,
        headers={"Location": f"/v1/backfills/{backfill.id}"},
    )


@routes.get("/v1/backfills")
async def list_backfills(request: web.Request) -> web.Response:
    query = params.QueryParams(request.query, allowed=("target_id", "state", *_PAGE))
    target_id = query.integer("target_id")
    states = query.states("state", BackfillState)
    after, limit = query.after(), query.limit()
    query.check()
    page = await request.app[SERVICE_KEY].list_backfills(
        target_id=target_id, states=states, after=after, limit=limit
    )
    return json_response(backfills_page(page))


@routes.get("/v1/backfills/{backfill}")
async def get_backfill(request: web.Request) -> web.Response:
    ref = params.backfill_ref(request.match_info["backfill"])
    backfill = await request.app[SERVICE_KEY].get_backfill(ref)
    return json_response(BackfillOut.from_domain(backfill))


@routes.post("/v1/backfills/{backfill}/cancel")
async def cancel_backfill(request: web.Request) -> web.Response:
    ref = params.backfill_ref(request.match_info["backfill"])
    backfill = await request.app[SERVICE_KEY].cancel_backfill(ref)
    return json_response(BackfillOut.from_domain(backfill))


@routes.post("/v1/backfills/{backfill}/pause")
async def pause_backfill(request: web.Request) -> web.Response:
    ref = params.backfill_ref(request.match_info["backfill"])
    backfill = await request.app[SERVICE_KEY].pause_backfill(ref)
    return json_response(BackfillOut.from_domain(backfill))


@routes.post("/v1/backfills/{backfill}/resume")
async def resume_backfill(request: web.Request) -> web.Response:
    ref = params.backfill_ref(request.match_info["backfill"])
    backfill = await request.app[SERVICE_KEY].resume_backfill(ref)
    return json_response(BackfillOut.from_domain(backfill))


@routes.get("/v1/backfills/{backfill}/runs")
async def list_runs(request: web.Request) -> web.Response:
    ref = params.backfill_ref(request.match_info["backfill"])
    query = params.QueryParams(request.query, allowed=("state", *_PAGE))
    states = query.states("state", RunState)
    after, limit = query.after(), query.limit()
    query.check()
    page = await request.app[SERVICE_KEY].list_runs(ref, states=states, after=after, limit=limit)
    return json_response(runs_page(page))
