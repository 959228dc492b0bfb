"""The dashboard at /ui/, Swagger UI at /docs, the script-free reference at /docs/reference,
and `GET /`: a browser is sent to the dashboard, an API client gets a small index of links.

Every file is served from this package (nothing from elsewhere, so it works offline) under a
Content-Security-Policy that allows scripts and styles from this origin only: no inline code,
no eval. The pages hold no data; they ask the API for it with the key the user pastes."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

from aiohttp import web

from api.docs_page import render_docs
from api.openapi import openapi_document
from api.render import json_response
from orchestrator.errors import NotFound

routes = web.RouteTableDef()

_STRICT_CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        # Swagger UI's stylesheet draws its icons with data: SVGs.
        "img-src 'self' data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
PAGE_HEADERS = {
    "Content-Security-Policy": _STRICT_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The pages are small and change with the code; the browser asks again each time.
    "Cache-Control": "no-cache",
}
# The reference page has no scripts at all; its styles are inline in the page.
_REFERENCE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
}


@dataclass(frozen=True)
class _Asset:
    folder: str
    name: str
    content_type: str


_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


def _assets(folder: str, *names: str) -> dict[str, _Asset]:
    return {name: _Asset(folder, name, _TYPES[name[name.rindex(".") :]]) for name in names}


UI_ASSETS = _assets("ui", "index.html", "app.js", "app.css")
DOCS_ASSETS = _assets(
    "swagger",
    "index.html",
    "swagger-ui-bundle.js",
    "swagger-ui.css",
    "swagger-init.js",
    "docs.css",
)


@functools.cache
def _read(asset: _Asset) -> bytes:
    return resources.files("api").joinpath("static", asset.folder, asset.name).read_bytes()


def _serve(asset: _Asset) -> web.Response:
    return web.Response(
        body=_read(asset),
        content_type=asset.content_type,
        charset="utf-8",
        headers=PAGE_HEADERS,
    )


def _lookup(assets: dict[str, _Asset], name: str) -> _Asset:
    asset = assets.get(name)
    if asset is None or name == "index.html":  # the page itself lives at the folder's path
        raise NotFound(f"no such file: {name!r}")
    return asset


def _redirect(location: str, **headers: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location, **headers})


LINKS = {
    "dashboard": "/ui/",
    "docs": "/docs",
    "reference": "/docs/reference",
    "openapi": "/openapi.json",
    "whoami": "/v1/whoami",
    "targets": "/v1/targets",
    "backfills": "/v1/backfills",
    "health": "/ops/health",
    "ready": "/ops/ready",
    "overview": "/ops/overview",
    "metrics": "/metrics",
}


def wants_html(request: web.Request) -> bool:
    # Browsers ask for text/html first; curl, SDKs and fetch() do not mention it.
    return "text/html" in request.headers.get("Accept", "")


@routes.get("/")
async def root(request: web.Request) -> web.Response:
    if wants_html(request):
        return _redirect("/ui/", Vary="Accept")
    return json_response(
        {"name": "backfill-orchestrator", "links": LINKS}, headers={"Vary": "Accept"}
    )


@routes.get("/ui")
async def ui_redirect(request: web.Request) -> web.Response:
    return _redirect("/ui/")


@routes.get("/ui/")
async def ui_page(request: web.Request) -> web.Response:
    return _serve(UI_ASSETS["index.html"])


@routes.get("/ui/{asset}")
async def ui_asset(request: web.Request) -> web.Response:
    return _serve(_lookup(UI_ASSETS, request.match_info["asset"]))


@routes.get("/docs")
async def docs(request: web.Request) -> web.Response:
    return _serve(DOCS_ASSETS["index.html"])


@functools.cache
def _reference_text() -> str:
    return render_docs(openapi_document())


@routes.get("/docs/reference")
async def docs_reference(request: web.Request) -> web.Response:
    return web.Response(
        text=_reference_text(), content_type="text/html", headers=_REFERENCE_HEADERS
    )


@routes.get("/docs/{asset}")
async def docs_asset(request: web.Request) -> web.Response:
    return _serve(_lookup(DOCS_ASSETS, request.match_info["asset"]))
