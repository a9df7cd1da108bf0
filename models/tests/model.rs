//! Rules of the model itself: exact time, outputs one at a time, the network's held messages,
//! crashes and lingering children. Each test walks a short path by hand and looks at the
//! actions and states it reaches.

use stateright::Model;
use tenure_core::{FencingToken, NodeId, PersistentState, RoleKind, Term, Variant};
use tenure_models::{
    global_instant, timing, Action, ClusterState, Jitter, ModelSpec, Pending, SearchBounds,
    TenureModel,
};

/// The default check's model, with a held message and a resignation allowed.
fn model() -> TenureModel {
    let default = ModelSpec::default_check();
    TenureModel::new(ModelSpec {
        bounds: SearchBounds {
            max_holds: 1,
            max_resigns: 1,
            ..default.bounds
        },
        ..default
    })
    .expect("a valid model")
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
    model
        .next_state(state, action)
        .unwrap_or_else(|| panic!("{action} changed nothing in\n{state:?}"))
}

/// Runs without faults: outputs take effect, messages arrive, due timers fire (node `n` draws
/// the jitter `jitter(n)`), and otherwise time advances, until `done` holds.
fn run_until(
    model: &TenureModel,
    mut state: ClusterState,
    jitter: impl Fn(NodeId) -> Jitter,
    done: impl Fn(&ClusterState) -> bool,
) -> ClusterState {
    for _ in 0..10_000 {
        if done(&state) {
            return state;
        }
        let enabled = actions(model, &state);
        let next = enabled
            .iter()
            .find(|action| matches!(action, Action::Apply(_) | Action::Deliver(_)))
            .or_else(|| {
                enabled.iter().find(|action| {
                    matches!(action, Action::Timeout { node, jitter: drawn } if *drawn == jitter(*node))
                        || matches!(action, Action::Timeout { jitter: Jitter::Shortest, .. })
                })
            })
            .or_else(|| enabled.iter().find(|action| **action == Action::AdvanceTime))
            .copied()
            .unwrap_or_else(|| panic!("stuck in\n{state:?}"));
        state = step(model, &state, next);
    }
    panic!("not done after 10 000 steps:\n{state:?}");
}

/// node0 (the slow clock) leads term 1 and acts: node1 and node2 draw the longest jitter.
fn node0_leads() -> (TenureModel, ClusterState) {
    let model = model();
    let state = model.init_states().remove(0);
    let node0_first = |node: NodeId| {
        if node == NodeId(0) {
            Jitter::Shortest
        } else {
            Jitter::Longest
        }
    };
    let state = run_until(&model, state, node0_first, |state| {
        state
            .core(0)
            .is_some_and(|core| core.is_acting(state.local_now(0)))
            && (0..3).all(|index| state.pending(index).is_empty())
            && state.network().is_empty()
    });
    assert_eq!(state.core(0).expect("running").role(), RoleKind::Leader);
    (model, state)
}

#[test]
fn time_jumps_to_the_next_deadline_of_any_clock() {
    // Every node boots quarantined until local L. The fast clock (node2, 11 ns per tick)
    // reaches it first, at tick L / 11, and time stops exactly there: not at a whole unit.
    let model = model();
    let state = model.init_states().remove(0);
    let enabled = actions(&model, &state);
    assert!(enabled.contains(&Action::AdvanceTime));
    assert!(!enabled
        .iter()
        .any(|action| matches!(action, Action::Timeout { .. })));
    let state = step(&model, &state, Action::AdvanceTime);
    let fast_quarantine_end =
        global_instant(tenure_core::Instant::ZERO + timing::LEASE_DURATION, 11);
    assert_eq!(u64::from(state.time()), fast_quarantine_end);
    let enabled = actions(&model, &state);
    assert!(
        !enabled.contains(&Action::AdvanceTime),
        "a due timer is urgent"
    );
    let due: Vec<&Action> = enabled
        .iter()
        .filter(|action| matches!(action, Action::Timeout { .. }))
        .collect();
    assert_eq!(due.len(), 2, "node2, with each jitter");
}

#[test]
fn a_leader_elected_by_the_real_core_acts_with_its_term_as_token() {
    let (_, state) = node0_leads();
    let leadership = state
        .core(0)
        .and_then(|core| core.leadership(state.local_now(0)))
        .expect("a lease");
    assert_eq!(leadership.fencing_token, FencingToken(1));
    assert_eq!(state.history().highest_token_acted(), Some(FencingToken(1)));
    assert!(state.history().leaders_seen().is_empty());
}

