"""The event models describe the payloads the storage layer builds: the backfill.* payload is
checked here without I/O; tests/integration/test_event_contract.py checks every kind as
really published."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from pydantic import ValidationError

from orchestrator.messaging.events import BACKFILL_EVENT_TYPES, BackfillEvent, RunFailedEvent
from orchestrator.storage.commands import backfill_event


def _row() -> dict[str, Any]:
    return {
        "id": 7,
        "uuid": uuid4(),
        "command_id": uuid4(),
        "target_id": 3,
        "state": "completed",
        "rows_processed_count": 10,
        "rows_ingested_count": 9,
        "runs_total": 2,
        "runs_completed": 2,
        "runs_failed": 0,
        "runs_cancelled": 0,
        "updated_at": datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    }


@pytest.mark.parametrize("event", BACKFILL_EVENT_TYPES)
def test_the_backfill_payload_fits_the_model(event: str) -> None:
    row = _row()
    payload = backfill_event(event, row)

    parsed = BackfillEvent.model_validate(payload)

    assert parsed.type == event
    assert parsed.occurred_at == row["updated_at"]
    # pydantic writes UTC as "Z" where isoformat() writes "+00:00"; the rest is identical.
    assert parsed.model_dump(mode="json", exclude={"occurred_at"}) == {
        k: v for k, v in payload.items() if k != "occurred_at"
    }


def test_an_extra_or_missing_field_is_refused() -> None:
    payload = backfill_event("backfill.created", _row())
    with pytest.raises(ValidationError, match="Extra inputs"):
        BackfillEvent.model_validate({**payload, "colour": "red"})
    del payload["runs_total"]
    with pytest.raises(ValidationError, match="runs_total"):
        BackfillEvent.model_validate(payload)


def test_a_run_failed_payload() -> None:
    payload = {
        "type": "run.failed",
        "event_id": str(uuid4()),
        "backfill_id": 6,
        "run_id": 141,
        "attempt": 1,
        "error": "DivisionByZeroError: division by zero",
        "occurred_at": "2026-11-23T09:39:09.462126+00:00",
    }

    parsed = RunFailedEvent.model_validate(payload)
    assert parsed.model_dump(mode="json", exclude={"occurred_at"}) == {
        k: v for k, v in payload.items() if k != "occurred_at"
    }
    with pytest.raises(ValidationError):
        RunFailedEvent.model_validate({**payload, "occurred_at": "2026-11-23T09:39:09"})
