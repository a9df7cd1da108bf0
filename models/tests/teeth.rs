//! The checker has teeth: on one small configuration the correct core passes with a pinned
//! state count, and every broken variant of the core is caught by the property it breaks
//! (DESIGN: "A checker that never fails proves nothing").

use std::time::Duration;

use tenure_core::Variant;
use tenure_models::{
    check, render_trace, Bounds, CheckOptions, CheckReport, Drift, DriftSpec, ModelSpec, StopWhen,
    Strategy, TenureModel,
};

/// The small configuration: three nodes with a slow, a nominal and a fast clock, terms up to 2,
/// two faults of which one may be a crash, no resignation, three messages in flight, seven units
/// of time. Every broken variant fails within it, and the correct core's whole state space is
/// explored in well under a minute in a debug build.
fn small(variant: Variant) -> ModelSpec {
    ModelSpec {
        nodes: 3,
        variant,
        drifts: DriftSpec::Fixed(vec![Drift::Slow, Drift::Nominal, Drift::Fast]),
        bounds: Bounds {
            max_term: 2,
            horizon: 7,
            max_faults: 2,
            max_crashes: 1,
            max_resigns: 0,
            max_in_flight: 3,
        },
    }
}

fn run(spec: ModelSpec, stop_when: StopWhen, threads: usize) -> CheckReport {
    let model = TenureModel::new(spec).expect("a valid model");
    let options = CheckOptions {
        threads,
        strategy: Strategy::Dfs,
        stop_when,
        progress_interval: Duration::from_secs(3600),
    };
    check(model, &options, |_| {})
}

/// The number of states of the small configuration. It changes when the model, the core or
/// the bounds change; a change nobody expected means the state space moved under the checks.
const SMALL_UNIQUE_STATES: usize = 585_946;

#[test]
fn the_correct_core_passes_the_small_configuration() {
    // Exhaustive, so the count does not depend on the number of threads.
    let report = run(small(Variant::Correct), StopWhen::AnyViolation, 2);
    println!("{report}");
    assert!(!report.stopped_early);
    for name in tenure_models::ALWAYS {
        let result = report.result(name).expect("a property of the model");
        assert!(
            result.passed(),
            "{name} fails on the correct core:\n{report}"
        );
    }
    // The small bounds still reach a leader acting, and a failover after it crashed.
    assert!(report.discovered("a_leader_acts"), "{report}");
    assert!(report.discovered("failover_after_crash"), "{report}");
    assert_eq!(report.unique_states, SMALL_UNIQUE_STATES);
}

/// Checks `variant` on the small configuration until `property` fails, and prints the trace.
fn caught(variant: Variant, property: &'static str) {
    let report = run(small(variant), StopWhen::Discovered(property), 1);
    let result = report.result(property).expect("a property of the model");
    let path = result.discovery.as_ref().unwrap_or_else(|| {
        panic!("{variant} not caught by {property} within the small bounds:\n{report}")
    });
    println!("{}", render_trace(path, Some(property)));
    println!("{variant}: {} unique states", report.unique_states);
}

#[test]
fn no_drift_compensation_breaks_lease_safety() {
    caught(Variant::NoDriftCompensation, "lease_safety");
}

#[test]
fn no_boot_quarantine_breaks_lease_safety() {
    caught(Variant::NoBootQuarantine, "lease_safety");
}

#[test]
fn no_promise_breaks_lease_safety() {
    caught(Variant::NoPromise, "lease_safety");
}

#[test]
fn forget_vote_on_restart_breaks_single_vote() {
    caught(Variant::ForgetVoteOnRestart, "single_vote");
}

#[test]
fn act_past_lease_breaks_acting_safety() {
    caught(Variant::ActPastLease, "acting_safety");
}
