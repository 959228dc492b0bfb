"""/openapi.json: the API's description, open to everyone (see api.auth). The pages that show
it (/docs, /docs/reference) are in api.routes_ui."""

from __future__ import annotations

import functools
import json

from aiohttp import web

from api.openapi import openapi_document

routes = web.RouteTableDef()


@functools.cache
def _document_text() -> str:
    return json.dumps(openapi_document(), separators=(",", ":"), ensure_ascii=False)


@routes.get("/openapi.json")
async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(text=_document_text(), content_type="application/json")
