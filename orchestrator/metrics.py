"""Prometheus metrics of one process, served at GET /metrics.

Counters and histograms live on REGISTRY, this process's own registry rather than
prometheus_client's global one, so nothing else that imports the library adds to it; the
library's process, platform and garbage-collector collectors are registered on it too
(`process_*`, `python_*`). Several apps built in one process (tests do) share it: counters
are per process, like the work they count.

The gauges read from Postgres and RabbitMQ are read at scrape time (`scrape`), each read
bounded by a timeout; a read that fails leaves its gauges out and its `*_up` gauge says 0.
They describe the whole deployment, so every process shows the same values: aggregate them
with max, not sum. Per-backfill gauges exist only for active backfills (at most
ACTIVE_BACKFILLS_SHOWN), so their series end with the backfill.

Every process serves them: the API on its own port, a `backfill worker` on
BACKFILL_METRICS_PORT (orchestrator/cli/ops_server.py). docs/operations.md lists every metric."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog
from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orchestrator.domain.models import TargetKind
from orchestrator.domain.progress import fraction_of
from orchestrator.domain.states import RUN_TERMINAL, BackfillState, RunState

log = structlog.get_logger(__name__)

SCRAPE_TIMEOUT_SECONDS = 2.0
# Per-backfill series are shown for at most this many active backfills (the oldest first),
# so a flood of backfills cannot flood the time-series database.
ACTIVE_BACKFILLS_SHOWN = 500
# A worker whose heartbeat row is older than this no longer counts as alive.
WORKER_ALIVE_SECONDS = 60.0
WORKER_ROLES = ("planner", "executor", "relay")

T = TypeVar("T")
# (role, queue name, messages ready, consumers) of one of the orchestrator's queues;
# role is commands, runs or dead.
QueueStat = tuple[str, str, int, int]

REGISTRY = CollectorRegistry()
# What the library's default registry would show: CPU, memory, open files, start time
# (process_*), the Python version (python_info) and garbage collections (python_gc_*).
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

RUNS_FINISHED = Counter(
    "backfill_runs_finished_total",
    "Run attempts that ended in this process, by backfill kind and outcome: completed, failed "
    "(for good), retried (failed, will be tried again), lease_lost, released (handed back on "
    "shutdown).",
    ["kind", "outcome"],
    registry=REGISTRY,
)
ROWS_PROCESSED = Counter(
    "backfill_rows_processed_total",
    "Rows read by runs in this process (table runs as each chunk is checkpointed, date-range "
    "runs when they complete).",
    registry=REGISTRY,
)
RUN_DURATION = Histogram(
    "backfill_run_duration_seconds",
    "Wall time of run attempts in this process, whatever their outcome.",
    ["kind"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600),
    registry=REGISTRY,
)
MESSAGES_DEAD_LETTERED = Counter(
    "backfill_messages_dead_lettered_total",
    "Messages this process refused and moved to the dead-letter queue, by the queue they came "
    "from (RabbitMQ's own dead-lettering at the delivery limit is not counted here).",
    ["queue"],
    registry=REGISTRY,
)
COMMANDS = Counter(
    "backfill_commands_total",
    "Commands handled by this process, by type, source (api: an HTTP request; queue: a "
    "message from a producer) and outcome: applied, duplicate (applied before), refused "
    "(api) or dead_lettered (queue). The API's own commands coming back through the queue "
    "are not counted again.",
    ["type", "source", "outcome"],
    registry=REGISTRY,
)
OUTBOX_PUBLISHED = Counter(
    "backfill_outbox_published_total",
    "Outbox messages this process published to RabbitMQ (confirmed and marked sent).",
    registry=REGISTRY,
)
HTTP_REQUESTS = Counter(
    "backfill_http_requests_total",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "backfill_http_request_duration_seconds",
    "HTTP request handling time, by method and route template.",
    ["method", "route"],
    registry=REGISTRY,
)

_COMMAND_TYPES = frozenset({"command.create", "command.cancel", "command.pause", "command.resume"})


def run_timed(kind: str, started: float) -> None:
    """An attempt that began at time.perf_counter() == started has ended."""
    RUN_DURATION.labels(kind=kind).observe(time.perf_counter() - started)


def run_ended(kind: str, outcome: str, rows: int = 0) -> None:
    RUNS_FINISHED.labels(kind=kind, outcome=outcome).inc()
    if rows:
        ROWS_PROCESSED.inc(rows)


def attempt_failed(kind: str, state: RunState | None) -> None:
    """A failed attempt: None is a lost lease, pending a retry, failed the end."""
    outcome = (
        "lease_lost" if state is None else "retried" if state == RunState.PENDING else "failed"
    )
    run_ended(kind, outcome)


def command_handled(command_type: str | None, outcome: str, *, source: str = "queue") -> None:
    # Routing keys of refused messages can be anything `command.*` matches; one label for
    # the unknown ones keeps the series bounded.
    label = command_type if command_type in _COMMAND_TYPES else "other"
    COMMANDS.labels(type=label, source=source, outcome=outcome).inc()


def dead_lettered(queue: str) -> None:
    MESSAGES_DEAD_LETTERED.labels(queue=queue).inc()


class DatabaseGauges(Collector):
    """Backfills and runs by state, the outbox backlog and the workers alive, from `overview`
    (the shape of Repository.overview()) read just before: collect() is synchronous, the read
    is not."""

    def __init__(self, overview: Mapping[str, Any] | None, now: datetime) -> None:
        self._overview = overview
        self._now = now

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "backfill_database_up",
            "1 when this scrape read the counts below from Postgres in time, 0 when it could "
            "not (they are then left out).",
        )
        up.add_metric([], 0 if self._overview is None else 1)
        yield up
        if self._overview is None:
            return
        yield self._by_state(
            "backfill_backfills", "Backfills by state.", BackfillState, "backfills"
        )
        yield self._by_state("backfill_runs", "Runs by state.", RunState, "runs")
        yield from self._workers()
        outbox = self._overview.get("outbox")
        if outbox is None:
            return
        unsent = GaugeMetricFamily(
            "backfill_outbox_unsent", "Outbox messages not yet published to RabbitMQ."
        )
        unsent.add_metric([], outbox.get("unsent") or 0)
        yield unsent
        oldest: datetime | None = outbox.get("oldest_unsent_at")
        age = GaugeMetricFamily(
            "backfill_outbox_oldest_unsent_age_seconds",
            "Age of the oldest unsent outbox message (0 when none is waiting).",
        )
        age.add_metric([], max(0.0, (self._now - oldest).total_seconds()) if oldest else 0.0)
        yield age

    def _workers(self) -> Iterable[Metric]:
        assert self._overview is not None
        workers: Sequence[Mapping[str, Any]] | None = self._overview.get("workers")
        if workers is None:
            return
        alive = dict.fromkeys(WORKER_ROLES, 0)
        for worker in workers:
            seen: datetime | None = worker.get("last_seen_at")
            if worker.get("stopped_at") is not None or seen is None:
                continue
            if (self._now - seen).total_seconds() > WORKER_ALIVE_SECONDS:
                continue
            for role in worker.get("roles") or ():
                alive[role] = alive.get(role, 0) + 1
        family = GaugeMetricFamily(
            "backfill_workers_alive",
            f"Processes whose heartbeat is under {WORKER_ALIVE_SECONDS:.0f} s old, by role: "
            "planner and executor (processes that consume), relay (API-only processes).",
            labels=["role"],
        )
        for role, n in alive.items():
            family.add_metric([role], n)
        yield family

    def _by_state(
        self, name: str, documentation: str, states: Iterable[str], key: str
    ) -> GaugeMetricFamily:
        assert self._overview is not None
        counts: Mapping[str, int] = self._overview.get(key) or {}
        family = GaugeMetricFamily(name, documentation, labels=["state"])
        # Every state, zeros included, so a series does not vanish when its count does.
        known = [str(state) for state in states]
        for state in [*known, *(s for s in counts if s not in known)]:
            family.add_metric([state], counts.get(state, 0))
        return family


@dataclass(frozen=True)
class _Counters:
    """A row of the per-backfill metrics, read as orchestrator.domain.progress reads a
    backfill, so the gauge and the API's progress agree."""

    kind: TargetKind
    state: BackfillState
    planning_done: bool
    rows_initial_count: int | None
    rows_processed_count: int
    runs_total: int
    runs_completed: int
    runs_failed: int

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> _Counters:
        return cls(
            kind=TargetKind(row["kind"]),
            state=BackfillState(row["state"]),
            planning_done=row["planning_done"],
            rows_initial_count=row.get("rows_initial_count"),
            rows_processed_count=row["rows_processed_count"],
            runs_total=row["runs_total"],
            runs_completed=row["runs_completed"],
            runs_failed=row["runs_failed"],
        )


