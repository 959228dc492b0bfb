"""GET /metrics and the HTTP metrics middleware, over the real service: requests are labelled
by their route template, and the database gauges come from the overview."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from api.metrics_middleware import UNMATCHED
from orchestrator.domain.states import BackfillState, RunState
from orchestrator.metrics import REGISTRY, scrape
from orchestrator.storage.database import Pool
from tests.integration.api.conftest import Client
from tests.integration.api.probes import FakeProbes
from tests.integration.api.seed import add_backfill, add_runs, add_target


def _requests(method: str, route: str, status: int) -> float:
    labels = {"method": method, "route": route, "status": str(status)}
    return REGISTRY.get_sample_value("backfill_http_requests_total", labels) or 0.0


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_requests_are_labelled_by_route_template_not_path(client: Client) -> None:
    route = "/v1/backfills/{backfill}"
    before_404 = _requests("GET", route, 404)
    before_list = _requests("GET", "/v1/backfills", 200)

    for backfill in (123, 456, 789):
        assert (await client.get(f"/v1/backfills/{backfill}")).status == 404
    assert (await client.get("/v1/backfills")).status == 200

    assert _requests("GET", route, 404) == before_404 + 3
    assert _requests("GET", "/v1/backfills", 200) == before_list + 1
    paths = {
        s.labels["route"]
        for family in REGISTRY.collect()
        if family.name == "backfill_http_requests"
        for s in family.samples
    }
    assert route in paths
    assert not any("123" in p for p in paths), paths
    duration = REGISTRY.get_sample_value(
        "backfill_http_request_duration_seconds_count", {"method": "GET", "route": route}
    )
    assert duration is not None
    assert duration >= 3


async def test_unmatched_paths_and_methods_share_one_label(client: Client) -> None:
    before_404 = _requests("GET", UNMATCHED, 404)
    before_405 = _requests("PUT", UNMATCHED, 405)

    assert (await client.get("/no/such/thing/42")).status == 404
    assert (await client.put("/v1/backfills")).status == 405

    assert _requests("GET", UNMATCHED, 404) == before_404 + 1
    assert _requests("PUT", UNMATCHED, 405) == before_405 + 1


async def test_metrics_serves_the_text_format_with_database_gauges(
    client: Client, pool: Pool
) -> None:
    backfill = await add_backfill(pool, await add_target(pool), state=BackfillState.RUNNING)
    await add_runs(pool, backfill["id"], [RunState.PENDING] * 3)
    await pool.execute(
        "INSERT INTO outbox (routing_key, payload, created_at)"
        " SELECT 'test', '{}', now() - interval '1 minute' FROM generate_series(1, 4)"
    )

    response = await client.get("/metrics")

    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    got = samples(await response.text())
    assert got[("backfill_database_up", ())] == 1
    assert got[("backfill_backfills", (("state", "running"),))] == 1
    assert got[("backfill_backfills", (("state", "cancelled"),))] == 0, "zeros are shown"
    assert got[("backfill_runs", (("state", "pending"),))] == 3
    assert got[("backfill_outbox_unsent", ())] == 4
    assert got[("backfill_outbox_oldest_unsent_age_seconds", ())] > 0
    assert ("backfill_outbox_published_total", ()) in got


async def test_a_failing_database_read_leaves_the_gauges_out(
    client: Client, fail_overview: Callable[[BaseException], None]
) -> None:
    fail_overview(ConnectionError("database down"))

    response = await client.get("/metrics")

    assert response.status == 200
    got = samples(await response.text())
    assert got[("backfill_database_up", ())] == 0
    assert not any(name == "backfill_backfills" for name, _ in got)


async def test_a_hung_database_read_is_given_up_on() -> None:
    async def hung() -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    got = samples((await scrape(hung, read_within=0.05)).decode())

    assert got[("backfill_database_up", ())] == 0


async def test_the_outbox_age_is_measured_from_the_oldest_unsent_row() -> None:
    oldest = datetime.now(UTC) - timedelta(minutes=2)

    async def overview() -> dict[str, Any]:
        return {"backfills": {}, "runs": {}, "outbox": {"unsent": 1, "oldest_unsent_at": oldest}}

    got = samples((await scrape(overview)).decode())

    assert 110 < got[("backfill_outbox_oldest_unsent_age_seconds", ())] < 180
    assert got[("backfill_backfills", (("state", "created"),))] == 0


async def test_metrics_show_active_backfills_and_queues(
    client: Client, pool: Pool, probes: FakeProbes
) -> None:
    backfill = await add_backfill(
        pool, await add_target(pool), state=BackfillState.PAUSED, planning_done=True
    )
    await add_runs(pool, backfill["id"], [RunState.COMPLETED] + [RunState.PENDING] * 3)
    probes.consumers = 0

    got = samples(await (await client.get("/metrics")).text())

    shown = (("backfill_id", str(backfill["id"])),)
    assert got[("backfill_active_progress_ratio", shown)] == 0.25
    runs = (("queue", "backfills.runs"), ("role", "runs"))
    assert got[("backfill_queue_messages", runs)] == 12
    assert got[("backfill_queue_consumers", runs)] == 0
