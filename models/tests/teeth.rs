//! The checker has teeth: on one small configuration the correct core passes with pinned state
//! counts (breadth and depth first), and every broken variant of the core in
//! `Variant::BROKEN` is caught, along a pinned trace (DESIGN: "A checker that never fails
//! proves nothing").
//!
//! The traces live in `models/tests/discoveries/<variant>.txt`, one action per line: the
//! shortest counterexample that a single-threaded breadth-first search finds, which is
//! deterministic. After a deliberate change of the model or the core, rewrite them with
//! `TENURE_BLESS=1 cargo test -p tenure-models --test teeth` and read the diff.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use stateright::{Checker, HasDiscoveries, Model};
use tenure_core::Variant;
use tenure_models::{
    check, Bounds, CheckOptions, CheckReport, Drift, DriftSpec, ModelSpec, StopWhen, Strategy,
    TenureModel, ALWAYS,
};

/// The small configuration: three nodes with a slow, a nominal and a fast clock, terms up to 3,
/// two faults of which one may be a crash, one resignation, one held message, three messages
/// in flight, two leases of time. Every broken variant fails within it, and the correct core's
/// whole state space is explored in seconds in a debug build.
fn small(variant: Variant) -> ModelSpec {
    ModelSpec {
        nodes: 3,
        variant,
        drifts: DriftSpec::Fixed(vec![Drift::Slow, Drift::Nominal, Drift::Fast]),
        bounds: SMALL_BOUNDS,
    }
}

const SMALL_BOUNDS: Bounds = Bounds {
    max_term: 3,
    horizon: 6,
    max_faults: 2,
    max_crashes: 1,
    max_resigns: 1,
    max_in_flight: 3,
    max_holds: 1,
    max_latency: 0,
};

/// The number of states of the small configuration under each search. They change when the
/// model, the core or the bounds change; a change nobody expected means the state space moved
/// under the checks.
const SMALL_UNIQUE_STATES_BFS: usize = 0;
const SMALL_UNIQUE_STATES_DFS: usize = 0;

/// Which property catches each broken variant first on the small configuration, and after how
/// many steps (the length of the pinned trace).
const CAUGHT_BY: [(Variant, &str, usize); 6] = [
    (Variant::NoDriftCompensation, "lease_backed", 0),
    (Variant::NoBootQuarantine, "lease_backed", 0),
    (Variant::NoPromise, "lease_safety", 0),
    (Variant::ForgetVoteOnRestart, "single_vote", 0),
    (Variant::ActPastLease, "acting_safety", 0),
    (Variant::StaleAck, "lease_backed", 0),
];

fn run(spec: ModelSpec, strategy: Strategy) -> CheckReport {
    let model = TenureModel::new(spec).expect("a valid model");
    let options = CheckOptions {
        threads: 2,
        strategy,
        stop_when: StopWhen::AnyViolation,
        progress_interval: Duration::from_secs(3600),
    };
    check(model, &options, |_| {})
}

#[test]
fn the_correct_core_passes_the_small_configuration_with_pinned_state_counts() {
    for (strategy, pinned) in [
        (Strategy::Bfs, SMALL_UNIQUE_STATES_BFS),
        (Strategy::Dfs, SMALL_UNIQUE_STATES_DFS),
    ] {
        // Exhaustive, so the counts do not depend on the number of threads.
        let report = run(small(Variant::Correct), strategy);
        println!("{report}");
        assert!(!report.stopped_early);
        for name in ALWAYS {
            let result = report.result(name).expect("a property of the model");
            assert!(
                result.passed(),
                "{name} fails on the correct core:\n{report}"
            );
        }
        // The small bounds still reach a leader acting, a failover after a crash and a
        // handover after a resignation.
        assert!(report.discovered("a_leader_acts"), "{report}");
        assert!(report.discovered("failover_after_crash"), "{report}");
        assert!(report.discovered("handover_after_resign"), "{report}");
        assert_eq!(report.unique_states, pinned, "{strategy:?}");
    }
}

#[test]
fn every_broken_variant_is_caught_along_its_pinned_trace() {
    // The table names every broken variant, and only those: a new variant needs a pin.
    let pinned: BTreeSet<Variant> = CAUGHT_BY.iter().map(|(variant, _, _)| *variant).collect();
    let broken: BTreeSet<Variant> = Variant::BROKEN.into_iter().collect();
    assert_eq!(
        pinned, broken,
        "CAUGHT_BY must list exactly Variant::BROKEN"
    );

    let bless = std::env::var_os("TENURE_BLESS").is_some();
    let mut failures = Vec::new();
    for variant in Variant::BROKEN {
        let (_, property, steps) = CAUGHT_BY
            .iter()
            .find(|(pinned, _, _)| *pinned == variant)
            .copied()
            .expect("checked above");
        // Single-threaded breadth first: the shortest counterexample, deterministically.
        let checker = TenureModel::new(small(variant))
            .expect("a valid model")
            .latch_sometimes()
            .checker()
            .threads(1)
            .finish_when(HasDiscoveries::AnyFailures)
            .spawn_bfs()
            .join();
        let violated: Vec<&str> = ALWAYS
            .into_iter()
            .filter(|name| checker.discovery(name).is_some())
            .collect();
        let Some(first) = violated.first().copied() else {
            failures.push(format!("{variant}: NOT CAUGHT within the small bounds"));
            continue;
        };
        let path = checker.discovery(first).expect("just found");
        let actions = path.clone().into_actions();
        // stateright replays the actions from the initial state and checks the property.
        checker.assert_discovery(first, actions.clone());
        let trace: String = actions
            .iter()
            .map(|action| format!("{}\n", checker.model().format_action(action)))
            .collect();
        let file = discovery_file(variant);
        if bless {
            std::fs::write(&file, &trace).expect("write the pinned trace");
            println!("{variant}: caught by {first} after {} steps", actions.len());
            continue;
        }
        if first != property || actions.len() != steps {
            failures.push(format!(
                "{variant}: caught by {first} after {} steps, pinned: {property} after {steps}",
                actions.len()
            ));
        }
        let expected = std::fs::read_to_string(&file).unwrap_or_default();
        if expected != trace {
            failures.push(format!(
                "{variant}: the trace differs from {}:\n{trace}",
                file.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn discovery_file(variant: Variant) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("discoveries")
        .join(format!("{variant}.txt"))
}
