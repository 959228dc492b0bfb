"""deploy/prometheus/alerts.yaml: valid for Prometheus (`promtool check rules`), firing when
and only when its unit tests say (`promtool test rules`), and naming only metrics the
orchestrator exports. promtool comes with Debian's `prometheus` package; `make test`
installs it (scripts/ensure-promtool.sh)."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.metrics import scrape
from tests.alert_rules import (
    ALERT_TESTS,
    ALERTS,
    DASHBOARD,
    PROMETHEUS_OWN,
    expressions,
    metric_names,
    rule_metric_names,
)

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not found: run scripts/ensure-promtool.sh (make test does), or install "
    "Debian's 'prometheus' package",
)


def exported_names(text: str) -> set[str]:
    """Every name a query may use: sample names, and for families without samples yet the
    names their samples will have."""
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(s.name for s in family.samples)
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names.update(f"{family.name}_{part}" for part in ("bucket", "count", "sum"))
    return names


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, timeout=60, check=False
    )


@needs_promtool
def test_the_rules_pass_promtool_check() -> None:
    result = run_promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_promtool
def test_the_rules_fire_as_their_unit_tests_expect() -> None:
    result = run_promtool("test", "rules", str(ALERT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_the_compose_scrape_config_loads_the_rules() -> None:
    result = run_promtool("check", "config", str(ALERTS.parent / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(expressions())} rules found" in result.stdout, result.stdout


def test_names_are_read_from_expressions_not_labels_or_functions() -> None:
    expr = (
        'max by (backfill_id) (changes(backfill_active_rows{state=~"a|b"}[30m])) > 0.5 '
        "unless on (backfill_id) rate(backfill_x_total[5m] offset 1h) and up"
    )
    assert metric_names(expr) == {"backfill_active_rows", "backfill_x_total", "up"}


async def exported() -> set[str]:
    now = datetime.now(UTC)

    async def overview() -> dict[str, Any]:
        return {
            "backfills": {},
            "runs": {},
            "workers": [{"roles": ["executor"], "last_seen_at": now, "stopped_at": None}],
            "outbox": {"unsent": 0, "oldest_unsent_at": None},
        }

    async def active() -> list[dict[str, Any]]:
        return []  # the families are exported even with no active backfill

    async def queues() -> list[tuple[str, str, int, int]]:
        return [("dead", "b.dead", 0, 0)]

    text = (await scrape(overview, read_active=active, read_queues=queues)).decode()
    return exported_names(text)


async def test_every_metric_the_rules_name_is_exported() -> None:
    names = await exported()

    used = rule_metric_names()
    assert used, "no metric found in the rules"
    missing = {n: a for n, a in used.items() if n not in names and n not in PROMETHEUS_OWN}
    assert missing == {}, f"the rules name metrics nothing exports: {missing}"


async def test_every_metric_the_dashboard_queries_is_exported() -> None:
    names = await exported()
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    assert len(queries) > 10

    used = {name for expr in queries for name in metric_names(expr)}
    assert used - names == set(), f"the dashboard queries metrics nothing exports: {used - names}"
