"""A worker's run slots, counted so that a batch can take every free one at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Slots:
    def __init__(self, size: int) -> None:
        self.size = size
        self._free = size
        self._changed = asyncio.Event()
        self.waiting = 0  # callers of take_some() waiting for a slot

    @property
    def free(self) -> int:
        return self._free

    def take(self, most: int) -> int:
        """Takes up to `most` free slots without waiting; returns how many."""
        n = max(0, min(self._free, most))
        self._free -= n
        return n

    async def take_some(self, moot: Callable[[], bool] | None = None) -> int:
        """Waits until a slot is free, then takes every free one; returns how many. Returns
        0 at once when `moot()` turns true meanwhile (checked whenever `poke` is called):
        what the caller waited for was done another way."""
        self.waiting += 1
        try:
            while self._free <= 0:
                if moot is not None and moot():
                    return 0
                self._changed.clear()
                await self._changed.wait()
        finally:
            self.waiting -= 1
        return self.take(self._free)

    def poke(self) -> None:
        """Wakes the waiters to check whether they still need to wait."""
        self._changed.set()

    def give(self, n: int) -> None:
        if n > 0:
            self._free += n
            self._changed.set()
