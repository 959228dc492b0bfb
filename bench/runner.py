"""Runs registered scenarios: discovers every module in bench/scenarios/, repeats each
scenario, and summarises figure, reference and ratio as median, min and max."""

from __future__ import annotations

import importlib
import pkgutil
import statistics
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import bench.scenarios
from bench.scenario import REGISTRY, Measurement, Scenario


def discover() -> dict[str, Scenario]:
    """Imports every module of bench.scenarios, so each registers its scenarios."""
    for module in pkgutil.iter_modules(bench.scenarios.__path__):
        importlib.import_module(f"{bench.scenarios.__name__}.{module.name}")
    return dict(sorted(REGISTRY.items()))


@dataclass(frozen=True)
class Spread:
    median: float
    min: float
    max: float

    @classmethod
    def of(cls, values: list[float]) -> Spread | None:
        if not values:
            return None
        return cls(statistics.median(values), min(values), max(values))

    def as_dict(self) -> dict[str, float]:
        return {"median": self.median, "min": self.min, "max": self.max}


@dataclass
class Result:
    name: str
    summary: str
    target: str
    quick: bool
    measurements: list[Measurement] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def unit(self) -> str:
        return self.measurements[0].unit if self.measurements else ""

    @property
    def reference_name(self) -> str | None:
        return self.measurements[0].reference_name if self.measurements else None

    def figure(self) -> Spread | None:
        return Spread.of([m.figure for m in self.measurements])

    def reference(self) -> Spread | None:
        return Spread.of([m.reference for m in self.measurements if m.reference])

    def ratio(self) -> Spread | None:
        return Spread.of([r for m in self.measurements if (r := m.ratio) is not None])

    def as_dict(self) -> dict[str, Any]:
        def spread(s: Spread | None) -> dict[str, float] | None:
            return s.as_dict() if s is not None else None

        return {
            "name": self.name,
            "summary": self.summary,
            "target": self.target,
            "quick": self.quick,
            "unit": self.unit,
            "reference_name": self.reference_name,
            "repetitions": len(self.measurements),
            "figure": spread(self.figure()),
            "reference": spread(self.reference()),
            "ratio": spread(self.ratio()),
            "extra": [m.extra for m in self.measurements],
            "error": self.error,
            "seconds": round(self.seconds, 1),
        }


async def run_scenario(scenario: Scenario, *, quick: bool, repetitions: int) -> Result:
    result = Result(scenario.name, scenario.summary, scenario.target, quick)
    started = time.monotonic()
    try:
        for _ in range(repetitions):
            result.measurements.append(await scenario.run(quick))
    except Exception as exc:
        # One broken scenario must not hide the others' figures; the runner exits non-zero.
        result.error = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    result.seconds = time.monotonic() - started
    return result
