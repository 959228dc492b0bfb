"""The `backfill` command against a running service: the API served in-process by the
`client` fixture, the command run as a real process pointed at it by BACKFILL_URL."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.context import Context
from orchestrator.domain.keys import Scope
from tests.clirun import Result, backfill, environment
from tests.helpers import api, make_target, start_backfill, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def cli_env(client: Any, token: str) -> dict[str, str]:
    return environment(BACKFILL_URL=str(client.make_url("")), BACKFILL_TOKEN=token)


async def test_watch_ends_completed_with_a_summary_and_exit_0(
    client: Any, cli_env: dict[str, str]
) -> None:
    await make_target(client, "days")
    created = await start_backfill(client, "days", start="2024-01-01", end="2024-01-05")

    result = await backfill("watch", str(created["id"]), "--interval", "0.2", env=cli_env)

    assert result.code == 0, result
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith(f"backfill {created['id']} completed: "), last
    assert "5/5 runs completed" in last


async def test_watch_ends_failed_with_exit_3_and_the_first_error(
    client: Any, cli_env: dict[str, str]
) -> None:
    # Fails at run time (not when prepared): division by zero in the window of Jan 2.
    statement = "SELECT 1 / (extract(day FROM $1::timestamptz)::int - 2)"
    await make_target(
        client, "breaks", handler={"type": "sql", "options": {"statement": statement}},
        max_attempts=1,
    )  # fmt: skip
    created = await start_backfill(client, "breaks", start="2024-01-01", end="2024-01-03")

    result = await backfill("watch", str(created["id"]), "--interval", "0.2", env=cli_env)

    assert result.code == 3, result
    last = result.stdout.strip().splitlines()[-1]
    assert f"backfill {created['id']} failed: " in last
    assert "1 failed" in last
    assert "division by zero" in last


async def test_watch_ends_cancelled_with_exit_4(client: Any, cli_env: dict[str, str]) -> None:
    await make_target(
        client, "slow", max_active_runs=1,
        handler={"type": "sql", "options": {"statement": "SELECT pg_sleep(0.05)"}},
    )  # fmt: skip
    created = await start_backfill(client, "slow", start="2023-01-01", end="2023-12-31")
    path = f"/v1/backfills/{created['id']}"
    watching = asyncio.create_task(
        backfill("watch", str(created["id"]), "--interval", "0.2", env=cli_env)
    )

    async def under_way() -> bool:
        return bool((await api(client, "GET", path, 200))["runs_completed"] >= 1)

    await wait_until(under_way, what="the slow backfill to be under way")
    await api(client, "POST", f"{path}/cancel", 200)
    result = await watching

    assert result.code == 4, result
    assert f"backfill {created['id']} cancelled: " in result.stdout


async def test_json_output_parses_for_scripts(
    client: Any, cli_env: dict[str, str], tmp_path: Path
) -> None:
    spec = tmp_path / "target.json"
    spec.write_text(json.dumps({"name": "days", "kind": "date_range", "handler": {"type": "noop"}}))

    created_target = await backfill("targets", "create", "-f", str(spec), "--json", env=cli_env)
    assert created_target.code == 0, created_target
    assert json.loads(created_target.stdout)["name"] == "days"

    started = await backfill(
        "backfills", "create", "days", "--start", "2024-01-01", "--end", "2024-01-03",
        "--watch", "--json", env=cli_env,
    )  # fmt: skip
    assert started.code == 0, started
    final = json.loads(started.stdout)
    assert final["state"] == "completed"
    assert final["runs_completed"] == 3

    outputs = await asyncio.gather(
        backfill("targets", "list", "--json", env=cli_env),
        backfill("targets", "show", "days", "--json", env=cli_env),
        backfill("backfills", "list", "--json", env=cli_env),
        backfill("backfills", "show", str(final["id"]), "--json", env=cli_env),
        backfill("watch", str(final["id"]), "--json", env=cli_env),
    )
    for result in outputs:
        assert result.code == 0, result
    listed, shown, backfills, one, watched = (json.loads(r.stdout) for r in outputs)
    assert [t["name"] for t in listed] == ["days"]
    assert shown["kind"] == "date_range"
    assert [b["id"] for b in backfills] == [final["id"]]
    assert one["id"] == watched["id"] == final["id"]


async def test_steering_commands_change_the_backfill(client: Any, cli_env: dict[str, str]) -> None:
    await make_target(
        client, "slow", max_active_runs=1,
        handler={"type": "sql", "options": {"statement": "SELECT pg_sleep(0.05)"}},
    )  # fmt: skip
    created = await start_backfill(client, "slow", start="2023-01-01", end="2023-12-31")
    ref = str(created["id"])

    paused = await backfill("backfills", "pause", ref, "--json", env=cli_env)
    assert paused.code == 0, paused
    assert json.loads(paused.stdout)["state"] == "paused"
    resumed = await backfill("backfills", "resume", ref, env=cli_env)
    assert resumed.code == 0, resumed
    assert resumed.stdout.split(": ")[-1].strip() in {"running", "scheduled"}
    cancelled = await backfill("backfills", "cancel", ref, env=cli_env)
    assert cancelled.stdout.strip() == f"backfill {ref}: cancelled"
    assert (await api(client, "GET", f"/v1/backfills/{ref}", 200))["state"] == "cancelled"


async def test_each_bad_input_prints_one_line_and_exits_non_zero(
    client: Any, ctx: Context, cli_env: dict[str, str], tmp_path: Path
) -> None:
    await make_target(client, "days")
    created = await start_backfill(client, "days", start="2024-01-01", end="2024-01-02")
    other_team, _ = await ctx.access.repo.create_team("other")
    other_token, _ = await ctx.access.create_key(other_team, {Scope.READ, Scope.WRITE})
    bad_spec = tmp_path / "bad.json"
    bad_spec.write_text(json.dumps({"name": "x", "kind": "date_range"}))
    not_json = tmp_path / "not.json"
    not_json.write_text("{nope")
    no_server = {**cli_env, "BACKFILL_URL": "http://127.0.0.1:9"}
    wrong_token = {**cli_env, "BACKFILL_TOKEN": "bfk_wrongwrongwrongwrongwrongwrongwrong"}
    no_token = {k: v for k, v in cli_env.items() if k != "BACKFILL_TOKEN"}
    other = {**cli_env, "BACKFILL_TOKEN": other_token}
    ref = str(created["id"])

    cases: list[tuple[tuple[str, ...], dict[str, str], int, tuple[str, ...]]] = [
        (("backfills", "show", ref), no_server, 5, ("cannot reach", "127.0.0.1:9")),
        (("backfills", "show", ref), wrong_token, 6, ("401", "BACKFILL_TOKEN")),
        (("backfills", "show", ref), no_token, 6, ("BACKFILL_TOKEN",)),
        (("backfills", "show", "424242"), cli_env, 1, ("404",)),
        # Another team's backfill does not exist for this key, and cannot be steered.
        (("backfills", "show", ref), other, 1, ("404",)),
        (("backfills", "cancel", ref), other, 1, ("404",)),
        (("watch", ref), other, 1, ("404",)),
        (("targets", "show", "days"), other, 1, ("404",)),
        (("targets", "create", "-f", str(bad_spec)), cli_env, 1, ("422", "/handler")),
        (("targets", "create", "-f", str(not_json)), cli_env, 2, ("not JSON",)),
        (("targets", "create"), cli_env, 2, ("--file",)),
        (("backfills", "lst"), cli_env, 2, ("No such command", "lst")),
        (("watch", ref, "--interval", "soon"), cli_env, 2, ("--interval", "valid number")),
        (("backfills", "list", "--url", "ftp://x"), cli_env, 2, ("ftp://x", "http")),
        (("backfills", "create", "days", "--var", "novalue"), cli_env, 2, ("--var", "novalue")),
    ]
    results: list[Result] = await asyncio.gather(
        *(backfill(*args, env=env) for args, env, _, _ in cases)
    )
    for (args, _, code, needles), result in zip(cases, results, strict=True):
        assert result.code == code, (args, result)
        result.assert_one_error_line(*needles)
        assert result.stdout == "", (args, result.stdout)
    # The other team's cancel changed nothing.
    assert (await api(client, "GET", f"/v1/backfills/{ref}", 200))["state"] != "cancelled"
