"""Where the CLI writes: results on stdout (a table for people, JSON with --json), progress,
notices and errors on stderr, so `backfill … --json | jq` always reads clean JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    # Plain print, not rich: no colour codes or wrapping may reach a script.
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def notice(message: str) -> None:
    err.print(message, markup=False)


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    grid = Table(*columns, box=None, pad_edge=False, header_style="bold")
    for row in rows:
        grid.add_row(*("-" if v is None else str(v) for v in row))
    out.print(grid)


def fields(pairs: Iterable[tuple[str, Any]]) -> None:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for key, value in pairs:
        if isinstance(value, dict | list):
            value = json.dumps(value, default=str)
        grid.add_row(key, "-" if value is None else str(value))
    out.print(grid)
