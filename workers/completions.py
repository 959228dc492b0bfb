"""Run completions flushed together: runs that end at about the same moment share one
transaction, whatever their backfills."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from orchestrator.storage.batches import Completion

# Completions -> the completed runs' row totals (processed, ingested), by run id.
Flush = Callable[[list[Completion]], Awaitable[dict[int, tuple[int, int]]]]


class CompletionBatcher:
    """`complete()` waits for the flush that carries its completion. One flush runs at a
    time; whatever arrives meanwhile goes in the next, so batches grow with the load."""

    def __init__(self, flush: Flush) -> None:
        self._flush = flush
        self._waiting: list[tuple[Completion, asyncio.Future[tuple[int, int] | None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def complete(self, completion: Completion) -> tuple[int, int] | None:
        """The run's row totals if it was still this worker's and is now completed."""
        future: asyncio.Future[tuple[int, int] | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((completion, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="completions")
        # The flush goes on if this waiter is cancelled (a shutdown): the state write of
        # other runs' completions must not be lost with it.
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        while self._waiting:
            # One turn of the loop lets runs that ended together join this batch.
            await asyncio.sleep(0)
            batch, self._waiting = self._waiting, []
            try:
                done = await self._flush([c for c, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for completion, future in batch:
                if not future.done():
                    future.set_result(done.get(completion.run_id))
