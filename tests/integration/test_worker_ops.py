"""The ops server of a process without the API: BACKFILL_METRICS_PORT 0 picks a free port,
unset serves nothing, and BACKFILL_OPS_AUTH guards it as it guards the API's ops routes."""

from __future__ import annotations

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.cli.ops_server import OpsServer
from orchestrator.context import open_context
from orchestrator.domain.keys import Scope
from tests.conftest import RunningWorker, make_settings
from tests.helpers import wait_until
from workers.process import Worker

pytestmark = pytest.mark.integration


async def test_port_zero_serves_on_a_free_port_behind_the_ops_key(
    database: str, prefix: str
) -> None:
    settings = make_settings(database, prefix, metrics_port=0, ops_auth=True)
    async with open_context(settings) as ctx:
        token, _ = await ctx.access.create_key(1, {Scope.READ}, name="scraper")
        running = RunningWorker(Worker(ctx, ops=OpsServer(ctx, consuming=True)))
        await running.start()
        try:
            ops = running.worker.ops
            assert ops is not None
            port = await wait_until(lambda: _port(ops.port), what="the ops server's port")
            async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as http:
                async with http.get("/ops/health") as response:
                    assert response.status == 200, "liveness never needs a key"
                async with http.get("/metrics") as response:
                    assert response.status == 401
                    assert (await response.json())["code"] == "unauthorized"
                auth = {"Authorization": f"Bearer {token}"}
                async with http.get("/metrics", headers=auth) as response:
                    assert response.status == 200
                    text = await response.text()
                async with http.get("/v1/backfills", headers=auth) as response:
                    assert response.status == 404, "the ops port serves no API"
        finally:
            await running.stop()
    families = {f.name for f in text_string_to_metric_families(text)}
    assert {"process_cpu_seconds", "python_info", "backfill_runs_finished"} <= families


async def _port(port: int | None) -> int | None:
    return port


async def test_no_port_serves_nothing_and_the_worker_still_works(
    database: str, prefix: str
) -> None:
    async with open_context(make_settings(database, prefix)) as ctx:
        running = RunningWorker(Worker(ctx, ops=OpsServer(ctx, consuming=True)))
        await running.start()
        try:
            assert running.worker.ops is not None
            await wait_until(ctx.broker.consumers_attached, what="the consumers to attach")
            assert running.worker.ops.port is None
        finally:
            await running.stop()
