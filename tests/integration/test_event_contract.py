"""The event models (and so docs/asyncapi.yaml) match what the orchestrator really publishes:
every event a bound queue receives validates against its model, which forbids extra fields
and requires every field."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from pydantic import BaseModel

from orchestrator.context import Context
from orchestrator.messaging.events import BackfillEvent, RunFailedEvent
from orchestrator.messaging.progress_event import BackfillProgressEvent
from tests.conftest import AMQP_URL
from tests.helpers import api, make_target, start_backfill, wait_backfill, wait_until

pytestmark = pytest.mark.integration

MODELS: dict[str, type[BaseModel]] = {
    "backfill.created": BackfillEvent,
    "backfill.completed": BackfillEvent,
    "backfill.failed": BackfillEvent,
    "backfill.cancelled": BackfillEvent,
    "backfill.paused": BackfillEvent,
    "backfill.resumed": BackfillEvent,
    "run.failed": RunFailedEvent,
    # Periodic: a running backfill may get one while the test goes on.
    "backfill.progress": BackfillProgressEvent,
}

# Prepares (so the target is accepted) and fails at run time, for a run.failed event.
FAILING_STATEMENT = "SELECT 1 / (extract(epoch FROM $1::timestamptz) * 0)::int"


@pytest.fixture
async def events(ctx: Context) -> AsyncIterator[AbstractQueue]:
    """Bound before anything is published, as a consumer service would bind it."""
    connection = await aio_pika.connect(AMQP_URL)
    channel = await connection.channel()
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(ctx.settings.amqp_prefix, "event.#")
    yield queue
    await connection.close()


async def test_every_published_event_fits_its_model(client: Any, events: AbstractQueue) -> None:
    await make_target(client, "quiet")
    await make_target(
        client,
        "broken",
        handler={"type": "sql", "options": {"statement": FAILING_STATEMENT}},
        max_attempts=1,
    )
    completes = await start_backfill(client, "quiet", start="2024-01-01", end="2024-01-03")
    fails = await start_backfill(client, "broken", start="2024-01-01", end="2024-01-01")
    # An hourly year of windows does not finish before the cancel arrives.
    cancelled = await start_backfill(
        client,
        "quiet",
        start="2025-01-01T00:00:00Z",
        end="2026-01-01T00:00:00Z",
        interval_type="hour",
    )
    await api(client, "POST", f"/v1/backfills/{cancelled['id']}/pause", 200)
    await api(client, "POST", f"/v1/backfills/{cancelled['id']}/resume", 200)
    await api(client, "POST", f"/v1/backfills/{cancelled['id']}/cancel", 200)
    done = await wait_backfill(client, completes["id"], {"completed", "failed"})
    assert done["state"] == "completed"
    done = await wait_backfill(client, fails["id"], {"completed", "failed"})
    assert done["state"] == "failed"

    received: list[AbstractIncomingMessage] = []
    expected = {
        ("backfill.created", completes["id"]),
        ("backfill.completed", completes["id"]),
        ("backfill.created", fails["id"]),
        ("run.failed", fails["id"]),
        ("backfill.failed", fails["id"]),
        ("backfill.created", cancelled["id"]),
        ("backfill.paused", cancelled["id"]),
        ("backfill.resumed", cancelled["id"]),
        ("backfill.cancelled", cancelled["id"]),
    }

    async def all_arrived() -> bool:
        while (message := await events.get(fail=False, no_ack=True)) is not None:
            received.append(message)
        seen = {(m.type, json.loads(m.body)["backfill_id"]) for m in received}
        return expected <= seen

    await wait_until(all_arrived, within=30, what="every kind of event")

    for message in received:
        payload = json.loads(message.body)
        assert message.routing_key == f"event.{payload['type']}"
        assert message.type == payload["type"]
        assert message.content_type == "application/json"
        # Strict on the fields: the models forbid extras and require every field.
        event = MODELS[payload["type"]].model_validate(payload)
        assert str(event.event_id) == payload["event_id"]
    completed = next(
        BackfillEvent.model_validate_json(m.body)
        for m in received
        if m.type == "backfill.completed"
    )
    assert completed.runs_completed == completed.runs_total == 3
    run_failed = next(
        RunFailedEvent.model_validate_json(m.body) for m in received if m.type == "run.failed"
    )
    assert run_failed.attempt == 1
    assert "DivisionByZero" in run_failed.error
    by_type = {
        m.type: BackfillEvent.model_validate_json(m.body)
        for m in received
        if json.loads(m.body)["backfill_id"] == cancelled["id"]
    }
    assert by_type["backfill.paused"].state == "paused"
    assert by_type["backfill.resumed"].state in {"running", "scheduled"}
