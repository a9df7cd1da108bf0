#!/bin/sh
# Runs the fuzz targets in fuzz/ (cargo fuzz, libFuzzer), one after another.
#
#   scripts/fuzz.sh                      # every target for 45 s: the CI smoke, 3 minutes in all
#   scripts/fuzz.sh 600 wire_open        # one target for 10 minutes
#   FUZZ_RUNS=10000000 scripts/fuzz.sh   # every target for 10^7 executions (docs/fuzzing.md)
#
# FUZZ_SANITIZER picks cargo fuzz's sanitizer: address (the default) or none, which runs about
# twice as fast; the fuzzed code has no unsafe code of its own, so the long runs use none.
#
# Installs cargo-fuzz if it is missing. cargo fuzz passes nightly-only -Z flags to rustc;
# RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them, so no nightly is needed. New inputs
# go to fuzz/corpus/TARGET (not committed; the committed seeds are in fuzz/seeds/TARGET), and a
# crash is saved to fuzz/artifacts/TARGET/ and ends the script with a non-zero status.
set -eu
cd "$(dirname "$0")/.."

seconds="${1:-45}"
[ $# -gt 0 ] && shift
targets="${*:-wire_open codec state_file config_file}"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

if [ -n "${FUZZ_RUNS:-}" ]; then
    limit="-runs=$FUZZ_RUNS"
else
    limit="-max_total_time=$seconds"
fi

cd fuzz
for target in $targets; do
    mkdir -p "corpus/$target"
    echo "== fuzz target $target ($limit)"
    cargo fuzz run --release --sanitizer "${FUZZ_SANITIZER:-address}" "$target" "corpus/$target" "seeds/$target" -- \
        "$limit" -print_final_stats=1
done
