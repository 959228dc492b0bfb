"""`backfill bench`: the benchmark suite of a source checkout (bench/), with its own options
passed through (`backfill bench --scenario rows --quick`, and whatever `python -m bench`
accepts)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli.errors import CliError

CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True}


def bench(
    ctx: typer.Context,
    scenario: Annotated[
        list[str] | None, typer.Option(metavar="NAME", help="run only these (repeatable)")
    ] = None,
    quick: Annotated[bool, typer.Option(help="small sizes, for a smoke run")] = False,
) -> None:
    """Benchmarks (from a source checkout; see docs/benchmarks.md)."""
    # Editable installs: bench/ sits next to the package, outside what is installed.
    root = Path(__file__).resolve().parents[2]
    if (root / "bench" / "__main__.py").exists() and str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        module = importlib.import_module("bench.__main__")
    except ImportError:
        raise CliError(
            "backfill bench: the benchmarks live in the source checkout (bench/)"
        ) from None
    run = getattr(module, "run", None)
    if run is None:
        raise CliError("backfill bench: this checkout's bench/ has no run(); use make bench")
    scenarios = [f"--scenario={name}" for name in scenario or []]
    run([*scenarios, *(["--quick"] if quick else []), *ctx.args])
