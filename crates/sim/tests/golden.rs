//! Golden trace hashes: a run is a pure function of (seed, commit), so these hashes change
//! exactly when behaviour changes: the core, the driver, the simulated network and adversary,
//! the schedule generator or the oracle. A change that is meant to alter behaviour re-pins
//! them; any other change must leave them alone.
//!
//! To re-pin after an intended change: run this test, check that the new traces are what the
//! change should produce (`cargo run --release -p tenure-sim -- --reproduce SEED --nodes N
//! [--variant V] --trace FILE` prints the hash and writes the trace), and paste the table the
//! failure prints over `GOLDEN` below. Debug and release builds give the same hashes.

use tenure_sim::{run, ExpiryJudge, Setup, StoreVariant, Variant, DEFAULT_RUN_MS};

/// (seed, nodes, variant, trace hash): seeds whose schedules hold datagrams, hit crash points
/// and pin clocks at ±ρ, and one run of a broken variant that the adversary catches.
const GOLDEN: &[(u64, u8, &str, u64)] = &[
    (4, 3, "correct", 0xf6db_9812_0176_718c),
    (6, 3, "correct", 0x60a9_e9d9_83f1_3375),
    (8, 5, "correct", 0x5b90_6b02_e027_4ffb),
    (30, 3, "stale_ack", 0x551d_f7d9_6ca7_7e85),
];

#[test]
fn golden_seeds_keep_their_trace_hashes() {
    let actual: Vec<(u64, u8, &str, u64)> = GOLDEN
        .iter()
        .map(|(seed, nodes, variant, _)| {
            let variant: Variant = variant.parse().expect("a known variant");
            let outcome = run(&Setup::from_seed(*seed, *nodes, variant, DEFAULT_RUN_MS));
            (*seed, *nodes, variant.name(), outcome.trace_hash)
        })
        .collect();
    if actual != GOLDEN {
        let table: Vec<String> = actual
            .iter()
            .map(|(seed, nodes, variant, hash)| {
                let hex = format!("{hash:016x}");
                format!(
                    "    ({seed}, {nodes}, {variant:?}, 0x{}_{}_{}_{}),",
                    &hex[0..4],
                    &hex[4..8],
                    &hex[8..12],
                    &hex[12..16]
                )
            })
            .collect();
        panic!(
            "the trace hashes changed, so behaviour changed. If that is intended, re-pin:\n\
             const GOLDEN: &[(u64, u8, &str, u64)] = &[\n{}\n];",
            table.join("\n")
        );
    }
}

/// Store runs (protocol: Store leases): (seed, judge, store variant, trace hash), two nodes, a
/// minute each; the seed's own schedule of store faults. Re-pin as above, with `--core store
/// --judge J [--variant V] --nodes 2`.
const STORE_GOLDEN: &[(u64, &str, &str, u64)] = &[
    (1, "contenders", "correct", 0xfeb3_8caf_d08e_358c),
    (2, "store", "correct", 0x5b2a_f0f2_8fdf_76f4),
    (
        0,
        "contenders",
        "extend_on_ambiguous",
        0x01e3_09d1_589b_981e,
    ),
];

#[test]
fn golden_store_seeds_keep_their_trace_hashes() {
    let actual: Vec<(u64, &str, &str, u64)> = STORE_GOLDEN
        .iter()
        .map(|(seed, judge, variant, _)| {
            let judge_of = match *judge {
                "contenders" => ExpiryJudge::Contenders,
                _ => ExpiryJudge::Store,
            };
            let store_variant: StoreVariant = variant.parse().expect("a known store variant");
            let setup = Setup::store_from_seed(*seed, 2, judge_of, store_variant, DEFAULT_RUN_MS);
            (*seed, *judge, *variant, run(&setup).trace_hash)
        })
        .collect();
    if actual != STORE_GOLDEN {
        let table: Vec<String> = actual
            .iter()
            .map(|(seed, judge, variant, hash)| {
                let hex = format!("{hash:016x}");
                format!(
                    "    ({seed}, {judge:?}, {variant:?}, 0x{}_{}_{}_{}),",
                    &hex[0..4],
                    &hex[4..8],
                    &hex[8..12],
                    &hex[12..16]
                )
            })
            .collect();
        panic!(
            "the store runs' trace hashes changed, so behaviour changed. If that is intended, \
             re-pin:\nconst STORE_GOLDEN: &[(u64, &str, &str, u64)] = &[\n{}\n];",
            table.join("\n")
        );
    }
}
