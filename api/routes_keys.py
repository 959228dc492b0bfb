"""/v1/keys: a team's API keys, managed by keys with the `admin` scope. A new key's token is
in the create response and nowhere else, ever."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from api.auth import require
from api.body import RequestBody
from api.keys import ACCESS_KEY
from api.render import json_response
from orchestrator.domain.keys import KeyInfo, Scope
from orchestrator.domain.storable import StorableText

routes = web.RouteTableDef()

_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    scopes: list[Scope] = Field(min_length=1, max_length=3)
    name: StorableText | None = Field(default=None, max_length=128)
    expires_at: AwareDatetime | None = Field(
        default=None, description="With an offset; before the year 9000"
    )

    @field_validator("expires_at")
    @classmethod
    def _storable(cls, value: datetime | None) -> datetime | None:
        # Postgres keeps timestamps to the year 294276 but turns Python's datetime.min/max
        # into -infinity/infinity; a key that expires is meant to expire in a real year.
        if value is not None and not _EARLIEST <= value < _LATEST:
            raise ValueError("must be between 1970 and 9000")
        return value


class CreatedKey(BaseModel):
    """The only answer that carries a token."""

    token: str
    key: KeyInfo


class KeyList(BaseModel):
    data: list[KeyInfo]


KEY_CREATE = RequestBody[KeyCreate](KeyCreate)


@routes.post("/v1/keys")
async def create_key(request: web.Request) -> web.Response:
    principal = require(request, Scope.ADMIN)
    spec = await KEY_CREATE.parse(request)
    token, info = await request.app[ACCESS_KEY].create_key(
        principal.team_id, set(spec.scopes), name=spec.name, expires_at=spec.expires_at
    )
    return json_response(CreatedKey(token=token, key=info), status=201)


@routes.get("/v1/keys")
async def list_keys(request: web.Request) -> web.Response:
    principal = require(request, Scope.ADMIN)
    keys = await request.app[ACCESS_KEY].repo.list_keys(principal.team_id)
    return json_response(KeyList(data=keys))


@routes.delete("/v1/keys/{prefix}")
async def revoke_key(request: web.Request) -> web.Response:
    principal = require(request, Scope.ADMIN)
    await request.app[ACCESS_KEY].revoke_key(request.match_info["prefix"], principal.team_id)
    return web.Response(status=204)
