//! Teeth: a checker that never fails proves nothing (DESIGN). Every deliberately broken
//! variant of the core must be caught by the campaign within a small seed budget, and by the
//! invariant that variant breaks.

use tenure_sim::campaign::{campaign, Plan};
use tenure_sim::{Invariant, Timing, Variant, DEFAULT_RUN_MS};

/// Seeds each variant may take. The campaign stops at the first violation, so a variant that
/// is caught early costs little.
const BUDGET: u64 = 200;

/// The invariants a variant may be caught by: the one it breaks, or one that breaks first
/// because of it (two overlapping leases usually mean two overlapping children too).
fn expected(variant: Variant) -> &'static [Invariant] {
    match variant {
        Variant::NoDriftCompensation
        | Variant::NoBootQuarantine
        | Variant::NoPromise
        | Variant::StaleAck => &[Invariant::LeaseSafety, Invariant::ActingSafety],
        Variant::ForgetVoteOnRestart => &[Invariant::SingleVote, Invariant::ElectionSafety],
        Variant::ActPastLease => &[Invariant::ActingSafety],
        Variant::Correct => &[],
    }
}

fn caught(variant: Variant, nodes: u8) {
    let plan = Plan {
        first_seed: 0,
        seeds: BUDGET,
        nodes,
        variant,
        end_ms: DEFAULT_RUN_MS,
        timing: Timing::default(),
        jobs: 1,
        stop_at_first_violation: true,
    };
    let summary = campaign(&plan, |_| {});
    let found = summary
        .found
        .first()
        .unwrap_or_else(|| panic!("{variant} survived {BUDGET} seeds at {nodes} nodes"));
    assert!(
        expected(variant).contains(&found.violation.invariant),
        "{variant} was caught by {} instead: {}\nreproduce: {}",
        found.violation.invariant,
        found.violation,
        found.reproduce
    );
}

#[test]
fn no_drift_compensation_is_caught() {
    caught(Variant::NoDriftCompensation, 3);
}

#[test]
fn no_boot_quarantine_is_caught() {
    caught(Variant::NoBootQuarantine, 3);
}

#[test]
fn no_promise_is_caught() {
    caught(Variant::NoPromise, 3);
}

#[test]
fn forget_vote_on_restart_is_caught() {
    caught(Variant::ForgetVoteOnRestart, 3);
}

#[test]
fn act_past_lease_is_caught() {
    caught(Variant::ActPastLease, 3);
}

#[test]
fn stale_ack_is_caught() {
    caught(Variant::StaleAck, 3);
}

#[test]
fn every_broken_variant_has_a_test_here() {
    // A new variant in the core must get its own test above.
    assert_eq!(Variant::BROKEN.len(), 6);
    for variant in Variant::BROKEN {
        assert!(!expected(variant).is_empty(), "{variant}");
    }
}
