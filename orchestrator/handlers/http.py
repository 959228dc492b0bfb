"""POSTs each window to a URL and counts what the receiver says it wrote.

Body: {"window_start", "window_end", "variables", "backfill_id", "run_id", "attempt",
"idempotency_key"}. A 2xx answers the window; a JSON body with an integer "rows" is counted.
Signing, timeouts, retries and the allow-list are the webhook sink's (orchestrator.outbound).
The idempotency key names the backfill and the window, the same for every attempt."""

from __future__ import annotations

import json

from pydantic import BaseModel

from orchestrator.handlers.base import Handler, WindowRun
from orchestrator.outbound.client import OutboundClient
from orchestrator.outbound.options import HttpOptions, check_http_options, signing_secret
from orchestrator.outbound.policy import RetryPolicy
from orchestrator.plugins.resources import Resources

POINTER = "/handler/options"


class HttpHandlerOptions(HttpOptions):
    pass


def window_body(window: WindowRun, key: str) -> bytes:
    return json.dumps(
        {
            "window_start": window.window_start.isoformat(),
            "window_end": window.window_end.isoformat(),
            "variables": window.variables,
            "backfill_id": window.backfill_id,
            "run_id": window.run_id,
            "attempt": window.attempt,
            "idempotency_key": key,
        },
        separators=(",", ":"),
        default=str,
    ).encode()


def rows_reported(body: object) -> int | None:
    if isinstance(body, dict):
        rows = body.get("rows")
        if isinstance(rows, int) and not isinstance(rows, bool) and rows >= 0:
            return rows
    return None


class _HttpHandler:
    def __init__(
        self,
        options: HttpHandlerOptions,
        client: OutboundClient,
        secret: bytes | None,
        policy: RetryPolicy,
    ) -> None:
        self._options = options
        self._client = client
        self._secret = secret
        self._policy = policy

    async def run(self, window: WindowRun) -> int | None:
        key = f"{window.backfill_id}:{window.window_start.isoformat()}"
        headers = {
            "Idempotency-Key": key,
            "X-Backfill-Id": str(window.backfill_id),
            "X-Backfill-Run-Id": str(window.run_id),
            "X-Backfill-Attempt": str(window.attempt),
        }
        response = await self._client.post_json(
            self._options.url,
            window_body(window, key),
            headers=headers,
            secret=self._secret,
            policy=self._policy,
        )
        return rows_reported(response.json())

    async def close(self) -> None:
        return None  # the client is the process's, closed with Resources


class HttpHandlerType:
    name = "http"
    options_model: type[BaseModel] = HttpHandlerOptions

    async def validate(self, options: BaseModel, resources: Resources) -> None:
        assert isinstance(options, HttpHandlerOptions)
        await check_http_options(options, resources.settings, POINTER)

    async def open(self, options: BaseModel, resources: Resources) -> Handler:
        assert isinstance(options, HttpHandlerOptions)
        settings = resources.settings
        return _HttpHandler(
            options,
            resources.peers.http(),
            signing_secret(options, settings, POINTER),
            options.policy(settings),
        )
