"""Runs claimed, completed and dispatched in batches: one transaction per batch instead of
several per run.

Every transaction here locks the backfill rows it touches first (several in one statement,
in id order), as every single-run transaction does, and claims only while the locked row
says the backfill is dispatchable. A cancel takes the same lock, so a claim in a batch still
either commits before the cancel or sees it: no run starts after a cancel committed."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg

from orchestrator.domain.models import Target, TransferRun
from orchestrator.domain.states import BACKFILL_DISPATCHABLE
from orchestrator.storage.database import Conn, Pool
from orchestrator.storage.queries import q
from orchestrator.storage.repository import ClaimedRun, dispatch_limits, maybe_finish, one


@dataclass(frozen=True)
class Claim:
    """What a worker takes in a transaction: up to `want` runs, each under a lease of
    `lease` seconds. With `named`, the run a dispatch message named (if still queued) and
    pending runs that have no message; without, pending runs and then queued ones."""

    want: int
    lease: float
    worker_id: str
    named: int = 0


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

    A table backfill's runs are only ever taken by their message (the named run): each is
    long enough that spreading them over the workers matters more than the message."""
    if backfill["state"] not in BACKFILL_DISPATCHABLE:
        return []
    backfill_id = backfill["id"]
    limit, allowed = await dispatch_limits(conn, backfill, capacity)
    want = claim.want if claim is not None else 0
    batch = backfill["kind"] != "table"
    claimed: list[asyncpg.Record] = []
    if claim is not None and claim.named and want > 0:
        claimed += await _claim_queued(conn, backfill_id, claim, claim.named, 1)
    started = 0
    if claim is not None and batch and want > len(claimed) and allowed > 0:
        direct = await conn.fetch(
            q("claim_pending_runs"),
            backfill_id,
            limit,
            want - len(claimed),
            claim.lease,
            claim.worker_id,
            allowed,
        )
        claimed += direct
        started = len(direct)
    if claim is not None and batch and not claim.named and want > len(claimed):
        # Queued runs whose messages are still on their way: this worker has a slot now.
        claimed += await _claim_queued(conn, backfill_id, claim, 0, want - len(claimed))
    if allowed - started > 0:
        queued = await conn.fetch(q("queue_runs"), backfill_id, limit, allowed - started)
        if queued:
            await conn.execute(q("enqueue_dispatches"), backfill_id, [r["id"] for r in queued])
        started += len(queued)
    if started and backfill["max_runs_per_minute"] is not None:
        await conn.execute(q("spend_run_tokens"), backfill_id, started)
    if claimed:
        await conn.fetchrow(q("mark_backfill_started_once"), backfill_id)
    return claimed


async def _claim_queued(
    conn: Conn, backfill_id: int, claim: Claim, named: int, most: int
) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            q("claim_queued_runs"), backfill_id, named, most, claim.lease, claim.worker_id
        )
    )


async def _claimed(
    conn: Conn, backfill: asyncpg.Record, runs: list[asyncpg.Record]
) -> list[ClaimedRun]:
    if not runs:
        return []
    row = await conn.fetchrow(q("get_target_by_id"), backfill["target_id"], None)
    target = Target.from_row(row) if row is not None else None
    return [ClaimedRun(TransferRun.from_row(r), backfill, target) for r in runs]


class Batches:
    """The batch paths of the run repository."""

    def __init__(self, pool: Pool, *, capacity: int | None = None) -> None:
        self.pool = pool
        self.capacity = capacity

    async def claim_runs(self, backfill_id: int, claim: Claim) -> list[ClaimedRun]:
        """A dispatch message woke a worker with `claim.want` free slots: it takes the named
        run and as many more of the backfill's as it can, in one transaction."""
        async with self.pool.acquire() as conn, conn.transaction():
            backfill = await conn.fetchrow(q("lock_backfill"), backfill_id)
            if backfill is None:
                return []
            runs = await dispatch_claiming(conn, backfill, self.capacity, claim)
            return await _claimed(conn, backfill, runs)

    async def complete_runs(
        self, completions: list[Completion], claim: Claim | None
    ) -> tuple[set[int], list[ClaimedRun]]:
        """Ends a batch of runs (of any backfills) in one transaction, each fenced by its
        own lease: the counters of each backfill move once, each backfill may finish, is
        dispatched again, and the worker takes up to `claim.want` runs for the slots the
        batch freed. Returns the ids of the runs that were still this worker's (the others'
        leases were lost) and the runs claimed."""
        by_backfill: dict[int, list[Completion]] = {}
        for c in completions:
            by_backfill.setdefault(c.backfill_id, []).append(c)
        done: set[int] = set()
        claimed: list[ClaimedRun] = []
        want = claim.want if claim is not None else 0
        async with self.pool.acquire() as conn, conn.transaction():
            for backfill in await conn.fetch(q("lock_backfills"), sorted(by_backfill)):
                items = by_backfill[backfill["id"]]
                ended = await conn.fetch(
                    q("complete_runs"),
                    [c.run_id for c in items],
                    [c.token for c in items],
                    [c.processed for c in items],
                    [c.ingested for c in items],
                )
                if ended:
                    done.update(r["id"] for r in ended)
                    backfill = await one(
                        conn,
                        "count_runs_completed",
                        backfill["id"],
                        len(ended),
                        sum(r["processed"] for r in ended),
                        sum(r["ingested"] for r in ended),
                    )
                    backfill = await maybe_finish(conn, backfill)
                here = None
                if claim is not None:
                    # Each backfill's ended runs are replaced one for one, so runs stay
                    # spread over the workers the way their messages first spread them.
                    most = min(want - len(claimed), len(ended))
                    here = Claim(most, claim.lease, claim.worker_id)
                runs = await dispatch_claiming(conn, backfill, self.capacity, here)
                claimed += await _claimed(conn, backfill, runs)
        return done, claimed
