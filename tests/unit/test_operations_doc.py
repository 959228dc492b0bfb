"""docs/operations.md lists every metric the orchestrator exports and every log event its
code writes, so an operator never meets one the guide does not explain."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from orchestrator.metrics import scrape

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "docs" / "operations.md").read_text()
LOG_CALL = re.compile(r"\blog\.(?:debug|info|warning|error|exception|critical)\(\s*\"([a-z_]+)\"")


def log_events() -> set[str]:
    events = set()
    for package in ("orchestrator", "api", "workers"):
        for path in (ROOT / package).rglob("*.py"):
            events.update(LOG_CALL.findall(path.read_text()))
    return events


def documented(name: str) -> bool:
    return f"`{name}`" in GUIDE


async def test_every_metric_is_documented() -> None:
    async def overview() -> dict[str, Any]:
        return {"backfills": {}, "runs": {}, "workers": [], "outbox": {"unsent": 0}}

    async def active() -> list[dict[str, Any]]:
        return []

    async def queues() -> list[tuple[str, str, int, int]]:
        return []

    text = (await scrape(overview, read_active=active, read_queues=queues)).decode()
    families = list(text_string_to_metric_families(text))
    assert len(families) > 30, "the scrape lost its metrics"
    missing = []
    for family in families:
        name = f"{family.name}_total" if family.type == "counter" else family.name
        # A counter's or histogram's creation time: the text format shows it as a family of
        # its own.
        base = name.removesuffix("_created")
        if base != name and (documented(base) or documented(f"{base}_total")):
            continue
        if not documented(name):
            missing.append(name)
    assert missing == [], f"docs/operations.md does not list: {missing}"


def test_every_log_event_is_documented() -> None:
    events = log_events()
    assert {"worker_started", "run_attempt_failed", "http_request"} <= events
    missing = sorted(e for e in events if not documented(e))
    assert missing == [], f"docs/operations.md does not list these log events: {missing}"
