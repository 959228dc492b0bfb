"""A periodic loop that stops promptly: it waits on the stop event, not a bare sleep."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)


async def every(
    period: float,
    stop: asyncio.Event,
    name: str,
    step: Callable[[], Awaitable[object]],
    wake: asyncio.Event | None = None,
) -> None:
    """Runs `step` every `period` seconds (or sooner when `wake` is set) until `stop`.
    A failing step is logged and retried next period: one bad database moment must not end
    the loop for the life of the process."""
    while not stop.is_set():
        try:
            await step()
        except Exception:
            log.exception("loop_step_failed", loop=name)
        waiters = [asyncio.ensure_future(stop.wait())]
        if wake is not None:
            waiters.append(asyncio.ensure_future(wake.wait()))
        try:
            await asyncio.wait(waiters, timeout=period, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        if wake is not None:
            wake.clear()
