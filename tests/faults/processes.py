"""Real worker processes for fault tests: `backfill worker` started as a subprocess against the
test's database and broker prefix, configured only through BACKFILL_* variables (as an
operator runs it), with short leases so faults resolve within a test's deadline.

    proc = await workers.start("a")              # the `workers` fixture (tests/faults/conftest)
    await proc.ready(db)                         # registered in `workers`, consuming
    proc.freeze(); proc.thaw()                   # SIGSTOP / SIGCONT
    proc.kill()                                  # SIGKILL
    proc.terminate()                             # SIGTERM (graceful; a second one: at once)
    code = await proc.wait_exit(within=10)
    proc.events("run_lease_lost", run_id=7)      # its JSON log lines, parsed
    await proc.sessions(db)                      # its Postgres sessions (pg_stat_activity)

Each process's DSN carries `application_name=<name>`, so the connections it opens from the DSN
(the source and sink pools; the orchestrator's own pool sets its own name) are attributable in
pg_stat_activity and in triggers. `sessions()` finds every connection of the process, whatever
its name, through the process's sockets. Teardown (Workers.close) always thaws and kills what
is left, and prints every log, which pytest shows for a failed test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import asyncpg

from tests.conftest import AMQP_URL, source_dsn
from tests.faults.scenario import until

ROOT = Path(__file__).resolve().parents[2]

# Short timings: a dead worker's lease runs out in 2 s and is reaped within 0.2 s after. One
# run at a time and one prefetched message per process, so a frozen process sits on at most
# one dispatch, and that one is published again after 1 s.
FAULT_SETTINGS: dict[str, Any] = {
    "lease_seconds": 2.0,
    "heartbeat_seconds": 0.3,
    "reaper_seconds": 0.2,
    "dispatch_sweep_seconds": 0.2,
    "outbox_poll_seconds": 0.1,
    "retry_base_seconds": 0.05,
    "retry_max_seconds": 0.2,
    "redispatch_after_seconds": 1.0,
    "shutdown_grace_seconds": 5.0,
    "worker_concurrency": 1,
    "amqp_prefetch": 1,
    "log_json": True,
    "log_level": "INFO",
}


def worker_command() -> list[str]:
    """The console script of this virtualenv, as tests/e2e does; `python -m` if missing."""
    script = shutil.which("backfill", path=str(Path(sys.executable).parent)) or shutil.which(
        "backfill"
    )
    if script is not None:
        return [script, "worker"]
    return [sys.executable, "-m", "orchestrator.cli", "worker"]


def with_application_name(dsn: str, name: str) -> str:
    return f"{dsn}{'&' if '?' in dsn else '?'}application_name={name}"


def worker_env(
    database: str, prefix: str, name: str, overrides: Mapping[str, Any]
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKFILL_")}
    values = {
        "database_url": with_application_name(database, name),
        "amqp_url": AMQP_URL,
        "amqp_prefix": prefix,
        "sources": json.dumps({"main": source_dsn(database)}),
        "demo_source": False,
        **FAULT_SETTINGS,
        **overrides,
    }
    for key, value in values.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        env[f"BACKFILL_{key.upper()}"] = str(value)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def local_ports(pid: int, remote_port: int) -> set[int]:
    """Local TCP ports of the process's connections to `remote_port` (Linux /proc)."""
    inodes = _socket_inodes(pid)
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], int(fields[9])
            if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == remote_port:
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


