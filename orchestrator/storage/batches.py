"""Runs claimed, completed and dispatched in batches: one transaction per batch instead of
several per run.

Every transaction here locks the backfill rows it touches first (several in one statement,
in id order), as every single-run transaction does, and claims only while the locked row
says the backfill is dispatchable. A cancel takes the same lock, so a claim in a batch still
either commits before the cancel or sees it: no run starts after a cancel committed.

A batch of completions usually costs one statement, not a transaction of several: the
same statements run server-side (pg_temp.complete_batch, see batches.sql), the call its
own transaction, so the backfill locks are held for the server's work only, not across
the worker's round trips. What it leaves to the transaction (throttled backfills, a
backfill this batch may finish) it declines before writing anything."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from orchestrator.domain.claims import ClaimedRun
from orchestrator.domain.models import BackfillRow, Target, TransferRun
from orchestrator.domain.states import BACKFILL_DISPATCHABLE, BackfillState
from orchestrator.storage.database import Conn, Pool
from orchestrator.storage.lifecycle import dispatch_limits, maybe_finish
from orchestrator.storage.queries import q


@dataclass(frozen=True)
class Claim:
    """What a worker takes in a transaction: up to `want` runs, each under a lease of
    `lease` seconds. With `named`, the run a dispatch message named (if still queued) and
    pending runs that have no message; without, pending runs and then queued ones.

    `queued_first` (a batch of completions): the freed slots go first to queued runs of any
    backfill, oldest first, which is what their messages would claim one transaction each;
    only `own` of them go to pending runs of the ended runs' backfills, so runs queued
    earlier do not wait behind them."""

    want: int
    lease: float
    worker_id: str
    named: int = 0
    queued_first: bool = False
    own: int | None = None
    # False: runs a batch queues get no dispatch message (see claim_and_queue_many).
    announce: bool = True


@dataclass(frozen=True)
class Completion:
    run_id: int
    backfill_id: int
    token: UUID
    processed: int
    ingested: int


async def dispatch_claiming(
    conn: Conn, backfill: asyncpg.Record, capacity: int | None, claim: Claim | None
) -> list[asyncpg.Record]:
    """Dispatch that lets the calling worker take runs itself, within the limits dispatch
    keeps (max_active_runs, fair share, the runs-per-minute throttle): pending runs go
    straight to running, with no dispatch message. What the limits allow beyond that is
    queued with a `run.dispatch` message each, as `dispatch` does. Returns the claimed runs.
    The caller holds the backfill lock.

    A table backfill's message takes only its named run: each run is long enough that
    spreading them over the workers matters more than the message. Its runs that end are
    replaced one for one by the worker that ran them (a claim naming no run), which keeps
    the spread the messages made without a message between one run and the next."""
    if backfill["state"] not in BACKFILL_DISPATCHABLE:
        return []
    backfill_id = backfill["id"]
    want = claim.want if claim is not None else 0
    batch = backfill["kind"] != "table" or (claim is not None and not claim.named)
    claimed: list[asyncpg.Record] = []
    if claim is not None and claim.named and want > 0:
        claimed += await _claim_queued(conn, backfill_id, claim, claim.named, 1)
    direct = want - len(claimed) if claim is not None and batch else 0
    if backfill["max_runs_per_minute"] is None:
        limit = backfill["max_active_runs"]
        if capacity is not None:
            share = await conn.fetchval(q("share_of_capacity"), backfill_id, capacity)
            limit = min(limit, share or limit)
        # Claimed and queued in one statement: the common case costs one round trip.
        claimed += await conn.fetch(
            q("claim_and_queue_many"),
            [backfill_id],
            [limit],
            [max(0, direct)],
            claim.lease if claim is not None else None,
            claim.worker_id if claim is not None else None,
            True,
        )
    else:
        claimed += await _throttled(conn, backfill, capacity, claim, direct)
    if claim is not None and batch and not claim.named and want > len(claimed):
        # Queued runs whose messages are still on their way: this worker has a slot now.
        claimed += await _claim_queued(conn, backfill_id, claim, 0, want - len(claimed))
    if claimed and (backfill["started_at"] is None or backfill["state"] == BackfillState.SCHEDULED):
        await conn.fetchrow(q("mark_backfill_started_once"), backfill_id)
    return claimed


async def _throttled(
    conn: Conn, backfill: asyncpg.Record, capacity: int | None, claim: Claim | None, direct: int
) -> list[asyncpg.Record]:
    """dispatch_claiming's claims and queueing for a backfill with a runs-per-minute
    throttle: apart, because the bucket is spent by how many runs started."""
    backfill_id = backfill["id"]
    limit, allowed = await dispatch_limits(conn, backfill, capacity)
    claimed: list[asyncpg.Record] = []
    if claim is not None and direct > 0 and allowed > 0:
        claimed = list(
            await conn.fetch(
                q("claim_pending_runs"),
                backfill_id,
                limit,
                direct,
                claim.lease,
                claim.worker_id,
                allowed,
            )
        )
    started = len(claimed)
    if allowed - started > 0:
        queued = await conn.fetch(q("queue_runs"), backfill_id, limit, allowed - started)
        if queued:
            await conn.execute(q("enqueue_dispatches"), backfill_id, [r["id"] for r in queued])
        started += len(queued)
    if started:
        await conn.execute(q("spend_run_tokens"), backfill_id, started)
    return claimed


async def _claim_queued(
    conn: Conn, backfill_id: int, claim: Claim, named: int, most: int
) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            q("claim_queued_runs"), backfill_id, named, most, claim.lease, claim.worker_id
        )
    )


async def _claim_queued_anywhere(
    conn: Conn,
    claim: Claim,
    most: int,
    known: Mapping[int, tuple[asyncpg.Record, Target]] | None = None,
) -> list[ClaimedRun]:
    """claim_queued_anywhere, with each run's backfill (locked by the claim) and target, and
    the backfills that start with these runs marked started. `known`: backfills this
    transaction locked before, as they are now, with their targets (not read again)."""
    runs = await conn.fetch(q("claim_queued_anywhere"), most, claim.lease, claim.worker_id)
    if not runs:
        return []
    seen = dict(known or {})
    ids = sorted({r["backfill_id"] for r in runs} - seen.keys())
    if ids:
        # Locked by this transaction already (the claim locked them): this only reads them.
        for b in await conn.fetch(q("lock_backfills_with_targets"), ids):
            seen[b["id"]] = (b, _target(b))
    for backfill_id in sorted({r["backfill_id"] for r in runs}):
        b = seen[backfill_id][0]
        if b["started_at"] is None or b["state"] == BackfillState.SCHEDULED:
            await conn.fetchrow(q("mark_backfill_started_once"), backfill_id)
    return [
        ClaimedRun(
            TransferRun.from_row(r),
            BackfillRow.from_row(seen[r["backfill_id"]][0]),
            seen[r["backfill_id"]][1],
        )
        for r in runs
    ]


def _claimed(
    backfill: asyncpg.Record, target: Target | None, runs: list[asyncpg.Record]
) -> list[ClaimedRun]:
    if not runs:
        return []
    seen = BackfillRow.from_row(backfill)
    return [ClaimedRun(TransferRun.from_row(r), seen, target) for r in runs]


class Batches:
    """The batch paths of the run repository."""

    def __init__(self, pool: Pool, *, capacity: int | None = None) -> None:
        self.pool = pool
        self.capacity = capacity

    async def claim_runs(self, backfill_id: int, claim: Claim) -> list[ClaimedRun]:
        """A dispatch message woke a worker with `claim.want` free slots: it takes the named
        run and as many more of the backfill's as it can, in one transaction. Nothing when
        the named run is no longer queued: a batch took it (or it went back to pending), and
        the message is moot."""
        if claim.named and not await self.pool.fetchval(q("run_is_queued"), claim.named):
            # Read without the backfill's lock: a message racing the batches of several
            # workers mostly finds its run taken, and the locked transaction (six round
            # trips holding the row every batch of that backfill waits on) would only
            # find that out later. A run still queued goes the locked way.
            return []
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(q("lock_backfills_with_targets"), [backfill_id])
            if not rows:
                return []
            backfill = rows[0]
            runs = await dispatch_claiming(conn, backfill, self.capacity, claim)
            return _claimed(backfill, _target(backfill), runs)

    async def claim_queued(self, claim: Claim) -> list[ClaimedRun]:
        """Up to `claim.want` queued runs of any date-range backfills, oldest first (what a
        batch of completions takes first), in a transaction of their own: for a worker with
        free slots and no batch to take them in."""
        async with self.pool.acquire() as conn, conn.transaction():
            return await _claim_queued_anywhere(conn, claim, claim.want)

    async def complete_runs(
        self, completions: list[Completion], claim: Claim | None
    ) -> tuple[dict[int, tuple[int, int]], list[ClaimedRun], bool]:
        """Ends a batch of runs (of any backfills) in one transaction, each fenced by its
        own lease: the counters of each backfill move once, each backfill may finish, is
        dispatched again, and the worker takes up to `claim.want` runs for the slots the
        batch freed. Returns the runs that were still this worker's (the others' leases were
        lost), each with its row totals (processed, ingested), the runs claimed, and whether
        queued runs may be left (`queued_first` took as many as it asked for)."""
        async with self.pool.acquire() as conn:
            if claim is not None:
                fast = await self._complete_in_one(conn, completions, claim)
                if fast is not None:
                    return fast
            async with conn.transaction():
                return await self._complete_runs(conn, completions, claim)

    async def _complete_in_one(
        self, conn: Conn, completions: list[Completion], claim: Claim
    ) -> tuple[dict[int, tuple[int, int]], list[ClaimedRun], bool] | None:
        """complete_runs' common case as one statement outside a transaction (see
        complete_batch_function in batches.sql): its own transaction, one round trip, the
        backfill locks held only while the server runs it. None when it declined (a
        throttled backfill, one that may finish with this batch), having written nothing:
        the caller runs the transaction of _complete_runs."""
        args = (
            sorted({c.backfill_id for c in completions}),
            [c.backfill_id for c in completions],
            [c.run_id for c in completions],
            [c.token for c in completions],
            [c.processed for c in completions],
            [c.ingested for c in completions],
            claim.want,
            claim.lease,
            claim.worker_id,
            claim.queued_first,
            claim.own,
            claim.announce,
            self.capacity,
        )
        try:
            row = await conn.fetchrow(q("complete_batch"), *args)
        except (asyncpg.UndefinedFunctionError, asyncpg.InvalidSchemaNameError):
            # First use on this connection: pg_temp's function is made per session.
            await conn.execute(q("complete_batch_function"))
            row = await conn.fetchrow(q("complete_batch"), *args)
        assert row is not None
        if row["o_fallback"]:
            return None
        done = dict(
            zip(
                row["o_done_ids"],
                zip(row["o_done_processed"], row["o_done_ingested"], strict=True),
                strict=True,
            )
        )
        # One backfill row and target per backfill, as _claimed builds them.
        seen = {
            b["id"]: (BackfillRow.from_row(b), Target.from_row(t))
            for b, t in zip(row["o_backfills"], row["o_targets"], strict=True)
        }
        claimed = [
            ClaimedRun(TransferRun.from_row(r), *seen[r["backfill_id"]]) for r in row["o_runs"]
        ]
        return done, claimed, row["o_queue_left"]

    async def _complete_runs(
        self, conn: Conn, completions: list[Completion], claim: Claim | None
    ) -> tuple[dict[int, tuple[int, int]], list[ClaimedRun], bool]:
        """complete_runs as one transaction of several statements (the caller opened it):
        every case, the throttled and finishing backfills' included."""
        ids = sorted({c.backfill_id for c in completions})
        done: dict[int, tuple[int, int]] = {}
        claimed: list[ClaimedRun] = []
        want = claim.want if claim is not None else 0
        queue_left = False
        locked = await conn.fetch(q("lock_backfills_with_targets"), ids)
        targets = {b["id"]: _target(b) for b in locked}
        current: dict[int, asyncpg.Record] = {b["id"]: b for b in locked}
        ended: dict[int, int] = {}
        counted = await conn.fetch(
            q("complete_and_count_many"),
            [c.run_id for c in completions],
            [c.token for c in completions],
            [c.processed for c in completions],
            [c.ingested for c in completions],
        )
        for row in counted:
            done.update(
                zip(
                    row["ended_ids"],
                    zip(row["ended_processed"], row["ended_ingested"], strict=True),
                    strict=True,
                )
            )
            ended[row["id"]] = len(row["ended_ids"])
            current[row["id"]] = await maybe_finish(conn, row)
        if claim is not None and claim.queued_first and want > 0:
            # The batch's own backfills are locked and read (as the completions left
            # them): the usual case, a run replaced by a queued run of its backfill,
            # costs no second read of them.
            known = {i: (current[i], targets[i]) for i in current}
            taken = await _claim_queued_anywhere(conn, claim, want, known)
            claimed += taken
            queue_left = len(taken) >= want
            want = min(want - len(taken), want if claim.own is None else claim.own)
        # Each backfill's ended runs are replaced one for one, so runs stay spread over
        # the workers the way their messages first spread them.
        wants: dict[int, int] = {}
        for backfill_id in ids:
            wants[backfill_id] = min(want - sum(wants.values()), ended.get(backfill_id, 0))
        runs = await self._dispatch_all(conn, list(current.values()), wants, claim)
        for backfill_id, rows in runs.items():
            claimed += _claimed(current[backfill_id], targets[backfill_id], rows)
        return done, claimed, queue_left

    async def _dispatch_all(
        self,
        conn: Conn,
        backfills: list[asyncpg.Record],
        wants: dict[int, int],
        claim: Claim | None,
    ) -> dict[int, list[asyncpg.Record]]:
        """dispatch_claiming for each of the backfills, with the unthrottled ones (all but
        a few, usually) done together in one statement."""
        out: dict[int, list[asyncpg.Record]] = {}
        together = []
        for b in backfills:
            if b["state"] not in BACKFILL_DISPATCHABLE:
                continue
            here = None if claim is None else Claim(wants[b["id"]], claim.lease, claim.worker_id)
            if b["max_runs_per_minute"] is None:
                together.append(b)
            else:
                out[b["id"]] = await dispatch_claiming(conn, b, self.capacity, here)
        if not together:
            return out
        ids = [b["id"] for b in together]
        takes = [wants[b["id"]] if claim is not None else 0 for b in together]
        claiming = (
            claim.lease if claim is not None else None,
            claim.worker_id if claim is not None else None,
            claim is None or claim.announce,
        )
        if self.capacity is not None:
            # The fair share and the claims in one round trip.
            rows = await conn.fetch(
                q("share_claim_and_queue_many"), ids, self.capacity, takes, *claiming
            )
        else:
            limits = [b["max_active_runs"] for b in together]
            rows = await conn.fetch(q("claim_and_queue_many"), ids, limits, takes, *claiming)
        for r in rows:
            out.setdefault(r["backfill_id"], []).append(r)
        for b in together:
            if b["id"] in out and (
                b["started_at"] is None or b["state"] == BackfillState.SCHEDULED
            ):
                await conn.fetchrow(q("mark_backfill_started_once"), b["id"])
        return out


def _target(row: asyncpg.Record) -> Target:
    return Target.from_row(row["target_row"])
