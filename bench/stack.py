"""The orchestrator as users run it, for the run-side scenarios: real `backfill api`,
`backfill worker` (or `backfill up`) processes on a scratch database and broker prefix,
driven over HTTP, with the CPU each process (and Postgres and RabbitMQ) spent."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp
import asyncpg

from orchestrator.storage.migrate import SCHEMA

_TICKS = os.sysconf("SC_CLK_TCK")


async def connect(dsn: str) -> asyncpg.Connection[Any]:
    """A connection that reads the orchestrator's tables by their plain names."""
    return await asyncpg.connect(dsn, server_settings={"search_path": SCHEMA})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def pids_named(name: str) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    out.append(int(entry.name))
            except OSError:
                continue
    return out


@dataclass
class CpuMeter:
    """CPU seconds by part between start() and stop(): our processes, the Postgres backends
    serving our database, and RabbitMQ's beam.smp (shared with whatever else uses that
    broker, so it is an upper bound)."""

    ours: dict[str, int]
    database: str
    admin_dsn: str
    before: dict[str, float] = field(default_factory=dict)
    spent: dict[str, float] = field(default_factory=dict)

    async def _postgres_pids(self) -> list[int]:
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            rows = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                self.database,
            )
        finally:
            await conn.close()
        return [r["pid"] for r in rows]

    async def _read(self) -> dict[str, float]:
        got = {role: cpu_of(pid) for role, pid in self.ours.items()}
        self._pg = await self._postgres_pids()
        got |= {f"pg:{pid}": cpu_of(pid) for pid in self._pg}
        got["rabbitmq"] = sum(cpu_of(p) for p in pids_named("beam.smp"))
        return got

    async def start(self) -> None:
        self.before = await self._read()

    async def stop(self) -> dict[str, float]:
        after = await self._read()
        parts: dict[str, float] = {}
        for key, value in after.items():
            # A backend that appeared meanwhile started from zero.
            delta = value - self.before.get(key, 0.0)
            part = "postgres" if key.startswith("pg:") else key.split("#")[0]
            parts[part] = parts.get(part, 0.0) + max(0.0, delta)
        self.spent = parts
        return parts


class Stack:
    """Orchestrator processes on one scratch database; `http` talks to the API."""

    def __init__(self, dsn: str, prefix: str, token: str, port: int) -> None:
        self.dsn = dsn
        self.prefix = prefix
        self.token = token
        self.port = port
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.logs: list[IO[bytes]] = []
        self.logdir = Path(tempfile.mkdtemp(prefix="bench-stack-"))
        self.http: aiohttp.ClientSession | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database(self) -> str:
        return self.dsn.rsplit("/", 1)[1]

    def env(self, extra: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BACKFILL_")}
        env |= {
            "BACKFILL_DATABASE_URL": self.dsn,
            "BACKFILL_AMQP_PREFIX": self.prefix,
            "BACKFILL_HTTP_PORT": str(self.port),
            "BACKFILL_BOOTSTRAP_TOKEN": self.token,
            "BACKFILL_LOG_LEVEL": "WARNING",
            "BACKFILL_LOG_JSON": "true",
            # One key makes every request here: a per-key limit would measure the limit.
            "BACKFILL_RATE_LIMIT_REQUESTS": "0",
        }
        return env | extra

    async def start(self, name: str, command: str, extra: dict[str, str] | None = None) -> None:
        log = (self.logdir / f"{name}.log").open("wb")
        self.logs.append(log)
        self.procs[name] = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "orchestrator.cli",
            command,
            env=self.env(extra or {}),
            stdout=log,
            stderr=log,
        )

    async def wait_ready(self, workers: int, within: float = 60) -> None:
        """The API answers and `workers` consuming workers have reported in."""
        deadline = time.monotonic() + within
        conn = await connect(self.dsn)
        try:
            while time.monotonic() < deadline:
                for name, proc in self.procs.items():
                    if proc.returncode is not None:
                        raise RuntimeError(f"{name} exited: {self.log_tail(name)}")
                up = await _table_count(
                    conn, "workers", "stopped_at IS NULL AND 'executor' = ANY(roles)"
                )
                if up >= workers and await self._api_ready():
                    return
                await asyncio.sleep(0.1)
        finally:
            await conn.close()
        raise TimeoutError(f"stack not ready in {within}s")

    async def _api_ready(self) -> bool:
        assert self.http is not None
        try:
            async with self.http.get(f"{self.base}/ops/health") as r:
                return r.status == 200
        except aiohttp.ClientError:
            return False

    def log_tail(self, name: str) -> str:
        return (self.logdir / f"{name}.log").read_text()[-2000:]

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.procs.items()}

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        assert self.http is not None
        async with self.http.request(method, f"{self.base}{path}", json=body) as r:
            data = await r.json(content_type=None)
            if r.status >= 400:
                raise RuntimeError(f"{method} {path}: {r.status} {data}")
            return data

    async def stop(self) -> None:
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        for log in self.logs:
            log.close()


