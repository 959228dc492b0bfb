"""How many rows to read from a source at once: as many as fit in a time budget.

A page starts small, doubles while pages come back well within the budget, halves when one
takes longer, and drops to a quarter when the source cancels it (statement_timeout). A busy
source so sees short statements, an idle one few round trips."""

from __future__ import annotations


class PageSize:
    def __init__(self, start: int, ceiling: int, budget_seconds: float, floor: int = 1) -> None:
        self.floor = max(1, min(floor, start))
        self.ceiling = max(start, ceiling)
        self.size = start
        self._budget = budget_seconds

    def took(self, seconds: float, full: bool) -> None:
        """A page of `size` rows took `seconds`; `full` if it had all `size` rows (a short
        page says nothing about how long a full one would take)."""
        if seconds > self._budget:
            self.size = max(self.floor, self.size // 2)
        elif full and seconds < self._budget / 4:
            self.size = min(self.ceiling, self.size * 2)

    def timed_out(self) -> bool:
        """The source cancelled the page: True if a smaller one is worth trying."""
        if self.size <= self.floor:
            return False
        self.size = max(self.floor, self.size // 4)
        return True