def progress_ratio(backfill: Mapping[str, Any]) -> float:
    """The gauge's value: the domain's fraction done, 0 while the total is unknown."""
    return fraction_of(_Counters.of(backfill)) or 0.0


class ActiveBackfillGauges(Collector):
    """One set of series per active backfill (created, scheduled, running, paused), from the
    backfills table's own counters: no run is counted at scrape time. `backfills` None: the
    read failed, and only backfill_active_backfills_up (0) is shown."""

    def __init__(self, backfills: Sequence[Mapping[str, Any]] | None) -> None:
        self._backfills = backfills

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "backfill_active_backfills_up",
            "1 when this scrape read the active backfills from Postgres in time, 0 when it "
            "could not (the backfill_active_* series are then left out).",
        )
        up.add_metric([], 0 if self._backfills is None else 1)
        yield up
        if self._backfills is None:
            return
        ids = ["backfill_id"]
        info = GaugeMetricFamily(
            "backfill_active_info",
            "1 for each active backfill, with its target, team, kind and state.",
            labels=["backfill_id", "target_id", "team_id", "kind", "state"],
        )
        rows = GaugeMetricFamily(
            "backfill_active_rows_processed", "Rows read so far by an active backfill.", labels=ids
        )
        ingested = GaugeMetricFamily(
            "backfill_active_rows_ingested",
            "Rows written so far by an active backfill.",
            labels=ids,
        )
        estimated = GaugeMetricFamily(
            "backfill_active_rows_estimated",
            "Rows an active table backfill counted when planning began (absent until counted).",
            labels=ids,
        )
        planned = GaugeMetricFamily(
            "backfill_active_runs_planned",
            "Runs planned so far for an active backfill.",
            labels=ids,
        )
        runs = GaugeMetricFamily(
            "backfill_active_runs",
            "Runs of an active backfill by state: completed, failed, cancelled, and open "
            "(pending, queued or running).",
            labels=["backfill_id", "state"],
        )
        ratio = GaugeMetricFamily(
            "backfill_active_progress_ratio",
            "How far along an active backfill is, 0 to 1: rows read / rows counted for a "
            "table backfill, runs ended / runs planned otherwise.",
            labels=ids,
        )
        for b in self._backfills:
            bid = str(b["id"])
            info.add_metric([bid, str(b["target_id"]), str(b["team_id"]), b["kind"], b["state"]], 1)
            rows.add_metric([bid], b["rows_processed_count"])
            ingested.add_metric([bid], b["rows_ingested_count"])
            if b.get("rows_initial_count") is not None:
                estimated.add_metric([bid], b["rows_initial_count"])
            planned.add_metric([bid], b["runs_total"])
            ended = 0
            for state in sorted(RUN_TERMINAL):
                n = b[f"runs_{state}"]
                ended += n
                runs.add_metric([bid, state], n)
            runs.add_metric([bid, "open"], max(0, b["runs_total"] - ended))
            ratio.add_metric([bid], progress_ratio(b))
        yield from (info, rows, ingested, estimated, planned, runs, ratio)


