"""The commands a backfill's changes announce, as the outbox sends them."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from orchestrator.domain.models import Target
from orchestrator.domain.specs import BackfillSpec


def create_command(spec: BackfillSpec, target: Target, command_id: UUID) -> dict[str, Any]:
    """The `command.create` that announces a backfill (and, for a started draft, hands it to
    a worker: the command's id is the backfill's, so applying it finds the backfill)."""
    return {
        "type": "command.create",
        "command_id": str(command_id),
        "team_id": target.team_id,
        "backfill": spec.model_dump(mode="json", exclude_defaults=True) | {"target": target.id},
    }


def state_command(action: str, command_id: UUID, backfill_id: int) -> dict[str, Any]:
    """The `command.<action>` (cancel, pause, resume) that announces a state change."""
    return {
        "type": f"command.{action}",
        "command_id": str(command_id),
        "backfill_id": backfill_id,
    }
