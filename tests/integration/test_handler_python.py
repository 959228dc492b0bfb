"""The python handler running a team's package (tests/handler_pkg): named by import path
or through the entry point group, called once per window with the variables, checked when
the target is created."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.handlers.python import ENTRY_POINT_GROUP
from orchestrator.settings import Settings
from tests.conftest import make_settings
from tests.handler_pkg import transfers
from tests.helpers import api, start_backfill, target_body, wait_backfill

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(database: str, prefix: str) -> Settings:
    return make_settings(database, prefix, python_handler_modules=["tests.handler_pkg"])


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Installs a distribution that registers tests.handler_pkg's rollup under the entry
    point group, the way `pip install` of a team's package would."""
    dist = tmp_path / "team_transfers-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: team-transfers\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nhourly-rollup = tests.handler_pkg.transfers:rollup\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))


async def python_target(client: Any, options: dict[str, Any], expect: int = 201) -> Any:
    return await api(
        client,
        "POST",
        "/v1/targets",
        expect,
        json=target_body(
            "team-transfer",
            variables={"rows_per_window": 5},
            handler={"type": "python", "options": options},
        ),
    )


async def start(client: Any, **extra: Any) -> dict[str, Any]:
    window = {"start": "2024-05-01", "end": "2024-05-03", **extra}
    created = await start_backfill(client, "team-transfer", **window)
    return await wait_backfill(client, created["id"], {"completed", "failed"})


async def test_a_function_named_by_import_path_runs_once_per_window(client: Any) -> None:
    await python_target(client, {"callable": "tests.handler_pkg.transfers:load_window"})
    done = await start(client, variables={"table": "orders"})
    assert done["state"] == "completed", done
    assert done["rows_processed_count"] == 3 * 5

    calls = sorted(transfers.CALLS.pop(done["id"]), key=lambda w: w.window_start)
    assert [w.window_start.isoformat() for w in calls] == [
        "2024-05-01T00:00:00+00:00",
        "2024-05-02T00:00:00+00:00",
        "2024-05-03T00:00:00+00:00",
    ]
    assert all(w.attempt == 1 for w in calls)
    assert calls[0].variables["table"] == "orders"
    assert calls[0].variables["rows_per_window"] == 5
    assert calls[0].variables["window_end"] == "2024-05-02T00:00:00+00:00"
    assert calls[0].variables["previous_window_start"] == "2024-04-30T00:00:00+00:00"
    assert calls[2].variables["previous_window_start"] == "2024-05-02T00:00:00+00:00"


async def test_a_registered_entry_point_is_found_by_name(client: Any, installed: None) -> None:
    await python_target(client, {"entry_point": "hourly-rollup"})
    done = await start(client, interval_type="hour", end="2024-05-01T06:00:00")
    assert done["state"] == "completed", done
    assert len(transfers.CALLS.pop(done["id"])) == 6
    assert done["rows_processed_count"] == 0  # rollup returns None: nothing counted


async def test_an_exception_in_the_function_fails_the_run_with_its_message(client: Any) -> None:
    await python_target(client, {"callable": "tests.handler_pkg.transfers:broken"})
    done = await start(client, max_attempts=1)
    assert done["state"] == "failed", done
    errors = sorted(e["error"] for e in done["error_report"])
    assert errors[0] == "RuntimeError: source unavailable for 2024-05-01"


async def test_what_cannot_run_is_refused_when_the_target_is_created(client: Any) -> None:
    for options, pointer, words in [
        ({"callable": "os:system"}, "callable", "not under BACKFILL_PYTHON_HANDLER_MODULES"),
        ({"callable": "tests.handler_pkg.nothing:f"}, "callable", "cannot import"),
        ({"callable": "tests.handler_pkg.transfers:missing"}, "callable", "no attribute"),
        ({"callable": "tests.handler_pkg.transfers:asyncio.sleep"}, "callable", "defined in"),
        ({"callable": "tests.handler_pkg.transfers:not_async"}, "callable", "not an async"),
        ({"callable": "tests.handler_pkg.transfers:two_arguments"}, "callable", "one argument"),
        ({"callable": "no colon"}, "callable", "pattern"),
        ({"entry_point": "nope"}, "entry_point", "registered: "),
        ({}, "", "exactly one of callable and entry_point"),
    ]:
        body = await python_target(client, options, expect=422)
        error = body["errors"][0]
        assert error["pointer"] == "/handler/options" + (f"/{pointer}" if pointer else ""), options
        assert words in error["message"], options
