"""POSTs rows as JSON to a URL, `batch_size` rows per request, signed, with retries (see
orchestrator.outbound). Each request carries an idempotency key made of the backfill and
the first and last key of its rows, the same on every retry, so a receiver can drop a
repeat; the body lists the rows in key order."""

from __future__ import annotations

import json
from urllib.parse import quote

from pydantic import BaseModel, Field

from orchestrator.outbound.client import OutboundClient
from orchestrator.outbound.options import HttpOptions, check_http_options, signing_secret
from orchestrator.outbound.policy import RetryPolicy
from orchestrator.plugins.resources import Resources
from orchestrator.sinks.base import RowBatch, Sink
from orchestrator.sinks.encoding import RowEncoder, idempotency_key

POINTER = "/sink/options"


class WebhookOptions(HttpOptions):
    batch_size: int = Field(default=500, ge=1, le=10_000, description="Rows per request")


class _WebhookSink:
    def __init__(
        self,
        options: WebhookOptions,
        client: OutboundClient,
        secret: bytes | None,
        policy: RetryPolicy,
    ) -> None:
        self._options = options
        self._client = client
        self._secret = secret
        self._policy = policy
        self._encoders: dict[tuple[tuple[str, ...], tuple[str, ...]], RowEncoder] = {}

    def _encoder(self, batch: RowBatch) -> RowEncoder:
        shape = (tuple(batch.columns), tuple(batch.column_types))
        encoder = self._encoders.get(shape)
        if encoder is None:
            encoder = RowEncoder(batch.columns, batch.column_types, batch.key_columns)
            self._encoders[shape] = encoder
        return encoder

    async def deliver(self, batch: RowBatch) -> int:
        encoder = self._encoder(batch)
        size = self._options.batch_size
        table = json.dumps(batch.table)
        key_columns = json.dumps(batch.key_columns)
        for start in range(0, len(batch.rows), size):
            rows = batch.rows[start : start + size]
            key = idempotency_key(
                batch.backfill_id, batch.table, encoder.key(rows[0]), encoder.key(rows[-1])
            )
            body = (
                f'{{"backfill_id":{batch.backfill_id},"run_id":{batch.run_id},'
                f'"table":{table},"action":"read","idempotency_key":{json.dumps(key)},'
                f'"key_columns":{key_columns},"rows":['
                + ",".join(encoder.row(r) for r in rows)
                + "]}"
            ).encode()
            headers = {
                "Idempotency-Key": key,
                "X-Backfill-Id": str(batch.backfill_id),
                "X-Backfill-Run-Id": str(batch.run_id),
                # Header values must be ASCII; the body carries the name as it is.
                "X-Backfill-Table": quote(batch.table, safe="."),
                "X-Backfill-Action": "read",
            }
            await self._client.post_json(
                self._options.url, body, headers=headers, secret=self._secret, policy=self._policy
            )
        return len(batch.rows)

    async def close(self) -> None:
        return None  # the client is the process's, closed with Resources


class WebhookSinkType:
    name = "webhook"
    options_model: type[BaseModel] = WebhookOptions

    async def validate(self, options: BaseModel, resources: Resources) -> None:
        assert isinstance(options, WebhookOptions)
        await check_http_options(options, resources.settings, POINTER)

    async def open(self, options: BaseModel, resources: Resources) -> Sink:
        assert isinstance(options, WebhookOptions)
        settings = resources.settings
        return _WebhookSink(
            options,
            resources.peers.http(),
            signing_secret(options, settings, POINTER),
            options.policy(settings),
        )
