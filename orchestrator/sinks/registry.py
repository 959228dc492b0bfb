"""Sink types by name. A new destination is one module and one line here."""

from __future__ import annotations

from orchestrator.errors import ValidationFailed
from orchestrator.sinks.base import SinkType
from orchestrator.sinks.null import NullSinkType
from orchestrator.sinks.postgres import PostgresSinkType
from orchestrator.sinks.rabbitmq import RabbitmqSinkType
from orchestrator.sinks.webhook import WebhookSinkType

SINK_TYPES: dict[str, SinkType] = {
    t.name: t for t in (NullSinkType(), PostgresSinkType(), RabbitmqSinkType(), WebhookSinkType())
}


def sink_type(name: str) -> SinkType:
    found = SINK_TYPES.get(name)
    if found is None:
        raise ValidationFailed(
            f"unknown sink type {name!r}",
            errors=[{"pointer": "/sink/type", "message": f"must be one of {sorted(SINK_TYPES)}"}],
        )
    return found
