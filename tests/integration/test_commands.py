"""Commands published straight to RabbitMQ by another service: applied once, and a bad
message goes to the dead-letter queue with its reason while the consumer carries on."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest

from orchestrator.context import Context
from orchestrator.messaging.topology import REASON_HEADER
from tests.conftest import AMQP_URL
from tests.helpers import api, make_target, start_backfill, wait_backfill, wait_until

pytestmark = pytest.mark.integration


class Producer:
    def __init__(self, channel: aio_pika.abc.AbstractChannel, prefix: str) -> None:
        self.channel = channel
        self.prefix = prefix

    async def send(self, routing_key: str, body: bytes | dict[str, Any]) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        exchange = await self.channel.get_exchange(self.prefix)
        await exchange.publish(
            aio_pika.Message(raw, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=routing_key,
            mandatory=True,
        )

    async def dead_letters(self, n: int) -> list[aio_pika.abc.AbstractIncomingMessage]:
        queue = await self.channel.get_queue(f"{self.prefix}.dead")
        got: list[aio_pika.abc.AbstractIncomingMessage] = []

        async def arrived() -> bool:
            message = await queue.get(fail=False, no_ack=True)
            if message is not None:
                got.append(message)
            return len(got) >= n

        await wait_until(arrived, what=f"{n} dead letters")
        return got


@pytest.fixture
async def producer(ctx: Context, worker: Any) -> AsyncIterator[Producer]:
    connection = await aio_pika.connect(AMQP_URL)
    channel = await connection.channel(publisher_confirms=True)
    yield Producer(channel, ctx.settings.amqp_prefix)
    await connection.close()


async def test_the_same_create_command_twice_makes_one_backfill(
    client: Any, db: Any, producer: Producer
) -> None:
    await make_target(client, "n")
    command = {
        "type": "command.create",
        "command_id": str(uuid.uuid4()),
        "backfill": {"target": "n", "start": "2024-01-01", "end": "2024-01-31"},
    }
    await producer.send("command.create", command)
    await producer.send("command.create", command)

    async def created() -> Any:
        return await db.fetchval(
            "SELECT id FROM backfills WHERE command_id = $1", uuid.UUID(command["command_id"])
        )

    bid = await wait_until(created, what="the backfill from the command")
    done = await wait_backfill(client, bid, {"completed", "failed"})
    assert done["state"] == "completed"
    assert done["runs_total"] == 31
    # Both deliveries have been consumed once the queue is empty; still one backfill.
    await wait_until(lambda: _queue_empty(producer, "commands"), what="commands consumed")
    assert await db.fetchval("SELECT count(*) FROM backfills") == 1
    assert await db.fetchval("SELECT count(*) FROM transfer_runs") == 31


async def _queue_empty(producer: Producer, name: str) -> bool:
    queue = await producer.channel.declare_queue(f"{producer.prefix}.{name}", passive=True)
    return queue.declaration_result.message_count == 0


async def test_bad_messages_are_dead_lettered_with_a_reason_and_consuming_goes_on(
    client: Any, db: Any, producer: Producer
) -> None:
    await make_target(client, "n")
    await producer.send("command.create", b"{not json")
    await producer.send(
        "command.create", {"type": "command.explode", "command_id": str(uuid.uuid4())}
    )
    await producer.send(
        "command.create",
        {
            "type": "command.create",
            "command_id": str(uuid.uuid4()),
            "backfill": {"target": "n", "start": "2024-01-01", "end": "2024-01-02", "bogus": 1},
        },
    )
    await producer.send(
        "command.create",
        {
            "type": "command.create",
            "command_id": str(uuid.uuid4()),
            "backfill": {"target": "no-such-target", "start": "2024-01-01", "end": "2024-01-02"},
        },
    )
    await producer.send(
        "command.cancel",
        {
            "type": "command.cancel",
            "command_id": str(uuid.uuid4()),
            "backfill_id": 424242,
        },
    )
    await producer.send("run.dispatch", b"\x00\x01")
    await producer.send(
        "command.pause",
        {
            "type": "command.pause",
            "command_id": str(uuid.uuid4()),
            "backfill_id": 10**20,
        },
    )

    async def seven_dead() -> bool:
        overview = await api(client, "GET", "/ops/overview", 200)
        return overview["queues"][f"{producer.prefix}.dead"] == 7

    # The ops overview reads queue depths live from the broker.
    await wait_until(seven_dead, what="seven dead letters counted by /ops/overview")
    dead = await producer.dead_letters(7)
    reasons = sorted(str((m.headers or {})[REASON_HEADER]) for m in dead)
    assert any(r.startswith("not JSON") for r in reasons), reasons
    assert any("command.explode" in r or "type" in r for r in reasons), reasons
    assert any("bogus" in r for r in reasons), reasons
    assert any("no-such-target" in r for r in reasons), reasons
    assert any(r.startswith("not_found") for r in reasons), reasons
    assert sum(1 for m in dead if m.headers.get("x-original-routing-key") == "run.dispatch") == 1
    assert any("less than or equal" in r for r in reasons), "an out-of-range id is refused"
    assert await db.fetchval("SELECT count(*) FROM backfills") == 0

    # The consumer carries on: a good command after the bad ones is applied.
    good = {
        "type": "command.create",
        "command_id": str(uuid.uuid4()),
        "backfill": {"target": "n", "start": "2024-01-01", "end": "2024-01-03"},
    }
    await producer.send("command.create", good)

    async def applied() -> Any:
        return await db.fetchval(
            "SELECT id FROM backfills WHERE command_id = $1", uuid.UUID(good["command_id"])
        )

    bid = await wait_until(applied, what="the good command applied")
    assert (await wait_backfill(client, bid, {"completed"}))["runs_completed"] == 3


async def test_state_commands_from_the_queue_apply_once_and_cancel_twice_is_harmless(
    client: Any, db: Any, producer: Producer
) -> None:
    from tests.gate import gate_handler

    with gate_handler() as gate:
        await make_target(client, "g", handler={"type": "gate"}, max_active_runs=1)
        created = await start_backfill(client, "g", start="2024-01-01", end="2024-01-05")
        bid = created["id"]

        async def one_running() -> bool:
            return len(gate.started) == 1

        await wait_until(one_running, what="a run started")
        pause = {
            "type": "command.pause",
            "command_id": str(uuid.uuid4()),
            "backfill_id": created["uuid"],
        }
        await producer.send("command.pause", pause)
        first_pause = (await wait_backfill(client, bid, {"paused"}))["paused_at"]
        resume = {"type": "command.resume", "command_id": str(uuid.uuid4()), "backfill_id": bid}
        await producer.send("command.resume", resume)
        await wait_backfill(client, bid, {"running"})
        # The same pause again is a duplicate: it must not pause the backfill a second time.
        await producer.send("command.pause", pause)
        cancel = {"type": "command.cancel", "command_id": str(uuid.uuid4()), "backfill_id": bid}
        await producer.send("command.cancel", cancel)
        await producer.send("command.cancel", {**cancel, "command_id": str(uuid.uuid4())})
        body = await wait_backfill(client, bid, {"cancelled"})
        # Had the duplicate pause been applied, paused_at would have moved.
        assert body["paused_at"] == first_pause
        await wait_until(lambda: _queue_empty(producer, "commands"), what="commands consumed")
        gate.release.set()
        dead = await (await producer.channel.get_queue(f"{producer.prefix}.dead")).get(fail=False)
        assert dead is None, "a duplicate or a second cancel must not be dead-lettered"
        applied = await db.fetchval(
            "SELECT count(*) FROM applied_commands WHERE type = 'command.pause'"
        )
        assert applied == 1


async def test_a_command_that_fails_on_every_delivery_stops_at_the_delivery_limit(
    ctx: Context, db: Any, producer: Producer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure that is not the message's fault (here: the service raises) requeues the
    message; the quorum queue counts deliveries and dead-letters it at the limit, so one
    message cannot loop for ever, and the consumer goes on with the next."""
    target = await ctx.storage.targets.insert(
        {
            "name": "n",
            "kind": "date_range",
            "handler": {"type": "noop"},
            "max_active_runs": 2,
            "max_attempts": 1,
            "team_id": 1,
        }
    )
    deliveries: list[uuid.UUID] = []
    real_apply_create = ctx.usecases.commands.apply_create

    async def always_failing(*args: Any, **kwargs: Any) -> Any:
        deliveries.append(kwargs["command_id"])
        if kwargs["command_id"] == poison:
            raise RuntimeError("the database said something unexpected")
        return await real_apply_create(*args, **kwargs)

    monkeypatch.setattr(ctx.usecases.commands, "apply_create", always_failing)
    poison = uuid.uuid4()
    await producer.send(
        "command.create",
        {
            "type": "command.create",
            "command_id": str(poison),
            "backfill": {"target": target.id, "start": "2024-01-01", "end": "2024-01-02"},
        },
    )

    [dead] = await producer.dead_letters(1)
    assert dead.headers.get("x-first-death-reason") == "delivery_limit"
    limit = ctx.settings.delivery_limit
    # The first delivery plus `limit` redeliveries, then no more.
    assert deliveries.count(poison) == limit + 1
    assert await db.fetchval("SELECT count(*) FROM backfills") == 0

    good = uuid.uuid4()
    await producer.send(
        "command.create",
        {
            "type": "command.create",
            "command_id": str(good),
            "backfill": {"target": target.id, "start": "2024-01-01", "end": "2024-01-02"},
        },
    )

    async def applied() -> Any:
        return await db.fetchval("SELECT id FROM backfills WHERE command_id = $1", good)

    await wait_until(applied, what="the next command applied")
    assert deliveries.count(poison) == limit + 1


