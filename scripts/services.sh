#!/usr/bin/env bash
# Throwaway Redis, PostgreSQL and PgBouncer for the tests (loopback only, random
# free ports, everything in one temp dir, nothing of the system services used).
#
# As a library (what scripts/test.sh does):
#   source scripts/services.sh
#   perf_services_install          # apt-get what is missing (Debian), else no-op
#   trap perf_services_stop EXIT
#   perf_services_start            # exports REDIS_URL, DATABASE_URL, PGBOUNCER_URL, ...
#
# From a developer shell (services keep running after the command returns):
#   eval "$(scripts/services.sh start)"   # human messages go to stderr, exports to stdout
#   cargo test --workspace --all-features
#   scripts/services.sh env               # print the export lines again (uses $PERF_SERVICES_DIR)
#   scripts/services.sh stop              # stops the instance in $PERF_SERVICES_DIR
#   unset PERF_SERVICES_DIR               # optional: `stop` cannot unset your shell's variables
# `stop` and `env` also accept the dir as an argument: scripts/services.sh stop /tmp/perf-services.XXXX
#
# The superuser password is the fixed test password below; human messages show it
# as ***, only the machine-readable export lines (which must work with eval) carry it.
#
# Safe to source from a `set -euo pipefail` script: functions check their own
# errors and return non-zero instead of relying on the caller's options.

PERF_PG_PASSWORD=perf_test_pw
PERF_PG_DB=perf_test

_perf_log() { printf 'services: %s\n' "$*" >&2; }

# Finds a binary in PATH or the sbin dirs (pgbouncer lives in /usr/sbin, which a
# non-root PATH often lacks).
_perf_find_bin() {
    local name=$1 d
    if command -v "$name" >/dev/null 2>&1; then
        command -v "$name"
        return 0
    fi
    for d in /usr/sbin /usr/bin /usr/local/sbin /usr/local/bin /sbin; do
        if [ -x "$d/$name" ]; then
            printf '%s\n' "$d/$name"
            return 0
        fi
    done
    return 1
}

# Newest /usr/lib/postgresql/<ver>/bin that has the server tools (Debian keeps
# them out of PATH).
_perf_pg_bin() {
    local d found=""
    while IFS= read -r d; do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ] \
            && [ -x "$d/psql" ] && [ -x "$d/createdb" ]; then
            found=$d
        fi
    done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V)
    [ -n "$found" ] || return 1
    printf '%s\n' "$found"
}

# Runs a command as the postgres user when we are root (PostgreSQL and PgBouncer
# refuse to run as root), as ourselves otherwise. cd first: postgres may not be
# allowed into the caller's cwd.
_perf_as_pg() {
    local dir=$1
    shift
    if [ "$(id -u)" = 0 ]; then
        (cd "$dir" && runuser -u postgres -- "$@")
    else
        (cd "$dir" && "$@")
    fi
}

