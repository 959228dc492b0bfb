"""Dry runs: what creating a backfill would do (its runs, page by page), without doing it."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orchestrator.domain.chunking import chunk_page
from orchestrator.domain.models import IntervalType, Reprocess, Target, TargetKind
from orchestrator.domain.specs import BackfillSpec
from orchestrator.domain.values import checked_plan, field_error, range_values
from orchestrator.domain.windows import WindowPlan
from orchestrator.errors import NotFound
from orchestrator.settings import Settings
from orchestrator.sources.pools import SourcePools
from orchestrator.sources.tables import KeysetSql, estimate_rows, table_sql
from orchestrator.usecases.checks import DataChecks
from orchestrator.usecases.ports import StoragePort


@dataclass(frozen=True)
class PlannedRun:
    """A run a backfill would make: a key range (table) or a window (date range)."""

    seq: int
    lower_key: list[str] | None = None
    upper_key: list[str] | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None


@dataclass(frozen=True)
class DryRun:
    """What creating a backfill would do, without doing it."""

    target_id: int
    kind: TargetKind
    runs_total: int | None  # exact for a date range; a table's is known only by scanning
    rows_estimate: int | None
    conflicting_backfill_id: int | None
    runs: list[PlannedRun]
    next_after: int | None


class Preview:
    def __init__(
        self, settings: Settings, storage: StoragePort, sources: SourcePools, checks: DataChecks
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.sources = sources
        self.checks = checks

    async def dry_run(
        self, spec: BackfillSpec, *, team_id: int, after: int | None, limit: int
    ) -> DryRun:
        """Validates `spec` exactly as a create would and says what it would make: a page of
        its runs (`after` is the last seq of the previous page), the row estimate of a
        table, and the active backfill it would conflict with, if any. Writes nothing."""
        try:
            target = await self.storage.targets.get(spec.target, team_id)
        except NotFound:
            raise field_error("/target", f"target {spec.target!r} not found") from None
        from_seq = 0 if after is None else after + 1
        await self.checks.target_data(target)
        if target.kind == TargetKind.TABLE:
            values = await self.checks.table_values(spec, target)
            conflict = await self.storage.backfills.find_overlap(
                {"kind": "table", "target_id": target.id, **values}
            )
            rows_estimate, runs, more = await self._table_preview(target, values, from_seq, limit)
            runs_total = None
        else:
            values = range_values(spec, target, max_runs=self.settings.max_runs_per_backfill)
            conflict = await self.storage.backfills.find_overlap(
                {"kind": "date_range", "target_id": target.id, **values}
            )
            plan = checked_plan(
                spec.start,  # type: ignore[arg-type]  # range_values checked both are set
                spec.end,  # type: ignore[arg-type]
                IntervalType(values["interval_type"]),
                values["interval_units"],
                spec.time_zone,
                spec.order.value,
                end_inclusive=spec.end_inclusive,
            )
            runs = await self._window_preview(
                plan, target.id, spec.reprocess, min(from_seq, plan.count), limit
            )
            more = len(runs) > limit
            runs = runs[:limit]
            # With a reprocess filter, the total is known only by looking at every window.
            runs_total = plan.count if spec.reprocess == Reprocess.ALL else None
            rows_estimate = None
        return DryRun(
            target_id=target.id,
            kind=target.kind,
            runs_total=runs_total,
            rows_estimate=rows_estimate,
            conflicting_backfill_id=conflict,
            runs=runs,
            next_after=runs[-1].seq if more and runs else None,
        )

    async def _window_preview(
        self, plan: WindowPlan, target_id: int, reprocess: Reprocess, from_seq: int, limit: int
    ) -> list[PlannedRun]:
        """Up to limit + 1 windows from `from_seq`, less those `reprocess` would skip."""
        out: list[PlannedRun] = []
        windows = plan.windows(from_seq)
        while len(out) <= limit:
            chunk = list(itertools.islice(windows, limit + 1))
            if not chunk:
                break
            outcomes: dict[tuple[datetime, datetime], str] = {}
            if reprocess != Reprocess.ALL:
                outcomes = await self.storage.planning.earlier_outcomes(
                    target_id, 0, [w.start for _, w in chunk]
                )
            for seq, w in chunk:
                if reprocess.keeps(outcomes.get((w.start, w.end))):
                    out.append(PlannedRun(seq=seq, window_start=w.start, window_end=w.end))
        return out[: limit + 1]

    async def _table_preview(
        self, target: Target, values: dict[str, Any], from_seq: int, limit: int
    ) -> tuple[int | None, list[PlannedRun], bool]:
        """The key ranges the planner would cut, from the first, up to the page asked for:
        the same keyset query and chunk rule (orchestrator.domain.chunking), walked without
        writing (a later page rescans the earlier ones' boundaries, through the key's
        index)."""
        assert target.source is not None
        pool = await self.sources.get(target.source)
        keyset = KeysetSql.build(
            table_sql(values["table_name"]), values["key_columns"], values["key_types"]
        )
        chunk: int = values["chunk_size"]
        runs: list[PlannedRun] = []
        async with pool.acquire() as conn:
            estimate = await estimate_rows(conn, values["table_name"])
            top = await conn.fetchrow(keyset.max_key())
            if top is None:
                return estimate, [], False
            upper = [str(v) for v in top.values()]
            cursor: list[str] | None = None
            seq = 0
            wanted = from_seq + limit + 1  # one more than the page: is there another?
            while seq < wanted and cursor != upper:
                batch = min(self.settings.planner_batch_runs, wanted - seq)
                bounds = await conn.fetch(
                    keyset.boundaries(cursor is not None),
                    *(cursor or []),
                    *upper,
                    chunk * batch,
                    chunk,
                )
                page = chunk_page(
                    cursor, [[str(v) for v in b.values()] for b in bounds], upper, batch
                )
                for c in page.chunks:
                    if seq >= from_seq:
                        runs.append(
                            PlannedRun(seq=seq, lower_key=c.lower_key, upper_key=c.upper_key)
                        )
                    seq += 1
                cursor = page.cursor
                if page.done:
                    break
        more = len(runs) > limit
        return estimate, runs[:limit], more
