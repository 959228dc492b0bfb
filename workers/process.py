"""A worker process: consumes commands and run dispatches, relays the outbox and runs the
periodic duties. `run()` works until `stop()`; stopping lets running runs finish within the
grace period, then hands back what is left."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Awaitable
from typing import Protocol

import structlog
from aio_pika.abc import AbstractIncomingMessage

from orchestrator.context import Context
from orchestrator.messaging.bodies import Poison, read_body
from orchestrator.messaging.messages import RUN_DISPATCH
from workers.commands import CommandConsumer
from workers.executor import Executor
from workers.loop import every
from workers.maintenance import Maintenance
from workers.planner import Planner
from workers.progress_events import progress_events_loop
from workers.relay import OutboxRelay

log = structlog.get_logger(__name__)


async def _bounded(step: Awaitable[object], seconds: float, what: str) -> None:
    try:
        async with asyncio.timeout(seconds):
            await step
    except Exception:
        log.warning("shutdown_step_failed", step=what, exc_info=True)


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Sidecar(Protocol):
    """Something that runs beside the worker and stops with it: the ops HTTP server of a
    process with no API. The process's composer (orchestrator.cli.server) builds it, so the
    worker need not know the API's apps."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Worker:
    def __init__(self, ctx: Context, *, consume: bool = True, ops: Sidecar | None = None) -> None:
        """`ops`: serves /metrics and /ops/health on BACKFILL_METRICS_PORT, for a process with
        no API (whose port would serve them)."""
        s = ctx.settings
        self.ctx = ctx
        self.worker_id = new_worker_id()
        self._consume = consume
        self.ops = ops
        self.planner = Planner(s, ctx.storage, ctx.sources)
        self.executor = Executor(s, ctx.storage, ctx.resources, self.worker_id, take_more=True)
        self.commands = CommandConsumer(ctx.usecases.commands, ctx.broker, self.planner)
        self.relay = OutboxRelay(
            ctx.storage.outbox,
            ctx.broker,
            listen_dsn=s.database_url.get_secret_value(),
            poll_seconds=s.outbox_poll_seconds,
        )
        self.maintenance = Maintenance(
            s,
            ctx.storage,
            self.planner,
            self.worker_id,
            ["planner", "executor"] if consume else ["relay"],
        )
        self._stop = asyncio.Event()
        self._stopped = asyncio.Event()

    async def on_run_dispatch(self, message: AbstractIncomingMessage) -> None:
        dispatch = read_body(message.body, RUN_DISPATCH, "run.dispatch")
        if isinstance(dispatch, Poison):
            await self.ctx.broker.dead_letter(message, dispatch.reason)
            await message.ack()
            return
        self.executor.dispatch_arrived()
        if self.executor.claimed_here(dispatch.run_id):
            # This worker took the run itself, in the transaction that freed its slot.
            await message.ack()
            return
        # Holding the message until a slot is free keeps prefetch as the real backlog bound.
        # Meanwhile a batch of completions may claim its run (claim_queued_anywhere).
        reserved = await self.executor.free.take_some(
            lambda: self.executor.was_claimed_here(dispatch.run_id)
        )
        if reserved == 0 or self.executor.was_claimed_here(dispatch.run_id):
            self.executor.claimed_here(dispatch.run_id)  # forgotten: its message is done
            self.executor.free.give(reserved)
            await message.ack()
            return
        if self._stop.is_set():
            # Stopping: a message that waited for a slot must not start a run now.
            self.executor.free.give(reserved)
            await message.nack(requeue=True)
            return
        try:
            # One message wakes a batch: the named run and more of its backfill's.
            claimed = await self.executor.claim_batch(
                dispatch.run_id, dispatch.backfill_id, reserved
            )
        except Exception:
            self.executor.free.give(reserved)
            log.exception("claim_failed", run_id=dispatch.run_id)
            await message.nack(requeue=True)
            return
        await message.ack()  # the claim has committed; the message's work is done
        self.executor.start(claimed, reserved)

    async def run(self) -> None:
        s = self.ctx.settings
        m = self.maintenance
        if self.ops is not None:
            # First, so a port already taken stops the process before it takes any work.
            await self.ops.start()
        elif s.metrics_port is not None:
            log.info("metrics_port_unused", reason="served on the API's port in this process")
        loops = [
            asyncio.create_task(self.relay.run(self._stop), name="relay"),
            asyncio.create_task(
                every(s.heartbeat_seconds, self._stop, "worker_heartbeat", m.heartbeat)
            ),
        ]
        if self._consume:
            await self.ctx.broker.consume(
                self.ctx.broker.topology.commands, self.commands.on_message
            )
            await self.ctx.broker.consume(self.ctx.broker.topology.runs, self.on_run_dispatch)
            loops += [
                asyncio.create_task(every(s.reaper_seconds, self._stop, "reaper", m.reap)),
                asyncio.create_task(
                    every(s.dispatch_sweep_seconds, self._stop, "dispatcher", m.dispatch)
                ),
                # Queued runs that no message will bring (a batch queued them without one)
                # wait at most this long for a worker with free slots.
                asyncio.create_task(
                    every(
                        s.dispatch_sweep_seconds,
                        self._stop,
                        "queued_sweep",
                        self.executor.take_queued,
                    )
                ),
                asyncio.create_task(every(s.reaper_seconds, self._stop, "planner_sweep", m.plan)),
                asyncio.create_task(
                    every(
                        s.reaper_seconds,
                        self._stop,
                        "consumer_watch",
                        self.ctx.broker.ensure_consumers,
                    )
                ),
            ]
            if s.progress_event_seconds > 0:
                loops.append(progress_events_loop(self.ctx, self._stop))
        log.info("worker_started", worker_id=self.worker_id, consume=self._consume)
        try:
            await self._stop.wait()
        finally:
            self.executor.drain()
            # Every step is bounded: a dependency that stopped answering must not keep the
            # process from exiting (leases and the reaper cover whatever is left).
            await _bounded(self.ctx.broker.stop_consuming(), 5, "stop_consuming")
            await self.executor.stop(s.shutdown_grace_seconds)
            await _bounded(self.planner.stop(), 5, "stop_planners")
            for t in loops:
                t.cancel()
            await _bounded(asyncio.gather(*loops, return_exceptions=True), 5, "stop_loops")
            await _bounded(
                self.ctx.storage.maintenance.worker_stopped(self.worker_id), 5, "record_stop"
            )
            if self.ops is not None:
                await _bounded(self.ops.stop(), 5, "stop_ops_server")
            log.info("worker_stopped", worker_id=self.worker_id)
            self._stopped.set()

    def stop(self) -> None:
        """Idempotent: asks run() to wind down."""
        self.executor.drain()
        self._stop.set()
