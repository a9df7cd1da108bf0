//! The store model has teeth: every broken variant of the store-lease core
//! (`StoreVariant::BROKEN`) is caught under both judges, each within small bounds and along a
//! pinned trace, and the correct core passes those same bounds (protocol: Checking the
//! checkers).
//!
//! The traces live in `models/tests/discoveries/store_<variant>_<judge>.txt`, one action per
//! line: the counterexample that a single-threaded depth-first search finds first, which is
//! deterministic. The test replays each through stateright's `assert_discovery`. After a
//! deliberate change of the model or the core, rewrite them with
//! `TENURE_BLESS=1 cargo test --release -p tenure-models --test store_teeth` and read the diff.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use stateright::{Checker, HasDiscoveries, Model};
use tenure_core::{ExpiryJudge, Invariant, StoreVariant};
use tenure_models::{
    check, judge_name, CheckOptions, Drift, DriftSpec, StopWhen, StoreAction, StoreBounds,
    StoreModel, StoreSpec, Strategy, STORE_ALWAYS,
};

/// Both judges, in a fixed order.
const JUDGES: [ExpiryJudge; 2] = [ExpiryJudge::Contenders, ExpiryJudge::Store];

/// One fault (the holder's crash, say) over eight units: a takeover after a crash.
const ONE_FAULT: StoreBounds = StoreBounds {
    horizon: 8,
    max_faults: 1,
    max_crashes: 1,
    max_resigns: 0,
    max_holds: 0,
    max_delays: 0,
};

/// One fault and one slow reply: a renewal answered late, then the holder's crash.
const SLOW_REPLY: StoreBounds = StoreBounds {
    max_delays: 1,
    horizon: 6,
    ..ONE_FAULT
};

/// Two faults: a renewal that fails unapplied, then the holder's crash.
const TWO_FAULTS: StoreBounds = StoreBounds {
    max_faults: 2,
    ..ONE_FAULT
};

/// The bounds each broken variant is caught within, the invariant that catches it, and the
/// steps of its pinned trace under each judge (contenders, store).
const CAUGHT_BY: [(StoreVariant, StoreBounds, Invariant, [usize; 2]); 3] = [
    (
        StoreVariant::DeadlineFromReply,
        SLOW_REPLY,
        Invariant::ActingSafety,
        [30, 52],
    ),
    (
        StoreVariant::ExtendOnAmbiguous,
        TWO_FAULTS,
        Invariant::ActingSafety,
        [70, 72],
    ),
    (
        StoreVariant::NoDriftCompensation,
        ONE_FAULT,
        Invariant::ActingSafety,
        [67, 49],
    ),
];

/// Two contenders, a slow and a fast clock; where the store judges expiry, its clock is fast,
/// the fastest the rule allows (protocol: Who judges expiry), so that it expires a holder as
/// early as it may.
fn spec(variant: StoreVariant, judge: ExpiryJudge, bounds: StoreBounds) -> StoreSpec {
    StoreSpec {
        nodes: 2,
        variant,
        judge,
        drifts: DriftSpec::Fixed(vec![Drift::Slow, Drift::Fast]),
        store_drifts: vec![match judge {
            ExpiryJudge::Contenders => Drift::Nominal,
            ExpiryJudge::Store => Drift::Fast,
        }],
        bounds,
    }
}

#[test]
fn the_correct_core_passes_the_bounds_that_catch_each_variant() {
    let mut distinct: Vec<StoreBounds> = Vec::new();
    for (_, bounds, _, _) in CAUGHT_BY {
        if !distinct.contains(&bounds) {
            distinct.push(bounds);
        }
    }
    for judge in JUDGES {
        for &bounds in &distinct {
            let model = StoreModel::new(spec(StoreVariant::Correct, judge, bounds)).expect("valid");
            let options = CheckOptions {
                threads: 2,
                strategy: Strategy::Dfs,
                stop_when: StopWhen::AnyViolation,
                progress_interval: Duration::from_secs(3600),
            };
            let report = check(model, &options, |_| {});
            assert!(!report.stopped_early, "{report}");
            for invariant in STORE_ALWAYS {
                let result = report.result(invariant.name()).expect("a property");
                assert!(
                    result.passed(),
                    "{invariant} fails on the correct core:\n{report}"
                );
            }
            // The bounds reach a holder acting and a takeover after its crash.
            assert!(report.discovered("a_holder_acts"), "{report}");
            assert!(report.discovered("takeover_after_crash"), "{report}");
        }
    }
}

