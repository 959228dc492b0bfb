"""The RabbitMQ contract as an AsyncAPI 3.0 document, built from the message models.

docs/asyncapi.yaml is this document, written by `make docs` (`python -m tools.asyncapi >
docs/asyncapi.yaml`); a unit test fails when the two differ, so a change to a message model
without regenerating cannot go unnoticed. docs/messages.md explains the same contract in
prose, with examples. It lives under tools/, outside the packages that are installed and
run: nothing serves it, so nothing at runtime imports it."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel

from orchestrator.messaging.events import BackfillEvent, RunFailedEvent
from orchestrator.messaging.messages import (
    CancelCommand,
    CreateCommand,
    PauseCommand,
    ResumeCommand,
    RunDispatch,
)
from orchestrator.messaging.progress_event import BackfillProgressEvent
from orchestrator.messaging.topology import REASON_HEADER, Topology
from orchestrator.settings import Settings

ASYNCAPI_VERSION = "3.0.0"
# The contract's own version: bump it when a message changes in a way consumers notice.
CONTRACT_VERSION = "1.1.0"
AMQP_BINDING_VERSION = "0.3.0"
REGENERATE = "make docs"
# A schema embedded in the document resolves `#` against the whole document, so pydantic's
# `$defs` are hoisted into components/schemas and references point there.
SCHEMA_REF_TEMPLATE = "#/components/schemas/{model}"

MODELS: tuple[type[BaseModel], ...] = (
    CreateCommand,
    CancelCommand,
    PauseCommand,
    ResumeCommand,
    RunDispatch,
    BackfillEvent,
    RunFailedEvent,
    BackfillProgressEvent,
)


def payload_schema(model: type[BaseModel]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model's JSON schema without its `$defs`, and the `$defs`."""
    schema = model.model_json_schema(ref_template=SCHEMA_REF_TEMPLATE)
    defs: dict[str, Any] = schema.pop("$defs", {})
    return schema, defs


@dataclass(frozen=True)
class _Message:
    key: str  # the id under components/messages and the channel's messages
    model: type[BaseModel]
    title: str
    summary: str
    amqp_type: str | None = None  # the AMQP `type` property the orchestrator sets


@dataclass(frozen=True)
class _Channel:
    key: str
    address: str
    description: str
    message: _Message
    actions: tuple[str, ...]
    queue: str | None = None  # the orchestrator's queue bound to this routing key


def _command(verb: str, model: type[BaseModel], does: str, title: str, summary: str) -> _Channel:
    """A command channel: `command.<verb>`, received on the orchestrator's commands queue."""
    return _Channel(
        f"command{verb.title()}",
        f"command.{verb}",
        does,
        _Message(f"{verb}Command", model, title, summary),
        ("receive",),
        queue="commands",
    )


_COMMANDS = (
    _command(
        "create",
        CreateCommand,
        "Creates a backfill, exactly as POST /v1/backfills would; `command_id` makes it "
        "idempotent.",
        "Create a backfill",
        "Start a backfill.",
    ),
    _command(
        "cancel",
        CancelCommand,
        "Cancels a backfill, as POST /v1/backfills/{id}/cancel would.",
        "Cancel a backfill",
        "Cancel a backfill.",
    ),
    _command(
        "pause",
        PauseCommand,
        "Pauses a backfill, as POST /v1/backfills/{id}/pause would.",
        "Pause a backfill",
        "Pause a backfill.",
    ),
    _command(
        "resume",
        ResumeCommand,
        "Resumes a paused backfill, as POST /v1/backfills/{id}/resume would.",
        "Resume a backfill",
        "Resume a backfill.",
    ),
)

_DISPATCH = _Channel(
    "runDispatch",
    "run.dispatch",
    "Internal: a run became queued and a worker should claim it. Do not publish it.",
    _Message(
        "runDispatch",
        RunDispatch,
        "Dispatch a run",
        "A queued run for an executor to claim.",
        amqp_type="run.dispatch",
    ),
    ("send", "receive"),
    queue="runs",
)