class BrokerGauges(Collector):
    """Messages waiting and consumers attached per queue, as RabbitMQ reports them."""

    def __init__(self, queues: Iterable[QueueStat] | None) -> None:
        self._queues = queues

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "backfill_broker_up",
            "1 when this scrape read the queue statistics from RabbitMQ in time, 0 when it "
            "could not (backfill_queue_* are then left out).",
        )
        up.add_metric([], 0 if self._queues is None else 1)
        yield up
        if self._queues is None:
            return
        labels = ["queue", "role"]
        messages = GaugeMetricFamily(
            "backfill_queue_messages",
            "Messages ready in the orchestrator's queues, by queue and role (commands, runs, "
            "dead: the dead-letter queue).",
            labels=labels,
        )
        consumers = GaugeMetricFamily(
            "backfill_queue_consumers",
            "Consumers attached to the orchestrator's queues (one per consuming worker).",
            labels=labels,
        )
        for role, name, ready, attached in self._queues:
            messages.add_metric([name, role], ready)
            consumers.add_metric([name, role], attached)
        yield messages
        yield consumers


class _Together(Collector):
    def __init__(self, *collectors: Collector) -> None:
        self._collectors = collectors

    def collect(self) -> Iterable[Metric]:
        for collector in self._collectors:
            yield from collector.collect()


async def _read(read: Callable[[], Awaitable[T]] | None, within: float, what: str) -> T | None:
    if read is None:
        return None
    try:
        async with asyncio.timeout(within):
            return await read()
    except Exception:
        # A scrape must answer even when Postgres or RabbitMQ does not; the gap shows as
        # the part's *_up gauge at 0.
        log.warning("metrics_read_failed", part=what, exc_info=True)
        return None


async def scrape(
    read_overview: Callable[[], Awaitable[Mapping[str, Any]]],
    *,
    read_active: Callable[[], Awaitable[Sequence[Mapping[str, Any]]]] | None = None,
    read_queues: Callable[[], Awaitable[Iterable[QueueStat]]] | None = None,
    read_within: float = SCRAPE_TIMEOUT_SECONDS,
) -> bytes:
    """The exposition text: this process's counters and the gauges read now, the reads
    side by side. A reader left out (None) leaves its gauges out, *_up included."""
    overview, active, queues = await asyncio.gather(
        _read(read_overview, read_within, "database"),
        _read(read_active, read_within, "active_backfills"),
        _read(read_queues, read_within, "broker"),
    )
    collectors: list[Collector] = [REGISTRY, DatabaseGauges(overview, datetime.now(UTC))]
    if read_active is not None:
        collectors.append(ActiveBackfillGauges(active))
    if read_queues is not None:
        collectors.append(BrokerGauges(queues))
    return generate_latest(_Together(*collectors))
