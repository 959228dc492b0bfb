"""How many rows to read from a source at once: as many as fit in a time budget.

A page starts small, grows while pages come back well within the budget, halves when one
takes longer, and drops to a quarter when the source cancels it (statement_timeout). A busy
source so sees short statements, an idle one few round trips.

Growth follows the headroom: at least double, and as far as the page that came back
predicts a quarter of the budget (time taken in proportion to rows), at most GROWTH times.
A first page of 1,000 rows that took a millisecond is so followed by one of 16,000 rather
than by five doublings, each a statement and a checkpoint of its own."""

from __future__ import annotations

GROWTH = 16


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
            aimed = self._budget / 4 / max(seconds, 1e-6)
            self.size = min(self.ceiling, int(self.size * max(2.0, min(GROWTH, aimed))))

    def timed_out(self) -> bool:
        """The source cancelled the page: True if a smaller one is worth trying."""
        if self.size <= self.floor:
            return False
        self.size = max(self.floor, self.size // 4)
        return True
