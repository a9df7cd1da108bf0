//! [`TenureModel`]: the stateright model that drives the real `tenure_core::Node`s.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use stateright::{Model, Property};
use tenure_core::{
    Config, ConfigParams, Envelope, FencingToken, Node, NodeId, Output, RoleKind, Term, Variant,
    MAX_CLUSTER_SIZE,
};

use crate::action::{Action, Jitter};
use crate::bounds::Bounds;
use crate::clock::{local_time, timing, Drift, DriftSpec, MAX_DRIFT};
use crate::network::Network;
use crate::properties;
use crate::state::{ClusterState, History, NodeSlot};

/// What to check: the cluster, the core variant, the clocks and the bounds.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    /// Cluster size.
    pub nodes: usize,
    /// The core variant under check.
    pub variant: Variant,
    /// The clock rates the nodes may have.
    pub drifts: DriftSpec,
    /// The limits of the state space.
    pub bounds: Bounds,
}

impl ModelSpec {
    /// The default check of `docs/verification.md`: three nodes, the correct core, one slow,
    /// one nominal and one fast clock, the default bounds.
    pub fn default_check() -> ModelSpec {
        ModelSpec {
            nodes: 3,
            variant: Variant::Correct,
            drifts: DriftSpec::Fixed(vec![Drift::Slow, Drift::Nominal, Drift::Fast]),
            bounds: Bounds::DEFAULT,
        }
    }
}

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} nodes, variant {}, drifts {}; bounds: {}",
            self.nodes, self.variant, self.drifts, self.bounds
        )
    }
}

/// The model: a cluster of real cores, a network that loses, duplicates, delays and reorders,
/// clocks that drift within ±ρ, crashes and restarts, and graceful resignation.
///
/// Time is explicit: stateright's own actor timers fire in any order regardless of their
/// duration, which would let a follower's promise end before the lease it protects. Here a
/// timer fires only once its node's clock has reached it, and global time advances only when
/// no running node has a due timer (timers are urgent: a node reacts to its timer before the
/// next unit of time passes).
#[derive(Clone)]
pub struct TenureModel {
    spec: ModelSpec,
    config: Arc<Config>,
    /// Which `Sometimes` properties were reached, when latching (see
    /// [`TenureModel::latch_sometimes`]).
    reached: Option<Arc<[AtomicBool; properties::SOMETIMES.len()]>>,
}

impl TenureModel {
    /// Builds the model, or says why `spec` is not one.
    pub fn new(spec: ModelSpec) -> Result<TenureModel, String> {
        if spec.nodes == 0 || spec.nodes > MAX_CLUSTER_SIZE {
            return Err(format!(
                "--nodes {}: the cluster needs 1 to {MAX_CLUSTER_SIZE} nodes",
                spec.nodes
            ));
        }
        if let DriftSpec::Fixed(drifts) = &spec.drifts {
            if drifts.len() != spec.nodes {
                return Err(format!(
                    "--drifts {}: names {} rates for {} nodes",
                    spec.drifts,
                    drifts.len(),
                    spec.nodes
                ));
            }
        }
        if spec.bounds.max_term == 0 {
            return Err("--max-term 0: no election could ever happen".to_owned());
        }
        let config = Config::new(ConfigParams {
            members: (0..spec.nodes).map(|index| NodeId(index as u32)).collect(),
            lease_duration: timing::LEASE_DURATION,
            heartbeat_interval: timing::HEARTBEAT_INTERVAL,
            max_drift: MAX_DRIFT,
            stop_margin: timing::STOP_MARGIN,
            election_jitter_max: timing::ELECTION_JITTER_MAX,
            variant: spec.variant,
        })
        .map_err(|error| format!("the model's timing is not a valid config: {error}"))?;
        Ok(TenureModel {
            spec,
            config: Arc::new(config),
            reached: None,
        })
    }

