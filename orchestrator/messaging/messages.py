"""The JSON contract of commands, dispatches and events (docs/messages.md shows examples).

These are message schemas, separate from the domain models: a producer that publishes
`command.create` sends a BackfillSpec under `backfill`, exactly what POST /v1/backfills takes."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from orchestrator.domain.specs import BackfillSpec

BIGINT_MAX = 2**63 - 1


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CreateCommand(_Message):
    type: Literal["command.create"]
    command_id: UUID = Field(description="Idempotency key: the same id twice makes one backfill")
    team_id: int = Field(default=1, ge=1, le=BIGINT_MAX, description="The team whose target it is")
    backfill: BackfillSpec


class _StateCommand(_Message):
    command_id: UUID
    team_id: int | None = Field(
        default=None, ge=1, le=BIGINT_MAX, description="If given, the backfill must be this team's"
    )
    backfill_id: Annotated[int, Field(ge=1, le=BIGINT_MAX)] | UUID = Field(
        description="The backfill's integer id or uuid"
    )


class CancelCommand(_StateCommand):
    type: Literal["command.cancel"]


class PauseCommand(_StateCommand):
    type: Literal["command.pause"]


class ResumeCommand(_StateCommand):
    type: Literal["command.resume"]


Command = Annotated[
    CreateCommand | CancelCommand | PauseCommand | ResumeCommand, Field(discriminator="type")
]
COMMAND = TypeAdapter[Command](Command)


class RunDispatch(_Message):
    type: Literal["run.dispatch"]
    run_id: int = Field(ge=1, le=BIGINT_MAX)
    backfill_id: int = Field(ge=1, le=BIGINT_MAX)


RUN_DISPATCH = TypeAdapter(RunDispatch)
