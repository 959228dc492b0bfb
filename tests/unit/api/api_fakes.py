"""In-memory stand-ins for the service and the probes, for HTTP-layer tests.

The fake keeps just enough behaviour (ids, lookups, paging, state checks) for the routes to be
exercised end to end; the real rules are tested against the real service elsewhere."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient

from orchestrator.access import AccessService
from orchestrator.domain.keys import Principal, Scope
from orchestrator.domain.models import (
    Backfill,
    ErrorEntry,
    IntervalType,
    RunOrder,
    Target,
    TargetKind,
    TransferRun,
)
from orchestrator.domain.progress import Activity, Progress, progress_of
from orchestrator.domain.specs import BackfillSpec, TableTargetSpec, TargetPatch, TargetSpec
from orchestrator.domain.states import (
    BackfillState,
    RunState,
    action_holds,
    check_backfill_transition,
    resume_state,
)
from orchestrator.errors import Conflict, NotFound, Unauthorized, ValidationFailed
from orchestrator.settings import Settings
from orchestrator.usecases import UseCases
from orchestrator.usecases.paging import Page

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

T = TypeVar("T", Target, Backfill, TransferRun)


def _page(items: list[T], key: Any, after: int | None, limit: int) -> Page[T]:
    rest = [item for item in items if after is None or key(item, after)]
    chosen = rest[:limit]
    more = len(rest) > limit
    return Page(items=chosen, next_after=(chosen[-1].id if more else None))


class FakeService:
    def __init__(self) -> None:  # the real use cases need a repository; this keeps dicts
        self.targets: dict[int, Target] = {}
        self.backfills: dict[int, Backfill] = {}
        self.runs: dict[int, list[TransferRun]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.request_ids: list[str | None] = []
        self.overview_data: dict[str, Any] = {
            "backfills": {"running": 1},
            "runs": {"pending": 3},
            "oldest_pending_run": NOW,
            "workers": [
                {
                    "id": "w-1",
                    "roles": ["planner", "executor"],
                    "last_seen_at": NOW,
                    "stopped_at": None,
                }
            ],
        }
        self.active_progress: list[dict[str, Any]] = []

    def _record(self, name: str, **kwargs: Any) -> None:
        self.calls.append((name, kwargs))
        self.request_ids.append(structlog.contextvars.get_contextvars().get("request_id"))

    # ------------------------------------------------------------------ targets

    async def create_target(self, spec: TargetSpec, *, team_id: int) -> Target:
        self._record("create_target", spec=spec)
        if any(t.name == spec.name for t in self.targets.values()):
            raise Conflict(f"a target named {spec.name!r} exists")
        common: dict[str, Any] = {
            "id": len(self.targets) + 1,
            "uuid": uuid4(),
            "name": spec.name,
            "max_active_runs": spec.max_active_runs,
            "max_attempts": spec.max_attempts,
            "created_at": NOW,
            "updated_at": NOW,
        }
        if isinstance(spec, TableTargetSpec):
            target = Target(
                kind=TargetKind.TABLE,
                source=spec.source,
                tables=spec.tables,
                sort_column=spec.sort_column,
                sink=spec.sink,
                chunk_size=spec.chunk_size,
                **common,
            )
        else:
            target = Target(
                kind=TargetKind.DATE_RANGE,
                handler=spec.handler,
                variables=spec.variables,
                interval_type=spec.interval_type,
                interval_units=spec.interval_units,
                **common,
            )
        self.targets[target.id] = target
        return target

    async def list_targets(self, *, team_id: int, after: int | None, limit: int) -> Page[Target]:
        self._record("list_targets", after=after, limit=limit)
        ordered = sorted(self.targets.values(), key=lambda t: t.id)
        return _page(ordered, lambda t, a: t.id > a, after, limit)

    async def get_target(self, target: int | str, *, team_id: int) -> Target:
        self._record("get_target", target=target)
        return self._target(target)

    def _target(self, target: int | str) -> Target:
        for candidate in self.targets.values():
            if candidate.id == target or candidate.name == target:
                return candidate
        raise NotFound(f"target {target!r} not found")

    async def update_target(self, target_id: int, patch: TargetPatch, *, team_id: int) -> Target:
        self._record("update_target", target_id=target_id, patch=patch)
        current = self._target(target_id)
        updated = current.model_copy(
            update={**patch.model_dump(exclude_unset=True), "updated_at": NOW + timedelta(1)}
        )
        self.targets[target_id] = updated
        return updated

    async def delete_target(self, target_id: int, *, team_id: int) -> None:
        self._record("delete_target", target_id=target_id)
        self._target(target_id)
        del self.targets[target_id]

    # ---------------------------------------------------------------- backfills

    async def create_backfill(
        self,
        spec: BackfillSpec,
        *,
        team_id: int,
        command_id: UUID | None = None,
        created_by: int | None = None,
    ) -> Backfill:
        self._record("create_backfill", spec=spec, command_id=command_id)
        try:
            target = self._target(spec.target)
        except NotFound:
            raise ValidationFailed(
                "target not found", errors=[{"pointer": "/target", "message": "not found"}]
            ) from None
        return self.add_backfill(target_id=target.id, kind=target.kind, name=spec.name)

    def add_backfill(self, **fields: Any) -> Backfill:
        values: dict[str, Any] = {
            "id": len(self.backfills) + 1,
            "uuid": uuid4(),
            "target_id": 1,
            "kind": TargetKind.DATE_RANGE,
            "state": BackfillState.CREATED,
            "range_start": NOW - timedelta(days=30),
            "range_end": NOW,
            "interval_type": IntervalType.DAY,
            "interval_units": 1,
            "time_zone": "Europe/Berlin",
            "run_order": RunOrder.OLDEST_FIRST,
            "max_active_runs": 4,
            "max_attempts": 3,
            "created_at": NOW,
            "updated_at": NOW,
            **fields,
        }
        backfill = Backfill(**values)
        self.backfills[backfill.id] = backfill
        return backfill

    def add_runs(self, backfill_id: int, states: Iterable[RunState]) -> list[TransferRun]:
        runs = [
            TransferRun(
                id=backfill_id * 1000 + seq,
                backfill_id=backfill_id,
                seq=seq,
                state=state,
                window_start=NOW + timedelta(days=seq),
                window_end=NOW + timedelta(days=seq + 1),
                lease_token=uuid4(),
                lease_expires_at=NOW,
                created_at=NOW,
                updated_at=NOW,
            )
            for seq, state in enumerate(states, start=1)
        ]
        self.runs.setdefault(backfill_id, []).extend(runs)
        return runs

    def failed_entry(self) -> ErrorEntry:
        return ErrorEntry(run_id=7, window_start=NOW, window_end=NOW, attempt=3, error="boom")

    async def list_backfills(
        self,
        *,
        team_id: int,
        target_id: int | None,
        states: list[BackfillState] | None,
        after: int | None,
        limit: int,
    ) -> Page[Backfill]:
        self._record("list_backfills", target_id=target_id, states=states, after=after, limit=limit)
        chosen = [
            b
            for b in sorted(self.backfills.values(), key=lambda b: -b.id)
            if (target_id is None or b.target_id == target_id)
            and (states is None or b.state in states)
        ]
        return _page(chosen, lambda b, a: b.id < a, after, limit)

    async def get_backfill(self, backfill_id: int | UUID, *, team_id: int | None) -> Backfill:
        self._record("get_backfill", backfill_id=backfill_id)
        return self._backfill(backfill_id)

    def _backfill(self, backfill_id: int | UUID) -> Backfill:
        for backfill in self.backfills.values():
            if backfill_id in (backfill.id, backfill.uuid):
                return backfill
        raise NotFound(f"backfill {backfill_id} not found")

    def _move(self, backfill_id: int | UUID, to: BackfillState, **stamps: Any) -> Backfill:
        current = self._backfill(backfill_id)
        check_backfill_transition(current.state, to)
        moved = current.model_copy(update={"state": to, **stamps})
        self.backfills[moved.id] = moved
        return moved

    def _holds(self, backfill_id: int | UUID, action: str) -> Backfill | None:
        # The domain's rule, as the repository applies it: already there, nothing changes.
        current = self._backfill(backfill_id)
        return current if action_holds(current.state, action) else None

    async def cancel_backfill(
        self,
        backfill_id: int | UUID,
        *,
        team_id: int,
        by: int | None = None,
        repeat_ok: bool = True,
    ) -> Backfill:
        self._record("cancel_backfill", backfill_id=backfill_id)
        if repeat_ok and (same := self._holds(backfill_id, "cancel")):
            return same
        return self._move(backfill_id, BackfillState.CANCELLED, cancelled_at=NOW)

    async def pause_backfill(self, backfill_id: int | UUID, *, team_id: int) -> Backfill:
        self._record("pause_backfill", backfill_id=backfill_id)
        if same := self._holds(backfill_id, "pause"):
            return same
        return self._move(backfill_id, BackfillState.PAUSED, paused_at=NOW)

    async def resume_backfill(self, backfill_id: int | UUID, *, team_id: int) -> Backfill:
        self._record("resume_backfill", backfill_id=backfill_id)
        if same := self._holds(backfill_id, "resume"):
            return same
        current = self._backfill(backfill_id)
        return self._move(backfill_id, resume_state(current.started_at is not None), paused_at=None)

    async def list_runs(
        self,
        backfill_id: int | UUID,
        *,
        team_id: int,
        states: list[RunState] | None,
        after: int | None,
        limit: int,
    ) -> Page[TransferRun]:
        self._record("list_runs", backfill_id=backfill_id, states=states, after=after, limit=limit)
        backfill = self._backfill(backfill_id)
        chosen = [r for r in self.runs.get(backfill.id, []) if states is None or r.state in states]
        page = _page(chosen, lambda r, a: r.seq > a, after, limit)
        # Runs page by seq, not id.
        next_after = page.items[-1].seq if page.next_after is not None else None
        return Page(items=page.items, next_after=next_after)

    async def overview(self) -> dict[str, Any]:
        self._record("overview")
        return dict(self.overview_data)

    async def active_backfill_progress(self) -> list[dict[str, Any]]:
        return [dict(b) for b in self.active_progress]

    async def progress(self, backfills: list[Backfill]) -> dict[int, Progress]:
        # No runs here, so no activity: the fraction comes from the counters alone.
        return {b.id: progress_of(b, Activity(at=NOW)) for b in backfills}


class _Delegate:
    """One use-case module over FakeService: each method is looked up when called, so a test
    that replaces a FakeService method replaces it for the routes too."""

    def __init__(self, fake: FakeService, names: dict[str, str]) -> None:
        self._fake = fake
        self._names = names

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fake, self._names[name])


def usecases_of(fake: FakeService) -> UseCases:
    """The use cases the app takes, answered by the fake under its old method names."""
    return UseCases(
        targets=_Delegate(
            fake,
            {
                "create": "create_target",
                "page": "list_targets",
                "get": "get_target",
                "update": "update_target",
                "delete": "delete_target",
            },
        ),  # type: ignore[arg-type]
        backfills=_Delegate(
            fake,
            {
                "create": "create_backfill",
                "page": "list_backfills",
                "get": "get_backfill",
                "cancel": "cancel_backfill",
                "pause": "pause_backfill",
                "resume": "resume_backfill",
            },
        ),  # type: ignore[arg-type]
        drafts=_Delegate(fake, {}),  # type: ignore[arg-type]
        runs=_Delegate(fake, {"page": "list_runs"}),  # type: ignore[arg-type]
        preview=_Delegate(fake, {}),  # type: ignore[arg-type]
        commands=_Delegate(fake, {}),  # type: ignore[arg-type]
        ops=_Delegate(
            fake,
            {
                "overview": "overview",
                "progress": "progress",
                "active_backfill_progress": "active_backfill_progress",
            },
        ),  # type: ignore[arg-type]
        grants=None,  # type: ignore[arg-type]
        resources=None,  # type: ignore[arg-type]
    )


class FakeProbes:
    def __init__(self) -> None:
        self.checks: dict[str, bool] = {"postgres": True, "rabbitmq": True, "consumers": True}
        self.depths: dict[str, int] = {"backfills.commands": 0, "backfills.runs": 12}
        self.readiness_error: Exception | None = None
        self.depths_error: Exception | None = None
        self.consumers = 1

    async def readiness(self) -> dict[str, bool]:
        if self.readiness_error is not None:
            raise self.readiness_error
        return dict(self.checks)

    async def queue_depths(self) -> dict[str, int]:
        if self.depths_error is not None:
            raise self.depths_error
        return dict(self.depths)

    async def queue_stats(self) -> list[tuple[str, str, int, int]]:
        if self.depths_error is not None:
            raise self.depths_error
        return [
            (name.rsplit(".", 1)[-1], name, depth, self.consumers)
            for name, depth in self.depths.items()
        ]


Client = TestClient[web.Request, web.Application]

TABLE_TARGET: dict[str, Any] = {
    "kind": "table",
    "name": "orders-to-search",
    "tables": ["orders"],
    "sort_column": "updated_at",
    "sink": {"type": "http", "options": {"url": "https://hooks.example/orders"}},
}
DATE_RANGE_TARGET: dict[str, Any] = {
    "kind": "date_range",
    "name": "hourly-aggregates",
    "handler": {"type": "sql", "options": {"statement": "select 1"}},
    "variables": {"region": "eu"},
    "interval_type": "hour",
}


class FakeAccess(AccessService):
    """Accepts one token with every scope for team 1; the real checks are tested against
    Postgres in tests/integration/test_auth.py."""

    TOKEN = "bfk_unit-test-token-not-secret-000000000000000"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def authenticate(self, token: str | None) -> Principal:
        if token != self.TOKEN:
            raise Unauthorized("invalid API key")
        return Principal(key_id=1, team_id=1, prefix=self.TOKEN[:12], scopes=frozenset(Scope))

    async def count_request(self, principal: Principal) -> tuple[int, int]:
        return 0, 0
