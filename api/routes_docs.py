"""/openapi.json and /docs: the API's description, open to everyone (see api.auth)."""

from __future__ import annotations

import functools
import json

from aiohttp import web

from api.docs_page import render_docs
from api.openapi import openapi_document

routes = web.RouteTableDef()

# The page has no scripts and needs nothing from elsewhere; the policy keeps it that way.
_DOCS_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
}


@functools.cache
def _document_text() -> str:
    return json.dumps(openapi_document(), separators=(",", ":"), ensure_ascii=False)


@functools.cache
def _docs_text() -> str:
    return render_docs(openapi_document())


@routes.get("/openapi.json")
async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(text=_document_text(), content_type="application/json")


@routes.get("/docs")
async def docs(request: web.Request) -> web.Response:
    return web.Response(text=_docs_text(), content_type="text/html", headers=_DOCS_HEADERS)
