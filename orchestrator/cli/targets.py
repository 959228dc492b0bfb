"""`backfill targets list|show|create`: targets over the REST API."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from orchestrator.cli import output
from orchestrator.cli.client import all_pages, open_client
from orchestrator.cli.files import read_json_object
from orchestrator.cli.options import JsonOpt, TokenOpt, UrlOpt, run

targets = typer.Typer(help="Targets: what backfills run against.", no_args_is_help=True)


def _what(t: dict[str, Any]) -> str:
    if t.get("kind") == "table":
        sink = (t.get("sink") or {}).get("type", "?")
        return f"{','.join(t.get('tables') or [])} -> {sink}"
    return f"handler {(t.get('handler') or {}).get('type', '?')}"


@targets.command("list")
def list_targets(url: UrlOpt = None, token: TokenOpt = None, json_out: JsonOpt = False) -> None:
    """List the team's targets."""

    async def work() -> list[dict[str, Any]]:
        async with open_client(url, token) as client:
            return await all_pages(client, "/v1/targets")

    found = run(work())
    if json_out:
        output.print_json(found)
        return
    output.table(
        ["id", "name", "kind", "source", "what"],
        ([t["id"], t["name"], t["kind"], t.get("source"), _what(t)] for t in found),
    )


@targets.command("show")
def show_target(
    target: Annotated[str, typer.Argument(help="target id or name")],
    url: UrlOpt = None,
    token: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show one target."""

    async def work() -> dict[str, Any]:
        async with open_client(url, token) as client:
            body: dict[str, Any] = await client.get(f"/v1/targets/{target}")
            return body

    found = run(work())
    if json_out:
        output.print_json(found)
    else:
        output.fields(found.items())


@targets.command("create")
def create_target(
    file: Annotated[
        str, typer.Option("--file", "-f", help="JSON body of POST /v1/targets; - for stdin")
    ],
    url: UrlOpt = None,
    token: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a target from a JSON file."""
    body = read_json_object(file)

    async def work() -> dict[str, Any]:
        async with open_client(url, token) as client:
            created: dict[str, Any] = await client.post("/v1/targets", body)
            return created

    created = run(work())
    if json_out:
        output.print_json(created)
    else:
        output.out.print(
            f"created target {created['id']} {created['name']} ({created['kind']})", markup=False
        )