    /// Makes each `Sometimes` property report only the first state it holds in.
    ///
    /// stateright records a `Sometimes` example anew, cloning its path, in every state where
    /// the property holds; a leader acts in most states, so that costs more than the rest of
    /// the check. Latched, the property is true once and false afterwards, which changes no
    /// result. A checker run wants this; the Explorer, which shows every property in every
    /// state, does not.
    pub fn latch_sometimes(mut self) -> TenureModel {
        self.reached = Some(Arc::new(Default::default()));
        self
    }

    /// Evaluates `Sometimes` property number `index` through the latch, if any.
    pub(crate) fn sometimes(&self, index: usize, holds: impl FnOnce() -> bool) -> bool {
        match &self.reached {
            None => holds(),
            Some(reached) => {
                if reached[index].load(Ordering::Relaxed) || !holds() {
                    return false;
                }
                !reached[index].swap(true, Ordering::Relaxed)
            }
        }
    }

    /// What this model checks.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// The core configuration every node runs.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Hands the outputs of node `index` to the world in order: a `Persist` is on disk before
    /// the messages after it leave (persist-before-send), sends enter the network.
    fn drain(&self, state: &mut ClusterState, index: usize) {
        let slot = &mut state.nodes[index];
        let Some(core) = slot.core.as_mut() else {
            return;
        };
        let mut batch = Vec::new();
        while let Some(output) = core.poll_output() {
            match output {
                Output::Persist(persisted) => {
                    // Every send of this step comes after it: nothing has left yet.
                    slot.persisted = Some(persisted);
                }
                Output::Send(envelope) => batch.push(envelope),
                Output::Event(_) => {}
            }
        }
        state.network.send_batch(batch);
    }

    /// What may happen only between exchanges, while no message is queued: a delayed message
    /// arrives or is lost, a link is cut or heals, a node crashes or restarts, an operator
    /// asks the leader to resign, a child being stopped reports it stopped.
    fn quiescent_actions(&self, state: &ClusterState, actions: &mut Vec<Action>) {
        let bounds = &self.spec.bounds;
        let can_fault = state.faults < bounds.max_faults;
        let nodes = state.nodes.len();
        for first in 0..nodes {
            for second in first + 1..nodes {
                let (first, second) = (NodeId(first as u32), NodeId(second as u32));
                if state.link_is_cut(first, second) {
                    actions.push(Action::Heal(first, second));
                } else if can_fault {
                    actions.push(Action::Cut(first, second));
                }
            }
        }
        for (index, slot) in state.nodes.iter().enumerate() {
            let Some(core) = &slot.core else {
                actions.push(Action::Restart(NodeId(index as u32)));
                continue;
            };
            let node = core.id();
            if can_fault && state.crashes < bounds.max_crashes {
                actions.push(Action::Crash(node));
            }
            let may_resign = state.resigns < bounds.max_resigns && state.stopping.is_none();
            if may_resign && core.role() == RoleKind::Leader {
                for &successor in self.config.members() {
                    if successor != node {
                        actions.push(Action::Resign { node, successor });
                    }
                }
            }
        }
        for envelope in state.network.distinct_delayed() {
            let receiver_running = reachable(state, envelope);
            if !receiver_running || can_fault {
                actions.push(Action::DropDelayed(*envelope));
            }
            if receiver_running {
                actions.push(Action::DeliverDelayed(*envelope));
            }
        }
        if let Some(node) = state.stopping {
            actions.push(Action::ActingStopped(node));
        }
    }

