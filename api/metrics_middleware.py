"""HTTP request counts and durations for /metrics (observed by the edge middleware,
api/edge.py), labelled by the matched route's template
(`/v1/backfills/{backfill}`), never the raw path: ids in label values would make a new series
per backfill and grow without bound."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from orchestrator.metrics import HTTP_DURATION, HTTP_REQUESTS

UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_label(request: web.Request) -> str:
    """The route template, or UNMATCHED when no route matched (404, 405)."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


def method_label(request: web.Request) -> str:
    # aiohttp accepts any token as a method; the label keeps to the standard ones.
    return request.method if request.method in _METHODS else "other"


# Each series' children, found once: `labels()` checks and joins its arguments under a lock
# on every call. Bounded as the series are (standard methods, route templates, statuses).
_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def _series(method: str, route: str, status: int) -> tuple[Any, Any]:
    key = (method, route, status)
    found = _children.get(key)
    if found is None:
        found = (
            HTTP_REQUESTS.labels(method=method, route=route, status=str(status)),
            HTTP_DURATION.labels(method=method, route=route),
        )
        _children[key] = found
    return found


def observe(request: web.Request, status: int, started: float) -> None:
    requests, duration = _series(method_label(request), route_label(request), status)
    requests.inc()
    duration.observe(time.perf_counter() - started)
