//! The checker has teeth: on one small configuration the correct core passes with pinned state
//! counts (breadth and depth first), and every broken variant of the core in
//! `Variant::BROKEN` is caught, along a pinned trace (protocol: Checking the checkers).
//!
//! The traces live in `models/tests/discoveries/<variant>.txt`, one action per line: the
//! shortest counterexample that a single-threaded breadth-first search found, which is
//! deterministic. The test replays each one through stateright's `assert_discovery`. After a
//! deliberate change of the model or the core, rewrite them with
//! `TENURE_BLESS=1 cargo test -p tenure-models --test teeth every_broken` and read the diff.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use stateright::{Checker, HasDiscoveries, Model};
use tenure_core::{ElectionOrder, Invariant, Variant};
use tenure_models::{
    check, CheckOptions, CheckReport, Drift, DriftSpec, ModelSpec, SearchBounds, StopWhen,
    Strategy, TenureModel, ALWAYS,
};

/// The small configuration: three nodes with a slow, a nominal and a fast clock, terms up to 2,
/// one fault (a crash, say), one held message, three messages in flight, seven units of time
/// (a boot quarantine, an election, a crash and a second election after the restarted node's
/// quarantine). Every broken variant fails within it under random election timing, where the
/// adversary picks every election delay; `stale_ack` and `forget_vote_on_restart` need all of
/// it. Ranked elections are the production order; they reach fewer states (who campaigns first
/// is no longer the adversary's choice), so the correct core is checked under both.
fn small(variant: Variant, election_order: ElectionOrder) -> ModelSpec {
    ModelSpec {
        election_order,
        nodes: 3,
        variant,
        drifts: DriftSpec::Fixed(vec![Drift::Slow, Drift::Nominal, Drift::Fast]),
        bounds: SMALL_BOUNDS,
    }
}

const SMALL_BOUNDS: SearchBounds = SearchBounds {
    max_term: 2,
    horizon: 7,
    max_faults: 1,
    max_crashes: 1,
    max_resigns: 0,
    max_in_flight: 3,
    max_holds: 1,
    max_latency: 0,
};

/// The number of states of the small configuration under each search. They change when the
/// model, the core or the bounds change; a change nobody expected means the state space moved
/// under the checks.
const SMALL_UNIQUE_STATES: [(ElectionOrder, usize); 2] = [
    (ElectionOrder::Ranked, 355_995),
    (ElectionOrder::Random, 1_494_105),
];

