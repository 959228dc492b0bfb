#!/usr/bin/env bash
# Make sure a Chromium for the dashboard's browser test is installed (Debian's `chromium`).
#
# Playwright drives it through `executable_path`; its own browser download
# (`playwright install`) is never used.
#
# Environment knobs (optional):
#   BACKFILL_CHROMIUM (/usr/bin/chromium)   the browser the test starts
#   ENSURE_BROWSER_NO_INSTALL=1             only check, never install
exec bash "$(dirname "$0")/ensure-debian-tool.sh" browser "${BACKFILL_CHROMIUM:-/usr/bin/chromium}" chromium \
    "the dashboard's browser test skips without it, and the rest of the suite still runs"
