"""What the use cases need of storage, as protocols: the seam between the rules and Postgres.

The use cases import these, never `orchestrator.storage` (the `usecases-through-ports`
contract in pyproject.toml says so), so the stores can change shape without the use cases
noticing, and a test can hand the use cases anything that keeps these promises. The process
wiring (orchestrator.context) hands them the real `orchestrator.storage.stores.Storage`,
which mypy checks against `StoragePort` there.

Each protocol lists only what some use case calls; the stores offer more (the workers' side:
claims, checkpoints, sweeps)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from orchestrator.domain.models import Backfill, Target, TransferRun
from orchestrator.domain.overview import Overview
from orchestrator.domain.progress import Progress
from orchestrator.grants.checks import GrantStore


class TargetsPort(Protocol):
    async def insert(self, values: dict[str, Any]) -> Target: ...

    async def get(self, target: int | str | UUID, team_id: int | None) -> Target: ...

    async def page(self, team_id: int, after: int | None, limit: int) -> list[Target]: ...

    async def update(self, target_id: int, team_id: int, changes: dict[str, Any]) -> Target: ...

    async def delete(self, target_id: int, team_id: int) -> None: ...


class BackfillsPort(Protocol):
    async def insert(
        self, values: dict[str, Any], *, announce_create: dict[str, Any] | None
    ) -> tuple[Backfill, bool]: ...

    async def find_overlap(self, values: dict[str, Any]) -> int | None: ...

    async def start_draft(
        self, backfill_id: int, values: dict[str, Any], *, announce_create: dict[str, Any]
    ) -> Backfill: ...

    async def replan(
        self, backfill_id: int, values: dict[str, Any], *, announce_create: dict[str, Any]
    ) -> Backfill: ...

    async def update_settings(self, backfill_id: int, changes: dict[str, Any]) -> Backfill: ...

    async def update_draft(self, backfill_id: int, changes: dict[str, Any]) -> Backfill: ...

    async def delete(self, backfill_id: int, *, by: int | None) -> Backfill: ...

    async def get(self, backfill_id: int | UUID, team_id: int | None) -> Backfill: ...

    async def id_of(self, backfill_id: int | UUID, team_id: int | None) -> int: ...

    async def by_command(self, command_id: UUID) -> Backfill | None: ...

    async def page(
        self,
        team_id: int,
        target_id: int | None,
        states: list[str] | None,
        after: int | None,
        limit: int,
    ) -> list[Backfill]: ...

    async def offset_page(
        self, team_id: int, target_id: int | None, kind: str | None, offset: int, limit: int
    ) -> tuple[list[Backfill], int]: ...

    async def change_state(
        self,
        backfill_id: int,
        action: str,
        *,
        command_id: UUID | None = None,
        command: dict[str, Any] | None = None,
        by: int | None = None,
        repeat_ok: bool = True,
    ) -> Backfill: ...

    async def retry_failed(self, backfill_id: int) -> Backfill: ...


class PlanningPort(Protocol):
    async def earlier_outcomes(
        self, target_id: int, backfill_id: int, starts: list[datetime]
    ) -> dict[tuple[datetime, datetime], str]: ...


class RunsPort(Protocol):
    async def page(
        self, backfill_id: int, states: list[str] | None, after: int | None, limit: int
    ) -> list[TransferRun]: ...


class CommandsPort(Protocol):
    async def applied(self, command_id: UUID) -> bool: ...


class MaintenancePort(Protocol):
    async def overview(self, stale_after_seconds: float = 30.0) -> Overview: ...

    async def active_backfill_progress(self, limit: int) -> list[dict[str, Any]]: ...


class ProgressPort(Protocol):
    async def progress(self, backfills: Sequence[Backfill]) -> dict[int, Progress]: ...

    async def overview(self, limit: int = 100) -> dict[str, Any]: ...


class StoragePort(Protocol):
    """The stores, one per aggregate, as the use cases see them. Read-only attributes, so
    the frozen `Storage` dataclass (and its store types, which offer more) satisfy them."""

    @property
    def targets(self) -> TargetsPort: ...

    @property
    def backfills(self) -> BackfillsPort: ...

    @property
    def planning(self) -> PlanningPort: ...

    @property
    def runs(self) -> RunsPort: ...

    @property
    def commands(self) -> CommandsPort: ...

    @property
    def maintenance(self) -> MaintenancePort: ...

    @property
    def progress(self) -> ProgressPort: ...

    @property
    def grants(self) -> GrantStore: ...
