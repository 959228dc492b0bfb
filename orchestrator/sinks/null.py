"""Counts rows and drops them: for dry runs of the pipeline and for benchmarks."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from orchestrator.plugins.resources import Resources
from orchestrator.sinks.base import RowBatch, Sink
from orchestrator.sinks.ranges import KeyRange, copy_out


class NullOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _NullSink:
    async def deliver(self, batch: RowBatch) -> int:
        return len(batch.rows)

    async def deliver_range(self, page: KeyRange) -> tuple[int, int]:
        # Read in full (binary COPY, never decoded) so the source does the work it would do
        # for a real destination, then dropped.
        async def drop(_: bytes) -> None:
            return None

        n = await copy_out(page, drop)
        return n, n

    async def close(self) -> None:
        return None


class NullSinkType:
    name = "null"
    options_model: type[BaseModel] = NullOptions

    async def validate(self, options: BaseModel, resources: Resources) -> None:
        return None

    async def open(self, options: BaseModel, resources: Resources) -> Sink:
        return _NullSink()
