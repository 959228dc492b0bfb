#!/usr/bin/env bash
# Make sure PostgreSQL and RabbitMQ answer at the addresses the app will use.
#
# Reads BACKFILL_DATABASE_URL and BACKFILL_AMQP_URL (same defaults as
# orchestrator/settings.py). For each service:
#   * reachable                  -> one line saying so;
#   * unreachable, local host, and a local server for that port is installed
#     but stopped                -> start it and wait (Postgres 30 s, RabbitMQ 90 s);
#   * anything else              -> explain on stderr, exit non-zero.
# Only host and port are ever printed, never credentials from the URLs.
#
# Environment knobs (all optional):
#   BACKFILL_DATABASE_URL, BACKFILL_AMQP_URL   what to check
#   PG_START_TIMEOUT (30), RABBITMQ_START_TIMEOUT (90)   seconds to wait after a start
#   ENSURE_SERVICES_NO_START=1                 only check, never start anything
set -euo pipefail

DATABASE_URL="${BACKFILL_DATABASE_URL:-postgresql://127.0.0.1:5432/backfill}"
AMQP_URL="${BACKFILL_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}"
PG_START_TIMEOUT="${PG_START_TIMEOUT:-30}"
RABBITMQ_START_TIMEOUT="${RABBITMQ_START_TIMEOUT:-90}"
NO_START="${ENSURE_SERVICES_NO_START:-0}"
PYTHON="${PYTHON:-python3}"

say() { printf 'services: %s\n' "$*"; }
warn() { printf 'services: %s\n' "$*" >&2; }

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    warn "error: $PYTHON is required (to parse the service URLs)"
    exit 2
fi

# --- helpers -----------------------------------------------------------------

# parse_url KIND URL -> prints "host<TAB>port<TAB>scheme". Never prints user or password.
parse_url() {
    "$PYTHON" - "$1" "$2" <<'PY'
import sys
from urllib.parse import parse_qs, urlsplit

kind, url = sys.argv[1], sys.argv[2]
try:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if kind == "pg":
        if scheme not in ("postgresql", "postgres"):
            raise ValueError(f"scheme must be postgresql:// (got {scheme or 'none'}://)")
        default_port = 5432
    else:
        if scheme not in ("amqp", "amqps"):
            raise ValueError(f"scheme must be amqp:// or amqps:// (got {scheme or 'none'}://)")
        default_port = 5671 if scheme == "amqps" else 5672
    # libpq allows several hosts (h1:p1,h2:p2); the first one is what we check.
    hostport = parts.netloc.rpartition("@")[2].split(",")[0]
    first = urlsplit("//" + hostport)
    host = first.hostname or ""
    port = first.port or default_port
    query = parse_qs(parts.query)
    if kind == "pg":
        if not host and query.get("host"):
            host = query["host"][0]
        if query.get("port") and not first.port:
            port = int(query["port"][0])
    host = host or "localhost"
except ValueError as exc:
    print(f"cannot parse URL: {exc}", file=sys.stderr)
    sys.exit(2)
print(f"{host}\t{port}\t{scheme}")
PY
}

