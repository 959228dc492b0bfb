"""Handler and sink types that misbehave on purpose, registered in-process the way
tests/integration/test_failures.py does (HANDLER_TYPES / SINK_TYPES), for an in-process worker:

- `counting`: a handler that does nothing but count, per run, the attempts it was called with
  and the executions it finished;
- `failing`: a handler that always raises;
- `hanging`: a handler that never returns (until cancelled), recording that it was cancelled;
- `flaky_postgres`: the real `postgres` sink, except that each run's first `failures` attempts
  raise (after delivering `deliver_before_failing` batches, so a retry must resume).

    with registered(HANDLER_TYPES, Counting()) as counting: ...
"""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from orchestrator.handlers.base import Handler, WindowRun
from orchestrator.plugins.resources import Resources
from orchestrator.sinks.base import RowBatch, Sink
from orchestrator.sinks.postgres import PostgresOptions, PostgresSinkType

T = TypeVar("T")


@contextmanager
def registered(registry: MutableMapping[str, Any], plugin: T) -> Iterator[T]:
    name = plugin.name  # type: ignore[attr-defined]
    assert name not in registry, f"{name} is registered already"
    registry[name] = plugin
    try:
        yield plugin
    finally:
        registry.pop(name, None)


class _NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _HandlerType:
    name = "abstract"
    options_model: type[BaseModel] = _NoOptions

    def __init__(self) -> None:
        self.attempts: dict[int, list[int]] = defaultdict(list)  # run id -> attempts called
        self.finished: dict[int, int] = defaultdict(int)  # run id -> executions finished

    async def validate(self, options: BaseModel, resources: Resources) -> None:
        return None

    async def open(self, options: BaseModel, resources: Resources) -> Handler:
        return self

    async def run(self, window: WindowRun) -> int | None:
        self.attempts[window.run_id].append(window.attempt)
        await self.work(window)
        self.finished[window.run_id] += 1
        return 1

    async def work(self, window: WindowRun) -> None:
        return None

    async def close(self) -> None:
        return None


class Counting(_HandlerType):
    name = "counting"


class Failing(_HandlerType):
    name = "failing"

    async def work(self, window: WindowRun) -> None:
        raise RuntimeError(f"always fails (attempt {window.attempt})")


class Hanging(_HandlerType):
    name = "hanging"

    def __init__(self) -> None:
        super().__init__()
        self.cancelled: dict[int, int] = defaultdict(int)

    async def work(self, window: WindowRun) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled[window.run_id] += 1
            raise


class FlakyPostgres:
    """The `postgres` sink whose first `failures` attempts of every run fail. Each attempt
    opens its own sink, so an attempt is told apart by the sink object that delivers."""

    name = "flaky_postgres"
    options_model: type[BaseModel] = PostgresOptions

    def __init__(self, failures: int = 2, deliver_before_failing: int = 1) -> None:
        self.failures = failures
        self.deliver_before_failing = deliver_before_failing
        self._real = PostgresSinkType()
        self.attempts: dict[int, list[int]] = defaultdict(list)  # run id -> sink serials
        self.serials = itertools.count(1)
        self.failed: dict[int, int] = defaultdict(int)

    async def validate(self, options: BaseModel, resources: Resources) -> None:
        await self._real.validate(options, resources)

    async def open(self, options: BaseModel, resources: Resources) -> Sink:
        return _FlakySink(self, await self._real.open(options, resources))


class _FlakySink:
    def __init__(self, kind: FlakyPostgres, real: Sink) -> None:
        self._kind = kind
        self._real = real
        self._batches = 0
        self._serial = next(kind.serials)

    async def deliver(self, batch: RowBatch) -> int:
        seen = self._kind.attempts[batch.run_id]
        if self._serial not in seen:
            seen.append(self._serial)
        attempt = seen.index(self._serial) + 1
        if attempt <= self._kind.failures and self._batches >= self._kind.deliver_before_failing:
            self._kind.failed[batch.run_id] += 1
            raise ConnectionError(f"sink unavailable (attempt {attempt})")
        self._batches += 1
        return await self._real.deliver(batch)

    async def close(self) -> None:
        await self._real.close()