    /// Updates the ghost history after a step from `last` to `next`.
    fn observe(&self, last: &ClusterState, next: &mut ClusterState) {
        let ClusterState {
            time,
            nodes,
            history,
            ..
        } = next;
        for (index, slot) in nodes.iter_mut().enumerate() {
            let now = local_time(*time, slot.rate);
            if slot.orphan.is_some_and(|orphan| !orphan.is_acting(now)) {
                // The guard has killed the crashed node's child by now.
                slot.orphan = None;
            }
            let Some(core) = &slot.core else {
                continue;
            };
            let term = core.term();
            slot.highest_term = slot.highest_term.max(term);
            match (core.voted_for(), slot.vote) {
                // A second, different vote in the same term stays visible: `single_vote`.
                (Some(_), Some((first_term, _))) if first_term >= term => {}
                (Some(voted_for), _) => slot.vote = Some((term, voted_for)),
                (None, Some((first_term, _))) if first_term < term => slot.vote = None,
                (None, _) => {}
            }
            if core.role() != RoleKind::Leader {
                continue;
            }
            let entry = (term, core.id());
            if let Err(position) = history.leaders.binary_search(&entry) {
                history.leaders.insert(position, entry);
            }
            if core.is_acting(now) {
                let continuing = last.nodes[index].core.as_ref().is_some_and(|before| {
                    before.term() == term && before.is_acting(last.local_now(index))
                });
                if !continuing {
                    // fencing_monotonic: a new acting interval starts with this token.
                    let token = FencingToken::from(term);
                    if history
                        .highest_token_acted
                        .is_some_and(|highest| highest >= token)
                    {
                        history.fencing_violated = true;
                    }
                    history.highest_token_acted = history.highest_token_acted.max(Some(token));
                    history.acting_intervals = (history.acting_intervals + 1).min(3);
                }
            }
        }
        normalise_history(next);
    }
}

/// Forgets what can no longer matter, so that runs that can no longer behave differently meet
/// in one state.
///
/// A node can lead term `t` later only if its term (or, crashed, its persisted term) is below
/// `t`, or it is a candidate in `t`: `become_candidate` is the only way to lead, and it moves
/// to the next term. A term for which no node qualifies keeps no leader entry (unless it has
/// two: that violation must stay visible). Likewise an acting interval can start later only
/// with a token at least `floor`, the lowest term any node could still act in; once every
/// token that acted is below it, the exact highest one no longer matters. Both rest on terms
/// never going back, which `term_monotonic` checks.
fn normalise_history(state: &mut ClusterState) {
    let mut lowest_term_to_lead = Term(u64::MAX);
    let mut lowest_token_to_act = Term(u64::MAX);
    for slot in &state.nodes {
        let (could_lead, could_act) = match &slot.core {
            Some(core) => match core.role() {
                RoleKind::Candidate => (core.term(), core.term()),
                RoleKind::Leader => (next_term(core.term()), core.term()),
                RoleKind::Follower | RoleKind::PreCandidate => {
                    (next_term(core.term()), next_term(core.term()))
                }
            },
            None => {
                let term = next_term(slot.persisted.unwrap_or_default().term);
                (term, term)
            }
        };
        lowest_term_to_lead = lowest_term_to_lead.min(could_lead);
        lowest_token_to_act = lowest_token_to_act.min(could_act);
    }
    let history = &mut state.history;
    if history
        .leaders
        .iter()
        .any(|(term, _)| *term < lowest_term_to_lead)
    {
        let leaders = std::mem::take(&mut history.leaders);
        history.leaders = leaders
            .iter()
            .copied()
            .filter(|(term, _)| {
                *term >= lowest_term_to_lead
                    || leaders.iter().filter(|(other, _)| other == term).count() > 1
            })
            .collect();
    }
    if history
        .highest_token_acted
        .is_some_and(|highest| highest.0 < lowest_token_to_act.0)
    {
        history.highest_token_acted = None;
    }
}

fn next_term(term: Term) -> Term {
    Term(term.0.saturating_add(1))
}

impl Model for TenureModel {
    type State = ClusterState;
    type Action = Action;

