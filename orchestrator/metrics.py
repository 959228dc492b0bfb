"""Prometheus metrics of one process, served at GET /metrics.

Counters and histograms live on REGISTRY, this process's own registry rather than
prometheus_client's global one, so nothing else that imports the library adds to it. Several
apps built in one process (tests do) share it: counters are per process, like the work they
count. The database-backed gauges are read at scrape time (`scrape`), bounded by a timeout;
when the read fails they are left out and `backfill_database_up` says 0.

Runs, commands and dead letters are counted where the worker does them: a process that serves
no HTTP (`backfill worker`) counts them too, but only a process with the API exposes them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orchestrator.domain.states import BackfillState, RunState

if TYPE_CHECKING:
    from orchestrator.messaging.topology import Topology

log = structlog.get_logger(__name__)

SCRAPE_TIMEOUT_SECONDS = 2.0

REGISTRY = CollectorRegistry()

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
    "Commands consumed, by type and outcome: applied, duplicate (already applied), dead_lettered.",
    ["type", "outcome"],
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


def command_handled(command_type: str | None, outcome: str) -> None:
    # Routing keys of refused messages can be anything `command.*` matches; one label for
    # the unknown ones keeps the series bounded.
    label = command_type if command_type in _COMMAND_TYPES else "other"
    COMMANDS.labels(type=label, outcome=outcome).inc()


def dead_lettered(topology: Topology, routing_key: str | None) -> None:
    # The routing key tells the queue: run.dispatch is bound to the runs queue, command.* to
    # the commands queue, and nothing else is consumed.
    queue = topology.runs if routing_key == "run.dispatch" else topology.commands
    MESSAGES_DEAD_LETTERED.labels(queue=queue).inc()


class DatabaseGauges(Collector):
    """Backfills and runs by state, and the outbox backlog, from `overview` (the shape of
    Repository.overview()) read just before: collect() is synchronous, the read is not."""

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


class _Together(Collector):
    def __init__(self, *collectors: Collector) -> None:
        self._collectors = collectors

    def collect(self) -> Iterable[Metric]:
        for collector in self._collectors:
            yield from collector.collect()


async def scrape(
    read_overview: Callable[[], Awaitable[Mapping[str, Any]]],
    *,
    read_within: float = SCRAPE_TIMEOUT_SECONDS,
) -> bytes:
    """The exposition text: this process's counters and the database gauges read now."""
    overview: Mapping[str, Any] | None
    try:
        async with asyncio.timeout(read_within):
            overview = await read_overview()
    except Exception:
        # A scrape must answer even when Postgres does not; the gap shows as database_up 0.
        log.warning("metrics_database_read_failed", exc_info=True)
        overview = None
    return generate_latest(_Together(REGISTRY, DatabaseGauges(overview, datetime.now(UTC))))
