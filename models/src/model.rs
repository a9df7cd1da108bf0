//! [`TenureModel`]: the stateright model that drives the real `tenure_core::Node`s.

use std::fmt;
use std::sync::Arc;

use stateright::{Model, Property};
use tenure_core::{
    Config, ConfigParams, ElectionOrder, Envelope, FencingToken, Instant, Message, Node, NodeId,
    Output, RoleKind, Term, Variant, MAX_CLUSTER_SIZE,
};

use crate::action::{Action, Jitter};
use crate::bounds::SearchBounds;
use crate::children::supervise;
use crate::clock::TICKS_PER_UNIT;
use crate::clock::{global_instant, local_time, timing, Drift, DriftSpec, MAX_DRIFT};
use crate::latch::SometimesLatch;
use crate::network::Network;
use crate::properties;
use crate::state::{ClusterState, History, NodeSlot, Pending};

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
    pub bounds: SearchBounds,
    /// How followers time the first election after a leader: the production order, or at
    /// the adversary's choice (protocol: Election timing).
    pub election_order: ElectionOrder,
}

impl ModelSpec {
    /// The first run of the default suite of `docs/verification.md`: three nodes, the correct
    /// core, one slow, one nominal and one fast clock, `SearchBounds::DEFAULT` (the `faults` run).
    pub fn default_check() -> ModelSpec {
        ModelSpec {
            nodes: 3,
            variant: Variant::Correct,
            drifts: DriftSpec::Fixed(vec![Drift::Slow, Drift::Nominal, Drift::Fast]),
            bounds: SearchBounds::DEFAULT,
            election_order: ElectionOrder::Ranked,
        }
    }
}

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} nodes, variant {}, drifts {}, elections {}; bounds: {}",
            self.nodes,
            self.variant,
            self.drifts,
            order_name(self.election_order),
            self.bounds
        )
    }
}

/// The name of an election order on the command line and in reports.
pub fn order_name(order: ElectionOrder) -> &'static str {
    match order {
        ElectionOrder::Ranked => "ranked",
        ElectionOrder::Random => "random",
    }
}