# probe KIND HOST PORT -> exit 0 when a real server of that kind answers.
# KIND is pg, amqp or amqps. Postgres: prefer pg_isready (0 accepting,
# 1 starting/rejecting, 2 no answer). Otherwise speak just enough protocol to
# know it is the right kind of server (amqps: a TCP connect only).
probe() {
    local kind=$1 host=$2 port=$3
    if [[ $kind == pg ]] && command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h "$host" -p "$port" -t 3 </dev/null
        return
    fi
    "$PYTHON" - "$kind" "$host" "$port" <<'PY'
import socket, struct, sys

kind, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    if kind == "pg" and host.startswith("/"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(3)
        sock.connect(f"{host}/.s.PGSQL.{port}")
    else:
        sock = socket.create_connection((host, port), timeout=3)
    with sock:
        if kind == "pg":
            sock.sendall(struct.pack("!ii", 8, 80877103))  # SSLRequest
            ok = sock.recv(1) in (b"S", b"N")
        elif kind == "amqps":
            ok = True
        else:
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            # connection.start method frame, or a protocol header naming another version
            ok = sock.recv(1) in (b"\x01", b"A")
except OSError:
    ok = False
sys.exit(0 if ok else 2)
PY
}

is_local() {
    case "$1" in
        localhost | 127.* | ::1 | /*) return 0 ;;
        *) return 1 ;;
    esac
}

# Run a privileged command: directly as root, via passwordless sudo otherwise.
as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n -E "$@"
    else
        return 126
    fi
}

# wait_until KIND HOST PORT DEADLINE(epoch s) LABEL -> polls, with sparse progress.
wait_until() {
    local kind=$1 host=$2 port=$3 deadline=$4 label=$5 next_note
    next_note=$(($(date +%s) + 10))
    while ! probe "$kind" "$host" "$port" >/dev/null 2>&1; do
        if (($(date +%s) >= deadline)); then
            return 1
        fi
        if (($(date +%s) >= next_note)); then
            say "still waiting for $label at $host:$port ($((deadline - $(date +%s))) s left)"
            next_note=$(($(date +%s) + 10))
        fi
        sleep 1
    done
}

how_to_get() {
    local var=$1
    warn "  To get one: run 'docker compose up -d postgres rabbitmq' in the repository root,"
    warn "  or point $var at a reachable server."
}

FAILED=0
RABBIT_KIND=amqp
START_LOG=$(mktemp "${TMPDIR:-/tmp}/ensure-services.XXXXXX")
trap 'rm -f "$START_LOG"' EXIT

# --- PostgreSQL --------------------------------------------------------------

# Try to bring a local Debian cluster on $2 up. Sets REASON on failure.
start_local_postgres() {
    local host=$1 port=$2 line ver name status rc
    if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! command -v pg_lsclusters >/dev/null 2>&1 \
        || [[ ! -d /etc/postgresql ]]; then
        REASON="no local PostgreSQL server is installed (pg_ctlcluster and /etc/postgresql not found)"
        return 1
    fi
    line=$(pg_lsclusters --no-header 2>/dev/null | awk -v p="$port" '$3 == p { print; exit }')
    if [[ -z $line ]]; then
        local ports
        ports=$(pg_lsclusters --no-header 2>/dev/null | awk '{ printf "%s%s/%s:%s", sep, $1, $2, $3; sep=", " }')
        REASON="no local PostgreSQL cluster is configured for port $port (local clusters: ${ports:-none}); not starting anything"
        return 1
    fi
    read -r ver name _ status _ <<<"$line"
    if [[ $status != down ]]; then
        # Running. If it is only starting up or recovering, give it the deadline.
        rc=0
        pg_isready -q -h "$host" -p "$port" -t 3 </dev/null || rc=$?
        if [[ $rc -eq 1 ]]; then
            say "postgres cluster $ver/$name is starting up; waiting up to ${PG_START_TIMEOUT}s"
            if wait_until pg "$host" "$port" $(($(date +%s) + PG_START_TIMEOUT)) postgres; then
                return 0
            fi
        fi
        REASON="local cluster $ver/$name reports '$status' on port $port but does not answer at $host:$port (check listen_addresses in /etc/postgresql/$ver/$name/postgresql.conf)"
        return 1
    fi
    if [[ $NO_START == 1 ]]; then
        REASON="local cluster $ver/$name is down and ENSURE_SERVICES_NO_START=1"
        return 1
    fi
    say "postgres cluster $ver/$name is down; starting it"
    rc=0
    as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start \
        </dev/null >"$START_LOG" 2>&1 || rc=$?
    if [[ $rc -eq 126 ]]; then
        REASON="cluster $ver/$name is down and starting it needs root (run: sudo pg_ctlcluster --skip-systemctl-redirect $ver $name start)"
        return 1
    elif [[ $rc -ne 0 ]]; then
        REASON="pg_ctlcluster $ver $name start failed (exit $rc): $(tail -n 5 "$START_LOG" | tr '\n' ' ')"
        return 1
    fi
    if ! wait_until pg "$host" "$port" $(($(date +%s) + PG_START_TIMEOUT)) postgres; then
        REASON="started cluster $ver/$name but it did not accept connections at $host:$port within ${PG_START_TIMEOUT}s (see /var/log/postgresql/postgresql-$ver-$name.log)"
        return 1
    fi
}

ensure_postgres() {
    local parsed host port
    if ! parsed=$(parse_url pg "$DATABASE_URL" 2>&1); then
        warn "error: BACKFILL_DATABASE_URL: $parsed"
        FAILED=1
        return
    fi
    IFS=$'\t' read -r host port _ <<<"$parsed"
    if probe pg "$host" "$port" >/dev/null 2>&1; then
        say "postgres is reachable at $host:$port"
        return
    fi
    REASON="nothing answers there"
    if is_local "$host" && start_local_postgres "$host" "$port"; then
        say "postgres is reachable at $host:$port (started)"
        return
    fi
    warn "error: PostgreSQL is not reachable at $host:$port (from BACKFILL_DATABASE_URL): $REASON."
    how_to_get BACKFILL_DATABASE_URL
    FAILED=1
}

# --- RabbitMQ ----------------------------------------------------------------

# Ports the local node is configured to listen on for AMQP, space separated.
rabbit_local_ports() {
    local conf env_file ports="" p list
    conf="${RABBITMQ_CONFIG_FILE:-/etc/rabbitmq/rabbitmq}"
    [[ $conf == *.conf ]] || conf="$conf.conf"
    env_file="${RABBITMQ_CONF_ENV_FILE:-/etc/rabbitmq/rabbitmq-env.conf}"
    if [[ -r $conf ]]; then
        # listeners.tcp.default = 5672 / listeners.tcp.local = 127.0.0.1:5672
        ports=$(sed -n -E 's/^[[:space:]]*listeners\.tcp\.[^=[:space:]]+[[:space:]]*=[[:space:]]*([^[:space:]#]*:)?([0-9]+).*$/\2/p' "$conf" | tr '\n' ' ')
    fi
    if [[ -n ${RABBITMQ_NODE_PORT:-} ]]; then
        ports="$ports $RABBITMQ_NODE_PORT"
    elif [[ -r $env_file ]]; then
        p=$(sed -n -E 's/^[[:space:]]*(export[[:space:]]+)?(RABBITMQ_)?NODE_PORT=["]?([0-9]+).*/\3/p' "$env_file" | tail -n 1)
        ports="$ports $p"
    fi
    read -r -a list <<<"$ports" # split and trim
    if ((${#list[@]} == 0)); then
        list=(5672)
    fi
    echo "${list[*]}"
}

rabbitmq_node_running() {
    # rabbitmqctl answers within ~1 s either way; the timeout guards a wedged node.
    as_root timeout 20 rabbitmqctl -q status </dev/null >/dev/null 2>&1
}

# Try to bring the local node up. Sets REASON on failure.
start_local_rabbitmq() {
    local host=$1 port=$2 ports deadline rc
    if ! command -v rabbitmq-server >/dev/null 2>&1 || ! command -v rabbitmqctl >/dev/null 2>&1; then
        REASON="no local RabbitMQ server is installed (rabbitmq-server not found)"
        return 1
    fi
    ports=$(rabbit_local_ports)
    if [[ " $ports " != *" $port "* ]]; then
        REASON="the local RabbitMQ node is configured for port(s) $ports, not $port; not starting it"
        return 1
    fi
    deadline=$(($(date +%s) + RABBITMQ_START_TIMEOUT))
    if rabbitmq_node_running; then
        # Up (or booting) but not answering: let boot finish, then look once more.
        say "rabbitmq node is running but not answering at $host:$port; letting it finish booting"
        as_root timeout "$RABBITMQ_START_TIMEOUT" rabbitmqctl -q await_startup </dev/null >/dev/null 2>&1 || true
        if wait_until "$RABBIT_KIND" "$host" "$port" $(($(date +%s) + 5)) rabbitmq; then
            return 0
        fi
        REASON="a local RabbitMQ node is running but nothing answers AMQP at $host:$port (see 'rabbitmq-diagnostics listeners')"
        return 1
    fi
    if [[ $NO_START == 1 ]]; then
        REASON="the local RabbitMQ node is down and ENSURE_SERVICES_NO_START=1"
        return 1
    fi
    say "rabbitmq node is down; starting it (this takes a few seconds)"
    rc=0
    # Fully detach stdio, or a CI runner waiting for EOF on our output would hang.
    as_root rabbitmq-server -detached </dev/null >"$START_LOG" 2>&1 || rc=$?
    if [[ $rc -eq 126 ]]; then
        REASON="the local node is down and starting it needs root (run: sudo rabbitmq-server -detached)"
        return 1
    elif [[ $rc -ne 0 ]]; then
        REASON="rabbitmq-server -detached failed (exit $rc): $(tail -n 5 "$START_LOG" | tr '\n' ' ')"
        return 1
    fi
    # await_startup returns once the node has booted; it fails fast while the
    # node is not yet registered, so retry it until the deadline.
    local next_note=$(($(date +%s) + 15))
    while (($(date +%s) < deadline)); do
        if as_root timeout $((deadline - $(date +%s) + 1)) rabbitmqctl -q await_startup \
            </dev/null >/dev/null 2>&1; then
            break
        fi
        if (($(date +%s) >= next_note)); then
            say "still waiting for the rabbitmq node to boot ($((deadline - $(date +%s))) s left)"
            next_note=$(($(date +%s) + 15))
        fi
        sleep 2
    done
    if ! wait_until "$RABBIT_KIND" "$host" "$port" "$deadline" rabbitmq; then
        REASON="started the local node but it did not answer AMQP at $host:$port within ${RABBITMQ_START_TIMEOUT}s (see ${RABBITMQ_LOG_BASE:-/var/log/rabbitmq}/)"
        return 1
    fi
}

ensure_rabbitmq() {
    local parsed host port scheme
    if ! parsed=$(parse_url amqp "$AMQP_URL" 2>&1); then
        warn "error: BACKFILL_AMQP_URL: $parsed"
        FAILED=1
        return
    fi
    IFS=$'\t' read -r host port scheme <<<"$parsed"
    RABBIT_KIND=$scheme
    if probe "$RABBIT_KIND" "$host" "$port" >/dev/null 2>&1; then
        say "rabbitmq is reachable at $host:$port"
        return
    fi
    REASON="nothing answers AMQP there"
    if is_local "$host" && start_local_rabbitmq "$host" "$port"; then
        say "rabbitmq is reachable at $host:$port (started)"
        return
    fi
    warn "error: RabbitMQ is not reachable at $host:$port (from BACKFILL_AMQP_URL): $REASON."
    how_to_get BACKFILL_AMQP_URL
    FAILED=1
}

ensure_postgres
ensure_rabbitmq
exit "$FAILED"
