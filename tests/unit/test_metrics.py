"""The metrics built from what a scrape reads: per-backfill series only for the backfills
given, progress from counters alone, queue and worker gauges, and the library's default
collectors on the process's own registry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator import metrics
from orchestrator.metrics import progress_ratio, scrape

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: bytes) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def backfill(**fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": 7,
        "target_id": 3,
        "team_id": 2,
        "kind": "table",
        "state": "running",
        "planning_done": True,
        "rows_initial_count": 1000,
        "rows_processed_count": 250,
        "rows_ingested_count": 240,
        "runs_total": 10,
        "runs_completed": 2,
        "runs_failed": 1,
        "runs_cancelled": 0,
    }
    row.update(fields)
    return row


async def overview() -> dict[str, Any]:
    return {
        "backfills": {"running": 1},
        "runs": {},
        "workers": [
            {"roles": ["planner", "executor"], "last_seen_at": NOW, "stopped_at": None},
            {"roles": ["planner", "executor"], "last_seen_at": NOW, "stopped_at": NOW},
            {"roles": ["relay"], "last_seen_at": NOW - timedelta(hours=1), "stopped_at": None},
        ],
        "outbox": {"unsent": 0, "oldest_unsent_at": None},
    }


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, 0.25),
        ({"rows_processed_count": 2000}, 1.0),  # rows added after the count
        ({"rows_initial_count": None}, 0.3),  # not counted yet: runs ended / planned
        ({"rows_initial_count": None, "planning_done": False}, 0.0),
        # Read as the API reads progress (orchestrator.domain.progress): cancelled runs were
        # never done, and nothing to do is all done.
        ({"kind": "date_range", "rows_initial_count": None, "runs_cancelled": 7}, 0.3),
        ({"kind": "date_range", "rows_initial_count": None, "runs_total": 0}, 1.0),
        ({"state": "completed", "rows_processed_count": 10}, 1.0),
    ],
)
def test_progress_comes_from_the_counters(fields: dict[str, Any], expected: float) -> None:
    assert progress_ratio(backfill(**fields)) == pytest.approx(expected)


async def test_each_active_backfill_gets_its_series_and_only_those() -> None:
    async def active() -> list[dict[str, Any]]:
        return [backfill(), backfill(id=8, kind="date_range", rows_initial_count=None)]

    got = parse(await scrape(overview, read_active=active))

    assert got[("backfill_active_backfills_up", ())] == 1
    info = {labels for name, labels in got if name == "backfill_active_info"}
    assert (
        ("backfill_id", "7"),
        ("kind", "table"),
        ("state", "running"),
        ("target_id", "3"),
        ("team_id", "2"),
    ) in info
    assert len(info) == 2
    assert got[("backfill_active_rows_processed", (("backfill_id", "7"),))] == 250
    assert got[("backfill_active_rows_ingested", (("backfill_id", "7"),))] == 240
    assert got[("backfill_active_rows_estimated", (("backfill_id", "7"),))] == 1000
    assert ("backfill_active_rows_estimated", (("backfill_id", "8"),)) not in got
    assert got[("backfill_active_runs_planned", (("backfill_id", "7"),))] == 10
    runs = {
        dict(labels)["state"]: v
        for (name, labels), v in got.items()
        if name == "backfill_active_runs" and dict(labels)["backfill_id"] == "7"
    }
    assert runs == {"completed": 2, "failed": 1, "cancelled": 0, "open": 7}
    assert got[("backfill_active_progress_ratio", (("backfill_id", "7"),))] == 0.25


async def test_no_active_backfill_means_no_per_backfill_series() -> None:
    async def none() -> list[dict[str, Any]]:
        return []

    got = parse(await scrape(overview, read_active=none))

    assert got[("backfill_active_backfills_up", ())] == 1
    assert not any(dict(labels).get("backfill_id") for _, labels in got)


async def test_a_failed_read_leaves_only_its_own_part_out() -> None:
    async def broken() -> list[Any]:
        raise ConnectionError("down")

    got = parse(await scrape(overview, read_active=broken, read_queues=broken))

    assert got[("backfill_active_backfills_up", ())] == 0
    assert got[("backfill_broker_up", ())] == 0
    assert got[("backfill_database_up", ())] == 1
    assert not any(name.startswith("backfill_queue_") for name, _ in got)


async def test_queue_messages_and_consumers_by_role() -> None:
    async def queues() -> list[tuple[str, str, int, int]]:
        return [
            ("commands", "bf.commands", 0, 2),
            ("runs", "bf.runs", 5, 2),
            ("dead", "bf.dead", 3, 0),
        ]

    got = parse(await scrape(overview, read_queues=queues))

    assert got[("backfill_broker_up", ())] == 1
    assert got[("backfill_queue_messages", (("queue", "bf.dead"), ("role", "dead")))] == 3
    assert got[("backfill_queue_messages", (("queue", "bf.runs"), ("role", "runs")))] == 5
    assert got[("backfill_queue_consumers", (("queue", "bf.runs"), ("role", "runs")))] == 2


async def test_workers_alive_count_fresh_heartbeats_of_running_processes() -> None:
    metrics_now = datetime.now(UTC)

    async def fresh() -> dict[str, Any]:
        data = await overview()
        for worker in data["workers"]:
            worker["last_seen_at"] += metrics_now - NOW
        return data

    got = parse(await scrape(fresh))

    # One live consumer; one that stopped; a relay whose heartbeat is an hour old.
    assert got[("backfill_workers_alive", (("role", "executor"),))] == 1
    assert got[("backfill_workers_alive", (("role", "planner"),))] == 1
    assert got[("backfill_workers_alive", (("role", "relay"),))] == 0


async def test_the_default_process_and_platform_collectors_are_on() -> None:
    got = parse(await scrape(overview))
    names = {name for name, _ in got}

    assert "python_info" in names
    assert any(name.startswith("python_gc_") for name in names)
    assert "process_cpu_seconds_total" in names  # Linux: read from /proc
    assert "process_start_time_seconds" in names


def test_commands_carry_their_source() -> None:
    def count(source: str) -> float:
        labels = {"type": "command.pause", "source": source, "outcome": "applied"}
        return metrics.REGISTRY.get_sample_value("backfill_commands_total", labels) or 0.0

    api_before, queue_before = count("api"), count("queue")

    metrics.command_handled("command.pause", "applied", source="api")
    metrics.command_handled("command.pause", "applied")

    assert (count("api"), count("queue")) == (api_before + 1, queue_before + 1)
