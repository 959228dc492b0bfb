"""The port the ops endpoints read infrastructure health through.

The API holds no connections of its own, so whoever wires the process (and owns the pool and
the broker channel) supplies an implementation."""

from __future__ import annotations

from typing import Protocol


class OpsProbes(Protocol):
    async def readiness(self) -> dict[str, bool]:
        """One entry per dependency, e.g. {"postgres": True, "rabbitmq": True,
        "consumers": False}. Each check should bound its own time; a raise counts as not
        ready."""
        ...

    async def queue_depths(self) -> dict[str, int]:
        """Messages waiting per queue name."""
        ...

    async def queue_stats(self) -> list[tuple[str, str, int, int]]:
        """(role, queue name, messages waiting, consumers) per queue; role is commands, runs
        or dead."""
        ...
