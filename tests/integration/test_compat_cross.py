"""One backfill seen through every API that can see it: the compatibility APIs are views of
the same backfills, so what one API does, the others (and the native one) show."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from orchestrator.context import Context
from orchestrator.probes import ContextProbes
from tests.helpers import api, make_target, wait_backfill

pytestmark = pytest.mark.integration


@pytest.fixture
async def idle(ctx: Context, token: str) -> AsyncIterator[TestClient[Any, Any]]:
    """The API with no worker, so a backfill stays where the test put it."""
    app = create_app(ctx.settings, ctx.usecases, ContextProbes(ctx, consuming=False), ctx.access)
    async with TestClient(TestServer(app), headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


async def pipeline(client: Any) -> dict[str, Any]:
    return await make_target(client, "arwen_starlight")


async def test_a_mage_backfill_is_a_supermetrics_and_a_native_backfill(idle: Any) -> None:
    target = await pipeline(idle)
    created = await api(
        idle,
        "POST",
        "/api/pipelines/arwen_starlight/backfills",
        200,
        json={
            "backfill": {
                "name": "january",
                "start_datetime": "2024-01-01 00:00:00",
                "end_datetime": "2024-01-03 00:00:00",
                "interval_type": "day",
                "interval_units": 1,
            }
        },
    )
    bid = created["backfill"]["id"]
    # A draft is Mage's alone: not a Supermetrics backfill yet; the native API shows it.
    await api(idle, "GET", f"/v1/teams/1/backfills/{bid}", 404)
    assert (await api(idle, "GET", f"/v1/backfills/{bid}", 200))["state"] == "draft"

    started = await api(
        idle,
        "PUT",
        f"/api/backfills/{bid}",
        200,
        json={"backfill": {"status": "initial"}},
    )
    assert started["backfill"]["status"] == "initial"

    native = await api(idle, "GET", f"/v1/backfills/{bid}", 200)
    assert native["state"] == "created"
    assert native["runs_total"] == 3  # Mage's end is inclusive: the 1st, 2nd and 3rd
    supermetrics = (await api(idle, "GET", f"/v1/teams/1/backfills/{bid}", 200))["data"]
    assert supermetrics["transfer_id"] == target["id"]
    assert supermetrics["status"] == "CREATED"
    assert supermetrics["range_start_date"] == "2024-01-01"
    assert supermetrics["range_end_date"] == "2024-01-03"
    assert supermetrics["transfer_runs_total"] == 3
    latest = await api(idle, "GET", f"/v1/teams/1/transfers/{target['id']}/backfills/latest", 200)
    assert latest["data"]["transfer_backfill_id"] == bid

    # Cancelled through Supermetrics: every view says so.
    cancelled = await api(
        idle, "PATCH", f"/v1/teams/1/backfills/{bid}", 200, json={"status": "CANCELLED"}
    )
    assert cancelled["data"]["status"] == "CANCELLED"
    assert cancelled["data"]["removed_user_id"] is not None
    assert (await api(idle, "GET", f"/v1/backfills/{bid}", 200))["state"] == "cancelled"
    mage = await api(idle, "GET", f"/api/pipelines/arwen_starlight/backfills/{bid}", 200)
    assert mage["backfill"]["status"] == "cancelled"
    listed = await api(idle, "GET", "/v1/teams/1/backfills", 200)
    assert bid not in [b["transfer_backfill_id"] for b in listed["data"]]


async def test_a_supermetrics_backfill_runs_and_mage_and_native_see_it_finish(
    client: Any,
) -> None:
    target = await pipeline(client)
    created = await api(
        client,
        "POST",
        f"/v1/teams/1/transfers/{target['id']}/backfills",
        200,
        json={"range_start": "2024-02-01", "range_end": "2024-02-05"},
    )
    bid = created["data"]["transfer_backfill_id"]
    await wait_backfill(client, bid, {"completed"})

    mage = (await api(client, "GET", f"/api/backfills/{bid}?include_run_count=true", 200))[
        "backfill"
    ]
    assert mage["status"] == "completed"
    assert mage["pipeline_uuid"] == "arwen_starlight"
    assert mage["start_datetime"] == "2024-02-01 00:00:00"
    assert mage["completed_at"] is not None
    supermetrics = (await api(client, "GET", f"/v1/teams/1/backfills/{bid}", 200))["data"]
    assert supermetrics["status"] == "COMPLETED"
    assert supermetrics["transfer_runs_completed"] == 5
    runs = await api(client, "GET", f"/v1/backfills/{bid}/runs", 200)
    starts = [r["window_start"][:10] for r in runs["data"]]
    assert starts == ["2024-02-05", "2024-02-04", "2024-02-03", "2024-02-02", "2024-02-01"]


async def test_a_sequin_backfill_is_native_and_invisible_to_the_date_range_apis(
    idle: Any, db: Any
) -> None:
    await db.execute("CREATE TABLE records (id bigint PRIMARY KEY)")
    sink = await make_target(idle, "records", "table")
    created = await api(idle, "POST", "/api/sinks/records/backfills", 200)
    native = await api(idle, "GET", f"/v1/backfills/{created['id']}", 200)
    assert native["target_id"] == sink["id"]

    await api(idle, "GET", f"/v1/teams/1/backfills/{native['id']}", 404)
    status = await idle.get(f"/api/backfills/{native['id']}?_http_error_codes=true")
    assert status.status == 404
    listed = await api(idle, "GET", "/api/backfills", 200)
    assert listed == {"backfills": [], "metadata": {"count": 0, "next": False}}

    await api(idle, "POST", f"/v1/backfills/{native['id']}/pause", 200)
    body = await api(idle, "GET", f"/api/sinks/records/backfills/{created['id']}", 200)
    assert body["state"] == "paused"
