"""The command consumer: create, cancel, pause and resume, from the API's outbox or from any
service that publishes them. Each command is applied once, keyed by its command_id; a message
that is not a valid command goes to the dead-letter queue with its reason."""

from __future__ import annotations

import structlog
from aio_pika.abc import AbstractIncomingMessage

from orchestrator import metrics
from orchestrator.errors import OrchestratorError
from orchestrator.messaging.bodies import Poison, read_body
from orchestrator.messaging.broker import Broker, published_by_us
from orchestrator.messaging.messages import COMMAND, CreateCommand
from orchestrator.service import BackfillService
from orchestrator.storage.commands import CommandStore
from workers.planner import Planner

log = structlog.get_logger(__name__)


class CommandConsumer:
    def __init__(
        self, service: BackfillService, commands: CommandStore, broker: Broker, planner: Planner
    ) -> None:
        self._service = service
        self._commands = commands
        self._broker = broker
        self._planner = planner

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        # The API's own commands come back here from its outbox: it counted them when it
        # applied them, so only a producer's commands count as source="queue".
        counted = not published_by_us(message)
        try:
            reason = await self._handle(message, counted)
        except Exception:
            # Not the message's fault (database down, …): requeue; the quorum queue's
            # delivery limit dead-letters it if it keeps failing.
            log.exception("command_failed", message_id=message.message_id)
            await message.nack(requeue=True)
            return
        if reason is not None:
            await self._broker.dead_letter(message, reason)
            metrics.command_handled(message.routing_key, "dead_lettered")  # even our own
        await message.ack()

    async def _handle(self, message: AbstractIncomingMessage, counted: bool) -> str | None:
        """Applies the command; returns a reason to dead-letter it, or None when done."""
        command = read_body(message.body, COMMAND, "command")
        if isinstance(command, Poison):
            return command.reason
        with structlog.contextvars.bound_contextvars(
            command_id=str(command.command_id), command=command.type
        ):
            if isinstance(command, CreateCommand):
                return await self._create(command, counted)
            action = command.type.removeprefix("command.")
            if await self._commands.applied(command.command_id):
                log.info("command_duplicate")
                if counted:
                    metrics.command_handled(command.type, "duplicate")
                return None
            try:
                await self._service.apply_command(
                    action, command.backfill_id, command.command_id, team_id=command.team_id
                )
            except OrchestratorError as exc:
                # A backfill already where the command leads is no error (the service
                # returns it unchanged); this is an action its state does not allow.
                return f"{exc.code}: {exc.detail}"
            log.info("command_applied")
            if counted:
                metrics.command_handled(command.type, "applied")
            return None

    async def _create(self, command: CreateCommand, counted: bool) -> str | None:
        try:
            backfill, created = await self._service.apply_create(
                command.backfill,
                team_id=command.team_id,
                command_id=command.command_id,
                announce=False,
            )
        except OrchestratorError as exc:
            detail = exc.detail
            if exc.errors:
                detail += (
                    " ("
                    + "; ".join(f"{e.get('pointer', '')}: {e['message']}" for e in exc.errors)
                    + ")"
                )
            return f"{exc.code}: {detail}"
        self._planner.kick(backfill.id)
        if counted:
            metrics.command_handled(command.type, "applied" if created else "duplicate")
        return None
