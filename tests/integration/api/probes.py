"""A stand-in for the readiness and queue probes (orchestrator/probes.py).

The probes only report whether Postgres and RabbitMQ answer; the tests here need them to fail
on demand, which a live broker will not do inside a test. The stand-in holds no rule: it says
what the test sets. The real probes are exercised by the integration tests' `client`."""

from __future__ import annotations


class FakeProbes:
    def __init__(self) -> None:
        self.checks: dict[str, bool] = {"postgres": True, "rabbitmq": True, "consumers": True}
        self.depths: dict[str, int] = {"backfills.commands": 0, "backfills.runs": 12}
        self.readiness_error: Exception | None = None
        self.depths_error: Exception | None = None
        self.consumers = 1

    async def readiness(self) -> dict[str, bool]:
        if self.readiness_error is not None:
            raise self.readiness_error
        return dict(self.checks)

    async def queue_depths(self) -> dict[str, int]:
        if self.depths_error is not None:
            raise self.depths_error
        return dict(self.depths)

    async def queue_stats(self) -> list[tuple[str, str, int, int]]:
        if self.depths_error is not None:
            raise self.depths_error
        return [
            (name.rsplit(".", 1)[-1], name, depth, self.consumers)
            for name, depth in self.depths.items()
        ]
