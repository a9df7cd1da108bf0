#!/usr/bin/env bash
# Runs the chaos runner against a release build of tenure on a fresh machine: installs iproute2
# (scripts/chaos-deps.sh), builds, and passes every argument on. See docs/benchmarks.md: Chaos.
#
#   scripts/chaos.sh --seed 7 --duration 10m --nodes 3,5
#   scripts/chaos.sh --seed 7 --cycles 240
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/chaos-deps.sh
cargo build --release -p tenure-node --bin tenure
cargo build --release -p tenure-harness --bin chaos
exec "${CARGO_TARGET_DIR:-target}/release/chaos" "$@"