async def _table_count(conn: asyncpg.Connection[Any], table: str, where: str) -> int:
    return int(await conn.fetchval(f"SELECT count(*) FROM {table} WHERE {where}"))


@asynccontextmanager
async def stack(
    dsn: str,
    prefix: str,
    *,
    api: bool = True,
    workers: int = 1,
    combined: bool = False,
    env: dict[str, str] | None = None,
) -> AsyncIterator[Stack]:
    """`combined`: one `backfill up` process (API and worker, as `make run`); otherwise one
    `backfill api` and `workers` `backfill worker` processes."""
    s = Stack(dsn, prefix, "bench-" + secrets.token_hex(16), free_port())
    s.http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {s.token}"})
    ok = False
    try:
        if combined:
            await s.start("up", "up", env)
        else:
            if api:
                await s.start("api", "api", env)
            for n in range(workers):
                await s.start(f"worker#{n}", "worker", env)
        await s.wait_ready(1 if combined else workers)
        yield s
        ok = True
    finally:
        await s.stop()
        await s.http.close()
        # The processes' logs are kept only when they are needed: to see why a case failed.
        if ok:
            shutil.rmtree(s.logdir, ignore_errors=True)
        else:
            print(f"bench stack failed; its processes' logs: {s.logdir}")


async def wait_backfills(s: Stack, ids: list[int], within: float) -> list[dict[str, Any]]:
    """Polls the database (not the API, so the API's own load stays out of the figure)."""
    deadline = time.monotonic() + within
    conn = await connect(s.dsn)
    try:
        while True:
            rows = await conn.fetch("SELECT * FROM backfills WHERE id = ANY($1::bigint[])", ids)
            if all(r["state"] in ("completed", "failed", "cancelled") for r in rows):
                return [dict(r) for r in rows]
            if time.monotonic() > deadline:
                states = sorted({r["state"] for r in rows})
                raise TimeoutError(f"backfills not done in {within}s: {states}")
            for name, proc in s.procs.items():
                if proc.returncode is not None:
                    raise RuntimeError(f"{name} exited: {s.log_tail(name)}")
            await asyncio.sleep(0.02)
    finally:
        await conn.close()


async def noop_target(s: Stack, name: str, max_active_runs: int) -> int:
    target = await s.call(
        "POST",
        "/v1/targets",
        {
            "name": name,
            "kind": "date_range",
            "handler": {"type": "noop"},
            "max_active_runs": max_active_runs,
        },
    )
    return int(target["id"])


async def start_windows(s: Stack, target: int, start: str, minutes: int) -> int:
    """A date-range backfill of `minutes` one-minute windows from `start`."""
    from datetime import datetime, timedelta

    t0 = datetime.fromisoformat(start)
    end = t0 + timedelta(minutes=minutes)
    backfill = await s.call(
        "POST",
        "/v1/backfills",
        {
            "target": target,
            "start": t0.isoformat(),
            "end": end.isoformat(),
            "interval_type": "minute",
            "interval_units": 1,
        },
    )
    return int(backfill["id"])