/// Which invariant catches each broken variant on the small configuration, and how many steps
/// its pinned (shortest) trace has.
const CAUGHT_BY: [(Variant, Invariant, usize); 6] = [
    (Variant::NoDriftCompensation, Invariant::LeaseBacked, 12),
    (Variant::NoBootQuarantine, Invariant::LeaseBacked, 20),
    (Variant::NoPromise, Invariant::ActingSafety, 26),
    (Variant::ForgetVoteOnRestart, Invariant::SingleVote, 36),
    (Variant::ActPastLease, Invariant::ActingSafety, 12),
    (Variant::StaleAck, Invariant::LeaseBacked, 40),
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

fn the_correct_core_passes_the_small_configuration(strategy: Strategy) {
    for (order, pinned) in SMALL_UNIQUE_STATES {
        the_correct_core_passes_the_small_configuration_in(strategy, order, pinned);
    }
}

fn the_correct_core_passes_the_small_configuration_in(
    strategy: Strategy,
    order: ElectionOrder,
    pinned: usize,
) {
    // Exhaustive, so the count does not depend on the number of threads or the strategy.
    let report = run(small(Variant::Correct, order), strategy);
    println!("{report}");
    assert!(!report.stopped_early);
    for invariant in ALWAYS {
        let result = report
            .result(invariant.name())
            .expect("a property of the model");
        assert!(
            result.passed(),
            "{invariant} fails on the correct core:\n{report}"
        );
    }
    // The small bounds still reach a leader acting and a failover after it crashed.
    assert!(report.discovered("a_leader_acts"), "{report}");
    assert!(report.discovered("failover_after_crash"), "{report}");
    assert_eq!(report.unique_states, pinned, "{strategy:?}, {order:?}");
}

#[test]
fn the_correct_core_passes_the_small_configuration_breadth_first() {
    the_correct_core_passes_the_small_configuration(Strategy::Bfs);
}

#[test]
fn the_correct_core_passes_the_small_configuration_depth_first() {
    the_correct_core_passes_the_small_configuration(Strategy::Dfs);
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

    if std::env::var_os("TENURE_BLESS").is_some() {
        bless();
        return;
    }
    let mut failures = Vec::new();
    for variant in Variant::BROKEN {
        let (_, invariant, steps) = CAUGHT_BY
            .iter()
            .find(|(pinned, _, _)| *pinned == variant)
            .copied()
            .expect("checked above");
        let property = invariant.name();
        // Caught: the checker finds a counterexample to the pinned property within the small
        // bounds (depth first, two threads: whichever one it meets first).
        let checker = TenureModel::new(small(variant, ElectionOrder::Random))
            .expect("a valid model")
            .latch_sometimes()
            .checker()
            .threads(2)
            .finish_when(HasDiscoveries::AnyOf(BTreeSet::from([property])))
            .spawn_dfs()
            .join();
        if checker.discovery(property).is_none() {
            failures.push(format!(
                "{variant}: NOT CAUGHT by {property} within the small bounds"
            ));
            continue;
        }
        // Pinned: the shortest counterexample, as breadth first found it when blessed, still
        // leads from the initial state to a violation, step by step (stateright replays it).
        let file = discovery_file(variant);
        let trace = std::fs::read_to_string(&file).unwrap_or_default();
        match replay(checker.model(), &trace) {
            Ok(actions) => {
                if actions.len() != steps {
                    failures.push(format!(
                        "{variant}: the pinned trace has {} steps, CAUGHT_BY says {steps}",
                        actions.len()
                    ));
                }
                checker.assert_discovery(property, actions);
            }
            Err(error) => failures.push(format!("{variant}: {}: {error}", file.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Rewrites the pinned traces: for each broken variant, the shortest counterexample that a
/// single-threaded breadth-first search finds (deterministic), one action per line.
fn bless() {
    for variant in Variant::BROKEN {
        let checker = TenureModel::new(small(variant, ElectionOrder::Random))
            .expect("a valid model")
            .latch_sometimes()
            .checker()
            .threads(1)
            .finish_when(HasDiscoveries::AnyFailures)
            .spawn_bfs()
            .join();
        let Some(first) = ALWAYS
            .into_iter()
            .find(|invariant| checker.discovery(invariant.name()).is_some())
        else {
            panic!("{variant}: NOT CAUGHT within the small bounds");
        };
        let actions = checker
            .discovery(first.name())
            .expect("found")
            .into_actions();
        let trace: String = actions
            .iter()
            .map(|action| format!("{}\n", checker.model().format_action(action)))
            .collect();
        std::fs::write(discovery_file(variant), trace).expect("write the pinned trace");
        println!("{variant}: caught by {first} after {} steps", actions.len());
    }
}

/// The actions a pinned trace names, found step by step among the enabled ones.
fn replay(model: &TenureModel, trace: &str) -> Result<Vec<tenure_models::Action>, String> {
    let mut state = model.init_states().remove(0);
    let mut actions = Vec::new();
    for (number, line) in trace.lines().enumerate() {
        let mut enabled = Vec::new();
        model.actions(&state, &mut enabled);
        let action = enabled
            .into_iter()
            .find(|action| model.format_action(action) == line)
            .ok_or_else(|| format!("step {}: {line:?} is not enabled", number + 1))?;
        state = model
            .next_state(&state, action)
            .ok_or_else(|| format!("step {}: {line:?} changes nothing", number + 1))?;
        actions.push(action);
    }
    if actions.is_empty() {
        return Err("no pinned trace".to_owned());
    }
    Ok(actions)
}

fn discovery_file(variant: Variant) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("discoveries")
        .join(format!("{variant}.txt"))
}
