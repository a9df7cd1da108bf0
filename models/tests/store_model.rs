//! Rules of the store model itself, and the pinned size of one small configuration: a change
//! of the model, the store-lease core or the reference store that moves the state space shows
//! here: models pin their `unique_state_count`.

use std::time::Duration;

use stateright::Model;
use tenure_core::{ExpiryJudge, NodeId, StoreVariant};
use tenure_models::{
    check, CheckOptions, Drift, DriftSpec, StopWhen, StoreAction, StoreBounds, StoreModel,
    StoreSpec, StoreState, Strategy,
};

/// Two contenders (slow, fast), the store's clock fast where it judges expiry, one fault over
/// eight units.
fn small(judge: ExpiryJudge) -> StoreSpec {
    StoreSpec {
        nodes: 2,
        variant: StoreVariant::Correct,
        judge,
        drifts: DriftSpec::Fixed(vec![Drift::Slow, Drift::Fast]),
        store_drifts: vec![Drift::Fast],
        bounds: StoreBounds {
            horizon: 8,
            max_faults: 1,
            max_crashes: 1,
            max_resigns: 0,
            max_holds: 0,
            max_delays: 0,
        },
    }
}

/// The unique states of the small configuration under each judge.
const SMALL_UNIQUE_STATES: [(ExpiryJudge, usize); 2] = [
    (ExpiryJudge::Contenders, 19_595),
    (ExpiryJudge::Store, 20_954),
];

#[test]
fn the_small_configuration_has_its_pinned_number_of_states() {
    for (judge, pinned) in SMALL_UNIQUE_STATES {
        let model = StoreModel::new(small(judge)).expect("a valid model");
        let options = CheckOptions {
            threads: 2,
            strategy: Strategy::Dfs,
            stop_when: StopWhen::AnyViolation,
            progress_interval: Duration::from_secs(3600),
        };
        let report = check(model, &options, |_| {});
        assert!(!report.discovered("acting_safety"), "{report}");
        assert!(!report.discovered("fencing_monotonic"), "{report}");
        assert!(!report.stopped_early, "{report}");
        assert_eq!(report.unique_states, pinned, "{judge:?}");
    }
}

fn actions(model: &StoreModel, state: &StoreState) -> Vec<StoreAction> {
    let mut actions = Vec::new();
    model.actions(state, &mut actions);
    actions
}

fn step(model: &StoreModel, state: &StoreState, action: StoreAction) -> StoreState {
    assert!(
        actions(model, state).contains(&action),
        "{action} is not enabled in\n{state:?}"
    );
    model
        .next_state(state, action)
        .unwrap_or_else(|| panic!("{action} changed nothing in\n{state:?}"))
}

/// Runs without faults, node0's requests before node1's at every instant: due timers fire,
/// requests are applied, replies arrive, and otherwise time advances, until `done` holds.
fn run_until(
    model: &StoreModel,
    mut state: StoreState,
    done: impl Fn(&StoreState) -> bool,
) -> StoreState {
    for _ in 0..10_000 {
        if done(&state) {
            return state;
        }
        let enabled = actions(model, &state);
        let next = enabled
            .iter()
            .find(|action| {
                matches!(
                    action,
                    StoreAction::Timeout(_) | StoreAction::Apply(_) | StoreAction::Deliver(_)
                )
            })
            .or_else(|| {
                enabled
                    .iter()
                    .find(|action| **action == StoreAction::AdvanceTime)
            })
            .copied()
            .unwrap_or_else(|| panic!("stuck in\n{state:?}"));
        state = step(model, &state, next);
    }
    panic!("not done after 10 000 steps:\n{state:?}");
}

#[test]
fn a_request_is_applied_at_its_send_instant_unless_it_is_slow() {
    let model = StoreModel::new(StoreSpec {
        bounds: StoreBounds {
            max_delays: 1,
            ..small(ExpiryJudge::Contenders).bounds
        },
        ..small(ExpiryJudge::Contenders)
    })
    .expect("a valid model");
    let state = model.init_states().remove(0);

    // Both contenders read at once; while their reads wait at the store, time stands still.
    let state = step(&model, &state, StoreAction::Timeout(NodeId(0)));
    let state = step(&model, &state, StoreAction::Timeout(NodeId(1)));
    assert_eq!(state.calls().len(), 2);
    assert!(!actions(&model, &state).contains(&StoreAction::AdvanceTime));

    // One read made slow and the other applied and answered, time may pass: the slow read
    // is applied at any later instant until its sender gives it up.
    let first = state.calls()[0];
    let second = state.calls()[1];
    let state = step(&model, &state, StoreAction::DelayRequest(first));
    let state = step(&model, &state, StoreAction::Apply(second));
    let mut state = state;
    for _ in 0..4 {
        // The other contender's exchange (its read, then its acquisition of the vacant
        // record) settles at this instant.
        let enabled = actions(&model, &state);
        let Some(next) = enabled.into_iter().find(|action| match action {
            StoreAction::Apply(call) => !call.slow,
            StoreAction::Deliver(_) => true,
            _ => false,
        }) else {
            break;
        };
        state = step(&model, &state, next);
    }
    assert!(state.calls().iter().all(|call| call.slow));
    assert!(actions(&model, &state).contains(&StoreAction::AdvanceTime));
    assert!(actions(&model, &state).contains(&StoreAction::Apply(first_slow(&state))));
    assert!(!actions(&model, &state)
        .iter()
        .any(|action| matches!(action, StoreAction::DelayReply(_))));
}

fn first_slow(state: &StoreState) -> tenure_models::Call {
    *state
        .calls()
        .iter()
        .find(|call| call.slow)
        .expect("the slow read")
}

#[test]
fn a_crashed_holders_child_runs_on_until_its_deadline_and_no_one_acts_beside_it() {
    let model = StoreModel::new(small(ExpiryJudge::Contenders)).expect("a valid model");
    let state = model.init_states().remove(0);

    // node0 (the slow clock) reads and acquires first, and acts.
    let state = run_until(&model, state, |state| state.is_acting(0));
    assert!(!state.is_acting(1));

    // It crashes: its child is the guard's and runs on; nobody acts.
    let state = step(&model, &state, StoreAction::Crash(NodeId(0)));
    assert_eq!(state.children().count(), 1);

    // node1 takes over only once node0's child is gone.
    let state = run_until(&model, state, |state| state.is_acting(1));
    assert_eq!(state.children().count(), 1);
    let (holder, child) = state.children().next().expect("node1's child");
    assert_eq!(holder, NodeId(1));
    assert!(child.token.0 > 1, "a takeover acts with a larger token");
}
