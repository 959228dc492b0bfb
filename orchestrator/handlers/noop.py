"""Does nothing for each window: for trying out planning, throttles and the API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from orchestrator.handlers.base import Handler, WindowRun
from orchestrator.plugins.resources import Resources


class NoopOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Noop:
    async def run(self, window: WindowRun) -> int | None:
        return 0

    async def close(self) -> None:
        return None


class NoopHandlerType:
    name = "noop"
    options_model: type[BaseModel] = NoopOptions

    async def validate(self, options: BaseModel, resources: Resources) -> None:
        return None

    async def open(self, options: BaseModel, resources: Resources) -> Handler:
        return _Noop()
