"""Exchange and queue names, and their durable declaration.

exchange  <prefix>        topic   command.* -> <prefix>.commands, run.dispatch -> <prefix>.runs,
                                  event.#   -> whoever binds a queue (keys like
                                               event.backfill.completed)
exchange  <prefix>.dead   fanout  -> <prefix>.dead (dead letters, kept for inspection)
Work queues are quorum queues with a delivery limit, so a message that kills every consumer
that takes it is dead-lettered by the broker instead of looping forever."""

from __future__ import annotations

from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue
from pamqp.common import FieldTable

REASON_HEADER = "x-backfill-dead-reason"


@dataclass(frozen=True)
class Topology:
    prefix: str
    delivery_limit: int

    @property
    def exchange(self) -> str:
        return self.prefix

    @property
    def dead_exchange(self) -> str:
        return f"{self.prefix}.dead"

    @property
    def commands(self) -> str:
        return f"{self.prefix}.commands"

    @property
    def runs(self) -> str:
        return f"{self.prefix}.runs"

    @property
    def dead(self) -> str:
        return f"{self.prefix}.dead"

    def _work_queue_args(self) -> FieldTable:
        return {
            "x-queue-type": "quorum",
            "x-delivery-limit": self.delivery_limit,
            "x-dead-letter-exchange": self.dead_exchange,
        }

    async def declare(self, channel: AbstractChannel) -> Declared:
        exchange = await channel.declare_exchange(
            self.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        dead_exchange = await channel.declare_exchange(
            self.dead_exchange, aio_pika.ExchangeType.FANOUT, durable=True
        )
        dead = await channel.declare_queue(
            self.dead, durable=True, arguments={"x-queue-type": "quorum"}
        )
        await dead.bind(dead_exchange)
        commands = await channel.declare_queue(
            self.commands, durable=True, arguments=self._work_queue_args()
        )
        await commands.bind(exchange, "command.*")
        runs = await channel.declare_queue(
            self.runs, durable=True, arguments=self._work_queue_args()
        )
        await runs.bind(exchange, "run.dispatch")
        return Declared(exchange, dead_exchange, commands, runs, dead)


@dataclass(frozen=True)
class Declared:
    exchange: AbstractExchange
    dead_exchange: AbstractExchange
    commands: AbstractQueue
    runs: AbstractQueue
    dead: AbstractQueue
