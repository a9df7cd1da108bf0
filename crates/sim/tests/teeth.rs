//! Teeth: a checker that never fails proves nothing (protocol: Checking the checkers). Every
//! deliberately broken variant of the core must be caught by the CI campaign (`tenure-sim
//! --ci`, the very plans of `campaign::ci_plans`), within its seed budget, and by the invariant
//! that variant breaks.

use tenure_sim::campaign::{campaign, ci_plans, Found};
use tenure_sim::{Invariant, Variant};

/// Worker threads per campaign. The campaign stops at the first violation, so a variant that
/// is caught early costs little.
const JOBS: usize = 2;

/// The invariants a variant may be caught by: the one it breaks, or one that breaks first
/// because of it (a lease that rests on no promise is usually seen before the second leader
/// it allows; two overlapping leases usually mean two overlapping children too).
fn expected(variant: Variant) -> &'static [Invariant] {
    match variant {
        Variant::NoDriftCompensation
        | Variant::NoBootQuarantine
        | Variant::NoPromise
        | Variant::StaleAck => &[
            Invariant::LeaseBacked,
            Invariant::LeaseSafety,
            Invariant::ActingSafety,
        ],
        Variant::ForgetVoteOnRestart => &[Invariant::SingleVote, Invariant::ElectionSafety],
        Variant::ActPastLease => &[Invariant::ActingSafety],
        Variant::Correct => &[],
    }
}

/// Runs the CI campaign's plans against `variant` until the first violation, and checks that
/// it is one of the expected invariants.
fn caught(variant: Variant, max_drift: Option<f64>) -> Found {
    for mut plan in ci_plans(variant, JOBS) {
        plan.stop_at_first_violation = true;
        plan.max_drift = max_drift;
        let summary = campaign(&plan, |_| {});
        if let Some(found) = summary.found.first() {
            assert!(
                found
                    .violation
                    .check
                    .invariant()
                    .is_some_and(|invariant| expected(variant).contains(&invariant)),
                "{variant} was caught by {} instead: {}\nreproduce: {}",
                found.violation.check,
                found.violation,
                found.reproduce
            );
            return found.clone();
        }
    }
    panic!("{variant} survived the whole CI campaign")
}

#[test]
fn every_broken_variant_is_caught_by_the_ci_campaign() {
    assert!(!Variant::BROKEN.is_empty());
    for variant in Variant::BROKEN {
        let found = caught(variant, None);
        eprintln!(
            "{variant}: {} on seed {}",
            found.violation.check, found.seed
        );
    }
}

#[test]
fn no_drift_compensation_is_caught_at_the_default_drift_of_one_percent() {
    // The gap between a slow leader's uncompensated lease and a fast follower's promise is
    // 2ρL minus a network hop: 40 ms at ρ = 1 %. Clocks pinned at exactly ±ρ and the
    // lease_backed check show it without waiting for a second leader to fall into the gap.
    let found = caught(Variant::NoDriftCompensation, Some(0.01));
    assert!(
        found.reproduce.contains("--max-drift 0.01"),
        "{}",
        found.reproduce
    );
}