/// The model: a cluster of real cores, a network that loses, duplicates, delays and reorders,
/// clocks that drift within ±ρ, crashes and restarts, and graceful resignation.
///
/// Time is explicit: stateright's own actor timers fire in any order regardless of their
/// duration, which would let a follower's promise end before the lease it protects. Here a
/// timer fires only once its node's clock has reached it, and global time advances straight to
/// the next instant at which anything can change (see `clock`), only when no running node has
/// a due timer (timers are urgent), no output is pending and no message's window ends now.
#[derive(Clone)]
pub struct TenureModel {
    spec: ModelSpec,
    config: Arc<Config>,
    /// Which `Sometimes` properties were reached, when latching (see
    /// [`TenureModel::latch_sometimes`]).
    reached: SometimesLatch<{ properties::SOMETIMES.len() }>,
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
            election_step: timing::ELECTION_STEP,
            election_order: spec.election_order,
            variant: spec.variant,
        })
        .map_err(|error| format!("the model's timing is not a valid config: {error}"))?;
        Ok(TenureModel {
            spec,
            config: Arc::new(config),
            reached: SometimesLatch::off(),
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
        self.reached = SometimesLatch::on();
        self
    }

    /// Evaluates `Sometimes` property number `index` through the latch, if any.
    pub(crate) fn sometimes(&self, index: usize, holds: impl FnOnce() -> bool) -> bool {
        self.reached.check(index, holds)
    }

    /// What this model checks.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// The core configuration every node runs.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The last instant of global time, in ticks.
    pub fn horizon_ticks(&self) -> u32 {
        u32::from(self.spec.bounds.horizon) * TICKS_PER_UNIT
    }

    /// Takes the outputs of node `index` from its core into its driver's queue, in order. They
    /// take effect one `Action::Apply` at a time (protocol: Members, terms, votes: persist
    /// before send is the driver's side of the contract).
    fn drain(&self, state: &mut ClusterState, index: usize) {
        let slot = &mut state.nodes[index];
        let Some(core) = slot.core.as_mut() else {
            return;
        };
        while let Some(output) = core.poll_output() {
            match output {
                Output::Persist(persisted) => slot.pending.push(Pending::Persist(persisted)),
                Output::Send(envelope) => slot.pending.push(Pending::Send(envelope)),
                Output::Event(_) => {}
            }
        }
        let bounds = &self.spec.bounds;
        if state.faults >= bounds.max_faults || state.crashes >= bounds.max_crashes {
            // No crash can come between them any more: they take effect at once, which
            // spares the state in between.
            let count = state.nodes[index].pending.len();
            self.apply(state, index, count);
        }
    }

    /// Whether `state` is within the bounds that are checked after the fact (terms and
    /// messages); a state beyond them is checked but not explored further.
    fn in_bounds(&self, state: &ClusterState) -> bool {
        let bounds = &self.spec.bounds;
        let max_term = Term(bounds.max_term);
        state.network.len() <= usize::from(bounds.max_in_flight)
            && state.nodes.iter().all(|slot| {
                slot.core
                    .as_ref()
                    .is_none_or(|core| core.term() <= max_term)
                    && slot
                        .persisted
                        .is_none_or(|persisted| persisted.term <= max_term)
                    && slot.pending.iter().all(|pending| match pending {
                        Pending::Persist(persisted) => persisted.term <= max_term,
                        Pending::Send(envelope) => envelope.message.term() <= max_term,
                    })
            })
            && state
                .network
                .iter()
                .all(|envelope| envelope.message.term() <= max_term)
    }

    /// The next global instant after now at which anything can change: a running node's
    /// timer, promise, quarantine, lease end or acting end, a child's kill deadline, the end of
    /// a message's delivery window. `None` if nothing ever changes by time alone.
    pub fn next_event(&self, state: &ClusterState) -> Option<u32> {
        let now = u64::from(state.time);
        let mut next: Option<u64> = None;
        let mut consider = |instant: u64| {
            if instant > now {
                next = Some(next.map_or(instant, |next| next.min(instant)));
            }
        };
        for (index, slot) in state.nodes.iter().enumerate() {
            let rate = slot.rate;
            let local = state.local_now(index);
            for child in &slot.children {
                consider(global_instant(child.until, rate));
            }
            let Some(core) = &slot.core else {
                continue;
            };
            let deadlines = [
                core.poll_timeout(),
                core.promise_until(),
                core.quarantine_until(),
                core.leadership(local)
                    .map(|leadership| leadership.lease_until),
                core.leadership(local)
                    .map(|leadership| leadership.acting_until),
            ];
            for deadline in deadlines.into_iter().flatten() {
                consider(global_instant(deadline, rate));
            }
        }
        if let Some(deadline) = state.network.earliest_deadline() {
            consider(u64::from(deadline));
        }
        next.map(|next| u32::try_from(next).unwrap_or(u32::MAX))
    }

    /// Updates the children and the ghost history after a step.
    fn observe(&self, next: &mut ClusterState) {
        let ClusterState {
            time,
            nodes,
            history,
            ..
        } = next;
        for slot in nodes.iter_mut() {
            let now = local_time(*time, slot.rate);
            let Some(core) = &slot.core else {
                // The guard's SIGKILL has ended every child whose deadline has come.
                slot.children.retain(|child| now < child.until);
                continue;
            };
            let term = core.term();
            if core.role() == RoleKind::Leader {
                let entry = (term, core.id());
                if let Err(position) = history.leaders.binary_search(&entry) {
                    history.leaders.insert(position, entry);
                }
            }
            if core.role() != RoleKind::Leader {
                // A resigning leader whose window closed has lapsed: nothing to report.
                slot.resigning = false;
            }
            let acting = core
                .leadership(now)
                .filter(|leadership| leadership.is_acting(now));
            supervise(&mut slot.children, acting, now, &mut history.acting);
        }
        normalise_history(next);
    }

    /// What may happen while no node is in the middle of applying its outputs, faults and
    /// external events first.
    fn free_actions(&self, state: &ClusterState, actions: &mut Vec<Action>) {
        let bounds = &self.spec.bounds;
        let can_fault = state.faults < bounds.max_faults;
        let can_hold = state.holds < bounds.max_holds;
        let nodes = state.nodes.len();
        // Links change, nodes crash and restart and operators act between exchanges: while no
        // message is in flight (held ones aside). A node's crash in the middle of its own
        // exchange is `CrashAfter`; a crash while others' messages to it are in flight differs
        // from one just after them only in messages it would never have handled.
        let between_exchanges = state.network.in_flight().is_empty();
        for first in 0..nodes {
            if !between_exchanges {
                break;
            }
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
            if !between_exchanges {
                break;
            }
            let Some(core) = &slot.core else {
                actions.push(Action::Restart(NodeId(index as u32)));
                continue;
            };
            let node = core.id();
            if can_fault && state.crashes < bounds.max_crashes {
                actions.push(Action::Crash(node));
            }
            let may_resign = state.resigns < bounds.max_resigns && !slot.resigning;
            if may_resign && core.is_acting(state.local_now(index)) {
                for &successor in self.config.members() {
                    if successor != node {
                        actions.push(Action::Resign { node, successor });
                    }
                }
            }
        }
        for message in state.network.distinct_in_flight() {
            if !reachable(state, &message.envelope) {
                actions.push(Action::Drop(*message));
                continue;
            }
            if can_hold {
                actions.push(Action::Hold(*message));
                actions.push(Action::Duplicate(*message));
            }
            if can_fault {
                actions.push(Action::Drop(*message));
            }
        }
        for envelope in state.network.distinct_held() {
            if reachable(state, envelope) {
                actions.push(Action::DeliverHeld(*envelope));
            }
        }
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
        // A write still pending may lower what the disk holds below the core's term only if
        // the core is running; a crash drops it. Either way the core's or the disk's term is
        // what a restart starts from, and both are covered above.
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
    history
        .acting
        .forget_below(FencingToken(lowest_token_to_act.0));
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
                            pending: Vec::new(),
                            persisted: None,
                            resigning: false,
                            highest_term: Term(0),
                            vote: None,
                            children: Vec::new(),
                        }
                    })
                    .collect();
                let mut state = ClusterState {
                    time: 0,
                    faults: 0,
                    crashes: 0,
                    resigns: 0,
                    holds: 0,
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
    /// The schedule (see `docs/verification.md`): a node that has just handled an input
    /// applies its outputs one at a time, and the only other thing that may happen meanwhile
    /// is its crash. Otherwise a due timer fires, a message in flight arrives, is lost or held
    /// back, a held message arrives, a link is cut or heals, a node crashes or restarts, an
    /// operator asks the acting leader to resign, and the driver reports a stopped child, in
    /// any order; time advances to the next instant at which anything can change only when no
    /// timer is due, no message's window ends now and no stopped child is left to report.
    fn actions(&self, state: &ClusterState, actions: &mut Vec<Action>) {
        // A state beyond the bounds is checked, then terminal (see `SearchBounds`).
        if !self.in_bounds(state) {
            return;
        }
        let bounds = &self.spec.bounds;
        let can_crash = state.faults < bounds.max_faults && state.crashes < bounds.max_crashes;
        if let Some(index) = state.nodes.iter().position(|slot| !slot.pending.is_empty()) {
            // The driver applies the outputs of one input before it takes the next; that
            // other nodes wait meanwhile loses nothing, since nothing they do can see the
            // difference before the outputs take effect.
            let node = NodeId(index as u32);
            if can_crash && state.nodes[index].core.is_some() {
                for applied in 0..state.nodes[index].pending.len() {
                    let applied = u8::try_from(applied).expect("a handful of outputs");
                    actions.push(Action::CrashAfter { node, applied });
                }
            }
            actions.push(Action::Apply(node));
            return;
        }
        // Faults and external events come first and the run's own progress last: the
        // depth-first search takes the last action first, so it follows the fault-free run to
        // the horizon and then tries faults from the latest point back.
        self.free_actions(state, actions);
        let mut urgent = false;
        for (index, slot) in state.nodes.iter().enumerate() {
            if slot.resigning && slot.children.is_empty() {
                actions.push(Action::ActingStopped(NodeId(index as u32)));
                urgent = true;
            }
        }
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
        for message in state.network.distinct_in_flight() {
            if reachable(state, &message.envelope) {
                actions.push(Action::Deliver(*message));
            }
        }
        let window_ends = state
            .network
            .earliest_deadline()
            .is_some_and(|deadline| deadline <= state.time);
        if !urgent && !window_ends && timers.is_empty() {
            if let Some(next) = self.next_event(state) {
                if next <= self.horizon_ticks() {
                    actions.push(Action::AdvanceTime);
                }
            }
        }
    }

    fn next_state(&self, last: &ClusterState, action: Action) -> Option<ClusterState> {
        let mut next = last.clone();
        match action {
            Action::AdvanceTime => next.time = self.next_event(last)?,
            Action::Timeout { node, jitter } => {
                let index = index_of(node);
                let now = next.local_now(index);
                let core = next.nodes[index].core.as_mut()?;
                core.handle_timeout(now, jitter.entropy());
                self.drain(&mut next, index);
            }
            Action::Apply(node) => {
                let index = index_of(node);
                if next.nodes[index].pending.is_empty() {
                    return None;
                }
                let count = next.nodes[index].pending.len();
                self.apply(&mut next, index, count);
            }
            Action::CrashAfter { node, applied } => {
                let index = index_of(node);
                if usize::from(applied) >= next.nodes[index].pending.len() {
                    return None;
                }
                self.apply(&mut next, index, usize::from(applied));
                self.crash(&mut next, index)?;
            }
            Action::Deliver(message) | Action::Duplicate(message) => {
                next.network.take_in_flight(&message)?;
                if matches!(action, Action::Duplicate(_)) {
                    next.network.hold(message.envelope);
                    next.holds += 1;
                }
                self.deliver(&mut next, message.envelope)?;
            }
            Action::DeliverHeld(envelope) => {
                next.network.take_held(&envelope)?;
                self.deliver(&mut next, envelope)?;
            }
            Action::Drop(message) => {
                next.network.take_in_flight(&message)?;
                // A message to a crashed node, or over a cut link, is lost anyway: the crash
                // or the cut was the fault.
                if reachable(&next, &message.envelope) {
                    next.faults += 1;
                }
            }
            Action::Hold(message) => {
                next.network.take_in_flight(&message)?;
                next.network.hold(message.envelope);
                next.holds += 1;
            }
            Action::Cut(first, second) => {
                next.set_link_cut(first, second, true);
                next.faults += 1;
            }
            Action::Heal(first, second) => next.set_link_cut(first, second, false),
            Action::Crash(node) => self.crash(&mut next, index_of(node))?,
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
                next.nodes[index].resigning = true;
                self.drain(&mut next, index);
            }
            Action::ActingStopped(node) => {
                let index = index_of(node);
                let now = next.local_now(index);
                next.nodes[index].resigning = false;
                let core = next.nodes[index].core.as_mut()?;
                // If the node's leadership lapsed meanwhile (its acting window closed), there
                // is nothing left to report.
                if core.handle_acting_stopped(now).is_ok() {
                    next.history.resigned = true;
                }
                self.drain(&mut next, index);
            }
        }
        self.observe(&mut next);
        Some(next)
    }

    fn format_action(&self, action: &Action) -> String {
        action.to_string()
    }

    fn properties(&self) -> Vec<Property<Self>> {
        properties::all()
    }
}

