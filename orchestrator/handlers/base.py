"""The handler interface: one call per window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel

from orchestrator.plugins.resources import Resources


@dataclass(frozen=True)
class WindowRun:
    window_start: datetime
    window_end: datetime
    variables: dict[str, Any]
    backfill_id: int
    run_id: int
    attempt: int


class Handler(Protocol):
    async def run(self, window: WindowRun) -> int | None:
        """Does the window's work; returns the rows it wrote, if it knows. Must be safe to
        run again for the same window (a retried or re-leased run repeats it)."""

    async def close(self) -> None: ...


class HandlerType(Protocol):
    name: str
    options_model: type[BaseModel]

    async def validate(self, options: BaseModel, resources: Resources) -> None: ...

    async def open(self, options: BaseModel, resources: Resources) -> Handler: ...
