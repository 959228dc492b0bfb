"""The error a destination or a handler's peer causes."""

from __future__ import annotations

from typing import Any

from orchestrator.errors import OrchestratorError


class DeliveryFailed(OrchestratorError):
    """A destination refused or did not take what we sent. The run attempt fails with this
    message (it lands in the backfill's error_report). `retryable` is False when repeating
    cannot help (a 4xx, a refused address, a missing exchange), so an executor that reads it
    can fail the run at once instead of spending its attempts."""

    code = "delivery_failed"
    status = 502
    title = "Delivery failed"

    def __init__(
        self, detail: str, *, retryable: bool, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(detail, extra=extra)
        self.retryable = retryable
