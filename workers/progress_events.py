"""The periodic `event.backfill.progress` events. Every consuming worker sweeps; the claim in
the database lets one event per backfill and period through, however many sweep."""

from __future__ import annotations

import asyncio

import structlog

from orchestrator.context import Context
from orchestrator.storage.progress import ProgressStore
from workers.loop import every

log = structlog.get_logger(__name__)


def progress_events_loop(ctx: Context, stop: asyncio.Event) -> asyncio.Task[None]:
    period = ctx.settings.progress_event_seconds
    store = ProgressStore(ctx.pool)

    async def sweep() -> None:
        sent = await store.publish_progress_events(period)
        if sent:
            log.debug("progress_events_enqueued", backfills=sent)

    # Sweeping at a fraction of the period keeps events close to it without a timer per
    # backfill; the claim's age check is what spaces them.
    return asyncio.create_task(every(max(period / 3, 0.2), stop, "progress_events", sweep))
