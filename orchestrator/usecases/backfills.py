"""Backfills: created, listed, steered (cancel, pause, resume, retry), changed and deleted.
Every change is one transaction with the messages that announce it (the outbox)."""

from __future__ import annotations

from collections.abc import Awaitable
from uuid import UUID, uuid4

from orchestrator import metrics
from orchestrator.domain.commands import create_command, state_command
from orchestrator.domain.definitions import draft_of, spec_of
from orchestrator.domain.models import Backfill, TargetKind
from orchestrator.domain.specs import PLAN_FIELDS, BackfillPatch, BackfillSpec, DraftSpec
from orchestrator.domain.states import BACKFILL_REPLANNABLE, BackfillState, valid_actions
from orchestrator.domain.values import SETTINGS_FIELDS, range_values
from orchestrator.errors import InvalidTransition, OrchestratorError, ValidationFailed
from orchestrator.settings import Settings
from orchestrator.usecases.commands import Commands
from orchestrator.usecases.drafts import Drafts
from orchestrator.usecases.paging import Page, page_of
from orchestrator.usecases.ports import StoragePort


class Backfills:
    def __init__(
        self, settings: Settings, storage: StoragePort, commands: Commands, drafts: Drafts
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.commands = commands
        self.drafts = drafts

    async def create(
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
            backfill, created = await self.commands.apply_create(
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

    async def page(
        self,
        *,
        team_id: int,
        target_id: int | None,
        states: list[BackfillState] | None,
        after: int | None,
        limit: int,
    ) -> Page[Backfill]:
        """Newest first (id descending); `after` is the last id of the previous page."""
        items = await self.storage.backfills.page(
            team_id, target_id, [s.value for s in states] if states else None, after, limit + 1
        )
        return page_of(items, limit, lambda b: b.id)

    async def unpaged(
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
            page = await self.page(
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
        return await self.storage.backfills.offset_page(
            team_id, target_id, kind.value if kind else None, offset, limit
        )

    async def get(self, backfill_id: int | UUID, *, team_id: int | None) -> Backfill:
        """team_id None: any team (workers and internal callers only)."""
        return await self.storage.backfills.get(backfill_id, team_id)

    async def update(
        self, backfill_ref: int | UUID, patch: BackfillPatch, *, team_id: int
    ) -> Backfill:
        """The name and max_active_runs change at any time. The window, interval, zone,
        order and variables change while no run has started: a draft keeps them; any other
        backfill is planned again (InvalidTransition once a run has started)."""
        current = await self.storage.backfills.get(backfill_ref, team_id)
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
        settings = {f: getattr(patch, f) for f in given & SETTINGS_FIELDS}
        if settings:
            result = await self.storage.backfills.update_settings(current.id, settings)
        if not planned:
            return result
        changes = {f: getattr(patch, f) for f in planned}
        if current.state == BackfillState.DRAFT:
            return await self.drafts.update(
                current.id, DraftSpec.model_validate(changes), team_id=team_id
            )
        if current.started_at is not None or current.state not in BACKFILL_REPLANNABLE:
            raise InvalidTransition(
                "backfill",
                current.state.value,
                "re-plan",
                valid_actions(current.state),
                action=True,
            )
        draft = draft_of(result).model_copy(update=changes)
        target = await self.storage.targets.get(current.target_id, team_id)
        spec = spec_of(draft, target.id, reprocess=current.reprocess)
        values = range_values(spec, target, max_runs=self.settings.max_runs_per_backfill)
        assert current.command_id is not None
        return await self.storage.backfills.replan(
            current.id, values, announce_create=create_command(spec, target, current.command_id)
        )

    async def cancel(
        self,
        backfill_id: int | UUID,
        *,
        team_id: int,
        by: int | None = None,
        repeat_ok: bool = True,
    ) -> Backfill:
        """InvalidTransition (422) from completed, and from cancelled when `repeat_ok` is
        false; a cancelled backfill is otherwise returned as it is. `by` is the acting key."""
        return await _counted(
            "command.cancel", self._act(backfill_id, "cancel", team_id, by, repeat_ok=repeat_ok)
        )

    async def pause(self, backfill_id: int | UUID, *, team_id: int) -> Backfill:
        """A paused backfill is returned as it is."""
        return await _counted("command.pause", self._act(backfill_id, "pause", team_id))

    async def resume(self, backfill_id: int | UUID, *, team_id: int) -> Backfill:
        """A backfill that is created, scheduled or running is returned as it is."""
        return await _counted("command.resume", self._act(backfill_id, "resume", team_id))

    async def retry(self, backfill_id: int | UUID, *, team_id: int) -> Backfill:
        """Failed runs back to pending (attempts from zero), a failed backfill back to
        running. 422 when none failed or the backfill is final."""
        bid = await self.storage.backfills.id_of(backfill_id, team_id)
        return await self.storage.backfills.retry_failed(bid)

    async def delete(
        self, backfill_id: int | UUID, *, team_id: int, by: int | None = None
    ) -> Backfill:
        """Cancels it if still active (running runs finish) and hides it from every API."""
        bid = await self.storage.backfills.id_of(backfill_id, team_id)
        return await self.storage.backfills.delete(bid, by=by)

    async def _act(
        self,
        backfill_id: int | UUID,
        action: str,
        team_id: int,
        by: int | None = None,
        *,
        repeat_ok: bool = True,
    ) -> Backfill:
        bid = await self.storage.backfills.id_of(backfill_id, team_id)
        command_id = uuid4()
        return await self.storage.backfills.change_state(
            bid,
            action,
            command_id=command_id,
            command=state_command(action, command_id, bid),
            by=by,
            repeat_ok=repeat_ok,
        )


async def _counted(command_type: str, acting: Awaitable[Backfill]) -> Backfill:
    """An API command, counted in backfill_commands_total as applied or refused."""
    try:
        backfill = await acting
    except OrchestratorError:
        metrics.command_handled(command_type, "refused", source="api")
        raise
    metrics.command_handled(command_type, "applied", source="api")
    return backfill
