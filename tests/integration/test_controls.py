"""The operator's controls on a running system, each observed on the runs it changes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import BaseModel, ConfigDict

from api.app import create_app
from orchestrator.context import Context
from orchestrator.handlers.base import Handler, WindowRun
from orchestrator.handlers.registry import HANDLER_TYPES
from orchestrator.plugins.resources import Resources
from orchestrator.probes import ContextProbes
from tests.conftest import RunningWorker
from tests.helpers import api, make_target, start_backfill, wait_backfill
from workers.planner import Planner
from workers.process import Worker

pytestmark = pytest.mark.integration


class _NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Switch:
    """A handler that fails while `failing` is set, and records every attempt it saw."""

    name = "switch"
    options_model: type[BaseModel] = _NoOptions

    def __init__(self) -> None:
        self.failing = True
        self.attempts: dict[int, list[int]] = {}
        self.variables: list[dict[str, Any]] = []

    async def validate(self, options: BaseModel, resources: Resources) -> None:
        return None

    async def open(self, options: BaseModel, resources: Resources) -> Handler:
        return self

    async def run(self, window: WindowRun) -> int | None:
        self.attempts.setdefault(window.run_id, []).append(window.attempt)
        self.variables.append(window.variables)
        if self.failing:
            raise RuntimeError("the warehouse is read-only")
        return 1

    async def close(self) -> None:
        return None


@pytest.fixture
def switch() -> Iterator[Switch]:
    handler = Switch()
    HANDLER_TYPES[handler.name] = handler
    yield handler
    HANDLER_TYPES.pop(handler.name, None)


async def test_retry_puts_failed_runs_back_and_the_backfill_finishes(
    client: Any, switch: Switch
) -> None:
    await make_target(client, "w", handler={"type": "switch"}, max_attempts=2)
    created = await start_backfill(client, "w", start="2024-01-01", end="2024-01-03")
    failed = await wait_backfill(client, created["id"], {"failed", "completed"})
    assert failed["state"] == "failed"
    assert failed["runs_failed"] == 3
    assert len(failed["error_report"]) == 3

    switch.failing = False
    retried = await api(client, "POST", f"/v1/backfills/{created['id']}/retry", 200)
    assert retried["state"] == "running"
    assert retried["runs_failed"] == 0
    assert retried["error_report"] == []
    assert retried["failed_at"] is None

    done = await wait_backfill(client, created["id"], {"failed", "completed"})
    assert done["state"] == "completed"
    assert done["runs_completed"] == 3
    assert done["runs_failed"] == 0
    # Each run had its two attempts, then a fresh count: attempt 1 again.
    assert sorted(switch.attempts.values()) == [[1, 2, 1]] * 3

    refused = await api(client, "POST", f"/v1/backfills/{created['id']}/retry", 422)
    assert refused["code"] == "invalid_state_transition"
    assert refused["valid_actions"] == []


async def test_retry_without_failed_runs_is_422_and_changes_nothing(client: Any) -> None:
    await make_target(client, "n")
    created = await start_backfill(client, "n", start="2024-01-01", end="2024-01-02")
    paused = await api(client, "POST", f"/v1/backfills/{created['id']}/pause", 200)
    refused = await api(client, "POST", f"/v1/backfills/{created['id']}/retry", 422)
    assert refused["code"] == "validation_failed"
    assert "no failed runs" in refused["detail"]
    after = await api(client, "GET", f"/v1/backfills/{created['id']}", 200)
    assert after["state"] == paused["state"] == "paused"
    await api(client, "POST", "/v1/backfills/999999/retry", 404)


async def test_each_run_receives_its_window_and_the_previous_windows_start(
    client: Any, switch: Switch
) -> None:
    switch.failing = False
    await make_target(client, "w", handler={"type": "switch"}, variables={"warehouse": "eu"})
    created = await start_backfill(
        client,
        "w",
        start="2024-01-01",
        end="2024-01-02",
        order="newest_first",
        variables={"mode": "full"},
    )
    await wait_backfill(client, created["id"], {"completed"})
    by_day = {v["window_start"][:10]: v for v in switch.variables}
    assert by_day["2024-01-02"] == {
        "warehouse": "eu",
        "mode": "full",
        "execution_date": "2024-01-02T00:00:00+00:00",
        "window_start": "2024-01-02T00:00:00+00:00",
        "window_end": "2024-01-03T00:00:00+00:00",
        "interval_seconds": 86400.0,
        "previous_window_start": "2024-01-01T00:00:00+00:00",
        "interval_start_datetime": "2024-01-02T00:00:00+00:00",
        "interval_end_datetime": "2024-01-03T00:00:00+00:00",
        "ds": "2024-01-02",
        "hr": "00",
    }
    # The first window's predecessor lies before the range.
    assert by_day["2024-01-01"]["previous_window_start"] == "2023-12-31T00:00:00+00:00"


async def test_a_dry_run_shows_the_windows_and_the_overlap_and_creates_nothing(
    client: Any, db: Any
) -> None:
    await make_target(client, "n")
    body = {"target": "n", "start": "2024-01-01", "end": "2024-01-10", "order": "newest_first"}
    first = await api(client, "POST", "/v1/backfills?dry_run=true&limit=4", 200, json=body)
    assert first["dry_run"] is True
    assert first["runs_total"] == 10
    assert first["rows_estimate"] is None
    assert first["conflicting_backfill_id"] is None
    assert [r["window_start"][:10] for r in first["runs"]] == [
        "2024-01-10",
        "2024-01-09",
        "2024-01-08",
        "2024-01-07",
    ]
    assert first["next_after"] == 3
    last = await api(client, "POST", "/v1/backfills?dry_run=true&limit=4&after=7", 200, json=body)
    assert [r["seq"] for r in last["runs"]] == [8, 9]
    assert last["next_after"] is None
    assert await db.fetchval("SELECT count(*) FROM backfills") == 0
    assert await db.fetchval("SELECT count(*) FROM outbox") == 0

    # Bad input is refused exactly as a create would refuse it.
    await api(client, "POST", "/v1/backfills?dry_run=true", 422, json={**body, "end": "2023-01-01"})
    await api(client, "POST", "/v1/backfills?dry_run=maybe", 422, json=body)

    # An active backfill over the same days is named, not refused.
    paused = await api(client, "POST", "/v1/backfills", 201, json=body)
    await api(client, "POST", f"/v1/backfills/{paused['id']}/pause", 200)
    again = await api(client, "POST", "/v1/backfills?dry_run=true", 200, json=body)
    assert again["conflicting_backfill_id"] == paused["id"]


async def test_a_table_dry_run_shows_the_key_ranges_the_planner_would_cut(
    client: Any, db: Any
) -> None:
    await db.execute("CREATE TABLE items (id bigint PRIMARY KEY)")
    await db.execute("INSERT INTO items SELECT g FROM generate_series(1, 95) g")
    await db.execute("ANALYZE items")
    await make_target(client, "items", "table", chunk_size=20)
    preview = await api(
        client, "POST", "/v1/backfills?dry_run=true&limit=3", 200, json={"target": "items"}
    )
    assert preview["rows_estimate"] == 95
    assert [(r["lower_key"], r["upper_key"]) for r in preview["runs"]] == [
        (None, ["20"]),
        (["20"], ["40"]),
        (["40"], ["60"]),
    ]
    rest = await api(
        client,
        "POST",
        f"/v1/backfills?dry_run=true&limit=3&after={preview['next_after']}",
        200,
        json={"target": "items"},
    )
    assert [(r["lower_key"], r["upper_key"]) for r in rest["runs"]] == [
        (["60"], ["80"]),
        (["80"], ["95"]),
    ]
    assert rest["next_after"] is None

    # The runs a real backfill makes are the ones the dry run showed.
    created = await start_backfill(client, "items")
    await wait_backfill(client, created["id"], {"completed"})
    runs = await api(client, "GET", f"/v1/backfills/{created['id']}/runs", 200)
    assert [(r["lower_key"], r["upper_key"]) for r in runs["data"]] == [
        (r["lower_key"], r["upper_key"]) for r in preview["runs"] + rest["runs"]
    ]


@pytest.fixture
async def idle(ctx: Context, token: str) -> AsyncIterator[TestClient[Any, Any]]:
    """The API with no worker: nothing plans or runs until the test says so."""
    app = create_app(ctx.settings, ctx.usecases, ContextProbes(ctx, consuming=False), ctx.access)
    async with TestClient(TestServer(app), headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


async def test_a_backfill_that_has_not_started_is_planned_again(
    idle: Any, ctx: Context, db: Any
) -> None:
    await make_target(idle, "n")
    created = await start_backfill(idle, "n", start="2024-01-01", end="2024-01-05")
    bid = created["id"]
    # Planned (its runs exist, some queued) but not started: no worker consumes.
    await Planner(ctx.settings, ctx.storage, ctx.sources).plan(bid)
    assert await db.fetchval("SELECT count(*) FROM transfer_runs WHERE backfill_id = $1", bid) == 5

    changed = await api(
        idle,
        "PATCH",
        f"/v1/backfills/{bid}",
        200,
        json={"end": "2024-01-01T06:00:00", "interval_type": "hour", "name": "morning"},
    )
    assert changed["runs_total"] == 6
    assert changed["name"] == "morning"
    assert changed["interval_type"] == "hour"
    assert await db.fetchval("SELECT count(*) FROM transfer_runs WHERE backfill_id = $1", bid) == 0

    worker = RunningWorker(Worker(ctx))
    await worker.start()
    try:
        done = await wait_backfill(idle, bid, {"completed", "failed"})
    finally:
        await worker.stop()
    assert done["state"] == "completed"
    assert done["runs_completed"] == 6
    runs = await api(idle, "GET", f"/v1/backfills/{bid}/runs", 200)
    assert [r["window_start"][11:16] for r in runs["data"]] == [
        "00:00", "01:00", "02:00", "03:00", "04:00", "05:00"
    ]  # fmt: skip

    # Started (finished, even): the window is fixed; the name still changes.
    refused = await api(idle, "PATCH", f"/v1/backfills/{bid}", 422, json={"start": "2024-02-01"})
    assert refused["requested_action"] == "re-plan"
    renamed = await api(idle, "PATCH", f"/v1/backfills/{bid}", 200, json={"name": "done"})
    assert renamed["name"] == "done"


async def test_re_planning_refuses_what_a_create_would(idle: Any, db: Any) -> None:
    await make_target(idle, "n")
    january = await start_backfill(idle, "n", start="2024-01-01", end="2024-01-31")
    march = await start_backfill(idle, "n", start="2024-03-01", end="2024-03-31")
    clash = await api(
        idle, "PATCH", f"/v1/backfills/{march['id']}", 409, json={"start": "2024-01-15"}
    )
    assert clash["conflicting_backfill_id"] == january["id"]
    await api(idle, "PATCH", f"/v1/backfills/{march['id']}", 422, json={"end": "2023-01-01"})
    await api(idle, "PATCH", f"/v1/backfills/{march['id']}", 422, json={"start": None})
    await api(idle, "PATCH", f"/v1/backfills/{march['id']}", 422, json={"table": "x"})
    after = await api(idle, "GET", f"/v1/backfills/{march['id']}", 200)
    assert after["start"].startswith("2024-03-01")

    await db.execute("CREATE TABLE items (id bigint PRIMARY KEY)")
    await make_target(idle, "items", "table")
    table = await start_backfill(idle, "items")
    body = await api(
        idle, "PATCH", f"/v1/backfills/{table['id']}", 422, json={"start": "2024-01-01"}
    )
    assert body["errors"] == [{"pointer": "/start", "message": "not allowed for a table backfill"}]
    more = await api(
        idle, "PATCH", f"/v1/backfills/{table['id']}", 200, json={"max_active_runs": 9}
    )
    assert more["max_active_runs"] == 9


async def test_reprocess_none_skips_completed_windows_and_failed_runs_only_failed_ones(
    client: Any, switch: Switch
) -> None:
    await make_target(client, "w", handler={"type": "switch"}, max_attempts=1)

    async def backfill(start: str, end: str, reprocess: str = "all") -> dict[str, Any]:
        created = await start_backfill(client, "w", start=start, end=end, reprocess=reprocess)
        return await wait_backfill(client, created["id"], {"completed", "failed"})

    async def days(done: dict[str, Any]) -> list[str]:
        runs = await api(client, "GET", f"/v1/backfills/{done['id']}/runs", 200)
        return [r["window_start"][:10] for r in runs["data"]]

    switch.failing = False
    await backfill("2024-01-01", "2024-01-03")  # the 1st to the 3rd completed
    switch.failing = True
    failed = await backfill("2024-01-04", "2024-01-05")  # the 4th and 5th failed
    assert failed["state"] == "failed"
    switch.failing = False

    # none: of the 1st to the 6th, only what no earlier backfill completed.
    fresh = await backfill("2024-01-01", "2024-01-06", "none")
    assert fresh["reprocess"] == "none"
    assert await days(fresh) == ["2024-01-04", "2024-01-05", "2024-01-06"]
    assert fresh["runs_total"] == 3
    assert fresh["state"] == "completed"

    # The 4th and 5th have completed since: failed finds nothing left to redo.
    nothing = await backfill("2024-01-01", "2024-01-06", "failed")
    assert await days(nothing) == []
    assert nothing["runs_total"] == 0
    assert nothing["state"] == "completed"

    switch.failing = True
    await backfill("2024-01-07", "2024-01-08")
    switch.failing = False
    dry = await api(
        client,
        "POST",
        "/v1/backfills?dry_run=true",
        200,
        json={"target": "w", "start": "2024-01-01", "end": "2024-01-09", "reprocess": "failed"},
    )
    assert [r["window_start"][:10] for r in dry["runs"]] == ["2024-01-07", "2024-01-08"]
    assert dry["runs_total"] is None
    redo = await backfill("2024-01-01", "2024-01-09", "failed")
    assert await days(redo) == ["2024-01-07", "2024-01-08"]
