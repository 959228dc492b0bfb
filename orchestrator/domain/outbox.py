"""A message waiting in the outbox: written in the transaction whose change it announces,
published by the relay after the commit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class OutboxMessage:
    id: int
    routing_key: str
    message_id: UUID
    payload: Any
