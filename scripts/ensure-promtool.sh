#!/usr/bin/env bash
# Make sure `promtool` is on PATH, for the test that checks deploy/prometheus/alerts.yaml.
#
#   * already on PATH                       -> one line saying so;
#   * missing, apt-get available, and root  -> install Debian's `prometheus` package
#     (or passwordless sudo)                   (promtool comes with it; its service is
#                                              not started by the install);
#   * anything else                         -> say how to get it and exit 0: the test
#                                              then skips with that reason.
# ENSURE_PROMTOOL_NO_INSTALL=1 only checks.
set -euo pipefail

say() { printf 'promtool: %s\n' "$*"; }

if command -v promtool >/dev/null 2>&1; then
    say "found $(command -v promtool)"
    exit 0
fi

hint="install Debian's 'prometheus' package (apt-get install prometheus) or put a promtool binary from https://prometheus.io/download/ on PATH"

if [ "${ENSURE_PROMTOOL_NO_INSTALL:-0}" = "1" ] || ! command -v apt-get >/dev/null 2>&1; then
    say "not found; $hint" >&2
    exit 0
fi

if [ "$(id -u)" = "0" ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    say "not found, and installing needs root; $hint" >&2
    exit 0
fi

say "not found; installing Debian's prometheus package"
# Another apt run on the machine holds the lock for a while; wait for it rather than fail.
export DEBIAN_FRONTEND=noninteractive
if "${as_root[@]}" apt-get -o DPkg::Lock::Timeout=300 -qq update \
    && "${as_root[@]}" apt-get -o DPkg::Lock::Timeout=300 -qq install -y --no-install-recommends prometheus >/dev/null; then
    say "installed $(command -v promtool)"
else
    say "install failed; $hint" >&2
fi
exit 0
