"""Placeholder: filled in below."""

from __future__ import annotations

from aiohttp import web

from api.compat.failure import Failure
from api.errors import render_problem

routes = web.RouteTableDef()


def render_error(request: web.Request, failure: Failure) -> web.Response:
    return render_problem(request, failure)