impl TenureModel {
    /// Applies the first `count` pending outputs of node `index`, in order.
    fn apply(&self, state: &mut ClusterState, index: usize, count: usize) {
        for _ in 0..count {
            let output = state.nodes[index].pending.remove(0);
            self.record_output(state, index, output);
            match output {
                Pending::Persist(persisted) => state.nodes[index].persisted = Some(persisted),
                Pending::Send(envelope) => {
                    let deadline = state.time.saturating_add(self.spec.bounds.max_latency);
                    state.network.send(envelope, deadline);
                }
            }
        }
    }

    /// Node `index` crashes: its process and the outputs it has not applied are gone; its
    /// children are the guard's and run on until their deadline.
    fn crash(&self, state: &mut ClusterState, index: usize) -> Option<()> {
        let now = state.local_now(index);
        let slot = &mut state.nodes[index];
        let core = slot.core.take()?;
        if core.is_acting(now) {
            state.history.crashed_while_acting = true;
        }
        slot.pending.clear();
        slot.resigning = false;
        state.crashes += 1;
        state.faults += 1;
        Some(())
    }

    /// Updates the ghosts of `term_monotonic` and `single_vote` as an output of node `index`
    /// takes effect: from now on the world has seen the node's term, and a vote it carries.
    fn record_output(&self, state: &mut ClusterState, index: usize, output: Pending) {
        let slot = &mut state.nodes[index];
        if let Some(core) = &slot.core {
            // No input reaches a node while it has pending outputs: its term is the one its
            // outputs were emitted in.
            slot.highest_term = slot.highest_term.max(core.term());
        }
        let Pending::Send(envelope) = output else {
            return;
        };
        let vote = match envelope.message {
            Message::VoteReply {
                term,
                granted: true,
            } => (term, envelope.to),
            Message::RequestVote { term } => (term, envelope.from),
            _ => return,
        };
        match slot.vote {
            Some((term, candidate)) if term == vote.0 => {
                if candidate != vote.1 {
                    state.history.double_vote = true;
                }
            }
            Some((term, _)) if term > vote.0 => {}
            _ => slot.vote = Some(vote),
        }
    }

    /// Hands `envelope` to its receiver's core at the receiver's local time.
    fn deliver(&self, state: &mut ClusterState, envelope: Envelope) -> Option<()> {
        let index = index_of(envelope.to);
        let now: Instant = state.local_now(index);
        let core = state.nodes[index].core.as_mut()?;
        core.handle_message(now, envelope);
        self.drain(state, index);
        Some(())
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