async def test_deeply_nested_bodies_are_dead_lettered_at_the_first_delivery(
    client: Any, db: Any, producer: Producer
) -> None:
    """json raises RecursionError, not a ValueError, for nesting past the interpreter's
    limit; such a body is poison like any other, not a failure to retry."""
    await make_target(client, "n")
    nested = b"[" * 200_000
    await producer.send("command.create", nested)
    await producer.send("run.dispatch", nested)
    dead = await producer.dead_letters(2)
    for message in dead:
        headers = message.headers or {}
        assert "nested too deeply" in str(headers[REASON_HEADER])
        # Refused on its first delivery: it was never requeued.
        assert int(headers.get("x-delivery-count", 0)) == 0
        assert message.body == nested
    assert {m.headers["x-original-routing-key"] for m in dead} == {"command.create", "run.dispatch"}

    good = {
        "type": "command.create",
        "command_id": str(uuid.uuid4()),
        "backfill": {"target": "n", "start": "2024-01-01", "end": "2024-01-02"},
    }
    await producer.send("command.create", good)

    async def applied() -> Any:
        return await db.fetchval(
            "SELECT id FROM backfills WHERE command_id = $1", uuid.UUID(good["command_id"])
        )

    bid = await wait_until(applied, what="the good command applied")
    assert (await wait_backfill(client, bid, {"completed"}))["runs_completed"] == 2
