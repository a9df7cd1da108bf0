//! Teeth of the store runs (protocol: Checking the checkers): every deliberately broken variant
//! of the store-lease core must be caught by the oracle, by the invariant it breaks, under
//! both judges of expiry, and the correct core must pass the very same runs.
//!
//! Two kinds of evidence, both cheap in the debug test profile:
//! - targeted runs: a hand-written schedule and a pinned seed for each variant, each caught
//!   within the first ten simulated seconds;
//! - the store CI campaign (`campaign::store_ci_plans`), stopped at its first violation: every
//!   variant is caught within its seed budget (the latest, `deadline_from_reply`, at seed 80
//!   of 500 with the store judging).

use tenure_sim::campaign::{campaign, store_ci_plans};
use tenure_sim::{run, Core, ExpiryJudge, Invariant, Schedule, Setup, StoreVariant};

const JUDGES: [ExpiryJudge; 2] = [ExpiryJudge::Contenders, ExpiryJudge::Store];

/// The invariants a variant may be caught by: a tenure that outlasts what the store granted
/// shows as two overlapping leases, two overlapping children, or (when a reply held back by
/// a pause carries an old token) a child whose token is below the latest one.
fn expected(variant: StoreVariant) -> &'static [Invariant] {
    match variant {
        StoreVariant::DeadlineFromReply
        | StoreVariant::ExtendOnAmbiguous
        | StoreVariant::NoDriftCompensation => &[
            Invariant::LeaseSafety,
            Invariant::ActingSafety,
            Invariant::FencingMonotonic,
        ],
        StoreVariant::Correct => &[],
    }
}

/// The targeted run of `variant`. For `deadline_from_reply`: a pause of the holder that holds
/// back the reply of a renewal in flight until it ends, then, just before it ends, the holder
/// cut off from the store, so that the renewal the reply answers is the last one applied (the
/// seed is pinned: whether a renewal is in flight when the pause strikes depends on the draw).
/// For the others: the holder's clock slow and the contender's fast at ρ = 10 % from 3 s, then
/// the holder cut off from the store at 6 s.
fn targeted(variant: StoreVariant, judge: ExpiryJudge) -> Setup {
    let text = |faults: &str| -> Schedule {
        format!("nodes=2 heal=15000 end=20000; {faults}")
            .parse()
            .expect("a valid schedule")
    };
    match variant {
        StoreVariant::DeadlineFromReply => {
            let schedule = text("6000 pause(leader, 1000); 6900 isolate(leader, 6000)");
            Setup::store_from_seed(2, 2, judge, variant, schedule.end_ms).with_schedule(schedule)
        }
        _ => {
            let schedule = text("3000 drift(leader); 6000 isolate(leader, 6000)");
            Setup::store_from_seed(0, 2, judge, variant, schedule.end_ms)
                .with_schedule(schedule)
                .with_max_drift(0.1)
        }
    }
}

#[test]
fn every_broken_variant_is_caught_by_its_targeted_run_and_the_correct_core_is_not() {
    for judge in JUDGES {
        for variant in StoreVariant::BROKEN {
            // The broken core breaks one of its invariants within ten simulated seconds.
            let setup = targeted(variant, judge);
            let outcome = run(&setup);
            let violation = outcome
                .violation
                .as_ref()
                .unwrap_or_else(|| panic!("{variant} survived: {}", setup.reproduce_command()));
            assert!(
                violation
                    .check
                    .invariant()
                    .is_some_and(|invariant| expected(variant).contains(&invariant)),
                "{variant} was caught by {violation} instead\n{}",
                setup.reproduce_command()
            );
            assert!(violation.at.as_secs_f64() < 10.0, "{violation}");

            // The correct core keeps every invariant in the very same run, and fails over.
            let mut correct = setup.clone();
            correct.core = Core::store(judge, StoreVariant::Correct);
            let outcome = run(&correct);
            assert!(outcome.violation.is_none(), "{}", outcome.report(&correct));
            assert!(!outcome.failovers.is_empty(), "{}", correct.schedule);
        }
    }
}

#[test]
fn every_broken_variant_is_caught_by_the_store_ci_campaign() {
    for variant in StoreVariant::BROKEN {
        for mut plan in store_ci_plans(variant, 2) {
            plan.stop_at_first_violation = true;
            let summary = campaign(&plan, |_| {});
            let found = summary
                .found
                .first()
                .unwrap_or_else(|| panic!("{} survived the store CI campaign", plan.describe()));
            assert!(
                found
                    .violation
                    .check
                    .invariant()
                    .is_some_and(|invariant| expected(variant).contains(&invariant)),
                "{} was caught by {} instead\nreproduce: {}",
                plan.describe(),
                found.violation,
                found.reproduce
            );
            eprintln!(
                "{}: {} on seed {}",
                plan.describe(),
                found.violation.check,
                found.seed
            );
        }
    }
}
