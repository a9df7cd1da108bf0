#!/usr/bin/env bash
# The real-client test (docs/dagster.md: The real-client test): three tenure nodes supervising
# the real `dagster-daemon run` of examples/dagster/, on a throwaway PostgreSQL, through a
# SIGKILL, a SIGSTOP and a SIGTERM of the leader's tenure, a SIGSTOP of the daemon itself and a
# restart of PostgreSQL; checked from outside tenure by the harness's `dagster` binary.
#
#   scripts/dagster-test.sh            # short mode, each fault once (CI, about 6 minutes)
#   scripts/dagster-test.sh --full     # six rounds of every fault, 30 faults (about 35 minutes)
#   scripts/dagster-test.sh --keep     # keep the cluster's logs and state
#
# On a fresh Debian machine, as root: installs PostgreSQL from Debian's packages and pinned
# dagster and dagster-postgres into a virtualenv under target/, starts PostgreSQL as the user
# postgres on a free loopback port in a temporary directory, and removes all of it on exit,
# also on failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=short
keep=()
for argument in "$@"; do
    case "$argument" in
        --short) mode=short ;;
        --full) mode=full ;;
        --keep) keep=(--keep) ;;
        *) echo "usage: $0 [--short|--full] [--keep]" >&2; exit 2 ;;
    esac
done

# Pinned: a known matching pair, and the SQLAlchemy they work with (2.1 switched PostgreSQL to
# psycopg 3, which dagster-postgres does not install).
DAGSTER_VERSION=1.13.27
DAGSTER_POSTGRES_VERSION=0.29.27
SQLALCHEMY_VERSION=2.0.58

target="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TARGET_DIR="$target"

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v psql >/dev/null; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql
fi
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)

venv="$target/dagster-venv"
if ! "$venv/bin/python" -c "import dagster, dagster_postgres, sqlalchemy; \
        assert dagster.__version__ == '$DAGSTER_VERSION'; \
        assert sqlalchemy.__version__ == '$SQLALCHEMY_VERSION'" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "dagster==$DAGSTER_VERSION" "dagster-postgres==$DAGSTER_POSTGRES_VERSION" \
        "sqlalchemy==$SQLALCHEMY_VERSION"
fi

work=$(mktemp -d /tmp/tenure-dagster-pg-XXXXXX)
chmod 0755 "$work"
chown postgres "$work"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_postgres() { su postgres -s /bin/sh -c "$1"; }
pg_options="-p $port -k $work -c listen_addresses=127.0.0.1"

cleanup() {
    status=$?
    as_postgres "$pg_bin/pg_ctl -D $work/data -m immediate -w stop" >/dev/null 2>&1 || true
    if [ "${#keep[@]}" -gt 0 ]; then
        echo "kept PostgreSQL's directory: $work"
    else
        rm -rf "$work"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

as_postgres "$pg_bin/initdb -D $work/data -A trust -U postgres" >"$work/initdb.log"
as_postgres "$pg_bin/pg_ctl -D $work/data -o '$pg_options' -l $work/postgres.log -w start" >/dev/null
export PGHOST=127.0.0.1 PGPORT="$port" PGUSER=postgres PGDATABASE=dagster
psql -q -d postgres -c 'CREATE DATABASE dagster'

export DAGSTER_HOME="$work/dagster_home"
mkdir -p "$DAGSTER_HOME"
cp examples/dagster/dagster.yaml "$DAGSTER_HOME/"
export DAGSTER_PG_HOST=127.0.0.1 DAGSTER_PG_PORT="$port" DAGSTER_PG_USER=postgres \
    DAGSTER_PG_PASSWORD=unused DAGSTER_PG_DB=dagster
export PATH="$venv/bin:$PATH"
# Once, before any daemon starts: two first starts racing on an empty database is how a fresh
# instance gets corrupted (docs/dagster.md).
dagster instance migrate >"$work/migrate.log" 2>&1

cargo build --release -p tenure-node --bin tenure
cargo build --release -p tenure-harness --bin dagster
export TENURE_BIN="$target/release/tenure"

# A backstop above the harness's own bounded waits.
case "$mode" in
    short) limit=20m ;;
    full) limit=90m ;;
esac
timeout --signal=TERM --kill-after=30s "$limit" "$target/release/dagster" --mode "$mode" \
    --recipe examples/dagster "${keep[@]}" \
    --pg-restart "su postgres -s /bin/sh -c \"$pg_bin/pg_ctl -D $work/data -o '$pg_options' -m fast -w restart\" >/dev/null"
