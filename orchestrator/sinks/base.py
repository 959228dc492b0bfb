"""The sink interface: a small port the executor writes batches to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

from orchestrator.plugins.resources import Resources


@dataclass(frozen=True)
class RowBatch:
    """Rows of one source table in key order, as decoded by the driver."""

    table: str  # schema.table of the source
    columns: list[str]
    rows: list[tuple[Any, ...]]
    key_columns: list[str]
    backfill_id: int
    run_id: int
    # Postgres type names of `columns` ("int4", "numeric[]", "jsonb"), when the reader knows
    # them; sinks that encode rows need them to tell jsonb from text (orchestrator.sinks.encoding).
    column_types: list[str] = field(default_factory=list)


class Sink(Protocol):
    async def deliver(self, batch: RowBatch) -> int:
        """Delivers the batch; returns the rows ingested. Delivering the same batch twice
        must be harmless (idempotent, or de-duplicable by the receiver)."""

    async def close(self) -> None: ...


class SinkType(Protocol):
    name: str
    options_model: type[BaseModel]

    async def validate(self, options: BaseModel, resources: Resources) -> None:
        """Checks the destination exists and fits; raises OrchestratorError if not."""

    async def open(self, options: BaseModel, resources: Resources) -> Sink: ...
