"""Readiness as the ops endpoints report it: Postgres answers, RabbitMQ is connected, and
(in a process that consumes) the consumers are attached."""

from __future__ import annotations

import asyncio

from orchestrator.context import Context


class ContextProbes:
    def __init__(self, ctx: Context, *, consuming: bool) -> None:
        self._ctx = ctx
        self._consuming = consuming

    async def _postgres(self) -> bool:
        try:
            async with asyncio.timeout(2):
                await self._ctx.pool.fetchval("SELECT 1")
        except Exception:
            return False
        return True

    async def readiness(self) -> dict[str, bool]:
        checks = {"postgres": await self._postgres(), "rabbitmq": self._ctx.broker.connected()}
        if self._consuming:
            checks["consumers"] = await self._ctx.broker.consumers_attached()
        return checks

    def source_states(self) -> dict[str, str]:
        """Per source as last vetted: ok, unsafe (role checks skipped by the operator),
        refused or unreachable. Not a readiness condition: one team's bad source must not
        take the service away from every team."""
        return dict(self._ctx.sources.states)

    async def queue_depths(self) -> dict[str, int]:
        async with asyncio.timeout(2):
            return await self._ctx.broker.queue_depths()

    async def queue_stats(self) -> list[tuple[str, str, int, int]]:
        async with asyncio.timeout(2):
            return await self._ctx.broker.queue_stats()