#[test]
fn every_broken_variant_is_caught_under_both_judges_along_its_pinned_trace() {
    // The table names every broken variant, and only those: a new variant needs a pin.
    let pinned: BTreeSet<StoreVariant> = CAUGHT_BY.iter().map(|(variant, ..)| *variant).collect();
    let broken: BTreeSet<StoreVariant> = StoreVariant::BROKEN.into_iter().collect();
    assert_eq!(
        pinned, broken,
        "CAUGHT_BY must list exactly StoreVariant::BROKEN"
    );
    if std::env::var_os("TENURE_BLESS").is_some() {
        bless();
        return;
    }
    let mut failures = Vec::new();
    for (variant, bounds, invariant, steps) in CAUGHT_BY {
        for (judge, steps) in JUDGES.into_iter().zip(steps) {
            if let Err(failure) = caught(variant, judge, bounds, invariant, steps) {
                failures.push(format!("{variant}, {} judge: {failure}", judge_name(judge)));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Caught: the checker finds a counterexample to `invariant` within `bounds` (depth first, two
/// threads: whichever it meets first); pinned: the blessed trace of `steps` steps still leads
/// from the initial state to a violation (stateright replays it).
fn caught(
    variant: StoreVariant,
    judge: ExpiryJudge,
    bounds: StoreBounds,
    invariant: Invariant,
    steps: usize,
) -> Result<(), String> {
    let property = invariant.name();
    let checker = StoreModel::new(spec(variant, judge, bounds))
        .expect("a valid model")
        .latch_sometimes()
        .checker()
        .threads(2)
        .finish_when(HasDiscoveries::AnyOf(BTreeSet::from([property])))
        .spawn_dfs()
        .join();
    if checker.discovery(property).is_none() {
        return Err(format!("NOT CAUGHT by {property} within {bounds}"));
    }
    let file = discovery_file(variant, judge);
    let trace = std::fs::read_to_string(&file).unwrap_or_default();
    let actions =
        replay(checker.model(), &trace).map_err(|error| format!("{}: {error}", file.display()))?;
    if actions.len() != steps {
        return Err(format!(
            "the pinned trace has {} steps, CAUGHT_BY says {steps}",
            actions.len()
        ));
    }
    checker.assert_discovery(property, actions);
    Ok(())
}

/// Rewrites the pinned traces: for each broken variant and judge, the first counterexample a
/// single-threaded depth-first search finds (deterministic), one action per line.
fn bless() {
    for (variant, bounds, invariant, _) in CAUGHT_BY {
        for judge in JUDGES {
            let property = invariant.name();
            let checker = StoreModel::new(spec(variant, judge, bounds))
                .expect("a valid model")
                .latch_sometimes()
                .checker()
                .threads(1)
                .finish_when(HasDiscoveries::AnyOf(BTreeSet::from([property])))
                .spawn_dfs()
                .join();
            let Some(path) = checker.discovery(property) else {
                panic!("{variant}, {}: NOT CAUGHT", judge_name(judge));
            };
            let actions = path.into_actions();
            let trace: String = actions
                .iter()
                .map(|action| format!("{}\n", checker.model().format_action(action)))
                .collect();
            std::fs::write(discovery_file(variant, judge), trace).expect("write the trace");
            println!(
                "{variant}, {} judge: caught by {property} after {} steps",
                judge_name(judge),
                actions.len()
            );
        }
    }
}

/// The actions a pinned trace names, found step by step among the enabled ones.
fn replay(model: &StoreModel, trace: &str) -> Result<Vec<StoreAction>, String> {
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

fn discovery_file(variant: StoreVariant, judge: ExpiryJudge) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("discoveries")
        .join(format!("store_{variant}_{}.txt", judge_name(judge)))
}
