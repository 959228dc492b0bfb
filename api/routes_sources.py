"""/v1/sources: what an operator granted the caller's team (admin scope). Names and grants
only; a source's connection never leaves the server."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from api.auth import require
from api.keys import USECASES_KEY
from api.render import json_response
from orchestrator.domain.keys import Scope

routes = web.RouteTableDef()


class SourceGrantOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str
    read_tables: list[str]
    write_tables: list[str]
    sql_handler: bool
    statement_timeout_ms: int
    granted_at: datetime | None
    updated_at: datetime | None


class SourceGrantList(BaseModel):
    data: list[SourceGrantOut]


@routes.get("/v1/sources")
async def list_sources(request: web.Request) -> web.Response:
    principal = require(request, Scope.ADMIN)
    grants = await request.app[USECASES_KEY].grants.granted(principal.team_id)
    return json_response(
        SourceGrantList(
            data=[SourceGrantOut.model_validate(g.model_dump(exclude={"team_id"})) for g in grants]
        )
    )
