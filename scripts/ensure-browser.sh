#!/usr/bin/env bash
# Make sure a Chromium for the dashboard's browser test is installed (Debian's `chromium`).
#
# Playwright drives it through `executable_path`; its own browser download
# (`playwright install`) is never used. Present -> one line. Missing, and running as root
# with apt-get -> install it. Otherwise explain and exit 0: the browser test then skips
# and says why, and the rest of the suite still runs.
#
# Environment knobs (optional):
#   BACKFILL_CHROMIUM (/usr/bin/chromium)   the browser the test starts
#   ENSURE_BROWSER_NO_INSTALL=1             only check, never install
set -euo pipefail

CHROMIUM="${BACKFILL_CHROMIUM:-/usr/bin/chromium}"

say() { printf 'browser: %s\n' "$*"; }

if [ -x "$CHROMIUM" ]; then
    say "$CHROMIUM is installed"
    exit 0
fi
if [ "${ENSURE_BROWSER_NO_INSTALL:-0}" = 1 ]; then
    say "$CHROMIUM is missing; the dashboard's browser test will skip" >&2
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    say "$CHROMIUM is missing and cannot be installed here (needs root and apt-get);" >&2
    say "  install Debian's chromium package, or the dashboard's browser test will skip" >&2
    exit 0
fi
say "installing Debian's chromium (apt-get install chromium)"
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq && apt-get install -y -qq chromium >/dev/null; then
    say "installed $CHROMIUM"
else
    say "could not install chromium; the dashboard's browser test will skip" >&2
fi
