"""`backfill backfills create|list|show|pause|resume|cancel|retry` over the REST API."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from orchestrator.cli import output
from orchestrator.cli.client import ApiClient, all_pages, open_client
from orchestrator.cli.errors import UsageError
from orchestrator.cli.files import read_json_object
from orchestrator.cli.options import JsonOpt, TokenOpt, UrlOpt, run
from orchestrator.cli.progress import RateTracker, detail, read
from orchestrator.cli.watch import report, watch_backfills

backfills = typer.Typer(help="Backfills: start, list, steer.", no_args_is_help=True)

BackfillArg = Annotated[str, typer.Argument(help="backfill id or uuid", metavar="ID")]


def _line(b: dict[str, Any]) -> list[Any]:
    reading = read(b, RateTracker(), 0.0)
    percent = "-" if reading.fraction is None else f"{reading.fraction:.0%}"
    return [b["id"], b.get("name"), b["kind"], b["state"], percent, detail(reading)]


def _print(b: dict[str, Any], json_out: bool) -> None:
    if json_out:
        output.print_json(b)
    else:
        output.fields(b.items())


def _parse_variable(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise UsageError(f"--var: {text!r} is not NAME=VALUE")
    return name, value


@backfills.command("create")
def create_backfill(
    target: Annotated[
        str | None, typer.Argument(help="target id or name (or `target` in the file)")
    ] = None,
    file: Annotated[
        str | None,
        typer.Option("--file", "-f", help="JSON body of POST /v1/backfills; - for stdin"),
    ] = None,
    start: Annotated[str | None, typer.Option(help="date-range start (ISO 8601)")] = None,
    end: Annotated[str | None, typer.Option(help="date-range end (ISO 8601)")] = None,
    priority: Annotated[int | None, typer.Option(help="higher runs first")] = None,
    max_active_runs: Annotated[int | None, typer.Option(help="runs at a time")] = None,
    var: Annotated[
        list[str] | None, typer.Option(help="NAME=VALUE variable for handlers (repeatable)")
    ] = None,
    watch: Annotated[bool, typer.Option("--watch", help="then watch it to its end")] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Start a backfill of a target; options override the file's fields."""
    body: dict[str, Any] = read_json_object(file) if file else {}
    given = {
        "target": int(target) if target and target.isdigit() else target,
        "start": start,
        "end": end,
        "priority": priority,
        "max_active_runs": max_active_runs,
    }
    body.update({k: v for k, v in given.items() if v is not None})
    if var:
        body["variables"] = {**body.get("variables", {}), **dict(map(_parse_variable, var))}
    if "target" not in body:
        raise UsageError("name a target: `backfill backfills create TARGET` or `target` in -f")

    async def work() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        async with open_client(url, token) as client:
            created: dict[str, Any] = await client.post("/v1/backfills", body)
            if not json_out:
                output.out.print(
                    f"started backfill {created['id']} ({created['uuid']}) of target "
                    f"{created['target_id']}",
                    markup=False,
                )
            if not watch:
                return created, []
            return created, await watch_backfills(client, [created["id"]])

    created, finals = run(work())
    if watch:
        report(finals, json_out)
    elif json_out:
        output.print_json(created)


@backfills.command("list")
def list_backfills(
    state: Annotated[list[str] | None, typer.Option(help="only these states (repeatable)")] = None,
    target: Annotated[int | None, typer.Option(help="only this target id")] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List the team's backfills, newest first."""
    params: dict[str, str] = {}
    if state:
        params["state"] = ",".join(state)
    if target is not None:
        params["target_id"] = str(target)

    async def work() -> list[dict[str, Any]]:
        async with open_client(url, token) as client:
            return await all_pages(client, "/v1/backfills", **params)

    found = run(work())
    if json_out:
        output.print_json(found)
        return
    output.table(["id", "name", "kind", "state", "done", "progress"], map(_line, found))


@backfills.command("show")
def show_backfill(
    backfill: BackfillArg, url: UrlOpt = None, token: TokenOpt = None, json_out: JsonOpt = False
) -> None:
    """Show one backfill."""

    async def work() -> dict[str, Any]:
        async with open_client(url, token) as client:
            body: dict[str, Any] = await client.get(f"/v1/backfills/{backfill}")
            return body

    _print(run(work()), json_out)


def _action(verb: str, doc: str) -> None:
    def command(
        backfill: BackfillArg,
        url: UrlOpt = None,
        token: TokenOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        async def work() -> dict[str, Any]:
            async with open_client(url, token) as client:
                return await _post(client, f"/v1/backfills/{backfill}/{verb}")

        changed = run(work())
        if json_out:
            output.print_json(changed)
        else:
            output.out.print(f"backfill {changed['id']}: {changed['state']}", markup=False)

    command.__doc__ = doc
    backfills.command(verb)(command)


async def _post(client: ApiClient, path: str) -> dict[str, Any]:
    body: dict[str, Any] = await client.post(path)
    return body


_action("pause", "Pause a backfill: running runs finish, no new ones start.")
_action("resume", "Resume a paused backfill.")
_action("cancel", "Cancel a backfill: pending runs are cancelled, running ones finish.")
_action("retry", "Retry the failed runs of a failed backfill.")
