"""The executor: claims a dispatched run, does its work under a lease, and ends it.

The claim is one conditional UPDATE; a dispatch that finds nothing to claim (duplicate,
cancelled, paused) is acked and dropped. While the run works a heartbeat extends the lease;
every write after the claim is fenced by the lease token, so a worker whose lease was taken
matches zero rows and stops without writing anything more."""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from uuid import UUID, uuid4

import asyncpg
import structlog

from orchestrator import metrics
from orchestrator.domain.claims import Checkpointed, ClaimedRun
from orchestrator.domain.definitions import plan_of
from orchestrator.domain.models import BackfillRow, HandlerSpec, SinkSpec, Target, TransferRun
from orchestrator.domain.retry import backoff_seconds
from orchestrator.domain.windows import window_variables
from orchestrator.error_text import error_text
from orchestrator.grants.checks import target_needs
from orchestrator.grants.scope import using
from orchestrator.handlers.base import WindowRun
from orchestrator.handlers.registry import handler_type
from orchestrator.plugins.options import parse_options
from orchestrator.plugins.resources import Resources
from orchestrator.settings import Settings
from orchestrator.sinks.base import RowBatch, Sink
from orchestrator.sinks.ranges import KeyRange, RangeSink
from orchestrator.sinks.registry import sink_type
from orchestrator.sources.pacing import PageSize
from orchestrator.sources.tables import KeysetSql, column_types, table_sql
from orchestrator.storage.batches import Claim, Completion
from orchestrator.storage.retrying import retry_unavailable
from orchestrator.storage.stores import Storage
from workers.completions import CompletionBatcher
from workers.slots import Slots

log = structlog.get_logger(__name__)

T = TypeVar("T")

# The most rows of one page that are decoded into Python objects at once, whatever the time
# budget allows: it bounds the worker's memory for wide rows.
DECODED_PAGE_ROWS = 10_000


class LeaseClock:
    """When this process last knew its lease to be renewed, by its own clock. Past half the
    lease, it no longer assumes it still holds the run (a pause it did not notice, a clock
    jump) and checks, fenced, before it writes to a destination."""

    def __init__(self, lease_seconds: float) -> None:
        self._lease = lease_seconds
        self._at = time.monotonic()

    def renewed(self) -> None:
        self._at = time.monotonic()

    def stale(self) -> bool:
        return time.monotonic() - self._at > self._lease / 2


class LeaseLost(Exception):
    """This worker no longer owns the run: another worker may be running it now."""


# A worker remembers the runs it claimed itself for a few seconds, so the dispatch message
# still on its way for one of them is dropped without a round trip to the database. The
# memory is short and forgotten whenever the run may be dispatched again (a failed attempt,
# a release): a message it wrongly dropped would leave the run to the stale-dispatch sweep.
_REMEMBERED = 4096
_REMEMBER_SECONDS = 10.0