def _event(key: str, event: str, model: type[BaseModel], when: str) -> _Channel:
    message = _Message(key, model, f"{event} event", when, amqp_type=event)
    return _Channel(key, f"event.{event}", when, message, ("send",))


_EVENTS = (
    _event(
        "backfillCreated",
        "backfill.created",
        BackfillEvent,
        "A backfill was created (through the API or a command).",
    ),
    _event(
        "backfillCompleted",
        "backfill.completed",
        BackfillEvent,
        "Every run of a backfill ended and none failed.",
    ),
    _event(
        "backfillFailed",
        "backfill.failed",
        BackfillEvent,
        "Every run of a backfill ended and at least one failed.",
    ),
    _event("backfillCancelled", "backfill.cancelled", BackfillEvent, "A backfill was cancelled."),
    _event(
        "backfillPaused",
        "backfill.paused",
        BackfillEvent,
        "A backfill was paused: no run starts until it is resumed; running runs finish.",
    ),
    _event(
        "backfillResumed",
        "backfill.resumed",
        BackfillEvent,
        "A paused backfill was resumed (state `running`, or `scheduled` if no run had started).",
    ),
    _event(
        "runFailed",
        "run.failed",
        RunFailedEvent,
        "A run failed for good: its attempts are used up, or its backfill was cancelled while "
        "the attempt failed.",
    ),
    _event(
        "backfillProgress",
        "backfill.progress",
        BackfillProgressEvent,
        "A running backfill's progress and rates, periodically.",
    ),
)

CHANNELS = (*_COMMANDS, _DISPATCH, *_EVENTS)


def _defaults() -> tuple[str, int, str]:
    fields = Settings.model_fields
    url = urlsplit(fields["amqp_url"].default.get_secret_value())
    host = f"{url.hostname}:{url.port or 5672}"
    return str(fields["amqp_prefix"].default), int(fields["delivery_limit"].default), host


def _operation_id(action: str, message: _Message) -> str:
    return action + message.key[0].upper() + message.key[1:]


def _operation_bindings(action: str, channel: _Channel) -> dict[str, Any]:
    if action == "receive":
        return {"ack": True, "bindingVersion": AMQP_BINDING_VERSION}
    # Events go out without `mandatory`: with nobody bound they are dropped, not returned.
    mandatory = not channel.address.startswith("event.")
    return {"deliveryMode": 2, "mandatory": mandatory, "bindingVersion": AMQP_BINDING_VERSION}


