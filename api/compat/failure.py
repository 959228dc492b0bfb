"""A failure, before it is rendered: what the error middleware hands to whichever API's
error shape the request's path calls for."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Failure:
    status: int
    code: str  # this service's code: validation_failed, not_found, ...
    title: str
    detail: str
    errors: Sequence[Mapping[str, Any]] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    # Raised by the router or the HTTP layer (no such path, wrong method, body too large),
    # not by a handler: some APIs answer those in a shape of their own.
    from_http: bool = False


Renderer = Callable[[web.Request, Failure], web.Response]