# True if pid is alive (not a zombie: PID 1 here may not reap) and is `name`.
_perf_pid_is() {
    local pid=$1 name=$2 comm state
    [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
    [ "$comm" = "$name" ] && [ "$state" != Z ]
}

# SIGTERM, wait up to 5 s, then SIGKILL.
_perf_kill_pid() {
    local pid=$1 name=$2 _
    _perf_pid_is "$pid" "$name" || return 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        _perf_pid_is "$pid" "$name" || return 0
        sleep 0.1
    done
    _perf_log "$name (pid $pid) ignored SIGTERM, killing"
    kill -9 "$pid" 2>/dev/null || true
}

_perf_pidfile_pid() {
    [ -f "$1" ] || return 1
    head -n 1 "$1" 2>/dev/null | tr -dc '0-9'
}

# Polls `cmd...` until it succeeds or `secs` pass.
_perf_wait_for() {
    local secs=$1
    shift
    local deadline=$((SECONDS + secs))
    while ! "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

_perf_redis_pong() {
    [ "$("$1" -h 127.0.0.1 -p "$2" ping 2>/dev/null)" = PONG ]
}

_perf_psql_ok() {
    # $1 psql, $2 port; explicit everything so a developer's PG* variables do not interfere.
    PGPASSWORD=$PERF_PG_PASSWORD PGSSLMODE=disable PGCONNECT_TIMEOUT=3 \
        "$1" -X -q -At -h 127.0.0.1 -p "$2" -U postgres -d "$PERF_PG_DB" -c 'select 1' >/dev/null 2>&1
}

_perf_fail() {
    # $1 message, $2 log to show
    _perf_log "ERROR: $1"
    if [ -n "${2:-}" ] && [ -f "$2" ]; then
        _perf_log "last lines of $2:"
        tail -n 30 "$2" >&2 || true
    fi
    return 1
}

perf_services_install() {
    local missing=() sudo=()
    { _perf_find_bin redis-server && _perf_find_bin redis-cli; } >/dev/null || missing+=(redis-server)
    _perf_pg_bin >/dev/null || missing+=(postgresql)
    _perf_find_bin pgbouncer >/dev/null || missing+=(pgbouncer)
    _perf_find_bin promtool >/dev/null || missing+=(prometheus)
    command -v python3 >/dev/null 2>&1 || missing+=(python3)
    # The HTML report test loads the page in headless Chromium; fonts are
    # only a recommendation of the package, and text needs one.
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    [ -d /usr/share/fonts/truetype/liberation ] || [ -d /usr/share/fonts/truetype/dejavu ] \
        || missing+=(fonts-liberation)
    [ "${#missing[@]}" -eq 0 ] && return 0

    if ! command -v apt-get >/dev/null 2>&1; then
        _perf_fail "missing ${missing[*]} and no apt-get: install them by hand"
        return 1
    fi
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 || { _perf_fail "missing ${missing[*]}; need root or sudo to install"; return 1; }
        sudo=(sudo)
    fi
    _perf_log "installing ${missing[*]} with apt-get"
    # Lock timeout: wait for another apt/dpkg run instead of failing on the lock.
    # Output to stderr so `eval "$(scripts/services.sh start)"` only sees exports.
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 \
        || { _perf_fail "apt-get update failed"; return 1; }
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "${missing[@]}" >&2 \
        || { _perf_fail "apt-get install ${missing[*]} failed"; return 1; }

    { _perf_find_bin redis-server && _perf_find_bin redis-cli && _perf_pg_bin \
        && _perf_find_bin pgbouncer && _perf_find_bin promtool && command -v chromium; } >/dev/null \
        || { _perf_fail "still missing a tool after apt-get install ${missing[*]}"; return 1; }
}

# Three distinct free loopback ports: all sockets are bound at once so the
# kernel cannot hand out the same port twice.
_perf_free_ports() {
    python3 -c '
import socket
socks = []
for _ in range(3):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
'
}

perf_services_start() {
    local dir redis_server redis_cli pg_bin pgbouncer promtool ports redis_port pg_port bouncer_port
    redis_server=$(_perf_find_bin redis-server) || { _perf_fail "redis-server not found (run perf_services_install)"; return 1; }
    redis_cli=$(_perf_find_bin redis-cli) || { _perf_fail "redis-cli not found"; return 1; }
    pg_bin=$(_perf_pg_bin) || { _perf_fail "no PostgreSQL server under /usr/lib/postgresql/*/bin"; return 1; }
    pgbouncer=$(_perf_find_bin pgbouncer) || { _perf_fail "pgbouncer not found"; return 1; }
    promtool=$(_perf_find_bin promtool) || { _perf_fail "promtool not found"; return 1; }

    dir=$(mktemp -d /tmp/perf-services.XXXXXX) || { _perf_fail "mktemp failed"; return 1; }
    # Export at once so perf_services_stop can clean up if anything below fails.
    export PERF_SERVICES_DIR=$dir
    # Marker: stop only rm -rf's dirs that carry it.
    : >"$dir/.perf-services"
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || { _perf_fail "no postgres system user (install the postgresql package)"; return 1; }
        chown postgres: "$dir" || { _perf_fail "chown postgres $dir failed"; return 1; }
    fi

    ports=$(_perf_free_ports) || { _perf_fail "could not pick free ports (python3)"; return 1; }
    read -r redis_port pg_port bouncer_port <<<"$ports"
    [ -n "${bouncer_port:-}" ] || { _perf_fail "could not pick free ports: '$ports'"; return 1; }

    # Written before starting anything: `stop` needs only PERF_SERVICES_DIR.
    cat >"$dir/ports.env" <<EOF
PERF_REDIS_PORT=$redis_port
PERF_PG_PORT=$pg_port
PERF_PGBOUNCER_PORT=$bouncer_port
PERF_PG_BIN=$pg_bin
PERF_REDIS_SERVER_BIN=$redis_server
PROMTOOL=$promtool
EOF

    # --- Redis (fine as root; pure in-memory) ---
    mkdir -p "$dir/redis"
    "$redis_server" --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
        --daemonize yes --dir "$dir/redis" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
        || { _perf_fail "redis-server failed to start" "$dir/redis.log"; return 1; }
    _perf_wait_for 20 _perf_redis_pong "$redis_cli" "$redis_port" \
        || { _perf_fail "redis on port $redis_port did not answer PING within 20 s" "$dir/redis.log"; return 1; }

    # --- PostgreSQL (as postgres; it refuses root) ---
    printf '%s\n' "$PERF_PG_PASSWORD" >"$dir/pwfile"
    chmod 600 "$dir/pwfile"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$dir/pwfile"; fi
    # -N: no fsync, it is a throwaway cluster; C locale so a developer's LANG cannot break initdb.
    _perf_as_pg "$dir" "$pg_bin/initdb" -D "$dir/pg" -U postgres -N -E UTF8 --locale=C \
        --auth-local=trust --auth-host=scram-sha-256 --pwfile="$dir/pwfile" >"$dir/initdb.log" 2>&1 \
        || { _perf_fail "initdb failed" "$dir/initdb.log"; return 1; }
    rm -f "$dir/pwfile"
    _perf_as_pg "$dir" "$pg_bin/pg_ctl" -D "$dir/pg" -l "$dir/pg.log" -w -t 60 \
        -o "-p $pg_port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >/dev/null 2>&1 \
        || { _perf_fail "PostgreSQL failed to start on port $pg_port" "$dir/pg.log"; return 1; }
    # Unix socket + trust: no password needed to create the database.
    _perf_as_pg "$dir" "$pg_bin/createdb" -h "$dir" -p "$pg_port" -U postgres "$PERF_PG_DB" >&2 \
        || { _perf_fail "createdb $PERF_PG_DB failed" "$dir/pg.log"; return 1; }
    _perf_psql_ok "$pg_bin/psql" "$pg_port" \
        || { _perf_fail "cannot log in to PostgreSQL over TCP with the password" "$dir/pg.log"; return 1; }

    # --- PgBouncer (as postgres; it refuses root) ---
    # Plain-text password in auth_file: PgBouncer needs it (or the SCRAM secret)
    # to do SCRAM both towards the client and towards the server.
    printf '"postgres" "%s"\n' "$PERF_PG_PASSWORD" >"$dir/userlist.txt"
    chmod 600 "$dir/userlist.txt"
    # ignore_startup_parameters: sqlx sends extra_float_digits=2 at connect and
    # PgBouncer rejects startup parameters it does not track.
    cat >"$dir/pgbouncer.ini" <<EOF
[databases]
$PERF_PG_DB = host=127.0.0.1 port=$pg_port dbname=$PERF_PG_DB

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bouncer_port
unix_socket_dir = $dir
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
admin_users = postgres
pool_mode = transaction
max_client_conn = 200
default_pool_size = 20
server_reset_query = DISCARD ALL
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
EOF
    if [ "$(id -u)" = 0 ]; then chown postgres: "$dir/userlist.txt" "$dir/pgbouncer.ini"; fi
    _perf_as_pg "$dir" "$pgbouncer" -d "$dir/pgbouncer.ini" >&2 \
        || { _perf_fail "pgbouncer failed to start" "$dir/pgbouncer.log"; return 1; }
    _perf_wait_for 20 _perf_psql_ok "$pg_bin/psql" "$bouncer_port" \
        || { _perf_fail "no query through pgbouncer on port $bouncer_port within 20 s" "$dir/pgbouncer.log"; return 1; }

    export PERF_REDIS_PORT=$redis_port PERF_PG_PORT=$pg_port PERF_PGBOUNCER_PORT=$bouncer_port
    export PERF_PG_BIN=$pg_bin PERF_REDIS_SERVER_BIN=$redis_server PROMTOOL=$promtool
    export REDIS_URL="redis://127.0.0.1:$redis_port/0"
    export DATABASE_URL="postgres://postgres:$PERF_PG_PASSWORD@127.0.0.1:$pg_port/$PERF_PG_DB"
    export PGBOUNCER_URL="postgres://postgres:$PERF_PG_PASSWORD@127.0.0.1:$bouncer_port/$PERF_PG_DB"

    _perf_log "redis      on 127.0.0.1:$redis_port  REDIS_URL=$REDIS_URL"
    _perf_log "postgres   on 127.0.0.1:$pg_port  DATABASE_URL=postgres://postgres:***@127.0.0.1:$pg_port/$PERF_PG_DB"
    _perf_log "pgbouncer  on 127.0.0.1:$bouncer_port  PGBOUNCER_URL=postgres://postgres:***@127.0.0.1:$bouncer_port/$PERF_PG_DB"
    _perf_log "promtool   $PROMTOOL; logs and data in $dir"
}

# Reads <dir>/ports.env into _perf_cfg_* variables (parsed, not sourced, so a
# stray file cannot run code).
_perf_read_ports() {
    local dir=$1 key value
    _perf_cfg_PERF_REDIS_PORT="" _perf_cfg_PERF_PG_PORT="" _perf_cfg_PERF_PGBOUNCER_PORT=""
    _perf_cfg_PERF_PG_BIN="" _perf_cfg_PERF_REDIS_SERVER_BIN="" _perf_cfg_PROMTOOL=""
    [ -f "$dir/ports.env" ] || return 1
    while IFS='=' read -r key value; do
        case $key in
            PERF_REDIS_PORT | PERF_PG_PORT | PERF_PGBOUNCER_PORT | PERF_PG_BIN | PERF_REDIS_SERVER_BIN | PROMTOOL)
                printf -v "_perf_cfg_$key" '%s' "$value"
                ;;
        esac
    done <"$dir/ports.env"
}

# Every step is guarded and never aborts the rest: this runs from EXIT traps,
# possibly after a half-finished start, possibly twice.
perf_services_stop() {
    local dir=${1:-${PERF_SERVICES_DIR:-}} pid pg_bin redis_cli
    [ -n "$dir" ] || return 0
    if [ ! -d "$dir" ]; then
        [ "$dir" = "${PERF_SERVICES_DIR:-}" ] && unset PERF_SERVICES_DIR
        return 0
    fi
    if [ ! -f "$dir/.perf-services" ]; then
        _perf_log "$dir is not a perf services dir, leaving it alone"
        return 0
    fi
    _perf_read_ports "$dir" || true

    # PgBouncer first, so it is not left holding connections to a dead server.
    pid=$(_perf_pidfile_pid "$dir/pgbouncer.pid" 2>/dev/null) || pid=""
    _perf_kill_pid "$pid" pgbouncer || true

    if [ -f "$dir/pg/postmaster.pid" ]; then
        pg_bin=${_perf_cfg_PERF_PG_BIN:-}
        [ -n "$pg_bin" ] || pg_bin=$(_perf_pg_bin 2>/dev/null) || pg_bin=""
        if [ -n "$pg_bin" ]; then
            _perf_as_pg "$dir" "$pg_bin/pg_ctl" -D "$dir/pg" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
        fi
        # pg_ctl missing or failed: kill the postmaster itself.
        pid=$(_perf_pidfile_pid "$dir/pg/postmaster.pid" 2>/dev/null) || pid=""
        _perf_kill_pid "$pid" postgres || true
    fi

    pid=$(_perf_pidfile_pid "$dir/redis.pid" 2>/dev/null) || pid=""
    if [ -n "${_perf_cfg_PERF_REDIS_PORT:-}" ] && _perf_pid_is "$pid" redis-server; then
        redis_cli=$(_perf_find_bin redis-cli 2>/dev/null) || redis_cli=""
        if [ -n "$redis_cli" ]; then
            timeout 10 "$redis_cli" -h 127.0.0.1 -p "$_perf_cfg_PERF_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
        fi
    fi
    # Still alive (or shutdown not possible): signal it.
    _perf_kill_pid "$pid" redis-server || true

    rm -rf "$dir" 2>/dev/null || _perf_log "could not remove $dir"
    if [ "$dir" = "${PERF_SERVICES_DIR:-}" ]; then
        unset PERF_SERVICES_DIR PERF_REDIS_PORT PERF_PG_PORT PERF_PGBOUNCER_PORT \
            REDIS_URL DATABASE_URL PGBOUNCER_URL
    fi
    _perf_log "stopped services in $dir"
    return 0
}

# Prints `export ...` lines for the instance in <dir> (default $PERF_SERVICES_DIR).
perf_services_env() {
    local dir=${1:-${PERF_SERVICES_DIR:-}}
    if [ -z "$dir" ] || [ ! -f "$dir/ports.env" ]; then
        _perf_fail "no running services: set PERF_SERVICES_DIR or pass the dir"
        return 1
    fi
    _perf_read_ports "$dir" || return 1
    printf 'export %s=%q\n' \
        PERF_SERVICES_DIR "$dir" \
        PERF_REDIS_PORT "$_perf_cfg_PERF_REDIS_PORT" \
        PERF_PG_PORT "$_perf_cfg_PERF_PG_PORT" \
        PERF_PGBOUNCER_PORT "$_perf_cfg_PERF_PGBOUNCER_PORT" \
        PERF_PG_BIN "$_perf_cfg_PERF_PG_BIN" \
        PERF_REDIS_SERVER_BIN "$_perf_cfg_PERF_REDIS_SERVER_BIN" \
        PROMTOOL "$_perf_cfg_PROMTOOL" \
        REDIS_URL "redis://127.0.0.1:$_perf_cfg_PERF_REDIS_PORT/0" \
        DATABASE_URL "postgres://postgres:$PERF_PG_PASSWORD@127.0.0.1:$_perf_cfg_PERF_PG_PORT/$PERF_PG_DB" \
        PGBOUNCER_URL "postgres://postgres:$PERF_PG_PASSWORD@127.0.0.1:$_perf_cfg_PERF_PGBOUNCER_PORT/$PERF_PG_DB"
}

# Direct execution: developer entry point.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    case "${1:-}" in
        start)
            perf_services_install
            # The services outlive this child shell; on failure clean up what was started.
            if ! perf_services_start; then
                perf_services_stop || true
                exit 1
            fi
            perf_services_env
            _perf_log "stop with: scripts/services.sh stop"
            ;;
        stop)
            [ -n "${2:-${PERF_SERVICES_DIR:-}}" ] || { _perf_log "PERF_SERVICES_DIR is not set: nothing to stop"; exit 0; }
            perf_services_stop "${2:-}"
            ;;
        env)
            perf_services_env "${2:-}"
            ;;
        install)
            perf_services_install
            ;;
        *)
            echo "usage: $0 start|stop [dir]|env [dir]|install   (eval \"\$($0 start)\")" >&2
            exit 2
            ;;
    esac
fi