def build_document(prefix: str | None = None, delivery_limit: int | None = None) -> dict[str, Any]:
    """The AsyncAPI document for a deployment; names and limits default to the settings'
    defaults (never to the environment, so the committed file does not depend on a shell)."""
    default_prefix, default_limit, host = _defaults()
    topology = Topology(prefix or default_prefix, delivery_limit or default_limit)
    exchange = {
        "name": topology.exchange,
        "type": "topic",
        "durable": True,
        "autoDelete": False,
        "vhost": "/",
    }
    queues = {
        "commands": (topology.commands, "command.*"),
        "runs": (topology.runs, "run.dispatch"),
    }

    schemas: dict[str, Any] = {}
    for model in MODELS:
        schema, defs = payload_schema(model)
        for name, definition in {model.__name__: schema, **defs}.items():
            assert schemas.get(name, definition) == definition, f"two schemas named {name}"
            schemas[name] = definition

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for channel in CHANNELS:
        message = channel.message
        messages[message.key] = _message(message)
        binding: dict[str, Any] = {
            "is": "routingKey",
            "exchange": dict(exchange),  # a copy: shared objects would become YAML aliases
            "bindingVersion": AMQP_BINDING_VERSION,
        }
        if channel.queue is not None:
            name, binding_key = queues[channel.queue]
            binding["x-queue"] = {
                "name": name,
                "bindingKey": binding_key,
                "durable": True,
                "arguments": dict(topology._work_queue_args()),
            }
        channels[channel.key] = {
            "address": channel.address,
            "title": channel.address,
            "description": channel.description,
            "messages": {message.key: {"$ref": f"#/components/messages/{message.key}"}},
            "bindings": {"amqp": binding},
        }
        for action in channel.actions:
            operations[_operation_id(action, message)] = {
                "action": action,
                "channel": {"$ref": f"#/channels/{channel.key}"},
                "summary": message.summary,
                "messages": [{"$ref": f"#/channels/{channel.key}/messages/{message.key}"}],
                "bindings": {"amqp": _operation_bindings(action, channel)},
            }

    channels["deadLetters"] = {
        "address": topology.dead,
        "title": topology.dead,
        "description": (
            f"Messages the orchestrator refused, published to the fanout exchange "
            f"`{topology.dead_exchange}` and kept in this queue until someone reads them. "
            f"Messages that reached the delivery limit are dead-lettered here by RabbitMQ."
        ),
        "messages": {"deadLetter": {"$ref": "#/components/messages/deadLetter"}},
        "bindings": {
            "amqp": {
                "is": "queue",
                "queue": {
                    "name": topology.dead,
                    "durable": True,
                    "exclusive": False,
                    "autoDelete": False,
                    "vhost": "/",
                },
                "bindingVersion": AMQP_BINDING_VERSION,
                "x-arguments": {"x-queue-type": "quorum"},
                "x-exchange": {"name": topology.dead_exchange, "type": "fanout", "durable": True},
            }
        },
    }
    operations["sendDeadLetter"] = {
        "action": "send",
        "channel": {"$ref": "#/channels/deadLetters"},
        "summary": "Set aside a message that is not valid or cannot be applied, with the reason.",
        "messages": [{"$ref": "#/channels/deadLetters/messages/deadLetter"}],
        "bindings": {"amqp": {"deliveryMode": 2, "bindingVersion": AMQP_BINDING_VERSION}},
    }
    messages["deadLetter"] = _dead_letter()

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Backfill orchestrator messages",
            "version": CONTRACT_VERSION,
            "description": (
                "Commands that start and steer backfills, the internal run dispatch, the events "
                "announcing what happened, and the dead letters. Publish to the topic exchange "
                f"`{topology.exchange}` (BACKFILL_AMQP_PREFIX) with the channel's address as "
                "the routing key, persistent and with publisher confirms. docs/messages.md "
                f"explains the contract with examples. Generated by `{REGENERATE}`."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": host,
                "protocol": "amqp",
                "protocolVersion": "0-9-1",
                "description": "The default BACKFILL_AMQP_URL.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": dict(sorted(schemas.items())),
        },
    }


def _message(message: _Message) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": message.key,
        "title": message.title,
        "summary": message.summary,
        "contentType": "application/json",
        "payload": {"$ref": SCHEMA_REF_TEMPLATE.format(model=message.model.__name__)},
    }
    if message.amqp_type is not None:
        body["bindings"] = {
            "amqp": {"messageType": message.amqp_type, "bindingVersion": AMQP_BINDING_VERSION}
        }
    return body


def _dead_letter() -> dict[str, Any]:
    return {
        "name": "deadLetter",
        "title": "A refused message",
        "summary": "The original message, body and properties unchanged, with why it was refused.",
        "headers": {
            "type": "object",
            "properties": {
                REASON_HEADER: {
                    "type": "string",
                    "maxLength": 1000,
                    "description": (
                        "Why the orchestrator refused it. Absent when RabbitMQ dead-lettered "
                        "the message after its delivery limit."
                    ),
                },
                "x-original-routing-key": {
                    "type": "string",
                    "description": "The routing key it was published with; replay with it.",
                },
                "x-first-death-reason": {
                    "type": "string",
                    "description": "Set by RabbitMQ (`delivery_limit`) when it dead-lettered it.",
                },
                "x-first-death-queue": {
                    "type": "string",
                    "description": "Set by RabbitMQ: the queue it was dead-lettered from.",
                },
            },
        },
        "payload": {"description": "The refused message's body, unchanged; it may not be JSON."},
    }


def main() -> None:
    text = yaml.safe_dump(build_document(), sort_keys=False, allow_unicode=True, width=100)
    sys.stdout.write(f"# Generated by `{REGENERATE}`; do not edit.\n{text}")


if __name__ == "__main__":
    main()