class Executor:
    """`take_more`: a batch of completions also claims runs for the slots it frees (what a
    worker does; tests driving an executor by hand leave it off)."""

    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        resources: Resources,
        worker_id: str,
        *,
        take_more: bool = False,
    ) -> None:
        self._settings = settings
        self._runs = storage.runs
        self._targets = storage.targets
        self._resources = resources
        self._worker_id = worker_id
        self._running: dict[int, asyncio.Task[None]] = {}
        self._rng = random.Random()
        # The page size each recent backfill's runs ended with, per path: the next run of
        # the same backfill starts there instead of learning it again from read_batch_rows.
        self._page_sizes: dict[tuple[int, str], int] = {}
        self._batches = storage.batches
        self._completions = CompletionBatcher(self._flush)
        self._take_more = take_more
        self._draining = False
        self.free = Slots(settings.worker_concurrency)
        # Runs holding one of `free`'s slots until their work ends.
        self._holding: set[int] = set()
        self._claimed: dict[int, float] = {}
        self._spawned: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> int:
        return len(self._running)

    def drain(self) -> None:
        """Stop taking runs: what is running finishes, nothing new is claimed."""
        self._draining = True

    def claimed_here(self, run_id: int) -> bool:
        """This worker claimed the run itself moments ago (its dispatch message is moot).
        Answers True once per claim."""
        at = self._claimed.pop(run_id, None)
        return at is not None and time.monotonic() - at < _REMEMBER_SECONDS

    def _lease_claim(self, want: int, named: int = 0) -> Claim:
        return Claim(want, self._settings.lease_seconds, self._worker_id, named)

    async def claim_batch(self, run_id: int, backfill_id: int, want: int) -> list[ClaimedRun]:
        """For a dispatch message: the named run, and pending runs of its backfill that no
        message names, up to `want`."""
        return await self._batches.claim_runs(backfill_id, self._lease_claim(want, run_id))

    def start(self, claimed: list[ClaimedRun], reserved: int) -> None:
        """Runs each claimed run in its own task on one of the `reserved` slots taken from
        `free`; the slots left over go back."""
        self.free.give(reserved - len(claimed))
        for c in claimed:
            run_id = c.run.id
            self._claimed[run_id] = time.monotonic()
            if len(self._claimed) > _REMEMBERED:
                del self._claimed[next(iter(self._claimed))]
            self._holding.add(run_id)
            task = asyncio.create_task(self._run_claimed(c), name=f"run-{run_id}")
            # Registered at once, so a stop() right now already waits for it.
            self._running[run_id] = task
            self._spawned.add(task)
            task.add_done_callback(self._spawned.discard)

    async def _run_claimed(self, claimed: ClaimedRun) -> None:
        try:
            assert claimed.run.lease_token is not None
            await self.execute(claimed, claimed.run.lease_token)
        except Exception:
            log.exception("run_crashed", run_id=claimed.run.id)
        finally:
            self._release_slot(claimed.run.id)

    def _forget(self, run_id: int) -> None:
        # The run may be dispatched again: its next message must reach the database.
        self._claimed.pop(run_id, None)

    def _release_slot(self, run_id: int) -> None:
        if run_id in self._holding:
            self._holding.discard(run_id)
            self.free.give(1)

    async def _flush(self, completions: list[Completion]) -> dict[int, tuple[int, int]]:
        # The slots of the runs ending here pass to the runs claimed in their place.
        handed = 0
        for c in completions:
            if c.run_id in self._holding:
                self._holding.discard(c.run_id)
                handed += 1
        # Dispatch messages waiting for a slot go first: their runs were queued by the
        # dispatch policy (fair share, priority), and a worker refilling its own slots
        # would otherwise keep them waiting.
        want = max(0, handed - self.free.waiting) if self._take_more and not self._draining else 0
        try:
            done, claimed = await self._retrying(
                lambda: self._batches.complete_runs(completions, self._lease_claim(want)),
                "complete_runs",
            )
        except BaseException:
            self.free.give(handed)
            raise
        self.start(claimed, handed)
        return done

    async def claim(self, run_id: int, backfill_id: int) -> tuple[ClaimedRun, UUID] | None:
        token = uuid4()
        claimed = await self._runs.claim(
            run_id, backfill_id, token, self._settings.lease_seconds, self._worker_id
        )
        return (claimed, token) if claimed is not None else None

    async def execute(self, claimed: ClaimedRun, token: UUID) -> None:
        """Runs a claimed run to its end (completed, retried later, or failed)."""
        run = claimed.run
        task = asyncio.current_task()
        assert task is not None
        self._running.setdefault(run.id, task)
        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(backfill_id=run.backfill_id, run_id=run.id):
            try:
                await self._execute(claimed, token)
            finally:
                self._running.pop(run.id, None)
                metrics.run_timed(claimed.backfill.kind, started)

    async def _execute(self, claimed: ClaimedRun, token: UUID) -> None:
        run, backfill = claimed.run, claimed.backfill
        log.info("run_started", attempt=run.attempt, seq=run.seq)
        lost = asyncio.Event()
        clock = LeaseClock(self._settings.lease_seconds)
        work = asyncio.create_task(self._work(run, backfill, token, clock, claimed.target))
        beat = asyncio.create_task(self._heartbeat(run.id, token, lost, work, clock))
        try:
            processed, ingested = await asyncio.wait_for(
                asyncio.shield(work), timeout=self._settings.run_timeout_seconds
            )
        except LeaseLost:
            beat.cancel()
            self._forget(run.id)
            log.warning("run_lease_lost")
            metrics.run_ended(backfill.kind, "lease_lost")
            return
        except asyncio.CancelledError:
            beat.cancel()
            work.cancel()
            self._forget(run.id)
            if lost.is_set():
                log.warning("run_lease_lost")
                metrics.run_ended(backfill.kind, "lease_lost")
                return
            # Shutting down: hand the run back now rather than after the lease runs out.
            metrics.run_ended(backfill.kind, "released")
            await asyncio.shield(self._release(run, token))
            raise
        except Exception as exc:
            beat.cancel()
            work.cancel()
            self._forget(run.id)
            if lost.is_set():
                log.warning("run_lease_lost")
                metrics.run_ended(backfill.kind, "lease_lost")
                return
            await self._failed(run, backfill, token, exc)
            return
        # The lease is kept alive until the completion is written too: a batch of
        # completions may wait behind another, and must not find its runs reaped.
        try:
            completion = Completion(run.id, run.backfill_id, token, processed, ingested)
            completed = await self._completions.complete(completion)
        finally:
            beat.cancel()
        if completed is not None:
            # The run's totals, from the database: a table run's earlier pages were counted
            # at their checkpoints, and `processed` holds only its last page.
            log.info("run_completed", rows=completed[0], rows_ingested=completed[1])
            metrics.run_ended(backfill.kind, "completed", rows=processed)
        else:
            self._forget(run.id)
            log.warning("run_lease_lost", at="completion")
            metrics.run_ended(backfill.kind, "lease_lost")

    async def _release(self, run: TransferRun, token: UUID) -> None:
        try:
            if await self._retrying(
                lambda: self._runs.release(run.id, run.backfill_id, token), "release_run"
            ):
                log.info("run_released")
        except Exception:
            log.exception("run_release_failed")  # the reaper returns it when the lease expires

    async def _failed(
        self, run: TransferRun, backfill: BackfillRow, token: UUID, exc: BaseException
    ) -> None:
        error = (
            f"timed out after {self._settings.run_timeout_seconds:g}s"
            if isinstance(exc, TimeoutError)
            else f"{type(exc).__name__}: {error_text(exc)}"
        )
        retry_in: float | None = None
        # A destination that refused for good (a 4xx, an address outside the allow-list, an
        # unroutable message) refuses again: spend no more attempts on it.
        if run.attempt < backfill.max_attempts and getattr(exc, "retryable", True):
            retry_in = backoff_seconds(
                run.attempt,
                base=self._settings.retry_base_seconds,
                cap=self._settings.retry_max_seconds,
                rng=self._rng,
            )
        state = await self._retrying(
            lambda: self._runs.fail_attempt(
                run.id, run.backfill_id, token, error, retry_in=retry_in
            ),
            "fail_attempt",
        )
        metrics.attempt_failed(backfill.kind, state)
        log.warning(
            "run_attempt_failed",
            error=error,
            attempt=run.attempt,
            outcome=state.value if state else "lease_lost",
            retry_in=retry_in,
        )

    async def _retrying(self, op: Callable[[], Awaitable[T]], what: str) -> T:
        # A database restart mid-run should cost a pause, not the attempt: these writes are
        # fenced and idempotent, so they are retried for as long as the lease could last.
        return await retry_unavailable(op, within=self._settings.lease_seconds, what=what)

    async def _heartbeat(
        self,
        run_id: int,
        token: UUID,
        lost: asyncio.Event,
        work: asyncio.Task[Any],
        clock: LeaseClock,
    ) -> None:
        # Until cancelled: past the work, the lease must last until the completion is written.
        while True:
            await asyncio.sleep(self._settings.heartbeat_seconds)
            try:
                alive = await self._runs.heartbeat(run_id, token, self._settings.lease_seconds)
            except Exception:
                log.warning("heartbeat_failed")  # the next beat retries; the lease has slack
                continue
            if not alive:
                lost.set()
                work.cancel()
                return
            clock.renewed()

    async def _work(
        self,
        run: TransferRun,
        backfill: BackfillRow,
        token: UUID,
        clock: LeaseClock,
        target: Target | None = None,
    ) -> tuple[int, int]:
        if target is None:
            target = await self._targets.get(backfill.target_id, None)
        # Checked again before every run: a grant revoked since the backfill was created
        # stops its next run here, before the source is touched.
        grants = await self._resources.grants.check(
            target.team_id,
            target_needs(
                source=target.source,
                tables=[backfill.table.table_name] if backfill.kind == "table" else [],
                sink=target.sink,
                handler=target.handler,
            ),
        )
        with using(grants):
            if backfill.kind == "table":
                # Earlier pages were rolled up with their checkpoints; the last page's rows
                # are counted by the completion itself, which saves a transaction per run.
                return await self._table_run(run, backfill, target, token, clock)
            rows = await self._window_run(run, backfill, target)
            return rows, rows

    async def _table_run(
        self,
        run: TransferRun,
        backfill: BackfillRow,
        target: Target,
        token: UUID,
        clock: LeaseClock,
    ) -> tuple[int, int]:
        assert target.source is not None
        assert target.sink is not None
        spec: SinkSpec = target.sink
        kind = sink_type(spec.type)
        sink = await kind.open(
            parse_options("sink", "/sink/options", kind.options_model, spec.options),
            self._resources,
        )
        keyset = KeysetSql.build(
            table_sql(backfill.table.table_name),
            backfill.table.key_columns,
            backfill.table.key_types,
        )
        pool = await self._resources.sources.get(target.source)
        cursor = run.cursor or run.lower_key
        try:
            if isinstance(sink, RangeSink) and backfill.max_rows_per_second is None:
                cursor, last = await self._range_pages(
                    sink, run, backfill, target.source, token, clock, keyset, pool, cursor
                )
                if last is not None:
                    return last
            return await self._row_pages(sink, run, backfill, token, clock, keyset, pool, cursor)
        finally:
            await sink.close()

    def _pace(self, backfill_id: int, path: str, ceiling: int) -> PageSize:
        s = self._settings
        ceiling = min(ceiling, s.read_batch_max_rows)
        start = min(self._page_sizes.get((backfill_id, path), s.read_batch_rows), ceiling)
        return PageSize(start, ceiling, s.read_page_seconds, floor=min(100, s.read_batch_rows))

    def _paced(self, backfill_id: int, path: str, pace: PageSize) -> None:
        self._page_sizes.pop((backfill_id, path), None)
        self._page_sizes[(backfill_id, path)] = pace.size
        if len(self._page_sizes) > 256:
            del self._page_sizes[next(iter(self._page_sizes))]  # the least recently ended

    async def _fenced(self, run: TransferRun, token: UUID, clock: LeaseClock) -> None:
        if clock.stale():
            # This process may have been paused past its lease (another worker may own the
            # run now): make sure, fenced, before writing anything more.
            if not await self._runs.heartbeat(run.id, token, self._settings.lease_seconds):
                raise LeaseLost()
            clock.renewed()

    async def _checkpoint(
        self,
        run: TransferRun,
        token: UUID,
        clock: LeaseClock,
        cursor: list[str],
        processed: int,
        ingested: int,
    ) -> Checkpointed:
        checkpoint = functools.partial(
            self._runs.checkpoint,
            run.id,
            run.backfill_id,
            token,
            cursor,
            processed,
            ingested,
            self._settings.lease_seconds,
        )
        progress = await self._retrying(checkpoint, "checkpoint")
        if progress is None:
            raise LeaseLost()
        clock.renewed()
        metrics.ROWS_PROCESSED.inc(processed)
        return progress

    async def _range_pages(
        self,
        sink: RangeSink,
        run: TransferRun,
        backfill: BackfillRow,
        source: str,
        token: UUID,
        clock: LeaseClock,
        keyset: KeysetSql,
        pool: asyncpg.Pool[Any],
        cursor: list[str] | None,
    ) -> tuple[list[str] | None, tuple[int, int] | None]:
        """Delivers the run as key ranges the sink moves without Python seeing the rows.
        Returns the cursor reached and, when the run is done, the rows of its last page (not
        checkpointed: the completion counts them); None leaves the rest to the row path (the
        sink declined, or a throttle was set meanwhile)."""
        upper: list[str] = run.upper_key or []
        async with pool.acquire() as conn:
            types = await column_types(conn, keyset.table_sql)
        # The planned run holds about chunk_size rows: a page that large is the whole run in
        # one statement, with no page boundary to look up.
        chunk: int = backfill.table.chunk_size
        pace = self._pace(run.backfill_id, "range", chunk)
        try:
            while True:
                size = pace.size
                end, last = upper, True
                if size < chunk:
                    async with pool.acquire() as conn:
                        found = await conn.fetchrow(
                            keyset.page_end(cursor is not None), *(cursor or []), *upper, size - 1
                        )
                    if found is not None:
                        end = [str(v) for v in found.values()]
                        last = end == upper
                page = KeyRange(
                    source=source,
                    pool=pool,
                    keyset=keyset,
                    columns=list(types),
                    column_types=types,
                    lower=cursor,
                    upper=end,
                    backfill_id=run.backfill_id,
                    run_id=run.id,
                    table=backfill.table.table_name,
                )
                await self._fenced(run, token, clock)
                started = time.monotonic()
                try:
                    delivered = await sink.deliver_range(page)
                except asyncpg.QueryCanceledError:
                    if not pace.timed_out():
                        raise
                    log.info("page_timed_out", rows=size, next_rows=pace.size)
                    continue
                if delivered is None:
                    return cursor, None
                pace.took(time.monotonic() - started, full=not last)
                if last:
                    return end, delivered
                progress = await self._checkpoint(run, token, clock, end, *delivered)
                cursor = end
                if progress.max_rows_per_second is not None:
                    return cursor, None
        finally:
            self._paced(run.backfill_id, "range", pace)

    async def _row_pages(
        self,
        sink: Sink,
        run: TransferRun,
        backfill: BackfillRow,
        token: UUID,
        clock: LeaseClock,
        keyset: KeysetSql,
        pool: asyncpg.Pool[Any],
        cursor: list[str] | None,
    ) -> tuple[int, int]:
        """Reads rows page by page, decoded, and hands them to the sink as RowBatches.
        Returns the rows of the last page, which the completion counts."""
        nkeys = len(backfill.table.key_columns)
        upper = run.upper_key or []
        throttled = backfill.max_rows_per_second is not None
        # Decoded rows live in Python while a page is delivered: bound them more tightly.
        pace = self._pace(
            run.backfill_id, "rows", min(backfill.table.chunk_size, DECODED_PAGE_ROWS)
        )
        if throttled:
            pace.size = min(pace.size, self._settings.read_batch_rows)
        # The columns' types, once per run: sinks that encode rows need them to tell
        # jsonb from text (asyncpg hands both over as str).
        async with pool.acquire() as conn:
            statement = await conn.prepare(keyset.read_batch(True))
            type_names = [a.type.name for a in statement.get_attributes()[nkeys:]]
        try:
            while True:
                limit = pace.size
                started = time.monotonic()
                try:
                    async with pool.acquire() as conn:
                        rows = await conn.fetch(
                            keyset.read_batch(cursor is not None), *(cursor or []), *upper, limit
                        )
                except asyncpg.QueryCanceledError:
                    if not pace.timed_out():
                        raise
                    log.info("page_timed_out", rows=limit, next_rows=pace.size)
                    continue
                if not throttled:
                    # A throttled backfill keeps batches at read_batch_rows: its rate stays
                    # smooth instead of arriving in ever larger bursts.
                    pace.took(time.monotonic() - started, full=len(rows) == limit)
                if not rows:
                    return 0, 0
                columns = list(rows[0].keys())[nkeys:]
                batch = RowBatch(
                    table=backfill.table.table_name,
                    columns=columns,
                    rows=[tuple(r.values())[nkeys:] for r in rows],
                    key_columns=backfill.table.key_columns,
                    backfill_id=run.backfill_id,
                    run_id=run.id,
                    column_types=type_names,
                )
                if throttled:
                    # The backfill's rows-per-second throttle, shared with every worker.
                    wait = await self._retrying(
                        functools.partial(self._runs.take_rows, run.backfill_id, len(rows)),
                        "take_rows",
                    )
                    if wait > 0:
                        await asyncio.sleep(wait)
                await self._fenced(run, token, clock)
                ingested = await sink.deliver(batch)
                if len(rows) < limit:
                    return len(rows), ingested
                cursor = [str(v) for v in tuple(rows[-1].values())[:nkeys]]
                progress = await self._checkpoint(run, token, clock, cursor, len(rows), ingested)
                # A throttle set or lifted while the run works applies from the next batch.
                throttled = progress.max_rows_per_second is not None
        finally:
            self._paced(run.backfill_id, "rows", pace)

    async def _window_run(self, run: TransferRun, backfill: BackfillRow, target: Target) -> int:
        assert target.handler is not None
        assert run.window_start
        assert run.window_end
        spec: HandlerSpec = target.handler
        kind = handler_type(spec.type)
        handler = await kind.open(
            parse_options("handler", "/handler/options", kind.options_model, spec.options),
            self._resources,
        )
        try:
            rows = await handler.run(
                WindowRun(
                    window_start=run.window_start,
                    window_end=run.window_end,
                    variables=window_variables(
                        backfill.variables,
                        run.window_start,
                        run.window_end,
                        previous_start=plan_of(backfill).previous_start(run.seq),
                    ),
                    backfill_id=run.backfill_id,
                    run_id=run.id,
                    attempt=run.attempt,
                )
            )
        finally:
            await handler.close()
        return rows or 0

    async def stop(self, grace: float) -> None:
        """Lets running runs finish within `grace` seconds, then cancels the rest and hands
        them back at once (pending, attempt not counted) so another worker can take them."""
        tasks = list(self._running.values())
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
