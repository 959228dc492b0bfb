"""What a benchmark scenario is: one repetition of the orchestrator's work and of its reference,
side by side in the same run, returning both figures. Ratios, not absolute times, are what
carry across these shared machines."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

RunOnce = Callable[[bool], Awaitable["Measurement"]]


@dataclass(frozen=True)
class Measurement:
    figure: float  # what the orchestrator achieved, in `unit`
    unit: str  # "rows/s", "runs/s", "ms", "req/s", "MiB"
    reference: float | None = None  # the same work done by the reference, same unit
    reference_name: str | None = None  # "in-database upsert", "Celery 5.5 solo worker", ...
    higher_is_better: bool = True
    extra: dict[str, Any] = field(default_factory=dict)  # CPU per run, peak RSS, p99, ...

    @property
    def ratio(self) -> float | None:
        """How the figure compares with the reference: above 1 is better than the reference."""
        if not self.reference or not self.figure:
            return None
        if self.higher_is_better:
            return self.figure / self.reference
        return self.reference / self.figure


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    target: str  # the goal in words, e.g. ">= 0.60 of the in-database upsert"
    run: RunOnce  # run(quick) -> one repetition; quick runs are small enough for CI smoke


REGISTRY: dict[str, Scenario] = {}


def scenario(name: str, summary: str, target: str) -> Callable[[RunOnce], RunOnce]:
    """Register a scenario under `name`; modules in bench/scenarios/ register on import."""

    def register(run: RunOnce) -> RunOnce:
        REGISTRY[name] = Scenario(name, summary, target, run)
        return run

    return register
