from __future__ import annotations

from api_fakes import Client, FakeProbes, FakeService


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


async def test_overview_merges_queue_depths(client: Client) -> None:
    response = await client.get("/ops/overview")

    assert response.status == 200
    assert await response.json() == {
        "backfills": {"running": 1},
        "runs": {"pending": 3},
        "oldest_pending_run": "2024-05-01T12:00:00+00:00",
        "workers": [
            {
                "id": "w-1",
                "roles": ["planner", "executor"],
                "last_seen_at": "2024-05-01T12:00:00+00:00",
                "stopped_at": None,
            }
        ],
        "queues": {"backfills.commands": 0, "backfills.runs": 12},
    }


async def test_overview_survives_a_failing_queue_probe(
    client: Client, service: FakeService, probes: FakeProbes
) -> None:
    probes.depths_error = ConnectionError("broker down")

    response = await client.get("/ops/overview")

    assert response.status == 200
    body = await response.json()
    assert body["queues"] is None
    assert body["backfills"] == {"running": 1}
