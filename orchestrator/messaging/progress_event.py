"""The periodic `event.backfill.progress` message: how far a running backfill is and how
fast it moves, for consumers that watch the broker rather than poll the API.

Built in orchestrator.storage.progress (progress_event) from the same numbers the API's
`progress` field shows; tests/integration/test_progress.py checks what is published against
this model."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from orchestrator.domain.states import BackfillState
from orchestrator.messaging.messages import BIGINT_MAX


class ProgressPayload(BaseModel):
    """As the API's `progress` field: rates over the last `window_seconds`, an ETA at the
    current rate (null when unknown)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fraction: float | None = Field(ge=0, le=1, description="Done/total; null while unknown")
    rows_per_second: float | None = Field(ge=0)
    runs_per_minute: float | None = Field(ge=0)
    eta_seconds: float | None = Field(ge=0)
    eta: AwareDatetime | None
    window_seconds: int = Field(ge=1)


class BackfillProgressEvent(BaseModel):
    """A running backfill's progress, about every `BACKFILL_PROGRESS_EVENT_SECONDS` (one
    event per backfill per period, however many workers run). Not sent for backfills that
    are not running: their end has its own event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["backfill.progress"]
    event_id: UUID = Field(description="This event's id; a redelivery carries the same one")
    backfill_id: int = Field(ge=1, le=BIGINT_MAX)
    backfill_uuid: UUID
    target_id: int = Field(ge=1, le=BIGINT_MAX)
    state: BackfillState
    rows_initial_count: int | None = Field(ge=0, description="Rows counted when it started")
    rows_processed_count: int = Field(ge=0)
    rows_ingested_count: int = Field(ge=0)
    runs_total: int = Field(ge=0)
    runs_completed: int = Field(ge=0)
    runs_failed: int = Field(ge=0)
    runs_cancelled: int = Field(ge=0)
    progress: ProgressPayload
    occurred_at: AwareDatetime = Field(description="When it was measured, database clock")
