"""Use cases: what the API and the command consumer ask of the system.

Each method is one transaction (or a read) through the repository; rules live in the domain
(orchestrator.domain), SQL in orchestrator.storage. The API and workers call this and hold no
rules of their own."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Generic, TypeVar
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter

from orchestrator import metrics
from orchestrator.domain.models import (
    Backfill,
    HandlerSpec,
    IntervalType,
    Reprocess,
    RunOrder,
    SinkSpec,
    Target,
    TargetKind,
    TransferRun,
)
from orchestrator.domain.progress import Progress
from orchestrator.domain.specs import (
    PLAN_FIELDS,
    BackfillPatch,
    BackfillSpec,
    DateOrDatetime,
    DateRangeTargetSpec,
    DraftSpec,
    TableTargetSpec,
    TargetPatch,
    TargetSpec,
)
from orchestrator.domain.states import BackfillState, RunState, valid_actions
from orchestrator.domain.windows import WindowPlan, window_plan
from orchestrator.errors import (
    InvalidTransition,
    NotFound,
    OrchestratorError,
    SourceError,
    ValidationFailed,
)
from orchestrator.grants.checks import GrantChecker, handler_needs, sink_needs, table_needs
from orchestrator.grants.scope import using
from orchestrator.handlers.registry import handler_type
from orchestrator.plugins.options import parse_options
from orchestrator.plugins.resources import Resources
from orchestrator.settings import Settings
from orchestrator.sinks.registry import sink_type
from orchestrator.sources.pools import SourcePools
from orchestrator.sources.tables import (
    KeysetSql,
    TableShape,
    describe_table,
    estimate_rows,
    table_sql,
)
from orchestrator.storage.grants import GrantRepository
from orchestrator.storage.progress import ProgressStore
from orchestrator.storage.repository import REPLANNABLE, Repository

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """A keyset page: pass `next_after` back as `after` to get the next one."""

    items: list[T]
    next_after: int | None


# What a backfill may change at any time.
_SETTINGS_FIELDS = frozenset(
    {"name", "max_active_runs", "max_runs_per_minute", "max_rows_per_second", "priority"}
)

# An inclusive end's plan bound is one microsecond past the end itself.
_MICROSECOND = timedelta(microseconds=1)


def _create_command(spec: BackfillSpec, target: Target, command_id: UUID) -> dict[str, Any]:
    """The `command.create` that announces a backfill (and, for a started draft, hands it to
    a worker: the command's id is the backfill's, so applying it finds the backfill)."""
    return {
        "type": "command.create",
        "command_id": str(command_id),
        "team_id": target.team_id,
        "backfill": spec.model_dump(mode="json", exclude_defaults=True) | {"target": target.id},
    }


_RANGE_VALUE: TypeAdapter[Any] = TypeAdapter(DateOrDatetime)


def draft_of(backfill: Backfill) -> DraftSpec:
    """A date-range backfill's definition as a draft: what re-planning starts from."""
    given = backfill.range_input or {}
    return DraftSpec(
        name=backfill.name,
        start=_RANGE_VALUE.validate_python(given["start"]) if given.get("start") else None,
        end=_RANGE_VALUE.validate_python(given["end"]) if given.get("end") else None,
        end_inclusive=backfill.end_inclusive,
        interval_type=backfill.interval_type,
        interval_units=backfill.interval_units,
        time_zone=backfill.time_zone or "UTC",
        order=backfill.run_order or RunOrder.OLDEST_FIRST,
        variables=backfill.variables,
    )


def spec_of(
    draft: DraftSpec, target_id: int, *, reprocess: Reprocess = Reprocess.ALL
) -> BackfillSpec:
    """The backfill a draft (or a re-planned definition) describes, to plan as a new one.
    Its variables are taken as they are: merged over the target's when it is planned, as
    at creation."""
    return BackfillSpec(
        target=target_id,
        name=draft.name,
        start=draft.start,
        end=draft.end,
        end_inclusive=draft.end_inclusive,
        interval_type=draft.interval_type,
        interval_units=draft.interval_units,
        time_zone=draft.time_zone,
        order=draft.order,
        reprocess=reprocess,
        variables=draft.variables,
    )