#[test]
fn outputs_take_effect_one_at_a_time_and_a_crash_loses_the_rest() {
    // node0's RequestVote reaches node1, which adopts term 1, grants, and must persist its
    // vote before the reply leaves. A crash in between loses the reply, never the vote.
    let (model, state) = node0_leads();
    let persisted = state.persisted(1).expect("node1 voted");
    assert_eq!(persisted.voted_for, Some(NodeId(0)));
    // Now a heartbeat: node1's ack is one pending Send; only node1 may move (apply or crash).
    let state = run_until(
        &model,
        state,
        |_| Jitter::Shortest,
        |state| !state.pending(1).is_empty(),
    );
    assert!(matches!(state.pending(1), [Pending::Send(_)]));
    let enabled = actions(&model, &state);
    let crash = Action::CrashAfter {
        node: NodeId(1),
        applied: 0,
    };
    assert_eq!(enabled, vec![crash, Action::Apply(NodeId(1))]);
    let crashed = step(&model, &state, crash);
    assert!(
        crashed.pending(1).is_empty(),
        "the ack is lost with the process"
    );
    assert_eq!(
        crashed.persisted(1),
        Some(PersistentState {
            term: Term(1),
            voted_for: Some(NodeId(0)),
        })
    );
    // A node restarts between exchanges.
    let settled = run_until(
        &model,
        crashed,
        |_| Jitter::Shortest,
        |state| state.network().in_flight().is_empty() && state.pending(0).is_empty(),
    );
    let restarted = step(&model, &settled, Action::Restart(NodeId(1)));
    let core = restarted.core(1).expect("running again");
    assert_eq!(core.voted_for(), Some(NodeId(0)));
    assert!(core.quarantine_until().is_some());
}

#[test]
fn a_message_over_a_cut_link_is_lost_without_another_fault() {
    let (model, state) = node0_leads();
    let state = step(&model, &state, Action::Cut(NodeId(0), NodeId(2)));
    assert_eq!(state.faults(), 1);
    let state = run_until(
        &model,
        state,
        |_| Jitter::Shortest,
        |state| {
            state
                .network()
                .in_flight()
                .iter()
                .any(|message| message.envelope.to == NodeId(2))
        },
    );
    let enabled = actions(&model, &state);
    let lost = enabled
        .iter()
        .find(|action| matches!(action, Action::Drop(message) if message.envelope.to == NodeId(2)))
        .copied()
        .expect("the heartbeat to node2 can only be lost");
    assert!(!enabled.iter().any(|action| matches!(
        action,
        Action::Deliver(message) | Action::Hold(message) if message.envelope.to == NodeId(2)
    )));
    let state = step(&model, &state, lost);
    assert_eq!(state.faults(), 1, "the cut was the fault");
}

#[test]
fn a_held_message_arrives_after_time_has_moved_on() {
    let (model, state) = node0_leads();
    let state = run_until(
        &model,
        state,
        |_| Jitter::Shortest,
        |state| {
            state.network().in_flight().iter().any(|message| {
                message.envelope.to == NodeId(2)
                    && matches!(
                        message.envelope.message,
                        tenure_core::Message::Heartbeat { .. }
                    )
            })
        },
    );
    let heartbeat = *state
        .network()
        .in_flight()
        .iter()
        .find(|message| message.envelope.to == NodeId(2))
        .expect("in flight");
    let state = step(&model, &state, Action::Hold(heartbeat));
    let sent_at = state.time();
    // Time moves on past the heartbeat's window; the held copy can still arrive.
    let state = run_until(
        &model,
        state,
        |_| Jitter::Shortest,
        |state| state.time() > sent_at && state.network().in_flight().is_empty(),
    );
    assert!(actions(&model, &state).contains(&Action::DeliverHeld(heartbeat.envelope)));
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
fn a_child_lingers_until_the_guard_kills_it() {
    // protocol: Acting. The child is the guard's: after its node crashes it runs until the
    // acting deadline plus the longest exit, which is the end of the lease, and no longer.
    let (model, state) = node0_leads();
    let leadership = state
        .core(0)
        .and_then(|core| core.leadership(state.local_now(0)))
        .expect("a lease");
    let state = step(&model, &state, Action::Crash(NodeId(0)));
    let children: Vec<_> = state.children().collect();
    assert_eq!(children.len(), 1);
    assert_eq!(
        children[0].1.until,
        leadership.acting_until + timing::CHILD_EXIT_MAX
    );
    assert_eq!(children[0].1.until, leadership.lease_until);
    let gone_at = global_instant(leadership.lease_until, state.rate(0));
    let state = run_until(
        &model,
        state,
        |_| Jitter::Longest,
        |state| u64::from(state.time()) >= gone_at,
    );
    assert_eq!(
        u64::from(state.time()),
        gone_at,
        "time stops at the kill deadline"
    );
    assert_eq!(state.children().count(), 0, "the guard killed it");
}
