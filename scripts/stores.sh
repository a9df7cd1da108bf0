#!/usr/bin/env bash
# The coordination stores that the backend tests of tenure-node run against
# (crates/node/tests/backend_stores.rs): a PostgreSQL 15 cluster and a one-member etcd 3.4, both
# on loopback only, with their data under target/stores/.
#
#   scripts/stores.sh [start]              install what is missing, start both (reuses running
#                                          ones), print the variables the tests read
#   scripts/stores.sh env                  print the variables only
#   scripts/stores.sh stop                 stop both
#   scripts/stores.sh restart-postgres [S] stop PostgreSQL, wait S seconds (default 0), start it
#   scripts/stores.sh restart-etcd [S]     the same for etcd
#   scripts/stores.sh stop-postgres | start-postgres | stop-etcd | start-etcd
#
# `eval "$(scripts/stores.sh)"` sets the variables in the calling shell; progress goes to
# stderr. The store tests run `scripts/stores.sh start` themselves when the variables are not
# set, so `cargo test --workspace` needs nothing beforehand. Every wait is bounded. Installing needs root (apt-get); a developer who is not root
# installs `postgresql` and `etcd-server` first, and the rest runs as that user.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
stores="${TENURE_STORES_DIR:-$root/target/stores}"

postgres_port="${TENURE_STORES_POSTGRES_PORT:-55432}"
etcd_client_port="${TENURE_STORES_ETCD_PORT:-52379}"
etcd_peer_port="${TENURE_STORES_ETCD_PEER_PORT:-52380}"
# Test credentials for a server that listens on loopback only.
postgres_password="tenure-test-password"
limited_password="tenure-limited-password"

postgres_bin=/usr/lib/postgresql/15/bin
postgres_data="$stores/postgres/data"
postgres_socket="$stores/postgres/socket"
postgres_log="$stores/postgres/postgres.log"
etcd_data="$stores/etcd/data"
etcd_log="$stores/etcd/etcd.log"
etcd_pid="$stores/etcd/etcd.pid"

# Seconds each wait may take at most.
ready_wait=30