    fn init_states(&self) -> Vec<ClusterState> {
        self.spec
            .drifts
            .assignments(self.spec.nodes)
            .into_iter()
            .map(|drifts| {
                let nodes = drifts
                    .into_iter()
                    .enumerate()
                    .map(|(index, drift)| {
                        let rate = drift.rate();
                        let core = Node::new(
                            Arc::clone(&self.config),
                            NodeId(index as u32),
                            None,
                            local_time(0, rate),
                        )
                        .expect("every node is a member and boots without persisted state");
                        NodeSlot {
                            rate,
                            core: Some(core),
                            persisted: None,
                            highest_term: Term(0),
                            vote: None,
                            orphan: None,
                        }
                    })
                    .collect();
                let mut state = ClusterState {
                    time: 0,
                    crashes: 0,
                    resigns: 0,
                    faults: 0,
                    stopping: None,
                    cut_links: 0,
                    nodes,
                    network: Network::default(),
                    history: History::default(),
                };
                for index in 0..self.spec.nodes {
                    self.drain(&mut state, index);
                }
                state
            })
            .collect()
    }

    /// The enabled actions, in a fixed order (paths are replayed by action index).
    ///
    /// The schedule (see `docs/verification.md`): timers fire and the next queued message is
    /// delivered, lost, duplicated or delayed at any point; a delayed message arrives, and a
    /// crash, restart, resignation or stopped child happens, only while no message is queued
    /// (between the zero-latency exchanges of an instant); time advances only when nothing is
    /// queued, no timer is due and no child is being stopped.
    fn actions(&self, state: &ClusterState, actions: &mut Vec<Action>) {
        // Faults and external events come first and the run's own progress last: the
        // depth-first search takes the last action first, so it follows the fault-free run to
        // the horizon and then tries faults from the latest point back, where the bugs that
        // need a settled leader are.
        let bounds = &self.spec.bounds;
        let can_fault = state.faults < bounds.max_faults;
        let mut timers = Vec::new();
        for (index, slot) in state.nodes.iter().enumerate() {
            let Some(core) = &slot.core else {
                continue;
            };
            if core
                .poll_timeout()
                .is_some_and(|at| at <= state.local_now(index))
            {
                timers.push((core.id(), core.role()));
            }
        }
        let arriving: Vec<Envelope> = state.network.arriving().copied().collect();
        for envelope in &arriving {
            let receiver_running = reachable(state, envelope);
            if can_fault {
                actions.push(Action::Delay(*envelope));
            }
            if !receiver_running || can_fault {
                actions.push(Action::Drop(*envelope));
            }
            if receiver_running && can_fault {
                actions.push(Action::Duplicate(*envelope));
            }
        }
        if arriving.is_empty() {
            self.quiescent_actions(state, actions);
        }
        for &(node, role) in &timers {
            // A leader draws no jitter; anyone else may start an election.
            if role != RoleKind::Leader {
                actions.push(Action::Timeout {
                    node,
                    jitter: Jitter::Longest,
                });
            }
        }
        for &(node, _) in &timers {
            actions.push(Action::Timeout {
                node,
                jitter: Jitter::Shortest,
            });
        }
        for envelope in &arriving {
            if reachable(state, envelope) {
                actions.push(Action::Deliver(*envelope));
            }
        }
        let quiescent = arriving.is_empty() && state.stopping.is_none();
        if quiescent && timers.is_empty() && state.time < bounds.horizon {
            actions.push(Action::AdvanceTime);
        }
    }

