"""Use cases: what the API and the command consumer ask of the system.

Each method is one transaction (or a read) through the repository; rules live in the domain
(orchestrator.domain), SQL in orchestrator.storage. The API and workers call this and hold no
rules of their own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, Generic, TypeVar
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from orchestrator.domain.models import (
    Backfill,
    HandlerSpec,
    IntervalType,
    SinkSpec,
    Target,
    TargetKind,
    TransferRun,
)
from orchestrator.domain.specs import (
    BackfillSpec,
    DateRangeTargetSpec,
    TableTargetSpec,
    TargetPatch,
    TargetSpec,
)
from orchestrator.domain.states import BackfillState, RunState
from orchestrator.domain.windows import WindowPlan, window_plan
from orchestrator.errors import NotFound, SourceError, ValidationFailed
from orchestrator.handlers.registry import handler_type
from orchestrator.settings import Settings
from orchestrator.sinks.base import Resources
from orchestrator.sinks.registry import parse_options, sink_type
from orchestrator.sources.pools import SourcePools
from orchestrator.sources.tables import TableShape, describe_table, estimate_rows
from orchestrator.storage.repository import Repository

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """A keyset page: pass `next_after` back as `after` to get the next one."""

    items: list[T]
    next_after: int | None


def _field_error(pointer: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[{"pointer": pointer, "message": message}])


class BackfillService:
    def __init__(self, settings: Settings, repo: Repository, sources: SourcePools) -> None:
        self.settings = settings
        self.repo = repo
        self.sources = sources
        self.resources = Resources(settings=settings, sources=sources)

    # ---------------------------------------------------------------- targets

    async def _check_sink(self, sink: SinkSpec) -> None:
        kind = sink_type(sink.type)
        options = parse_options("sink", "/sink/options", kind.options_model, sink.options)
        await kind.validate(options, self.resources)

    async def _check_handler(self, handler: HandlerSpec) -> None:
        kind = handler_type(handler.type)
        options = parse_options("handler", "/handler/options", kind.options_model, handler.options)
        await kind.validate(options, self.resources)

    async def _describe(self, source: str, table: str, sort_column: str | None) -> TableShape:
        if not self.sources.known(source):
            raise _field_error(
                "/source",
                f"unknown source {source!r}; configured: {', '.join(self.settings.source_names())}",
            )
        pool = await self.sources.get(source)
        async with pool.acquire() as conn:
            return await describe_table(conn, table, sort_column)

    async def create_target(self, spec: TargetSpec, *, team_id: int) -> Target:
        """Conflict (409) if the name is taken; 422 if a table target's source is unknown, a
        table does not exist or has no key, its sort column is missing or nullable, or the
        sink or handler is unknown or misconfigured."""
        values: dict[str, Any] = spec.model_dump(mode="json")
        if isinstance(spec, TableTargetSpec):
            for table in spec.tables:
                await self._describe(spec.source, table, spec.sort_column)
            await self._check_sink(spec.sink)
        else:
            assert isinstance(spec, DateRangeTargetSpec)
            await self._check_handler(spec.handler)
        return await self.repo.insert_target(values | {"team_id": team_id})

    async def list_targets(self, *, team_id: int, after: int | None, limit: int) -> Page[Target]:
        items = await self.repo.list_targets(team_id, after, limit + 1)
        more = len(items) > limit
        items = items[:limit]
        return Page(items, items[-1].id if more else None)

    async def get_target(self, target: int | str, *, team_id: int) -> Target:
        return await self.repo.get_target(target, team_id)

    async def update_target(self, target_id: int, patch: TargetPatch, *, team_id: int) -> Target:
        current = await self.repo.get_target(target_id, team_id)
        changes = patch.model_dump(mode="json", exclude_unset=True)
        if current.kind == TargetKind.TABLE:
            for field in ("handler", "variables", "interval_type", "interval_units"):
                if field in changes:
                    raise _field_error(f"/{field}", f"{field} does not apply to a table target")
            if patch.sink is not None:
                await self._check_sink(patch.sink)
            if "sort_column" in changes:
                for table in current.tables:
                    assert current.source is not None
                    await self._describe(current.source, table, patch.sort_column)
        else:
            for field in ("sink", "sort_column", "chunk_size"):
                if field in changes:
                    raise _field_error(
                        f"/{field}", f"{field} does not apply to a date_range target"
                    )
            if patch.handler is not None:
                await self._check_handler(patch.handler)
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
    ) -> Backfill:
        """Validates against the target, refuses an overlap with Conflict, and stores the
        backfill as `created` with its `command.create` and `backfill.created` messages in
        one transaction. The same command_id twice returns the first backfill."""
        backfill, _ = await self.apply_create(
            spec, team_id=team_id, command_id=command_id or uuid4(), announce=True
        )
        return backfill

    async def apply_create(
        self, spec: BackfillSpec, *, team_id: int, command_id: UUID, announce: bool
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
        values: dict[str, Any] = {
            "target_id": target.id,
            "team_id": target.team_id,
            "kind": target.kind.value,
            "name": spec.name,
            "command_id": command_id,
            "max_active_runs": spec.max_active_runs or target.max_active_runs,
            "max_attempts": spec.max_attempts or target.max_attempts,
        }
        if target.kind == TargetKind.TABLE:
            values.update(await self._table_values(spec, target))
        else:
            values.update(self._range_values(spec, target))
        announce_create = (
            {
                "type": "command.create",
                "command_id": str(command_id),
                "team_id": target.team_id,
                "backfill": spec.model_dump(mode="json", exclude_defaults=True)
                | {"target": target.id},
            }
            if announce
            else None
        )
        return await self.repo.insert_backfill(values, announce_create=announce_create)

    async def _table_values(self, spec: BackfillSpec, target: Target) -> dict[str, Any]:
        wrong = [f for f in ("start", "end", "interval_type", "interval_units") if getattr(spec, f)]
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
            shape = await self._describe(target.source, table, target.sort_column)
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
            spec.start, spec.end, interval_type, interval_units, spec.time_zone, spec.order.value
        )
        if plan.count == 0:
            raise _field_error("/end", "the range is empty: end must be after start")
        limit = self.settings.max_runs_per_backfill
        if plan.count > limit:
            raise _field_error(
                "/interval_type",
                f"the range makes {plan.count} runs, more than the limit of {limit}; "
                "use a larger interval or split the range",
            )
        first, last = plan.window_at(0), plan.window_at(plan.count - 1)
        lo, hi = min(first.start, last.start), max(first.end, last.end)
        end_is_date = not isinstance(spec.end, datetime)
        return {
            "range_start": plan.start,
            # A date end is shown as that date's local midnight; the windows include its day.
            "range_end": (
                datetime.combine(spec.end, time(), ZoneInfo(spec.time_zone))
                if end_is_date
                else plan.bound
            ),
            "end_is_date": end_is_date,
            "range_input": {"start": spec.start.isoformat(), "end": spec.end.isoformat()},
            "covered_from": lo,
            "covered_to": hi,
            "interval_type": interval_type.value,
            "interval_units": interval_units,
            "time_zone": spec.time_zone,
            "run_order": spec.order.value,
            "variables": target.variables | spec.variables,
            "runs_total": plan.count,
        }

    @staticmethod
    def plan_for(
        start: date | datetime,
        end: date | datetime,
        interval_type: IntervalType,
        interval_units: int,
        time_zone: str,
        order: str,
    ) -> WindowPlan:
        from orchestrator.domain.models import RunOrder

        try:
            return window_plan(
                start, end, interval_type, interval_units, time_zone, RunOrder(order)
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

    async def _act(self, backfill_id: int | UUID, action: str, team_id: int) -> Backfill:
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
        )

    async def cancel_backfill(self, backfill_id: int | UUID, *, team_id: int) -> Backfill:
        """InvalidTransition (422) from completed or cancelled."""
        return await self._act(backfill_id, "cancel", team_id)

    async def pause_backfill(self, backfill_id: int | UUID, *, team_id: int) -> Backfill:
        return await self._act(backfill_id, "pause", team_id)

    async def resume_backfill(self, backfill_id: int | UUID, *, team_id: int) -> Backfill:
        return await self._act(backfill_id, "resume", team_id)

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
        """Backfills by state, runs by state, oldest pending run, workers seen."""
        return await self.repo.overview()
