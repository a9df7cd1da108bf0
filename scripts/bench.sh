#!/usr/bin/env bash
# The benchmark of docs/benchmarks.md on this machine: installs etcd 3.4 (Debian's etcd-server
# and etcd-client) when missing, builds tenure and the benchmark in release, and runs it. Every
# argument goes to the benchmark (crates/harness/src/bin/bench/); the defaults are 20 rounds per
# measurement, the leases 250ms,500ms,1s,2s,5s, and results in target/bench (report.md,
# samples.csv, failover.svg).
#
#   scripts/bench.sh
#   scripts/bench.sh --rounds 15 --out target/bench
#   scripts/bench.sh --etcd false        # tenure only
#   scripts/bench.sh --leases 250ms,2s   # a shorter sweep
#   scripts/bench.sh --quick             # crash failover and graceful handover at 2s only
#   scripts/bench.sh --backends postgres,etcd   # the store backends instead of the quorum
#
# It takes about 14 minutes at 15 rounds and 19 at 20, most of it at the 5 s lease. Keep the
# machine otherwise idle for figures that mean something; the report records the load average
# during the run.
#
# With --backends (docs/benchmarks.md: Store backends) the benchmark measures the store
# backends, and `etcdctl lock` on the same etcd, in the PostgreSQL and etcd of
# scripts/stores.sh: those the TENURE_TEST_* variables name (`eval "$(scripts/stores.sh env)"`
# for servers already running), else `scripts/stores.sh start` installs and starts them. About
# 5 minutes at the defaults (2 and 3 nodes, 10 rounds, 30 s of steady load).
set -euo pipefail
cd "$(dirname "$0")/.."

wants_etcd=true
wants_stores=false
previous=""
for argument in "$@"; do
    if [ "$previous" = "--etcd" ] && [ "$argument" = "false" ]; then
        wants_etcd=false
    fi
    if [ "$argument" = "--etcd=false" ] || [ "$argument" = "--quick" ]; then
        wants_etcd=false
    fi
    if [ "$argument" = "--backends" ] || [ "${argument#--backends=}" != "$argument" ]; then
        wants_stores=true
    fi
    previous="$argument"
done

if [ "$wants_etcd" = true ] && ! { command -v etcd && command -v etcdctl; } >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "bench: etcd is missing; install etcd-server and etcd-client (3.4), or pass --etcd false" >&2
        exit 1
    fi
    echo "bench: installing etcd-server and etcd-client"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server etcd-client
fi
if [ "$wants_etcd" = true ]; then
    echo "bench: $(etcd --version | head -1)"
    # Debian's package may start a system etcd under systemd; the benchmark starts its own
    # cluster on free ports, but a second etcd costs CPU while it measures.
    if pgrep -x etcd >/dev/null 2>&1; then
        echo "bench: note: an etcd is already running on this machine (pid $(pgrep -x etcd | tr '\n' ' ')); it adds load" >&2
    fi
fi

if [ "$wants_stores" = true ] && [ -z "${TENURE_TEST_POSTGRES_URL:-}" ]; then
    echo "bench: starting the stores (scripts/stores.sh start)"
    eval "$(scripts/stores.sh start)"
fi

cargo build --release -p tenure-node --bin tenure
cargo build --release -p tenure-harness --bin bench
exec "${CARGO_TARGET_DIR:-target}/release/bench" "$@"
