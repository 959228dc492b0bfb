"""A handler type for tests that holds each run open until the test releases it, so a test
can act while runs are provably running."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import BaseModel, ConfigDict

from orchestrator.handlers.base import Handler, WindowRun
from orchestrator.handlers.registry import HANDLER_TYPES
from orchestrator.plugins.resources import Resources


class GateOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Gate:
    name = "gate"
    options_model: type[BaseModel] = GateOptions

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started: list[int] = []
        self.finished: list[int] = []

    async def validate(self, options: BaseModel, resources: Resources) -> None:
        return None

    async def open(self, options: BaseModel, resources: Resources) -> Handler:
        return _GateRun(self)


class _GateRun:
    def __init__(self, gate: Gate) -> None:
        self._gate = gate

    async def run(self, window: WindowRun) -> int | None:
        self._gate.started.append(window.run_id)
        await self._gate.release.wait()
        self._gate.finished.append(window.run_id)
        return 1

    async def close(self) -> None:
        return None


@contextmanager
def gate_handler() -> Iterator[Gate]:
    gate = Gate()
    HANDLER_TYPES[gate.name] = gate
    try:
        yield gate
    finally:
        gate.release.set()
        HANDLER_TYPES.pop(gate.name, None)
