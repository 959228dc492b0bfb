"""The JSON contract of the events the orchestrator publishes (routing keys `event.…`).

The payloads are built as plain dicts in the storage layer, in the transaction that makes the
change they report (repository.backfill_event and end_attempt); these models describe them for
consumers and for docs/asyncapi.yaml, and tests/integration/test_event_contract.py checks them
against what is really published."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from orchestrator.domain.states import BackfillState
from orchestrator.messaging.messages import BIGINT_MAX

BACKFILL_EVENT_TYPES = (
    "backfill.created",
    "backfill.completed",
    "backfill.failed",
    "backfill.cancelled",
    "backfill.paused",
    "backfill.resumed",
)


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BackfillEvent(_Event):
    """A backfill was created, paused, resumed, or ended (completed, failed or cancelled)."""

    type: Literal[
        "backfill.created",
        "backfill.completed",
        "backfill.failed",
        "backfill.cancelled",
        "backfill.paused",
        "backfill.resumed",
    ]
    event_id: UUID = Field(description="This event's id; a redelivery carries the same one")
    backfill_id: int = Field(ge=1, le=BIGINT_MAX)
    backfill_uuid: UUID
    command_id: UUID = Field(
        description="The command that created the backfill (yours, if you published it)"
    )
    target_id: int = Field(ge=1, le=BIGINT_MAX)
    state: BackfillState = Field(description="The backfill's state after the change")
    rows_processed_count: int = Field(ge=0, description="Rows read so far")
    rows_ingested_count: int = Field(ge=0, description="Rows written so far")
    runs_total: int = Field(
        ge=0,
        description="The runs it has or will have: while planning, a date range's planned "
        "windows or a table's runs made so far (0 until planning made runs); once planning is "
        "done or stopped by a cancel, the runs that exist",
    )
    runs_completed: int = Field(ge=0)
    runs_failed: int = Field(ge=0)
    runs_cancelled: int = Field(ge=0)
    occurred_at: AwareDatetime = Field(
        description="The backfill's updated_at, from the database's clock"
    )


class RunFailedEvent(_Event):
    """A run failed for good: its attempts are used up, or its backfill was cancelled while
    the attempt failed."""

    type: Literal["run.failed"]
    event_id: UUID = Field(description="This event's id; a redelivery carries the same one")
    backfill_id: int = Field(ge=1, le=BIGINT_MAX)
    run_id: int = Field(ge=1, le=BIGINT_MAX)
    attempt: int = Field(ge=1, description="Attempts made")
    error: str = Field(description="The last attempt's error, e.g. 'DivisionByZeroError: …'")
    occurred_at: AwareDatetime = Field(description="When the run ended, from the database's clock")
