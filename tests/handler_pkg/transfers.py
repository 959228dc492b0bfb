"""A team's transfers, shipped as a package: the python handler calls these once per window.

They record each call in CALLS (the tests run the worker in the same process and read it);
a real transfer would open its own connections and write somewhere."""

from __future__ import annotations

import asyncio  # noqa: F401 - reachable as transfers:asyncio.sleep, which must be refused

from orchestrator.handlers.base import WindowRun

CALLS: dict[int, list[WindowRun]] = {}


async def load_window(window: WindowRun) -> int:
    """Pretends to load the window; reports `rows_per_window` rows (default 2)."""
    CALLS.setdefault(window.backfill_id, []).append(window)
    return int(window.variables.get("rows_per_window", 2))


async def rollup(window: WindowRun) -> None:
    """Registered under the entry point group as "hourly-rollup"; does not count rows."""
    CALLS.setdefault(window.backfill_id, []).append(window)


async def broken(window: WindowRun) -> int:
    raise RuntimeError(f"source unavailable for {window.window_start:%Y-%m-%d}")


def not_async(window: WindowRun) -> int:
    return 0


async def two_arguments(window: WindowRun, extra: int) -> int:
    return extra