def _as_shown(value: date | datetime | None, zone: ZoneInfo) -> datetime | None:
    """A draft's start or end as an instant: a date is its local midnight, a naive datetime
    wall time in the zone."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        return datetime.combine(value, time(), zone)
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


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


def _field_error(pointer: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[{"pointer": pointer, "message": message}])


class BackfillService:
    def __init__(self, settings: Settings, repo: Repository, sources: SourcePools) -> None:
        self.settings = settings
        self.repo = repo
        self.sources = sources
        self.grants = GrantChecker(GrantRepository(repo.pool))
        self.resources = Resources(settings=settings, sources=sources, grants=self.grants)

    # ---------------------------------------------------------------- targets

    async def _check_sink(self, sink: SinkSpec, team_id: int) -> None:
        # The grant first: a destination outside it is refused before anything looks at it.
        grants = await self.grants.check(team_id, sink_needs(sink))
        kind = sink_type(sink.type)
        options = parse_options("sink", "/sink/options", kind.options_model, sink.options)
        with using(grants):
            await kind.validate(options, self.resources)

    async def _check_handler(self, handler: HandlerSpec, team_id: int) -> None:
        grants = await self.grants.check(team_id, handler_needs(handler))
        kind = handler_type(handler.type)
        options = parse_options("handler", "/handler/options", kind.options_model, handler.options)
        with using(grants):
            await kind.validate(options, self.resources)

    async def _check_target_data(self, target: Target) -> None:
        """A stored target's sink and handler, against its team's grants as they are now."""
        needs = []
        if target.sink is not None:
            needs += sink_needs(target.sink)
        if target.handler is not None:
            needs += handler_needs(target.handler)
        await self.grants.check(target.team_id, needs)

    async def _describe(
        self, source: str, table: str, sort_column: str | None, *, team_id: int
    ) -> TableShape:
        await self.grants.check(team_id, table_needs(source, [table]))
        if not self.sources.known(source):
            # Only a team granted this name gets here; the list of sources stays unsaid.
            raise _field_error("/source", f"source {source!r} is not configured")
        pool = await self.sources.get(source)
        async with pool.acquire() as conn:
            shape = await describe_table(conn, table, sort_column)
        # Once more by the name Postgres resolved, in case it differs from the one given.
        await self.grants.check(team_id, table_needs(source, [shape.qualified]))
        return shape

    async def create_target(self, spec: TargetSpec, *, team_id: int) -> Target:
        """NotGranted (403) for a source, table, destination or statement outside the team's
        grants, before anything is looked at. Conflict (409) if the name is taken; 422 if a
        table target's source is not configured, a table does not exist or has no key, its
        sort column is missing or nullable, or the sink or handler is unknown or
        misconfigured."""
        values: dict[str, Any] = spec.model_dump(mode="json")
        if isinstance(spec, TableTargetSpec):
            # Everything the target names, against the grants, before any of it is looked
            # at: a refusal then cannot tell a missing table from a forbidden one.
            await self.grants.check(
                team_id, table_needs(spec.source, spec.tables) + sink_needs(spec.sink)
            )
            for table in spec.tables:
                await self._describe(spec.source, table, spec.sort_column, team_id=team_id)
            await self._check_sink(spec.sink, team_id)
        else:
            assert isinstance(spec, DateRangeTargetSpec)
            await self._check_handler(spec.handler, team_id)
        return await self.repo.insert_target(values | {"team_id": team_id})

    async def list_targets(self, *, team_id: int, after: int | None, limit: int) -> Page[Target]:
        items = await self.repo.list_targets(team_id, after, limit + 1)
        more = len(items) > limit
        items = items[:limit]
        return Page(items, items[-1].id if more else None)

    async def get_target(self, target: int | str | UUID, *, team_id: int) -> Target:
        return await self.repo.get_target(target, team_id)

    async def update_target(self, target_id: int, patch: TargetPatch, *, team_id: int) -> Target:
        current = await self.repo.get_target(target_id, team_id)
        changes = patch.model_dump(mode="json", exclude_unset=True)
        if current.kind == TargetKind.TABLE:
            for field in ("handler", "variables", "interval_type", "interval_units"):
                if field in changes:
                    raise _field_error(f"/{field}", f"{field} does not apply to a table target")
            if patch.sink is not None:
                await self._check_sink(patch.sink, team_id)
            if "sort_column" in changes:
                for table in current.tables:
                    assert current.source is not None
                    await self._describe(current.source, table, patch.sort_column, team_id=team_id)
        else:
            for field in ("sink", "sort_column", "chunk_size"):
                if field in changes:
                    raise _field_error(
                        f"/{field}", f"{field} does not apply to a date_range target"
                    )
            if patch.handler is not None:
                await self._check_handler(patch.handler, team_id)
        return await self.repo.update_target(target_id, team_id, changes)

    async def delete_target(self, target_id: int, *, team_id: int) -> None:
        """Conflict (409) while it has an active backfill; its finished backfills go too."""
        await self.repo.delete_target(target_id, team_id)

    # -------------------------------------------------------------- backfills

    async def create_backfill(
        self,
        spec: BackfillSpec,
        *,
        team_id: int,
        command_id: UUID | None = None,
        created_by: int | None = None,
    ) -> Backfill:
        """Validates against the target, refuses an overlap with Conflict, and stores the
        backfill as `created` with its `command.create` and `backfill.created` messages in
        one transaction. The same command_id twice returns the first backfill. `created_by`
        is the acting API key."""
        try:
            backfill, created = await self.apply_create(
                spec,
                team_id=team_id,
                command_id=command_id or uuid4(),
                announce=True,
                created_by=created_by,
            )
        except OrchestratorError:
            metrics.command_handled("command.create", "refused", source="api")
            raise
        metrics.command_handled(
            "command.create", "applied" if created else "duplicate", source="api"
        )
        return backfill

    async def apply_create(
        self,
        spec: BackfillSpec,
        *,
        team_id: int,
        command_id: UUID,
        announce: bool,
        created_by: int | None = None,
    ) -> tuple[Backfill, bool]:
        """create_backfill, saying whether this call made the backfill (False: the command
        was applied before). `announce=False` is for a command that already arrived through
        the queue: no `command.create` needs to go out for it."""
        # Checked before validating, so a repeated command costs one query, not the source
        # introspection; the insert checks again inside its transaction for races.
        existing = await self.repo.backfill_by_command(command_id)
        if existing is not None:
            return existing, False
        try:
            target = await self.repo.get_target(spec.target, team_id)
        except NotFound:
            raise _field_error("/target", f"target {spec.target!r} not found") from None
        # The same checks for a command from the queue as for a request: the team it names
        # must hold grants for everything the target reaches (its table: _table_values).
        await self._check_target_data(target)
        values: dict[str, Any] = {
            "target_id": target.id,
            "team_id": target.team_id,
            "kind": target.kind.value,
            "name": spec.name,
            "command_id": command_id,
            "max_active_runs": spec.max_active_runs or target.max_active_runs,
            "max_attempts": spec.max_attempts or target.max_attempts,
            "max_runs_per_minute": spec.max_runs_per_minute,
            "max_rows_per_second": spec.max_rows_per_second,
            "priority": spec.priority,
            "created_by": created_by,
        }
        if target.kind == TargetKind.TABLE:
            values.update(await self._table_values(spec, target))
        else:
            values.update(self._range_values(spec, target))
        announce_create = _create_command(spec, target, command_id) if announce else None
        return await self.repo.insert_backfill(values, announce_create=announce_create)

    # ----------------------------------------------------------------- drafts

    async def create_draft(
        self,
        target_ref: int | str | UUID,
        draft: DraftSpec,
        *,
        team_id: int,
        created_by: int | None = None,
    ) -> Backfill:
        """Stores a date-range backfill that starts later (`start_draft`). What is given is
        checked now, so a draft that cannot start says so at once."""
        target = await self.repo.get_target(target_ref, team_id)
        if target.kind != TargetKind.DATE_RANGE:
            raise _field_error("/target", "drafts are date-range backfills; this is a table target")
        values: dict[str, Any] = {
            "target_id": target.id,
            "team_id": target.team_id,
            "kind": target.kind.value,
            "state": BackfillState.DRAFT.value,
            "command_id": uuid4(),
            "max_active_runs": target.max_active_runs,
            "max_attempts": target.max_attempts,
            "created_by": created_by,
            **self._draft_values(draft, target),
        }
        backfill, _ = await self.repo.insert_backfill(values, announce_create=None)
        return backfill

    async def update_draft(
        self, backfill_ref: int | UUID, changes: DraftSpec, *, team_id: int
    ) -> Backfill:
        """Changes the fields set in `changes`. The name may change at any time; the window,
        interval, zone and variables only while it is a draft (InvalidTransition after)."""
        current = await self.repo.get_backfill(backfill_ref, team_id)
        given = changes.model_fields_set
        if not given:
            return current
        if given == {"name"}:
            return await self.repo.update_draft(current.id, {"name": changes.name})
        if current.state != BackfillState.DRAFT:
            raise InvalidTransition(
                "backfill",
                current.state.value,
                "re-plan",
                valid_actions(current.state),
                action=True,
            )
        merged = draft_of(current).model_copy(update={f: getattr(changes, f) for f in given})
        target = await self.repo.get_target(current.target_id, team_id)
        return await self.repo.update_draft(current.id, self._draft_values(merged, target))

    async def start_draft(self, backfill_ref: int | UUID, *, team_id: int) -> Backfill:
        """Plans a draft like a new backfill (the same checks, the overlap check included)
        and hands it to the workers."""
        current = await self.repo.get_backfill(backfill_ref, team_id)
        if current.state != BackfillState.DRAFT:
            raise InvalidTransition(
                "backfill", current.state.value, "start", valid_actions(current.state), action=True
            )
        draft = draft_of(current)
        target = await self.repo.get_target(current.target_id, team_id)
        await self._check_target_data(target)
        spec = spec_of(draft, target.id)
        values = self._range_values(spec, target)
        assert current.command_id is not None
        return await self.repo.start_draft(
            current.id,
            values,
            announce_create=_create_command(spec, target, current.command_id),
        )

    async def update_backfill(
        self, backfill_ref: int | UUID, patch: BackfillPatch, *, team_id: int
    ) -> Backfill:
        """The name and max_active_runs change at any time. The window, interval, zone,
        order and variables change while no run has started: a draft keeps them; any other
        backfill is planned again (InvalidTransition once a run has started)."""
        current = await self.repo.get_backfill(backfill_ref, team_id)
        given = patch.model_fields_set
        planned = given & PLAN_FIELDS
        if planned and current.kind != TargetKind.DATE_RANGE:
            raise ValidationFailed(
                "only a date-range backfill has a window to change",
                errors=[
                    {"pointer": f"/{f}", "message": "not allowed for a table backfill"}
                    for f in sorted(planned)
                ],
            )
        result = current
        settings = {f: getattr(patch, f) for f in given & _SETTINGS_FIELDS}
        if settings:
            result = await self.repo.update_settings(current.id, settings)
        if not planned:
            return result
        changes = {f: getattr(patch, f) for f in planned}
        if current.state == BackfillState.DRAFT:
            return await self.update_draft(
                current.id, DraftSpec.model_validate(changes), team_id=team_id
            )
        if current.started_at is not None or current.state not in REPLANNABLE:
            raise InvalidTransition(
                "backfill",
                current.state.value,
                "re-plan",
                valid_actions(current.state),
                action=True,
            )
        draft = draft_of(result).model_copy(update=changes)
        target = await self.repo.get_target(current.target_id, team_id)
        spec = spec_of(draft, target.id, reprocess=current.reprocess)
        values = self._range_values(spec, target)
        assert current.command_id is not None
        return await self.repo.replan(
            current.id,
            values,
            announce_create=_create_command(spec, target, current.command_id),
        )

    def _draft_values(self, draft: DraftSpec, target: Target) -> dict[str, Any]:
        """The columns a draft keeps. With both ends known, the range is checked as a start
        would check it."""
        interval_type = draft.interval_type or target.interval_type
        interval_units = draft.interval_units or target.interval_units
        if draft.start is not None and draft.end is not None:
            plan = self.plan_for(
                draft.start,
                draft.end,
                interval_type,
                interval_units,
                draft.time_zone,
                draft.order.value,
                end_inclusive=draft.end_inclusive,
            )
            self._check_run_count(plan)
        zone = ZoneInfo(draft.time_zone)
        return {
            "name": draft.name,
            "range_start": _as_shown(draft.start, zone),
            "range_end": _as_shown(draft.end, zone),
            "end_is_date": draft.end is not None and not isinstance(draft.end, datetime),
            "end_inclusive": draft.end_inclusive,
            "range_input": {
                "start": draft.start.isoformat() if draft.start is not None else None,
                "end": draft.end.isoformat() if draft.end is not None else None,
            },
            "interval_type": draft.interval_type.value if draft.interval_type else None,
            "interval_units": draft.interval_units,
            "time_zone": draft.time_zone,
            "run_order": draft.order.value,
            "variables": draft.variables,
        }

    def _check_run_count(self, plan: WindowPlan) -> None:
        if plan.count == 0:
            raise _field_error("/end", "the range is empty: end must be after start")
        limit = self.settings.max_runs_per_backfill
        if plan.count > limit:
            raise _field_error(
                "/interval_type",
                f"the range makes {plan.count} runs, more than the limit of {limit}; "
                "use a larger interval or split the range",
            )

    async def dry_run(
        self, spec: BackfillSpec, *, team_id: int, after: int | None, limit: int
    ) -> DryRun:
        """Validates `spec` exactly as a create would and says what it would make: a page of
        its runs (`after` is the last seq of the previous page), the row estimate of a
        table, and the active backfill it would conflict with, if any. Writes nothing."""
        try:
            target = await self.repo.get_target(spec.target, team_id)
        except NotFound:
            raise _field_error("/target", f"target {spec.target!r} not found") from None
        from_seq = 0 if after is None else after + 1
        await self._check_target_data(target)
        if target.kind == TargetKind.TABLE:
            values = await self._table_values(spec, target)
            conflict = await self.repo.find_overlap(
                {"kind": "table", "target_id": target.id, **values}
            )
            rows_estimate, runs, more = await self._table_preview(target, values, from_seq, limit)
            runs_total = None
        else:
            values = self._range_values(spec, target)
            conflict = await self.repo.find_overlap(
                {"kind": "date_range", "target_id": target.id, **values}
            )
            plan = self.plan_for(
                spec.start,  # type: ignore[arg-type]  # _range_values checked both are set
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
                outcomes = await self.repo.earlier_outcomes(
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
        the same keyset query, walked without writing (a later page rescans the earlier
        ones' boundaries, through the key's index)."""
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
                keys = [[str(v) for v in b.values()] for b in bounds]
                if len(keys) < batch and (not keys or keys[-1] != upper):
                    keys.append(upper)  # the tail, as the planner makes it
                for key in keys:
                    if seq >= from_seq:
                        runs.append(PlannedRun(seq=seq, lower_key=cursor, upper_key=key))
                    cursor, seq = key, seq + 1
                if len(bounds) < batch:
                    break
        more = len(runs) > limit
        return estimate, runs[:limit], more

    async def _table_values(self, spec: BackfillSpec, target: Target) -> dict[str, Any]:
        wrong = [f for f in ("start", "end", "interval_type", "interval_units") if getattr(spec, f)]
        if spec.reprocess != Reprocess.ALL:
            wrong.append("reprocess")
        if wrong:
            raise ValidationFailed(
                "date-range fields do not apply to a table target",
                errors=[
                    {"pointer": f"/{f}", "message": "not allowed for a table target"} for f in wrong
                ],
            )
        if spec.table is None:
            if len(target.tables) != 1:
                raise _field_error(
                    "/table", f"the target has several tables; name one of {target.tables}"
                )
            table = target.tables[0]
        elif spec.table not in target.tables:
            raise _field_error(
                "/table", f"{spec.table} is not a table of this target {target.tables}"
            )
        else:
            table = spec.table
        assert target.source is not None
        try:
            shape = await self._describe(
                target.source, table, target.sort_column, team_id=target.team_id
            )
        except SourceError as exc:
            raise _field_error("/table", exc.detail) from None
        chunk_size = spec.chunk_size or target.chunk_size
        pool = await self.sources.get(target.source)
        async with pool.acquire() as conn:
            estimate = await estimate_rows(conn, table)
        limit = self.settings.max_runs_per_backfill
        if estimate is not None and estimate / chunk_size > limit:
            raise _field_error(
                "/chunk_size",
                f"about {estimate} rows in chunks of {chunk_size} make more than the limit of "
                f"{limit} runs; use a larger chunk_size",
            )
        return {
            "table_name": table,
            "sort_column": shape.sort_column,
            "key_columns": shape.key_columns,
            "key_types": shape.key_types,
            "chunk_size": chunk_size,
            "variables": {},
        }

    def _range_values(self, spec: BackfillSpec, target: Target) -> dict[str, Any]:
        if spec.table is not None or spec.chunk_size is not None:
            raise ValidationFailed(
                "table fields do not apply to a date_range target",
                errors=[
                    {"pointer": f"/{f}", "message": "not allowed for a date_range target"}
                    for f in ("table", "chunk_size")
                    if getattr(spec, f) is not None
                ],
            )
        missing = [f for f in ("start", "end") if getattr(spec, f) is None]
        if missing:
            raise ValidationFailed(
                "a date-range backfill needs start and end",
                errors=[{"pointer": f"/{f}", "message": "required"} for f in missing],
            )
        assert spec.start is not None
        assert spec.end is not None
        interval_type = spec.interval_type or target.interval_type
        interval_units = spec.interval_units or target.interval_units
        plan = self.plan_for(
            spec.start,
            spec.end,
            interval_type,
            interval_units,
            spec.time_zone,
            spec.order.value,
            end_inclusive=spec.end_inclusive,
        )
        self._check_run_count(plan)
        first, last = plan.window_at(0), plan.window_at(plan.count - 1)
        lo, hi = min(first.start, last.start), max(first.end, last.end)
        end_is_date = not isinstance(spec.end, datetime)
        return {
            "range_start": plan.start,
            # A date end is shown as that date's local midnight; the windows include its day.
            "range_end": (
                datetime.combine(spec.end, time(), ZoneInfo(spec.time_zone))
                if end_is_date
                else plan.bound - (_MICROSECOND if spec.end_inclusive else timedelta())
            ),
            "end_is_date": end_is_date,
            "end_inclusive": spec.end_inclusive and not end_is_date,
            "range_input": {"start": spec.start.isoformat(), "end": spec.end.isoformat()},
            "covered_from": lo,
            "covered_to": hi,
            "interval_type": interval_type.value,
            "interval_units": interval_units,
            "time_zone": spec.time_zone,
            "run_order": spec.order.value,
            "reprocess": spec.reprocess.value,
            "variables": target.variables | spec.variables,
            # With a reprocess filter the total is known only once planning has looked.
            "runs_total": plan.count if spec.reprocess == Reprocess.ALL else 0,
            "runs_planned": plan.count if spec.reprocess == Reprocess.ALL else None,
        }

    @staticmethod
    def plan_for(
        start: date | datetime,
        end: date | datetime,
        interval_type: IntervalType,
        interval_units: int,
        time_zone: str,
        order: str,
        *,
        end_inclusive: bool = False,
    ) -> WindowPlan:
        try:
            return window_plan(
                start,
                end,
                interval_type,
                interval_units,
                time_zone,
                RunOrder(order),
                end_inclusive=end_inclusive,
            )
        except ValueError as exc:
            raise _field_error("/end", str(exc)) from None

    async def list_backfills(
        self,
        *,
        team_id: int,
        target_id: int | None,
        states: list[BackfillState] | None,
        after: int | None,
        limit: int,
    ) -> Page[Backfill]:
        """Newest first (id descending); `after` is the last id of the previous page."""
        items = await self.repo.list_backfills(
            team_id, target_id, [s.value for s in states] if states else None, after, limit + 1
        )
        more = len(items) > limit
        items = items[:limit]
        return Page(items, items[-1].id if more else None)

    async def get_backfill(self, backfill_id: int | UUID, *, team_id: int | None) -> Backfill:
        """team_id None: any team (workers and internal callers only)."""
        return await self.repo.get_backfill(backfill_id, team_id)

    async def _act(
        self,
        backfill_id: int | UUID,
        action: str,
        team_id: int,
        by: int | None = None,
        *,
        repeat_ok: bool = True,
    ) -> Backfill:
        bid = await self.repo.backfill_id_of(backfill_id, team_id)
        command_id = uuid4()
        return await self.repo.change_state(
            bid,
            action,
            command_id=command_id,
            command={
                "type": f"command.{action}",
                "command_id": str(command_id),
                "backfill_id": bid,
            },
            by=by,
            repeat_ok=repeat_ok,
        )

    async def cancel_backfill(
        self,
        backfill_id: int | UUID,
        *,
        team_id: int,
        by: int | None = None,
        repeat_ok: bool = True,
    ) -> Backfill:
        """InvalidTransition (422) from completed, and from cancelled when `repeat_ok` is
        false; a cancelled backfill is otherwise returned as it is. `by` is the acting key."""
        return await self._counted(
            "command.cancel", self._act(backfill_id, "cancel", team_id, by, repeat_ok=repeat_ok)
        )

    async def retry_backfill(self, backfill_id: int | UUID, *, team_id: int) -> Backfill:
        """Failed runs back to pending (attempts from zero), a failed backfill back to
        running. 422 when none failed or the backfill is final."""
        bid = await self.repo.backfill_id_of(backfill_id, team_id)
        return await self.repo.retry_failed(bid)

    async def delete_backfill(
        self, backfill_id: int | UUID, *, team_id: int, by: int | None = None
    ) -> Backfill:
        """Cancels it if still active (running runs finish) and hides it from every API."""
        bid = await self.repo.backfill_id_of(backfill_id, team_id)
        return await self.repo.delete_backfill(bid, by=by)

    async def latest_backfill(self, target_ref: int | str | UUID, *, team_id: int) -> Backfill:
        """The target's newest backfill; NotFound if the target has none (or is not the
        team's)."""
        target = await self.repo.get_target(target_ref, team_id)
        return await self.repo.latest_backfill(target.id, team_id)

    async def offset_page(
        self,
        *,
        team_id: int,
        target_id: int | None,
        kind: TargetKind | None,
        offset: int,
        limit: int,
    ) -> tuple[list[Backfill], int]:
        """Newest first, by offset (for APIs that page that way), with the total count."""
        return await self.repo.offset_page(
            team_id, target_id, kind.value if kind else None, offset, limit
        )

    async def all_backfills(
        self,
        *,
        team_id: int,
        target_id: int | None,
        states: list[BackfillState] | None,
        cap: int = 1000,
    ) -> list[Backfill]:
        """Newest first, at most `cap`: for the APIs that answer with one unpaged list."""
        out: list[Backfill] = []
        after: int | None = None
        while len(out) < cap:
            page = await self.list_backfills(
                team_id=team_id,
                target_id=target_id,
                states=states,
                after=after,
                limit=min(500, cap - len(out)),
            )
            out.extend(page.items)
            if page.next_after is None:
                break
            after = page.next_after
        return out

    async def pause_backfill(self, backfill_id: int | UUID, *, team_id: int) -> Backfill:
        """A paused backfill is returned as it is."""
        return await self._counted("command.pause", self._act(backfill_id, "pause", team_id))

    async def resume_backfill(self, backfill_id: int | UUID, *, team_id: int) -> Backfill:
        """A backfill that is created, scheduled or running is returned as it is."""
        return await self._counted("command.resume", self._act(backfill_id, "resume", team_id))

    async def apply_command(
        self, action: str, backfill_id: int | UUID, command_id: UUID, *, team_id: int | None
    ) -> Backfill:
        """A cancel/pause/resume that arrived through the queue; recorded as applied in the
        same transaction, so the same command again changes nothing."""
        bid = await self.repo.backfill_id_of(backfill_id, team_id)
        return await self.repo.change_state(bid, action, command_id=command_id)

    async def list_runs(
        self,
        backfill_id: int | UUID,
        *,
        team_id: int,
        states: list[RunState] | None,
        after: int | None,
        limit: int,
    ) -> Page[TransferRun]:
        """In planning order (seq ascending); `after` is the last seq of the previous page."""
        bid = await self.repo.backfill_id_of(backfill_id, team_id)  # 404, not an empty page
        items = await self.repo.list_runs(
            bid, [s.value for s in states] if states else None, after, limit + 1
        )
        more = len(items) > limit
        items = items[:limit]
        return Page(items, items[-1].seq if more else None)

    async def overview(self) -> dict[str, Any]:
        """Backfills by state, runs by state, oldest pending run, workers seen (alive, stale or
        stopped), progress of the active backfills and the system's throughput."""
        # Three missed heartbeats: one late beat under load is not yet a dead worker.
        body = await self.repo.overview(stale_after_seconds=3 * self.settings.heartbeat_seconds)
        body.update(await ProgressStore(self.repo.pool).overview())
        return body

    async def progress(self, backfills: list[Backfill]) -> dict[int, Progress]:
        """Each backfill's progress, by id (one query for all of them)."""
        return await ProgressStore(self.repo.pool).progress(backfills)

    async def _counted(self, command_type: str, acting: Awaitable[Backfill]) -> Backfill:
        """An API command, counted in backfill_commands_total as applied or refused."""
        try:
            backfill = await acting
        except OrchestratorError:
            metrics.command_handled(command_type, "refused", source="api")
            raise
        metrics.command_handled(command_type, "applied", source="api")
        return backfill

    async def active_backfill_progress(self) -> list[dict[str, Any]]:
        """The counters of the active backfills, for the per-backfill metrics."""
        return await self.repo.active_backfill_progress(metrics.ACTIVE_BACKFILLS_SHOWN)
