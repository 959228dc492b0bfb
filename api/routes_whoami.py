"""GET /v1/whoami: what the presented key is and may do, so a client (the dashboard) shows
only the actions it can take. Any valid key may ask, whatever its scopes."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from api.auth import principal_of
from api.render import json_response
from orchestrator.domain.keys import Scope

routes = web.RouteTableDef()

WHOAMI_PATH = "/v1/whoami"


class WhoAmIOut(BaseModel):
    """The calling key: its id and visible prefix, its team, and its scopes."""

    model_config = ConfigDict(frozen=True)

    key_id: int
    prefix: str
    team_id: int
    scopes: list[Scope]


@routes.get(WHOAMI_PATH)
async def whoami(request: web.Request) -> web.Response:
    principal = principal_of(request)
    return json_response(
        WhoAmIOut(
            key_id=principal.key_id,
            prefix=principal.prefix,
            team_id=principal.team_id,
            scopes=sorted(principal.scopes),
        )
    )
