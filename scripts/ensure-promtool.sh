#!/usr/bin/env bash
# Make sure `promtool` is on PATH, for the test that checks deploy/prometheus/alerts.yaml.
# It comes with Debian's `prometheus` package. ENSURE_PROMTOOL_NO_INSTALL=1 only checks.
exec bash "$(dirname "$0")/ensure-debian-tool.sh" promtool promtool prometheus \
    "or put a promtool binary from https://prometheus.io/download/ on PATH; the alert rules' test skips without it"
