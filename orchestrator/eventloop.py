"""The event loop every `backfill` process runs on: uvloop, a drop-in for asyncio's that
spends less CPU per socket read and callback (where a busy worker spends its time)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
