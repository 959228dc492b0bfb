"""`backfill watch ID…`: live progress bars until every backfill has ended, then one summary
line each and an exit code that says how they ended (see `exit_code`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn

from orchestrator.cli import output
from orchestrator.cli.client import ApiClient, open_client
from orchestrator.cli.errors import Exit
from orchestrator.cli.options import JsonOpt, TokenOpt, UrlOpt, run
from orchestrator.cli.progress import FINAL_STATES, RateTracker, Reading, detail, read, summary


def exit_code(finals: Sequence[Mapping[str, Any]]) -> Exit:
    """Failed outranks cancelled, which outranks completed."""
    states = {b["state"] for b in finals}
    if "failed" in states:
        return Exit.FAILED
    if "cancelled" in states:
        return Exit.CANCELLED
    return Exit.OK


def _label(b: Mapping[str, Any]) -> str:
    return f"backfill {b['id']}" + (f" {b['name']}" if b.get("name") else "")


class _Bars:
    """Bars on a terminal; elsewhere (CI logs, pipes) a plain line whenever a state changes."""

    def __init__(self) -> None:
        self.live = output.err.is_terminal
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>5.1f}%"),
            TextColumn("{task.fields[detail]}"),
            console=output.err,
            transient=False,
            auto_refresh=False,
        )
        self.tasks: dict[int, TaskID] = {}
        self.states: dict[int, str] = {}

    def __enter__(self) -> _Bars:
        if self.live:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.progress.refresh()
            self.progress.stop()

    def show(self, b: Mapping[str, Any], reading: Reading) -> None:
        backfill_id = int(b["id"])
        total = float(reading.total) if reading.total else None
        done = float(reading.done)
        if reading.fraction is not None and total:
            done = reading.fraction * total
        if backfill_id not in self.tasks:
            self.tasks[backfill_id] = self.progress.add_task(
                _label(b), total=total, detail=detail(reading)
            )
            self.progress.update(self.tasks[backfill_id], completed=done)
        else:
            self.progress.update(
                self.tasks[backfill_id], total=total, completed=done, detail=detail(reading)
            )
        if self.live:
            self.progress.refresh()
        elif self.states.get(backfill_id) != reading.state:
            output.notice(f"{_label(b)}: {detail(reading)}")
        self.states[backfill_id] = reading.state


async def watch_backfills(
    client: ApiClient, ids: Sequence[int | str], *, interval: float = 1.0
) -> list[dict[str, Any]]:
    """Polls each backfill until it reaches a final state; returns the final objects in the
    order given. Paused backfills are waited for: someone may resume them."""
    trackers = {ref: RateTracker() for ref in ids}
    finals: dict[int | str, dict[str, Any]] = {}
    with _Bars() as bars:
        while True:
            pending = [ref for ref in ids if ref not in finals]
            bodies = await asyncio.gather(*(client.get(f"/v1/backfills/{ref}") for ref in pending))
            now = time.monotonic()
            for ref, body in zip(pending, bodies, strict=True):
                bars.show(body, read(body, trackers[ref], now))
                if body["state"] in FINAL_STATES:
                    finals[ref] = body
            if len(finals) == len(ids):
                return [finals[ref] for ref in ids]
            await asyncio.sleep(interval)


def report(finals: Sequence[Mapping[str, Any]], json_out: bool) -> None:
    if json_out:
        output.print_json(finals[0] if len(finals) == 1 else list(finals))
    else:
        for b in finals:
            output.out.print(summary(b), markup=False)
    code = exit_code(finals)
    if code is not Exit.OK:
        raise typer.Exit(code)


def watch(
    backfills: Annotated[list[str], typer.Argument(help="backfill ids or uuids", metavar="ID...")],
    interval: Annotated[float, typer.Option(min=0.1, max=60.0, help="seconds between polls")] = 1.0,
    url: UrlOpt = None,
    token: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Follow backfills to their end with a progress bar, rate and ETA.

    Exit code: 0 completed, 3 failed, 4 cancelled (the worst of several), 1 API error,
    2 bad arguments, 5 server unreachable, 6 token missing or refused, 130 interrupted."""

    async def work() -> list[dict[str, Any]]:
        async with open_client(url, token) as client:
            return await watch_backfills(client, backfills, interval=interval)

    report(run(work()), json_out)
