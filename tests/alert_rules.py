"""The metric names that PromQL expressions use (alert rules, dashboard queries)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"
ALERT_TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "backfill-orchestrator.json"

# Series Prometheus makes itself for every scrape target, not any process of ours.
PROMETHEUS_OWN = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})

_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"})
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_MATCHERS = re.compile(r"\{[^}]*\}")
_STRINGS = re.compile(r'"[^"]*"')
_RANGES = re.compile(r"\[[^\]]*\]")
_NAME = re.compile(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?")


def expressions(path: Path = ALERTS) -> dict[str, str]:
    doc = yaml.safe_load(path.read_text())
    return {
        rule.get("alert") or rule["record"]: rule["expr"]
        for group in doc["groups"]
        for rule in group["rules"]
    }


def metric_names(expr: str) -> set[str]:
    """Identifiers that are not functions, keywords, label names or label values."""
    text = _LABEL_LISTS.sub(" ", expr)
    text = _MATCHERS.sub(" ", text)
    text = _STRINGS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    names = set()
    for match in _NAME.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name in _KEYWORDS:
            continue
        names.add(name)
    return names


def rule_metric_names(path: Path = ALERTS) -> dict[str, set[str]]:
    """Metric name -> the alerts that use it."""
    used: dict[str, set[str]] = {}
    for alert, expr in expressions(path).items():
        for name in metric_names(expr):
            used.setdefault(name, set()).add(alert)
    return used
