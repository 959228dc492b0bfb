"""A real HTTP receiver for the webhook sink and the http handler: an aiohttp server on
127.0.0.1 that verifies every signature the way docs/destinations.md tells receivers to,
records what arrived, and answers from a script, so a test can make it fail on demand."""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from orchestrator.outbound.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    signed: bool  # the signature verified with the peer's secret
    at: float  # time.monotonic() on arrival

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


class WebhookPeer:
    def __init__(self, secret: bytes | None) -> None:
        self.secret = secret
        self.received: list[Received] = []
        self.script: deque[Answer] = deque()
        # What to answer once the script is used up; a test may compute it per request.
        self.default: Callable[[Received], Answer] = lambda _: Answer()
        self._runner: web.AppRunner | None = None
        self.url = ""

    def then(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        """Queues a one-off answer for the next request."""
        self.script.append(Answer(status, {} if body is None else body, headers or {}))

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        signed = self.secret is not None and verify(
            self.secret,
            request.headers.get(TIMESTAMP_HEADER),
            request.headers.get(SIGNATURE_HEADER),
            body,
            now=time.time(),
        )
        received = Received(dict(request.headers), body, signed, time.monotonic())
        self.received.append(received)
        if self.secret is not None and not signed:
            return web.json_response({"error": "bad signature"}, status=401)
        answer = self.script.popleft() if self.script else self.default(received)
        return web.json_response(answer.body, status=answer.status, headers=answer.headers)