    fn next_state(&self, last: &ClusterState, action: Action) -> Option<ClusterState> {
        let mut next = last.clone();
        match action {
            Action::AdvanceTime => next.time += 1,
            Action::Timeout { node, jitter } => {
                let index = index_of(node);
                let now = next.local_now(index);
                let core = next.nodes[index].core.as_mut()?;
                core.handle_timeout(now, jitter.entropy());
                self.drain(&mut next, index);
            }
            Action::Deliver(envelope)
            | Action::Duplicate(envelope)
            | Action::DeliverDelayed(envelope) => {
                match action {
                    Action::DeliverDelayed(_) => next.network.take_delayed(&envelope)?,
                    _ => next.network.take_arriving(&envelope)?,
                };
                if matches!(action, Action::Duplicate(_)) {
                    next.network.hold(envelope);
                    next.faults += 1;
                }
                let index = index_of(envelope.to);
                let now = next.local_now(index);
                let core = next.nodes[index].core.as_mut()?;
                core.handle_message(now, envelope);
                self.drain(&mut next, index);
            }
            Action::Drop(envelope) | Action::DropDelayed(envelope) => {
                match action {
                    Action::DropDelayed(_) => next.network.take_delayed(&envelope)?,
                    _ => next.network.take_arriving(&envelope)?,
                };
                // A message to a crashed node, or over a cut link, is lost anyway: the crash
                // or the cut was the fault.
                if reachable(&next, &envelope) {
                    next.faults += 1;
                }
            }
            Action::Cut(first, second) => {
                next.set_link_cut(first, second, true);
                next.faults += 1;
            }
            Action::Heal(first, second) => next.set_link_cut(first, second, false),
            Action::Delay(envelope) => {
                let delayed = next.network.take_arriving(&envelope)?;
                next.network.hold(delayed);
                next.faults += 1;
            }
            Action::Crash(node) => {
                let index = index_of(node);
                let now = next.local_now(index);
                let core = next.nodes[index].core.take()?;
                if let Some(leadership) = core.leadership(now).filter(|l| l.is_acting(now)) {
                    next.history.crashed_while_acting = true;
                    next.nodes[index].orphan = Some(leadership);
                }
                if next.stopping == Some(node) {
                    // The child dies with the node (DESIGN: The deadline guard).
                    next.stopping = None;
                }
                next.crashes += 1;
                next.faults += 1;
            }
            Action::Restart(node) => {
                let index = index_of(node);
                if next.nodes[index].core.is_some() {
                    return None;
                }
                let now = next.local_now(index);
                let core = Node::new(
                    Arc::clone(&self.config),
                    node,
                    next.nodes[index].persisted,
                    now,
                )
                .expect("the persisted state was written by a core of this cluster, in bounds");
                next.nodes[index].core = Some(core);
                self.drain(&mut next, index);
            }
            Action::Resign { node, successor } => {
                let index = index_of(node);
                let now = next.local_now(index);
                let core = next.nodes[index].core.as_mut()?;
                core.handle_resign(now, Some(successor)).ok()?;
                next.resigns += 1;
                next.stopping = Some(node);
                self.drain(&mut next, index);
            }
            Action::ActingStopped(node) => {
                let index = index_of(node);
                let now = next.local_now(index);
                let core = next.nodes[index].core.as_mut()?;
                next.stopping = None;
                // If the node stepped down meanwhile (its acting window closed), the child
                // stopped on its own and there is nothing left to report.
                if core.handle_acting_stopped(now).is_ok() {
                    next.history.resigned = true;
                }
                self.drain(&mut next, index);
            }
        }
        self.observe(last, &mut next);
        Some(next)
    }

    fn format_action(&self, action: &Action) -> String {
        action.to_string()
    }

    fn properties(&self) -> Vec<Property<Self>> {
        properties::all()
    }

    fn within_boundary(&self, state: &ClusterState) -> bool {
        let bounds = &self.spec.bounds;
        let max_term = Term(bounds.max_term);
        state.time <= bounds.horizon
            && state.crashes <= bounds.max_crashes
            && state.resigns <= bounds.max_resigns
            && state.faults <= bounds.max_faults
            && state.network.len() <= usize::from(bounds.max_in_flight)
            && state.nodes.iter().all(|slot| {
                slot.core
                    .as_ref()
                    .is_none_or(|core| core.term() <= max_term)
                    && slot
                        .persisted
                        .is_none_or(|persisted| persisted.term <= max_term)
            })
            && state
                .network
                .iter()
                .all(|envelope| envelope.message.term() <= max_term)
    }
}

/// Whether `envelope` can arrive: its receiver runs and the link is not cut.
fn reachable(state: &ClusterState, envelope: &Envelope) -> bool {
    state.nodes[index_of(envelope.to)].core.is_some()
        && !state.link_is_cut(envelope.from, envelope.to)
}

/// Node ids are 0..n, so an id is its index.
fn index_of(node: NodeId) -> usize {
    node.0 as usize
}
