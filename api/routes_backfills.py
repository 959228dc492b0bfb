"""/v1/backfills: start, watch, pause, resume and cancel backfills, and list their runs."""

from __future__ import annotations

import uuid

from aiohttp import web

from api import params
from api.auth import principal_of, team_of
from api.body import RequestBody
from api.keys import USECASES_KEY
from api.render import json_ready_response, json_response
from api.schemas import DryRunOut, runs_page
from api.views import backfill_body, backfills_page_body
from orchestrator.domain.models import Backfill
from orchestrator.domain.specs import BackfillPatch, BackfillSpec
from orchestrator.domain.states import BackfillState, RunState
from orchestrator.errors import BadRequest

routes = web.RouteTableDef()

BACKFILL_SPEC = RequestBody[BackfillSpec](BackfillSpec)
BACKFILL_PATCH = RequestBody[BackfillPatch](BackfillPatch)

_PAGE = ("after", "limit")


# Keys are namespaced into uuids, so they share the command-id space that deduplicates
# `command.create` messages without colliding with ids that producers generate.
_IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1d0c52-3b7e-4f0e-9a51-0c3c2f7d9b10")


def idempotency_command_id(request: web.Request) -> uuid.UUID | None:
    """`Idempotency-Key: <any string>`: a retried POST with the same key returns the
    backfill the first one created instead of making another."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= 255:
        raise BadRequest("Idempotency-Key must be 1 to 255 characters")
    return uuid.uuid5(_IDEMPOTENCY_NAMESPACE, key)


async def _backfill_response(
    request: web.Request,
    backfill: Backfill,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """A `BackfillOut` body (api.views writes it without building the model)."""
    progress = await request.app[USECASES_KEY].ops.progress([backfill])
    body = backfill_body(backfill, progress[backfill.id])
    return json_ready_response(body, status=status, headers=headers)


@routes.post("/v1/backfills")
async def create_backfill(request: web.Request) -> web.Response:
    query = params.QueryParams(request.query, allowed=("dry_run", *_PAGE))
    dry_run = query.boolean("dry_run")
    after, limit = query.after(), query.limit()
    query.check()
    command_id = idempotency_command_id(request)
    spec = await BACKFILL_SPEC.parse(request)
    if dry_run:
        result = await request.app[USECASES_KEY].preview.dry_run(
            spec, team_id=team_of(request), after=after, limit=limit
        )
        return json_response(DryRunOut.from_domain(result))
    backfill = await request.app[USECASES_KEY].backfills.create(
        spec,
        team_id=team_of(request),
        command_id=command_id,
        created_by=principal_of(request).key_id,
    )
    return await _backfill_response(
        request, backfill, status=201, headers={"Location": f"/v1/backfills/{backfill.id}"}
    )


@routes.get("/v1/backfills")
async def list_backfills(request: web.Request) -> web.Response:
    query = params.QueryParams(request.query, allowed=("target_id", "state", *_PAGE))
    target_id = query.integer("target_id")
    states = query.states("state", BackfillState)
    after, limit = query.after(), query.limit()
    query.check()
    page = await request.app[USECASES_KEY].backfills.page(
        team_id=team_of(request), target_id=target_id, states=states, after=after, limit=limit
    )
    progress = await request.app[USECASES_KEY].ops.progress(page.items)
    return json_ready_response(backfills_page_body(page, progress))


@routes.get("/v1/backfills/{backfill}")
async def get_backfill(request: web.Request) -> web.Response:
    ref = params.backfill_ref(request.match_info["backfill"])
    backfill = await request.app[USECASES_KEY].backfills.get(ref, team_id=team_of(request))
    return await _backfill_response(request, backfill)


@routes.patch("/v1/backfills/{backfill}")
async def update_backfill(request: web.Request) -> web.Response:
    ref = params.backfill_ref(request.match_info["backfill"])
    patch = await BACKFILL_PATCH.parse(request)
    backfill = await request.app[USECASES_KEY].backfills.update(
        ref, patch, team_id=team_of(request)
    )
    return await _backfill_response(request, backfill)


@routes.post("/v1/backfills/{backfill}/cancel")
async def cancel_backfill(request: web.Request) -> web.Response:
    ref = params.backfill_ref(request.match_info["backfill"])
    backfill = await request.app[USECASES_KEY].backfills.cancel(
        ref, team_id=team_of(request), by=principal_of(request).key_id
    )
    return await _backfill_response(request, backfill)


@routes.post("/v1/backfills/{backfill}/pause")
async def pause_backfill(request: web.Request) -> web.Response:
    ref = params.backfill_ref(request.match_info["backfill"])
    backfill = await request.app[USECASES_KEY].backfills.pause(ref, team_id=team_of(request))
    return await _backfill_response(request, backfill)


@routes.post("/v1/backfills/{backfill}/resume")
async def resume_backfill(request: web.Request) -> web.Response:
    ref = params.backfill_ref(request.match_info["backfill"])
    backfill = await request.app[USECASES_KEY].backfills.resume(ref, team_id=team_of(request))
    return await _backfill_response(request, backfill)


@routes.post("/v1/backfills/{backfill}/retry")
async def retry_backfill(request: web.Request) -> web.Response:
    ref = params.backfill_ref(request.match_info["backfill"])
    backfill = await request.app[USECASES_KEY].backfills.retry(ref, team_id=team_of(request))
    return await _backfill_response(request, backfill)


@routes.get("/v1/backfills/{backfill}/runs")
async def list_runs(request: web.Request) -> web.Response:
    ref = params.backfill_ref(request.match_info["backfill"])
    query = params.QueryParams(request.query, allowed=("state", *_PAGE))
    states = query.states("state", RunState)
    after, limit = query.after(), query.limit()
    query.check()
    page = await request.app[USECASES_KEY].runs.page(
        ref, team_id=team_of(request), states=states, after=after, limit=limit
    )
    return json_response(runs_page(page))
