"""What the benchmarks ran on: figures from another machine are not comparable, ratios mostly
are, and both need the machine written beside them."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg

from bench.common import ADMIN, AMQP


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


async def describe() -> dict[str, Any]:
    conn = await asyncpg.connect(ADMIN)
    try:
        postgres = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    connection = await aio_pika.connect(AMQP)
    try:
        props = connection.transport.connection.server_properties if connection.transport else {}
        rabbitmq = props.get("version", "unknown")
        if isinstance(rabbitmq, bytes):
            rabbitmq = rabbitmq.decode()
    finally:
        await connection.close()
    return {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgres": postgres,
        "rabbitmq": str(rabbitmq),
    }
