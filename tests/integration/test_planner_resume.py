"""Table planning survives its planner: a planner that dies mid-way leaves its cursor and
runs behind, and the next one (once the planning lease has expired) resumes from the cursor,
so the runs stay contiguous and cover the table exactly once. Planners racing each other on
one backfill produce one consistent set of runs.

No worker runs here (the `ctx` fixture only): nothing consumes the queue and no sweep hands
the backfill to a planner, so the test alone decides which planner runs when."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from typing import Any
from uuid import uuid4

import pytest

from orchestrator.context import Context
from orchestrator.domain.specs import BackfillSpec, TableTargetSpec
from orchestrator.settings import Settings
from orchestrator.sources.tables import KeysetSql
from tests.conftest import test_settings as make_settings
from tests.helpers import wait_until
from tests.integration.test_keysets import partition_report
from workers.planner import Planner, table_sql

pytestmark = pytest.mark.integration

BATCH = 3  # runs per planner batch
CHUNK = 5  # rows per run
ROWS = 203  # 40 full runs and a 3-row tail: 41 runs, 14 batches


@pytest.fixture
def settings(database: str, prefix: str) -> Settings:
    return make_settings(database, prefix, planner_batch_runs=BATCH, lease_seconds=1.0)


async def make_backfill(ctx: Context, db: Any) -> int:
    """A table with duplicate sort values (so boundaries fall inside them) and its backfill,
    created through the service; the backfill waits in `created` for a planner."""
    await db.execute("CREATE TABLE src (id bigint PRIMARY KEY, grp int NOT NULL, v text)")
    await db.execute(
        "INSERT INTO src SELECT g * 17 % 1009, g % 4, 'v' || g FROM generate_series(1, $1) g",
        ROWS,
    )
    await ctx.service.create_target(
        TableTargetSpec.model_validate(
            {
                "name": "src",
                "tables": ["src"],
                "sort_column": "grp",
                "chunk_size": CHUNK,
                "sink": {"type": "null"},
            }
        ),
        team_id=1,
    )
    backfill = await ctx.service.create_backfill(BackfillSpec(target="src"), team_id=1)
    assert backfill.state == "created"
    return backfill.id


async def runs_of(db: Any, backfill_id: int) -> list[Any]:
    return await db.fetch(  # type: ignore[no-any-return]
        "SELECT id, seq, lower_key, upper_key FROM transfer_runs WHERE backfill_id = $1 "
        "ORDER BY seq",
        backfill_id,
    )


async def assert_planned_exactly_once(db: Any, backfill_id: int) -> list[Any]:
    backfill = await db.fetchrow("SELECT * FROM backfills WHERE id = $1", backfill_id)
    runs = await runs_of(db, backfill_id)
    assert backfill["planning_done"] is True
    assert backfill["runs_total"] == backfill["runs_created"] == len(runs) == -(-ROWS // CHUNK)
    assert backfill["planning_seq"] == len(runs)
    assert backfill["planning_cursor"] == backfill["upper_bound"]
    assert [r["seq"] for r in runs] == list(range(len(runs)))  # none twice, none missing
    assert runs[0]["lower_key"] is None
    for a, b in itertools.pairwise(runs):
        assert a["upper_key"] == b["lower_key"], (dict(a), dict(b))
    assert runs[-1]["upper_key"] == backfill["upper_bound"]
    report = await partition_report(db, backfill_id)
    assert report["rows"] == report["sum_in_range"] == ROWS, report
    assert report["in_no_run"] == report["in_several_runs"] == 0, report
    assert report["empty_runs"] == [], report
    return runs


async def wait_initial_count(db: Any, backfill_id: int) -> None:
    async def counted() -> Any:
        return await db.fetchval(
            "SELECT rows_initial_count FROM backfills WHERE id = $1", backfill_id
        )

    assert await wait_until(counted, what="rows_initial_count") == ROWS


async def lease_expired(db: Any, backfill_id: int) -> bool:
    return bool(
        await db.fetchval(
            "SELECT planner_expires_at < now() FROM backfills WHERE id = $1", backfill_id
        )
    )


async def plan_one_batch_and_die(ctx: Context, db: Any, backfill_id: int) -> tuple[Any, list[str]]:
    """What a planner does up to its first stored batch, with the planner's own SQL; then it
    stops without finishing, counting, or releasing its lease."""
    token = uuid4()
    row = await ctx.storage.planning.claim(backfill_id, token, ctx.settings.lease_seconds)
    assert row is not None
    keyset = KeysetSql.build(
        table_sql(row.table.table_name), row.table.key_columns, row.table.key_types
    )
    top = await db.fetchrow(keyset.max_key())
    upper = [str(v) for v in top.values()]
    await ctx.storage.planning.set_upper_bound(backfill_id, token, upper)
    bounds = await db.fetch(keyset.boundaries(False), *upper, CHUNK * BATCH, CHUNK)
    assert len(bounds) == BATCH
    runs, cursor = [], None
    for seq, b in enumerate(bounds):
        key = [str(v) for v in b.values()]
        runs.append({"seq": seq, "lower_key": cursor, "upper_key": key})
        cursor = key
    stored = await ctx.storage.planning.add_runs(
        backfill_id,
        token,
        runs,
        cursor=cursor,
        next_seq=BATCH,
        done=False,
        total=None,
        lease=ctx.settings.lease_seconds,
    )
    assert stored is not None
    assert stored.planning_cursor == cursor
    assert stored.planning_seq == BATCH
    return token, upper


async def test_a_planner_that_died_mid_way_is_resumed_from_its_cursor(
    ctx: Context, db: Any
) -> None:
    backfill_id = await make_backfill(ctx, db)
    dead_token, upper = await plan_one_batch_and_die(ctx, db, backfill_id)
    first_batch = await runs_of(db, backfill_id)
    assert len(first_batch) == BATCH

    # While the dead planner's lease lasts, nobody else may plan: the backfill is not
    # planned twice over just because a second planner asked.
    planner = Planner(ctx.settings, ctx.storage, ctx.sources)
    try:
        assert not await lease_expired(db, backfill_id)
        await planner.plan(backfill_id)
        assert len(await runs_of(db, backfill_id)) == BATCH

        await wait_until(
            lambda: lease_expired(db, backfill_id), what="the planning lease to expire"
        )
        await planner.plan(backfill_id)

        runs = await assert_planned_exactly_once(db, backfill_id)
        # The dead planner's batch is kept as it was, and its upper bound too.
        assert [dict(r) for r in runs[:BATCH]] == [dict(r) for r in first_batch]
        assert runs[-1]["upper_key"] == upper
        await wait_initial_count(db, backfill_id)  # counted by the planner that resumed
    finally:
        await planner.stop()

    # The dead planner, were it to wake up, is fenced out by its lost token.
    late = await ctx.storage.planning.add_runs(
        backfill_id,
        dead_token,
        [{"seq": BATCH, "lower_key": upper, "upper_key": upper}],
        cursor=upper,
        next_seq=BATCH + 1,
        done=True,
        total=None,
        lease=1.0,
    )
    assert late is None
    await assert_planned_exactly_once(db, backfill_id)
    # Planning again after it is done changes nothing.
    again = Planner(ctx.settings, ctx.storage, ctx.sources)
    await again.plan(backfill_id)
    await again.stop()
    assert [dict(r) for r in await runs_of(db, backfill_id)] == [dict(r) for r in runs]


@pytest.mark.parametrize("after_a_death", [False, True], ids=["fresh", "after-a-death"])
async def test_planners_racing_on_one_backfill_make_one_set_of_runs(
    ctx: Context, db: Any, after_a_death: bool
) -> None:
    backfill_id = await make_backfill(ctx, db)
    if after_a_death:
        await plan_one_batch_and_die(ctx, db, backfill_id)
        await wait_until(
            lambda: lease_expired(db, backfill_id), what="the planning lease to expire"
        )
    planners = [Planner(ctx.settings, ctx.storage, ctx.sources) for _ in range(4)]
    try:
        await asyncio.gather(*(p.plan(backfill_id) for p in planners))
        await assert_planned_exactly_once(db, backfill_id)
        await wait_initial_count(db, backfill_id)
    finally:
        await asyncio.gather(*(p.stop() for p in planners))


class StealingPlanning:
    """The real planning store, except that after each stored batch (while the budget lasts) the
    planner that stored it stalls past its lease and a new planner takes the backfill over and
    plans on, while the stalled one is still alive and carries on from its own stale cursor
    once the thief is done."""

    def __init__(self, ctx: Context, db: Any, steals: int) -> None:
        self._ctx = ctx
        self._db = db
        self.steals_left = steals
        self.fenced = 0
        self.planners: list[Planner] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx.storage.planning, name)

    def planner(self) -> Planner:
        storage = dataclasses.replace(self._ctx.storage, planning=self)  # type: ignore[arg-type]
        planner = Planner(self._ctx.settings, storage, self._ctx.sources)
        self.planners.append(planner)
        return planner

    async def add_runs(self, backfill_id: int, token: Any, runs: Any, **kw: Any) -> Any:
        row = await self._ctx.storage.planning.add_runs(backfill_id, token, runs, **kw)
        if row is None:
            self.fenced += 1
            return None
        if not row.planning_done and self.steals_left > 0:
            self.steals_left -= 1
            await self._db.execute(
                "UPDATE backfills SET planner_expires_at = now() - interval '1 second' "
                "WHERE id = $1",
                backfill_id,
            )
            await self.planner().plan(backfill_id)
        return row


async def test_planners_whose_lease_is_taken_mid_way_are_fenced_and_the_thief_resumes(
    ctx: Context, db: Any
) -> None:
    """Four times over, a planner loses its lease between two batches to a new planner, which
    resumes from the stored cursor; each loser is fenced out at its next batch (its token no
    longer matches) and stops. The runs are still one contiguous, exact cover of the table."""
    backfill_id = await make_backfill(ctx, db)
    repo = StealingPlanning(ctx, db, steals=4)
    try:
        await repo.planner().plan(backfill_id)
        assert repo.steals_left == 0
        assert repo.fenced == 4  # every planner but the last was stopped by its lost lease
        await assert_planned_exactly_once(db, backfill_id)
        await wait_initial_count(db, backfill_id)
    finally:
        await asyncio.gather(*(p.stop() for p in repo.planners))
