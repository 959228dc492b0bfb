#!/usr/bin/env bash
# Make sure `wrk` is on PATH, for the api_load benchmark's saturation figure.
# ENSURE_WRK_NO_INSTALL=1 only checks.
exec bash "$(dirname "$0")/ensure-debian-tool.sh" wrk wrk wrk \
    "without it api_load measures saturation with its Python generator, which reads 60-80 % of what wrk reads (the results' saturated_by says which ran)"