say() { printf 'stores.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# ----- Installing ---------------------------------------------------------------------------

install_packages() {
    local missing=()
    [[ -x "$postgres_bin/postgres" ]] || missing+=(postgresql)
    command -v etcd >/dev/null || missing+=(etcd-server)
    [[ ${#missing[@]} -eq 0 ]] && return
    [[ $(id -u) -eq 0 ]] || die "missing ${missing[*]}: install them (apt-get install ${missing[*]}) or run this as root"
    say "installing ${missing[*]}"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
}

# Runs a command as the owner of the PostgreSQL cluster: `postgres` when we are root (the
# server refuses to run as root), ourselves otherwise.
as_postgres() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# ----- PostgreSQL ---------------------------------------------------------------------------

postgres_running() {
    [[ -f "$postgres_data/PG_VERSION" ]] && as_postgres "$postgres_bin/pg_ctl" -D "$postgres_data" status >/dev/null 2>&1
}

postgres_init() {
    [[ -f "$postgres_data/PG_VERSION" ]] && return
    say "creating a PostgreSQL cluster in $postgres_data"
    mkdir -p "$postgres_data" "$postgres_socket"
    if [[ $(id -u) -eq 0 ]]; then
        chown -R postgres:postgres "$stores/postgres"
        runuser -u postgres -- test -x "$postgres_data" \
            || die "the postgres user cannot reach $postgres_data: set TENURE_STORES_DIR to a directory it can reach"
    fi
    # Local socket connections are trusted (the setup below uses them); TCP needs a password.
    as_postgres "$postgres_bin/initdb" -D "$postgres_data" -U postgres --auth-local=trust \
        --auth-host=scram-sha-256 --encoding=UTF8 --no-instructions >&2
    cat >>"$postgres_data/postgresql.conf" <<EOF
# scripts/stores.sh: loopback only, on a port of its own.
listen_addresses = '127.0.0.1'
port = $postgres_port
unix_socket_directories = '$postgres_socket'
password_encryption = 'scram-sha-256'
EOF
}

postgres_start() {
    install_packages
    postgres_init
    if postgres_running; then
        say "PostgreSQL is running already"
    else
        say "starting PostgreSQL on 127.0.0.1:$postgres_port"
        as_postgres "$postgres_bin/pg_ctl" -D "$postgres_data" -l "$postgres_log" -w \
            -t "$ready_wait" start >&2 9>&- || die "PostgreSQL did not start; see $postgres_log"
    fi
    pg_isready -h 127.0.0.1 -p "$postgres_port" -t "$ready_wait" >/dev/null \
        || die "PostgreSQL does not answer on 127.0.0.1:$postgres_port; see $postgres_log"
    postgres_users
}

# The user and database the tests use, and a user without the right to create tables in a
# database it does not own (the test of that error).
postgres_users() {
    as_postgres psql -q -v ON_ERROR_STOP=1 -h "$postgres_socket" -p "$postgres_port" -U postgres \
        -d postgres >&2 <<EOF
SELECT 'CREATE ROLE tenure LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tenure')
\gexec
ALTER ROLE tenure PASSWORD '$postgres_password';
SELECT 'CREATE DATABASE tenure OWNER tenure'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'tenure')
\gexec
SELECT 'CREATE ROLE tenure_limited LOGIN'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tenure_limited')
\gexec
ALTER ROLE tenure_limited PASSWORD '$limited_password';
SELECT 'CREATE DATABASE tenure_limited OWNER postgres'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'tenure_limited')
\gexec
EOF
}

postgres_stop() {
    if postgres_running; then
        say "stopping PostgreSQL"
        as_postgres "$postgres_bin/pg_ctl" -D "$postgres_data" -m fast -w -t "$ready_wait" stop >&2
    fi
}

# ----- etcd ---------------------------------------------------------------------------------

etcd_healthy() {
    curl -fsS --max-time 2 "http://127.0.0.1:$etcd_client_port/health" 2>/dev/null | grep -q '"health":"true"'
}

etcd_running() {
    [[ -f "$etcd_pid" ]] && kill -0 "$(cat "$etcd_pid")" 2>/dev/null
}

etcd_start() {
    install_packages
    if etcd_running; then
        say "etcd is running already"
    else
        say "starting etcd on 127.0.0.1:$etcd_client_port"
        mkdir -p "$etcd_data"
        local url="http://127.0.0.1"
        setsid etcd --name tenure-test --data-dir "$etcd_data" \
            --listen-client-urls "$url:$etcd_client_port" \
            --advertise-client-urls "$url:$etcd_client_port" \
            --listen-peer-urls "$url:$etcd_peer_port" \
            --initial-advertise-peer-urls "$url:$etcd_peer_port" \
            --initial-cluster "tenure-test=$url:$etcd_peer_port" \
            --initial-cluster-state new --logger zap --log-outputs "$etcd_log" \
            </dev/null >>"$etcd_log" 2>&1 9>&- &
        echo $! >"$etcd_pid"
    fi
    local deadline=$((SECONDS + ready_wait))
    until etcd_healthy; do
        etcd_running || die "etcd exited; see $etcd_log"
        ((SECONDS < deadline)) || die "etcd is not healthy after ${ready_wait}s; see $etcd_log"
        sleep 0.2
    done
}

etcd_stop() {
    etcd_running || { rm -f "$etcd_pid"; return 0; }
    local pid
    pid="$(cat "$etcd_pid")"
    say "stopping etcd"
    kill "$pid"
    local deadline=$((SECONDS + ready_wait))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            say "etcd ignores SIGTERM; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        sleep 0.1
    done
    rm -f "$etcd_pid"
}

# ----- Commands -----------------------------------------------------------------------------

print_env() {
    echo "export TENURE_TEST_POSTGRES_URL='postgres://tenure:$postgres_password@127.0.0.1:$postgres_port/tenure?sslmode=disable'"
    echo "export TENURE_TEST_POSTGRES_LIMITED_URL='postgres://tenure_limited:$limited_password@127.0.0.1:$postgres_port/tenure_limited?sslmode=disable'"
    echo "export TENURE_TEST_ETCD_ENDPOINTS='127.0.0.1:$etcd_client_port'"
}

# Stops a store, waits `down` seconds, starts it again.
restart() {
    local store=$1 down=${2:-0}
    [[ $down =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "restart-$store: the down time must be seconds, not '$down'"
    "${store}_stop"
    sleep "$down"
    "${store}_start"
}

# One command at a time: test binaries that run in parallel may all ask for the stores at once.
# The servers are started with the lock's descriptor closed, so that they do not hold it.
mkdir -p "$stores"
exec 9>"$stores/.lock"
flock -w 300 9 || die "another stores.sh holds $stores/.lock for over 300 s"

case "${1:-start}" in
    start) postgres_start; etcd_start; print_env ;;
    env) print_env ;;
    stop) postgres_stop; etcd_stop ;;
    start-postgres) postgres_start ;;
    stop-postgres) postgres_stop ;;
    start-etcd) etcd_start ;;
    stop-etcd) etcd_stop ;;
    restart-postgres) restart postgres "${2:-0}" ;;
    restart-etcd) restart etcd "${2:-0}" ;;
    *) die "unknown command '$1': start, env, stop, restart-postgres [S], restart-etcd [S], start-/stop-postgres, start-/stop-etcd" ;;
esac