class WorkerProcess:
    def __init__(self, name: str, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.env = env
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None
        self.worker_id: str | None = None
        self.frozen = False

    @property
    def pid(self) -> int:
        assert self.proc is not None, "start() first"
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode if self.proc is not None else None

    async def start(self) -> WorkerProcess:
        with self.log_path.open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *worker_command(),
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self

    async def ready(self, db: asyncpg.Connection[Any], within: float = 30.0) -> str:
        """Waits until the process is registered in `workers` and consuming; its worker id."""

        async def probe() -> str | None:
            if self.returncode is not None:
                raise AssertionError(
                    f"worker {self.name} exited early with {self.returncode}:\n{self.log_text()}"
                )
            if not self.events("worker_started"):
                return None
            found: str | None = await db.fetchval(
                "SELECT id FROM workers WHERE pid = $1 AND stopped_at IS NULL", self.pid
            )
            return found

        worker_id: str = await until(probe, within=within, what=f"worker {self.name} ready")
        self.worker_id = worker_id
        return worker_id

    # ------------------------------------------------------------------ signals

    def send(self, sig: signal.Signals) -> None:
        if self.returncode is None:
            os.kill(self.pid, sig)

    def freeze(self) -> None:
        self.send(signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        self.send(signal.SIGCONT)
        self.frozen = False

    def kill(self) -> None:
        self.send(signal.SIGKILL)

    def terminate(self) -> None:
        self.send(signal.SIGTERM)

    async def wait_exit(self, within: float = 30.0) -> int:
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), timeout=within)

    async def stop_now(self) -> None:
        """Teardown: whatever state it is in, it is gone afterwards."""
        if self.proc is None or self.proc.returncode is not None:
            return
        self.thaw()
        self.kill()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.proc.wait(), timeout=10)

    # --------------------------------------------------------------------- logs

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_lines(self) -> list[dict[str, Any]]:
        """Every line of its log, parsed; a line that is not JSON (a crash's traceback
        before logging was set up) comes back as {"event": "<not json>", "raw": line}."""
        out: list[dict[str, Any]] = []
        for line in self.log_text().splitlines():
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            if not isinstance(entry, dict):
                entry = {"event": "<not json>", "raw": line}
            out.append(entry)
        return out

    def events(self, event: str, **fields: Any) -> list[dict[str, Any]]:
        return [
            e
            for e in self.log_lines()
            if e.get("event") == event and all(e.get(k) == v for k, v in fields.items())
        ]

    async def wait_event(self, event: str, within: float = 15.0, **fields: Any) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            found = self.events(event, **fields)
            return found[0] if found else None

        return await until(probe, within=within, what=f"{self.name} to log {event} {fields}")

    # ----------------------------------------------------------------- Postgres

    async def sessions(self, db: asyncpg.Connection[Any]) -> list[asyncpg.Record]:
        """Its sessions in the test database, found by the local ports of its sockets."""
        port: int = await db.fetchval("SELECT inet_server_port()")
        ports = local_ports(self.pid, port)
        if not ports:
            return []
        rows: list[asyncpg.Record] = await db.fetch(
            """SELECT pid, client_port, application_name, state, xact_start, wait_event_type,
                      wait_event, left(query, 200) AS query
               FROM pg_stat_activity
               WHERE datname = current_database() AND client_port = ANY($1::int[])""",
            sorted(ports),
        )
        return rows

    async def in_transaction(self, db: asyncpg.Connection[Any]) -> list[asyncpg.Record]:
        """Its sessions inside a transaction (holding whatever locks that took)."""
        return [s for s in await self.sessions(db) if s["xact_start"] is not None]


class Workers:
    """Starts worker processes for one test and always removes them afterwards."""

    def __init__(self, database: str, prefix: str, log_dir: Path) -> None:
        self.database = database
        self.prefix = prefix
        self.log_dir = log_dir
        self.started: list[WorkerProcess] = []

    async def start(self, name: str, **overrides: Any) -> WorkerProcess:
        env = worker_env(self.database, self.prefix, name, overrides)
        proc = WorkerProcess(name, env, self.log_dir / f"worker-{name}.log")
        self.started.append(proc)
        return await proc.start()

    async def start_ready(
        self, db: asyncpg.Connection[Any], *names: str, **overrides: Any
    ) -> list[WorkerProcess]:
        """Starts them together (they boot in parallel) and waits until all consume."""
        procs = [await self.start(n, **overrides) for n in names]
        for p in procs:  # one at a time: `db` is one connection
            await p.ready(db)
        return procs

    def by_worker_id(self, worker_id: str | None) -> WorkerProcess | None:
        return next((p for p in self.started if p.worker_id == worker_id), None)

    async def close(self) -> None:
        await asyncio.gather(*(p.stop_now() for p in self.started))
        for p in self.started:
            # Captured by pytest and shown only when the test failed.
            print(f"----- worker {p.name} (pid {p.proc.pid if p.proc else '-'}) log -----")
            print(p.log_text()[-20000:])
