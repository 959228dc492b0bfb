#!/usr/bin/env bash
# Make sure a tool from one of Debian's packages is installed, for a test or a benchmark
# that uses it. The ensure-*.sh scripts call this with what they need:
#
#   ensure-debian-tool.sh LABEL TOOL PACKAGE WITHOUT
#     LABEL    what the lines printed start with; ENSURE_<LABEL>_NO_INSTALL=1 only checks
#     TOOL     a command name looked up on PATH, or an absolute path to an executable
#     PACKAGE  the Debian package that brings it
#     WITHOUT  what happens when it is missing (said with the hint)
#
#   * already there                         -> one line saying so;
#   * missing, apt-get available, and root  -> install PACKAGE (services it brings are
#     (or passwordless sudo)                   not started by the install);
#   * anything else                         -> say how to get it and exit 0: what needs it
#                                              skips or falls back, and says so.
# It never fails the make target: a missing tool is a skipped test or a slower fallback,
# never a broken build.
set -euo pipefail

label="$1" tool="$2" package="$3" without="$4"

say() { printf '%s: %s\n' "$label" "$*"; }

found() {
    if [[ "$tool" == /* ]]; then [ -x "$tool" ] && echo "$tool"; else command -v "$tool"; fi
}

if where="$(found)"; then
    say "found $where"
    exit 0
fi

hint="install Debian's '$package' package (apt-get install $package); $without"
no_install_var="ENSURE_$(printf '%s' "$label" | tr '[:lower:]-' '[:upper:]_')_NO_INSTALL"

if [ "${!no_install_var:-0}" = "1" ] || ! command -v apt-get >/dev/null 2>&1; then
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

say "not found; installing Debian's $package package"
# Another apt run on the machine holds the lock for a while; wait for it rather than fail.
export DEBIAN_FRONTEND=noninteractive
if "${as_root[@]}" apt-get -o DPkg::Lock::Timeout=300 -qq update \
    && "${as_root[@]}" apt-get -o DPkg::Lock::Timeout=300 -qq install -y --no-install-recommends "$package" >/dev/null \
    && where="$(found)"; then
    say "installed $where"
else
    say "install failed; $hint" >&2
fi
exit 0
