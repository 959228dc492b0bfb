#!/usr/bin/env bash
# Make sure `wrk` is on PATH, for the api_load benchmark's saturation figure.
#
#   * already on PATH                       -> one line saying so;
#   * missing, apt-get available, and root  -> install Debian's `wrk` package;
#     (or passwordless sudo)
#   * anything else                         -> say how to get it and exit 0: api_load then
#                                              measures saturation with its Python load
#                                              generator, which reads 60-80 % of what wrk
#                                              reads, and its results say which tool ran.
# ENSURE_WRK_NO_INSTALL=1 only checks.
set -euo pipefail

say() { printf 'wrk: %s\n' "$*"; }

if command -v wrk >/dev/null 2>&1; then
    say "found $(command -v wrk)"
    exit 0
fi

hint="install Debian's 'wrk' package (apt-get install wrk) or build https://github.com/wg/wrk and put it on PATH"

if [ "${ENSURE_WRK_NO_INSTALL:-0}" = "1" ] || ! command -v apt-get >/dev/null 2>&1; then
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

say "not found; installing Debian's wrk package"
# Another apt run on the machine holds the lock for a while; wait for it rather than fail.
export DEBIAN_FRONTEND=noninteractive
if "${as_root[@]}" apt-get -o DPkg::Lock::Timeout=300 -qq update \
    && "${as_root[@]}" apt-get -o DPkg::Lock::Timeout=300 -qq install -y --no-install-recommends wrk >/dev/null; then
    say "installed $(command -v wrk)"
else
    say "install failed; $hint" >&2
fi
exit 0
