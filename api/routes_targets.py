"""/v1/targets: what backfills run against (a table and its sink, or a handler)."""

from __future__ import annotations

from aiohttp import web

from api import params
from api.auth import team_of
from api.body import RequestBody
from api.keys import USECASES_KEY
from api.render import json_response
from api.schemas import TargetOut, targets_page
from orchestrator.domain.specs import (
    DateRangeTargetSpec,
    TableTargetSpec,
    TargetPatch,
    TargetSpec,
)

routes = web.RouteTableDef()

TARGET_SPEC = RequestBody[TableTargetSpec | DateRangeTargetSpec](TargetSpec)
TARGET_PATCH = RequestBody[TargetPatch](TargetPatch)


@routes.post("/v1/targets")
async def create_target(request: web.Request) -> web.Response:
    spec = await TARGET_SPEC.parse(request)
    target = await request.app[USECASES_KEY].targets.create(spec, team_id=team_of(request))
    return json_response(
        TargetOut.from_domain(target), status=201, headers={"Location": f"/v1/targets/{target.id}"}
    )


@routes.get("/v1/targets")
async def list_targets(request: web.Request) -> web.Response:
    query = params.QueryParams(request.query, allowed=("after", "limit"))
    after, limit = query.after(), query.limit()
    query.check()
    page = await request.app[USECASES_KEY].targets.page(
        team_id=team_of(request), after=after, limit=limit
    )
    return json_response(targets_page(page))


@routes.get("/v1/targets/{target}")
async def get_target(request: web.Request) -> web.Response:
    ref = params.target_ref(request.match_info["target"])
    target = await request.app[USECASES_KEY].targets.get(ref, team_id=team_of(request))
    return json_response(TargetOut.from_domain(target))


@routes.patch("/v1/targets/{target}")
async def update_target(request: web.Request) -> web.Response:
    target_id = params.target_id(request.match_info["target"])
    patch = await TARGET_PATCH.parse(request)
    target = await request.app[USECASES_KEY].targets.update(
        target_id, patch, team_id=team_of(request)
    )
    return json_response(TargetOut.from_domain(target))


@routes.delete("/v1/targets/{target}")
async def delete_target(request: web.Request) -> web.Response:
    target_id = params.target_id(request.match_info["target"])
    await request.app[USECASES_KEY].targets.delete(target_id, team_id=team_of(request))
    return web.Response(status=204)
