from __future__ import annotations

import pytest

from orchestrator.domain.states import BackfillState, RunState
from orchestrator.storage.database import Pool
from tests.integration.api.conftest import Client
from tests.integration.api.probes import FakeProbes
from tests.integration.api.seed import add_backfill, add_runs, add_target, add_worker


@pytest.fixture
async def first_pending_run(pool: Pool) -> int:
    """One running backfill with three pending runs, and one worker seen just now; the id
    of the oldest pending run."""
    backfill = await add_backfill(pool, await add_target(pool), state=BackfillState.RUNNING)
    runs = await add_runs(pool, backfill["id"], [RunState.PENDING] * 3)
    await add_worker(pool, "w-1", ["planner", "executor"], 4)
    return runs[0]


async def test_health_is_always_ok(client: Client, probes: FakeProbes) -> None:
    probes.readiness_error = RuntimeError("no I/O should happen here")

    response = await client.get("/ops/health")

    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_ready_when_every_check_passes(client: Client) -> None:
    response = await client.get("/ops/ready")

    assert response.status == 200
    assert await response.json() == {
        "status": "ready",
        "checks": {"postgres": True, "rabbitmq": True, "consumers": True},
    }


async def test_unavailable_when_a_check_fails(client: Client, probes: FakeProbes) -> None:
    probes.checks["rabbitmq"] = False

    response = await client.get("/ops/ready")

    assert response.status == 503
    assert await response.json() == {
        "status": "unavailable",
        "checks": {"postgres": True, "rabbitmq": False, "consumers": True},
    }


async def test_unavailable_when_the_probe_raises(client: Client, probes: FakeProbes) -> None:
    probes.readiness_error = ConnectionError("refused")

    response = await client.get("/ops/ready")

    assert response.status == 503
    assert await response.json() == {"status": "unavailable", "checks": {"readiness": False}}


async def test_overview_merges_queue_depths(client: Client, first_pending_run: int) -> None:
    response = await client.get("/ops/overview")

    assert response.status == 200
    body = await response.json()
    assert body["backfills"] == {"running": 1}
    assert body["runs"] == {"pending": 3}
    assert body["oldest_pending_run"]["id"] == first_pending_run
    [worker] = body["workers"]
    assert worker["id"] == "w-1"
    assert worker["roles"] == ["planner", "executor"]
    assert worker["stopped_at"] is None
    assert worker["status"] == "alive"
    assert worker["concurrency"] == 4
    # Unpinned, the capacity dispatch shares out is the alive workers' slots.
    assert body["dispatch_capacity"] == {"runs": 4, "pinned": False}
    assert body["queues"] == {"backfills.commands": 0, "backfills.runs": 12}


@pytest.mark.usefixtures("first_pending_run")
async def test_overview_survives_a_failing_queue_probe(client: Client, probes: FakeProbes) -> None:
    probes.depths_error = ConnectionError("broker down")

    response = await client.get("/ops/overview")

    assert response.status == 200
    body = await response.json()
    assert body["queues"] is None
    assert body["backfills"] == {"running": 1}
