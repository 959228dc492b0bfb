"""What a compatibility dialect declares, in one object, and how a request finds its own.

The compatibility APIs keep their systems' paths, so the path alone decides which dialect a
request speaks: the error shape it is answered in and the header its key may come in. The
app installs the registry's dialects under DIALECTS_KEY; the error, auth and CORS
middlewares look them up there rather than importing the dialect modules, which import
route helpers of their own."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import web

from api.compat.failure import Renderer


@dataclass(frozen=True)
class Dialect:
    name: str
    # Paths under these belong to the dialect ...
    prefixes: tuple[str, ...]
    # ... and so do these exact ones (a collection path without its trailing slash).
    paths: tuple[str, ...]
    routes: web.RouteTableDef
    render_error: Renderer
    # A header the dialect's clients send their key in, besides `Authorization: Bearer`.
    key_header: str | None = None

    def owns(self, path: str) -> bool:
        return path in self.paths or path.startswith(self.prefixes)


DIALECTS_KEY = web.AppKey[tuple[Dialect, ...]]("dialects")


def dialect_of_path(dialects: Iterable[Dialect], path: str) -> Dialect | None:
    """The dialect a path belongs to; None for the native API."""
    return next((dialect for dialect in dialects if dialect.owns(path)), None)


def dialect_of(request: web.Request) -> Dialect | None:
    # .get: the ops app shares the error middleware and speaks no dialect.
    dialects: tuple[Dialect, ...] = request.app.get(DIALECTS_KEY, ())
    return dialect_of_path(dialects, request.path)
