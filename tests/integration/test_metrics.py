"""GET /metrics against the real service: run, command, outbox and HTTP counters move with
real work, the database gauges show the real counts, and a refused message is counted as
dead-lettered. Counters are per process (other tests add to them), so checks are on deltas."""

from __future__ import annotations

from typing import Any

import aio_pika
import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.context import Context
from tests.conftest import AMQP_URL
from tests.helpers import api, make_target, start_backfill, wait_backfill, wait_until

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: Any) -> Samples:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(await response.text())
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def test_a_backfill_moves_the_counters_and_the_gauges(client: Any) -> None:
    completed = {"kind": "date_range", "outcome": "completed"}
    before = await scrape(client)
    await make_target(client, "quiet")
    created = await start_backfill(client, "quiet", start="2024-01-01", end="2024-01-03")
    done = await wait_backfill(client, created["id"], {"completed", "failed"})
    assert done["state"] == "completed"

    # Pausing a completed backfill is refused, and counted so.
    await api(client, "POST", f"/v1/backfills/{created['id']}/pause", 422)

    async def counted() -> Samples:
        now = await scrape(client)
        runs = delta(before, now, "backfill_runs_finished_total", **completed)
        return now if runs >= 3 else {}

    after = await wait_until(counted, within=10, what="run counters")

    def commands(**labels: str) -> float:
        return delta(before, after, "backfill_commands_total", **labels)

    assert commands(type="command.create", source="api", outcome="applied") == 1
    assert commands(type="command.pause", source="api", outcome="refused") == 1
    # The API's command.create came back through the queue and the consumer skipped it:
    # not a second command, so not counted again.
    assert commands(type="command.create", source="queue", outcome="duplicate") == 0
    assert commands(type="command.create", source="queue", outcome="applied") == 0

    assert delta(before, after, "backfill_runs_finished_total", **completed) == 3
    assert delta(before, after, "backfill_rows_processed_total") == 0, "noop reads nothing"
    assert delta(before, after, "backfill_run_duration_seconds_count", kind="date_range") >= 3
    assert delta(before, after, "backfill_outbox_published_total") > 0
    # Labelled by the route's template, whatever the id in the path.
    one = {"method": "GET", "route": "/v1/backfills/{backfill}", "status": "200"}
    assert value(after, "backfill_http_requests_total", **one) >= 1
    create = {"method": "POST", "route": "/v1/backfills", "status": "201"}
    assert delta(before, after, "backfill_http_requests_total", **create) == 1
    routes = {
        dict(labels).get("route") for name, labels in after if name.startswith("backfill_http")
    }
    assert f"/v1/backfills/{created['id']}" not in routes

    # This test's own database: exactly what it made.
    assert value(after, "backfill_database_up") == 1
    assert value(after, "backfill_backfills", state="completed") == 1
    assert value(after, "backfill_backfills", state="running") == 0
    assert value(after, "backfill_runs", state="completed") == 3
    assert ("backfill_outbox_unsent", frozenset()) in after
    assert ("backfill_outbox_oldest_unsent_age_seconds", frozenset()) in after


async def test_a_refused_message_counts_as_dead_lettered(client: Any, ctx: Context) -> None:
    queue = f"{ctx.settings.amqp_prefix}.commands"
    before = await scrape(client)
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(ctx.settings.amqp_prefix)
        await exchange.publish(aio_pika.Message(b"not json {"), "command.pause", mandatory=True)

    async def counted() -> Samples:
        now = await scrape(client)
        dead = delta(before, now, "backfill_messages_dead_lettered_total", queue=queue)
        return now if dead >= 1 else {}

    after = await wait_until(counted, within=10, what="the dead-letter counter")

    assert delta(before, after, "backfill_messages_dead_lettered_total", queue=queue) == 1
    refused = {"type": "command.pause", "source": "queue", "outcome": "dead_lettered"}
    assert delta(before, after, "backfill_commands_total", **refused) == 1
