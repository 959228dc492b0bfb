"""docs/asyncapi.yaml is the generated AsyncAPI document of the message models: up to date,
internally consistent, and built from the models' own JSON schemas."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
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
from orchestrator.messaging.topology import REASON_HEADER
from tools.asyncapi import REGENERATE, build_document, payload_schema

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"

PAYLOADS: dict[str, type[BaseModel]] = {
    "command.create": CreateCommand,
    "command.cancel": CancelCommand,
    "command.pause": PauseCommand,
    "command.resume": ResumeCommand,
    "run.dispatch": RunDispatch,
    "event.backfill.created": BackfillEvent,
    "event.backfill.completed": BackfillEvent,
    "event.backfill.failed": BackfillEvent,
    "event.backfill.cancelled": BackfillEvent,
    "event.backfill.paused": BackfillEvent,
    "event.backfill.resumed": BackfillEvent,
    "event.run.failed": RunFailedEvent,
    "event.backfill.progress": BackfillProgressEvent,
}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return build_document()


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref} is not a local reference"
    node: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict), f"{ref}: {part!r} is not inside an object"
        assert part in node, f"{ref} does not resolve: no {part!r}"
        node = node[part]
    return node


def _channel_by_address(doc: dict[str, Any], address: str) -> dict[str, Any]:
    found = [c for c in doc["channels"].values() if c["address"] == address]
    assert len(found) == 1, address
    channel: dict[str, Any] = found[0]
    return channel


def test_the_committed_document_is_the_generated_one(doc: dict[str, Any]) -> None:
    committed = yaml.safe_load(COMMITTED.read_text())
    assert committed == doc, (
        f"docs/asyncapi.yaml does not match the message models; regenerate it: {REGENERATE}"
    )


def test_it_is_an_asyncapi_3_document(doc: dict[str, Any]) -> None:
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"]["title"]
    assert doc["info"]["version"]
    assert doc["servers"]["local"] == {
        "host": "127.0.0.1:5672",
        "protocol": "amqp",
        "protocolVersion": "0-9-1",
        "description": "The default BACKFILL_AMQP_URL.",
    }


def test_every_reference_resolves(doc: dict[str, Any]) -> None:
    refs = list(_refs(doc))
    assert len(refs) > 30
    for ref in refs:
        resolve(doc, ref)


def test_operations_name_their_channel_and_only_its_messages(doc: dict[str, Any]) -> None:
    for name, operation in doc["operations"].items():
        channel_ref = operation["channel"]["$ref"]
        assert channel_ref.startswith("#/channels/"), name
        resolve(doc, channel_ref)
        assert operation["messages"], name
        for message in operation["messages"]:
            # AsyncAPI 3: an operation's messages are a subset of its channel's.
            assert message["$ref"].startswith(f"{channel_ref}/messages/"), name
    for key, channel in doc["channels"].items():
        for message in channel["messages"].values():
            assert message["$ref"].startswith("#/components/messages/"), key
            payload = resolve(doc, message["$ref"])["payload"]
            if "$ref" in payload:
                assert payload["$ref"].startswith("#/components/schemas/"), key


def test_the_channels_and_who_sends_or_receives(doc: dict[str, Any]) -> None:
    actions = {
        (resolve(doc, op["channel"]["$ref"])["address"], op["action"])
        for op in doc["operations"].values()
    }
    assert actions == {
        ("command.create", "receive"),
        ("command.cancel", "receive"),
        ("command.pause", "receive"),
        ("command.resume", "receive"),
        ("run.dispatch", "send"),
        ("run.dispatch", "receive"),
        ("event.backfill.created", "send"),
        ("event.backfill.completed", "send"),
        ("event.backfill.failed", "send"),
        ("event.backfill.cancelled", "send"),
        ("event.backfill.paused", "send"),
        ("event.backfill.resumed", "send"),
        ("event.run.failed", "send"),
        ("event.backfill.progress", "send"),
        ("backfills.dead", "send"),
    }
    assert {c["address"] for c in doc["channels"].values()} == {a for a, _ in actions}


@pytest.mark.parametrize(("address", "model"), PAYLOADS.items())
def test_payloads_are_the_models_json_schemas(
    doc: dict[str, Any], address: str, model: type[BaseModel]
) -> None:
    channel = _channel_by_address(doc, address)
    (message_ref,) = [m["$ref"] for m in channel["messages"].values()]
    payload = resolve(doc, resolve(doc, message_ref)["payload"]["$ref"])
    schema, defs = payload_schema(model)
    assert payload == schema
    # The same schema pydantic generates, only with references into components/schemas.
    plain = model.model_json_schema()
    assert set(plain.get("$defs", {})) == set(defs)
    schemas = doc["components"]["schemas"]
    for name, definition in defs.items():
        assert schemas[name] == definition


def test_amqp_bindings(doc: dict[str, Any]) -> None:
    command = _channel_by_address(doc, "command.create")["bindings"]["amqp"]
    assert command["is"] == "routingKey"
    assert command["exchange"] == {
        "name": "backfills",
        "type": "topic",
        "durable": True,
        "autoDelete": False,
        "vhost": "/",
    }
    assert command["x-queue"]["name"] == "backfills.commands"
    assert command["x-queue"]["arguments"] == {
        "x-queue-type": "quorum",
        "x-delivery-limit": 5,
        "x-dead-letter-exchange": "backfills.dead",
    }
    runs = _channel_by_address(doc, "run.dispatch")["bindings"]["amqp"]
    assert runs["x-queue"]["name"] == "backfills.runs"
    event = _channel_by_address(doc, "event.run.failed")["bindings"]["amqp"]
    assert event["exchange"]["name"] == "backfills"
    assert "x-queue" not in event, "events have no queue until a consumer binds one"
    dead = _channel_by_address(doc, "backfills.dead")
    assert dead["bindings"]["amqp"]["is"] == "queue"
    assert dead["bindings"]["amqp"]["queue"]["name"] == "backfills.dead"
    message = resolve(doc, dead["messages"]["deadLetter"]["$ref"])
    assert REASON_HEADER in message["headers"]["properties"]


def test_names_follow_the_prefix_and_the_delivery_limit() -> None:
    doc = build_document(prefix="billing", delivery_limit=3)
    command = _channel_by_address(doc, "command.cancel")["bindings"]["amqp"]
    assert command["exchange"]["name"] == "billing"
    assert command["x-queue"]["arguments"]["x-delivery-limit"] == 3
    assert command["x-queue"]["arguments"]["x-dead-letter-exchange"] == "billing.dead"
    assert _channel_by_address(doc, "billing.dead")["bindings"]["amqp"]["queue"]["name"] == (
        "billing.dead"
    )
