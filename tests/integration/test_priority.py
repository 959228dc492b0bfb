"""Fair share by priority: a big low-priority backfill does not starve a small urgent one.
The dispatcher shares its capacity out by priority, and a backfill over its share gives
back queued runs, so the urgent runs do not wait behind a queue full of the big one's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import BaseModel, ConfigDict

from api.app import create_app
from orchestrator.context import open_context
from orchestrator.domain.keys import ALL_SCOPES
from orchestrator.handlers.base import Handler, WindowRun
from orchestrator.handlers.registry import HANDLER_TYPES
from orchestrator.plugins.resources import Resources
from orchestrator.probes import ContextProbes
from tests.conftest import RunningWorker, make_settings
from tests.helpers import api, make_target, start_backfill, wait_backfill, wait_until
from workers.process import Worker

pytestmark = pytest.mark.integration


class _NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Steady:
    """Each window takes a twentieth of a second, like a small real transfer."""

    name = "steady"
    options_model: type[BaseModel] = _NoOptions

    async def validate(self, options: BaseModel, resources: Resources) -> None:
        return None

    async def open(self, options: BaseModel, resources: Resources) -> Handler:
        return self

    async def run(self, window: WindowRun) -> int | None:
        await asyncio.sleep(0.05)  # noqa: TID251 - the work a window takes, not a wait
        return 1

    async def close(self) -> None:
        return None


@pytest.fixture
def steady() -> Iterator[None]:
    HANDLER_TYPES[Steady.name] = Steady()
    yield
    HANDLER_TYPES.pop(Steady.name, None)


@pytest.fixture
async def small_cluster(
    database: str, prefix: str, steady: None
) -> AsyncIterator[TestClient[Any, Any]]:
    """One worker running two runs at a time, a dispatch capacity of four."""
    settings = make_settings(database, prefix, worker_concurrency=2, dispatch_capacity=4)
    async with open_context(settings) as ctx:
        token, _ = await ctx.access.create_key(1, set(ALL_SCOPES), name="tests")
        running = RunningWorker(Worker(ctx))
        await running.start()
        app = create_app(settings, ctx.usecases, ContextProbes(ctx, consuming=True), ctx.access)
        headers = {"Authorization": f"Bearer {token}"}
        async with TestClient(TestServer(app), headers=headers) as client:
            yield client
        await running.stop()


async def test_a_small_urgent_backfill_is_not_starved_by_a_big_one(
    small_cluster: Any, db: Any
) -> None:
    client = small_cluster
    await make_target(client, "t", handler={"type": "steady"})
    big = await start_backfill(
        client, "t", start="2024-01-01", end="2024-03-31", max_active_runs=50, priority=1
    )

    async def big_completed() -> int:
        return int(
            await db.fetchval("SELECT runs_completed FROM backfills WHERE id = $1", big["id"])
        )

    await wait_until(big_completed, what="the big backfill to be under way")
    # Alone, it has the whole capacity (4), not its max_active_runs (50).
    in_flight = await db.fetchval(
        "SELECT count(*) FROM transfer_runs WHERE backfill_id = $1 "
        "AND state IN ('queued', 'running')",
        big["id"],
    )
    assert in_flight <= 4

    before = await big_completed()
    small = await start_backfill(client, "t", start="2025-01-01", end="2025-01-03", priority=10)
    await wait_backfill(client, small["id"], {"completed"}, within=30)
    overtaken_by = await big_completed() - before
    # The small one's three runs waited behind a handful of the big one's, not its queue.
    assert overtaken_by <= 8, overtaken_by
    assert (await api(client, "GET", f"/v1/backfills/{big['id']}", 200))["state"] == "running"
    await api(client, "POST", f"/v1/backfills/{big['id']}/cancel", 200)
