//! Rules of the model itself: time, timers, the network's faults, crashes. Each test walks a
//! short path by hand and looks at the actions and states it reaches.

use stateright::Model;
use tenure_core::{FencingToken, RoleKind, Variant};
use tenure_models::{Action, ClusterState, Jitter, ModelSpec, TenureModel};

fn model() -> TenureModel {
    TenureModel::new(ModelSpec::default_check()).expect("the default check is a valid model")
}

fn actions(model: &TenureModel, state: &ClusterState) -> Vec<Action> {
    let mut actions = Vec::new();
    model.actions(state, &mut actions);
    actions
}

fn step(model: &TenureModel, state: &ClusterState, action: Action) -> ClusterState {
    assert!(
        actions(model, state).contains(&action),
        "{action} is not enabled in\n{state:?}"
    );
    let next = model
        .next_state(state, action)
        .unwrap_or_else(|| panic!("{action} changed nothing in\n{state:?}"));
    assert!(model.within_boundary(&next), "{action} left the bounds");
    next
}

/// Delivers every queued message, in the order the model lists them, until none is queued.
fn settle(model: &TenureModel, mut state: ClusterState) -> ClusterState {
    while let Some(action) = actions(model, &state)
        .into_iter()
        .find(|action| matches!(action, Action::Deliver(_)))
    {
        state = step(model, &state, action);
    }
    state
}

fn advance_to(model: &TenureModel, mut state: ClusterState, time: u8) -> ClusterState {
    while state.time() < time {
        state = step(model, &state, Action::AdvanceTime);
    }
    state
}

/// The slow node (node0) leads term 1 with a lease at global time 4: the others let their
/// first election timer pass with the longest jitter.
fn node0_leads() -> (TenureModel, ClusterState) {
    let model = model();
    let state = model.init_states().remove(0);
    let state = advance_to(&model, state, 3);
    let node1 = tenure_core::NodeId(1);
    let node2 = tenure_core::NodeId(2);
    let state = step(
        &model,
        &state,
        Action::Timeout {
            node: node1,
            jitter: Jitter::Longest,
        },
    );
    let state = step(
        &model,
        &state,
        Action::Timeout {
            node: node2,
            jitter: Jitter::Longest,
        },
    );
    let state = advance_to(&model, state, 4);
    let node0 = tenure_core::NodeId(0);
    let state = step(
        &model,
        &state,
        Action::Timeout {
            node: node0,
            jitter: Jitter::Shortest,
        },
    );
    let state = settle(&model, state);
    let leader = state.core(0).expect("running");
    assert_eq!(leader.role(), RoleKind::Leader);
    assert!(leader.is_acting(state.local_now(0)));
    (model, state)
}

#[test]
fn time_waits_for_due_timers() {
    // Quarantine ends at local 30: at global 3 for the nominal and fast clocks, 4 for the
    // slow one. Until then nothing is due and only time (or a fault) can move.
    let model = model();
    let state = model.init_states().remove(0);
    let state = advance_to(&model, state, 2);
    assert!(actions(&model, &state).contains(&Action::AdvanceTime));
    let state = step(&model, &state, Action::AdvanceTime);
    let enabled = actions(&model, &state);
    assert!(
        !enabled.contains(&Action::AdvanceTime),
        "a due timer is urgent"
    );
    let due: Vec<&Action> = enabled
        .iter()
        .filter(|action| matches!(action, Action::Timeout { .. }))
        .collect();
    assert_eq!(due.len(), 4, "node1 and node2, each with both jitters");
}

#[test]
fn a_leader_elected_by_the_real_core_acts_with_its_term_as_token() {
    let (_, state) = node0_leads();
    let leadership = state
        .core(0)
        .and_then(|core| core.leadership(state.local_now(0)))
        .expect("a lease");
    assert_eq!(leadership.fencing_token, FencingToken(1));
    // Every node is in term 1 and none is a candidate: nobody can lead term 1 again, so the
    // history forgets who did. The token that acts is still remembered: the leader acts.
    assert!(state.history().leaders_seen().is_empty());
    assert_eq!(state.history().highest_token_acted(), Some(FencingToken(1)));
}

#[test]
fn a_message_over_a_cut_link_is_lost_without_another_fault() {
    let (model, state) = node0_leads();
    let node0 = tenure_core::NodeId(0);
    let node2 = tenure_core::NodeId(2);
    let state = step(&model, &state, Action::Cut(node0, node2));
    assert_eq!(state.faults(), 1);
    let state = advance_to(&model, state, 5);
    let state = step(
        &model,
        &state,
        Action::Timeout {
            node: node0,
            jitter: Jitter::Shortest,
        },
    );
    let lost = actions(&model, &state)
        .into_iter()
        .find(|action| matches!(action, Action::Drop(envelope) if envelope.to == node2))
        .expect("the heartbeat to node2 can only be lost");
    assert!(!actions(&model, &state)
        .iter()
        .any(|action| matches!(action, Action::Deliver(envelope) if envelope.to == node2)));
    let state = step(&model, &state, lost);
    assert_eq!(state.faults(), 1, "the cut was the fault");
}

#[test]
fn a_crash_keeps_the_disk_and_a_restart_is_quarantined() {
    let (model, state) = node0_leads();
    let node1 = tenure_core::NodeId(1);
    let voted = state.core(1).expect("running").persistent_state();
    assert_eq!(voted.voted_for, Some(tenure_core::NodeId(0)));
    let state = step(&model, &state, Action::Crash(node1));
    assert!(state.core(1).is_none());
    assert_eq!(state.persisted(1), Some(voted));
    let state = step(&model, &state, Action::Restart(node1));
    let restarted = state.core(1).expect("running again");
    assert_eq!(restarted.persistent_state(), voted);
    assert!(restarted.quarantine_until().is_some());
}

#[test]
fn the_variant_reaches_the_core() {
    let spec = ModelSpec {
        variant: Variant::NoPromise,
        ..ModelSpec::default_check()
    };
    let model = TenureModel::new(spec).expect("valid");
    assert_eq!(model.config().variant(), Variant::NoPromise);
}

#[test]
fn the_child_of_a_crashed_leader_acts_until_its_deadline() {
    // DESIGN: The deadline guard. The child is the guard's, not the node's: after a crash it
    // may run until the acting deadline, and acting_safety counts it until then.
    let (model, state) = node0_leads();
    let node0 = tenure_core::NodeId(0);
    let deadline = state
        .core(0)
        .and_then(|core| core.leadership(state.local_now(0)))
        .expect("a lease")
        .acting_until;
    let state = step(&model, &state, Action::Crash(node0));
    let orphans: Vec<_> = state.orphans().collect();
    assert_eq!(orphans.len(), 1);
    assert_eq!(orphans[0].0, node0);
    assert_eq!(orphans[0].1.acting_until, deadline);
    let mut state = state;
    while state.local_now(0) < deadline {
        assert_eq!(
            state.orphans().count(),
            1,
            "still running at {:?}",
            state.local_now(0)
        );
        let next = actions(&model, &state)
            .into_iter()
            .find(|action| {
                matches!(
                    action,
                    Action::AdvanceTime
                        | Action::Timeout {
                            jitter: Jitter::Shortest,
                            ..
                        }
                )
            })
            .expect("time can move on");
        state = settle(&model, step(&model, &state, next));
    }
    assert_eq!(
        state.orphans().count(),
        0,
        "the guard killed it at the deadline"
    );
}
