//! The oracle: it watches every node from outside the hosts, in global simulated time, and
//! checks the invariants (protocol: Invariants) after every step.
//!
//! What it records, and from where:
//! - acting intervals, from the acting recorder (`host::Recorder`). A child runs from its
//!   start until the driver stops it or its acting deadline passes, whichever is first, plus
//!   the time it takes to exit. That models the binary's deadline guard: a crashed, paused or
//!   starved driver cannot keep a child beyond its deadline, and the guard's kill takes time;
//! - leases, from the driver's status after every turn: from the first status that shows a
//!   lease until the lease's end on the node's clock, or until the node hands over;
//! - terms and votes, from the status and from every durable write.
//!
//! The same oracle judges store runs (protocol: Store leases), where a node's "term" is the
//! latest fencing token it saw and its lease is its tenure (`lease_until`, the latest applied
//! renewal's send time plus the lease hold): acting overlap, acting within the lease, leases
//! that overlap, one holder per token and fencing apply as they are. Three checks belong to the
//! quorum alone and are off there ([`Oracle::for_store`]): `lease_backed` (no promises back a
//! store lease; the store does), `single_vote` (nobody votes) and `term_monotonic` (a store
//! lease persists nothing, so a restarted node has seen no token yet).
//!
//! Local instants are converted to global time through each host's [`DriftClock`], which
//! knows every rate change, so an interval's end is exact once it has passed and a safe
//! estimate (after the present) before.

use std::collections::BTreeMap;
use std::fmt;

use tenure_core::{FencingToken, Instant, Invariant, NodeId, PersistentState, RoleKind, Term};
use tenure_driver::Status;

use crate::rng::Rng;
use crate::schedule::FaultKind;
use crate::time::{DriftClock, SimTime};

/// What the oracle checks: the protocol's invariants, under the names the core and the models
/// use (protocol: Invariants), and two checks of the simulation's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Check {
    /// A safety property of the protocol. `lease_backed` is what makes `lease_safety` hold, and
    /// it fails as soon as a lease is extended on a promise nobody made, whether or not a
    /// second leader happens to be elected in the gap.
    Invariant(Invariant),
    /// After the faults heal, a leader acts within the bound derived from the configuration.
    Liveness,
    /// A node's driver failed or panicked: not a protocol invariant, but never acceptable.
    HostFailure,
}

impl Check {
    /// Every check, in report order: the invariants in the order of [`Invariant::ALL`], then
    /// the simulation's own.
    pub const ALL: [Check; 9] = [
        Check::Invariant(Invariant::ElectionSafety),
        Check::Invariant(Invariant::LeaseSafety),
        Check::Invariant(Invariant::LeaseBacked),
        Check::Invariant(Invariant::ActingSafety),
        Check::Invariant(Invariant::FencingMonotonic),
        Check::Invariant(Invariant::TermMonotonic),
        Check::Invariant(Invariant::SingleVote),
        Check::Liveness,
        Check::HostFailure,
    ];

    /// The snake_case name used in reports: an invariant's own name, or `liveness` and
    /// `host_failure`.
    pub fn name(self) -> &'static str {
        match self {
            Check::Invariant(invariant) => invariant.name(),
            Check::Liveness => "liveness",
            Check::HostFailure => "host_failure",
        }
    }

    /// The protocol invariant this check is, if it is one.
    pub fn invariant(self) -> Option<Invariant> {
        match self {
            Check::Invariant(invariant) => Some(invariant),
            Check::Liveness | Check::HostFailure => None,
        }
    }
}

impl From<Invariant> for Check {
    fn from(invariant: Invariant) -> Check {
        Check::Invariant(invariant)
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A failed check: which, when (global time), and the evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub check: Check,
    pub at: SimTime,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}: {}", self.check, self.at, self.detail)
    }
}

/// One measured failover: from a fault that struck while a leader acted until a node acted
/// with a higher fencing token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failover {
    pub kind: FaultKind,
    pub fault_at: SimTime,
    pub duration: std::time::Duration,
    pub from: FencingToken,
    pub to: FencingToken,
}

/// The oracle of one run.
pub struct Oracle {
    /// The longest a child takes to exit once stopped: a little less than the stop margin in
    /// the fastest real time it can last, so that a child stopped at its deadline is gone by
    /// the end of its lease (protocol: Acting; protocol: The deadline guard).
    max_exit_delay: u64,
    rng: Rng,
    views: Vec<NodeView>,
    /// election_safety: the leader seen in each term.
    leaders: BTreeMap<Term, usize>,
    /// single_vote: each node's vote in each term.
    votes: BTreeMap<(usize, Term), NodeId>,
    /// Leases that may still matter: not yet over, or backing an acting interval kept below.
    leases: Vec<Lease>,
    /// Acting intervals not yet over, or over since the last check.
    actings: Vec<Acting>,
    next_acting_id: u64,
    /// The highest token of any acting interval admitted so far, and who carried it when.
    highest: Option<(FencingToken, usize, SimTime)>,
    last_leader: Option<usize>,
    pending: Vec<PendingFailover>,
    failovers: Vec<Failover>,
    liveness: Option<Liveness>,
    violation: Option<Violation>,
    /// Whether the quorum's own checks apply (promises, votes, terms): not in store runs.
    quorum: bool,
}

#[derive(Clone, Debug, Default)]
struct NodeView {
    term: Term,
    persisted_term: Term,
    /// The later of the node's promise and boot quarantine, on its own clock, as its last
    /// status showed them.
    bound_until: Option<Instant>,
    /// The node's software runs (it is neither crashed nor shut down).
    running: bool,
}

/// Rounding slack for [`Invariant::LeaseBacked`]: conversions between clocks round to the
/// nanosecond, while the real margin is at least a network hop.
const PROMISE_SLACK_NANOS: u64 = 1_000;

#[derive(Clone, Copy, Debug)]
struct Lease {
    node: usize,
    term: Term,
    start: SimTime,
    /// The latest lease end the node reported, on its own clock.
    until: Instant,
    /// Set when the node handed over: followers drop their promises at once.
    relinquished: Option<SimTime>,
}

#[derive(Clone, Copy, Debug)]
struct Acting {
    id: u64,
    node: usize,
    token: FencingToken,
    start: SimTime,
    /// The latest acting deadline, on the node's clock: the deadline guard kills the child then.
    deadline: Instant,
    /// When the driver asked the child to stop.
    stop: Option<SimTime>,
    exit_delay: u64,
    /// Whether fencing and failovers have seen it.
    admitted: bool,
}

#[derive(Clone, Copy, Debug)]
struct PendingFailover {
    kind: FaultKind,
    at: SimTime,
    token: FencingToken,
    acting_id: u64,
}

#[derive(Clone, Copy, Debug)]
struct Liveness {
    healed_at: SimTime,
    deadline: SimTime,
    satisfied: bool,
}

impl Lease {
    fn end(&self, clocks: &[DriftClock]) -> SimTime {
        self.relinquished
            .unwrap_or_else(|| clocks[self.node].global_at(self.until))
    }
}

impl Acting {
    /// When the child is gone: stopped by the driver or killed at its deadline, then exited.
    fn end(&self, clocks: &[DriftClock]) -> SimTime {
        let killed = clocks[self.node].global_at(self.deadline);
        let stopped = self.stop.map_or(killed, |stop| stop.min(killed));
        SimTime(stopped.0.saturating_add(self.exit_delay))
    }
}

impl Oracle {
    /// An oracle for `nodes` nodes whose children take up to `max_exit_delay` to exit.
    pub fn new(nodes: usize, max_exit_delay: std::time::Duration, rng: Rng) -> Oracle {
        Oracle {
            max_exit_delay: SimTime::from_duration(max_exit_delay).0,
            rng,
            views: vec![NodeView::default(); nodes],
            leaders: BTreeMap::new(),
            votes: BTreeMap::new(),
            leases: Vec::new(),
            actings: Vec::new(),
            next_acting_id: 0,
            highest: None,
            last_leader: None,
            pending: Vec::new(),
            failovers: Vec::new(),
            liveness: None,
            violation: None,
            quorum: true,
        }
    }

    /// Makes this the oracle of a store run: the quorum's own checks (`lease_backed`,
    /// `single_vote`, `term_monotonic`) are off, every other check is the same. Called before
    /// the run starts.
    pub fn for_store(&mut self) {
        self.quorum = false;
    }

    /// The first violation, if any. The run stops at it.
    pub fn violation(&self) -> Option<&Violation> {
        self.violation.as_ref()
    }

    /// Every failover measured so far.
    pub fn failovers(&self) -> &[Failover] {
        &self.failovers
    }

    /// How many children were started so far.
    pub fn children_started(&self) -> u64 {
        self.next_acting_id
    }

    /// Records a violation found outside the oracle (a host failure).
    pub fn report(&mut self, check: impl Into<Check>, at: SimTime, detail: String) {
        if self.violation.is_none() {
            self.violation = Some(Violation {
                check: check.into(),
                at,
                detail,
            });
        }
    }

    // ----- Inputs from the hosts --------------------------------------------------------------

    /// The driver of `node` started a child.
    pub fn acting_started(
        &mut self,
        node: usize,
        token: FencingToken,
        deadline: Instant,
        now: SimTime,
    ) -> u64 {
        let id = self.next_acting_id;
        self.next_acting_id += 1;
        let exit_delay = self.rng.range(0, self.max_exit_delay);
        self.actings.push(Acting {
            id,
            node,
            token,
            start: now,
            deadline,
            stop: None,
            exit_delay,
            admitted: false,
        });
        id
    }

    /// The driver extended a child's deadline. A guard whose deadline has passed has already
    /// killed the child, so a late extension changes nothing.
    pub fn acting_extended(
        &mut self,
        id: u64,
        deadline: Instant,
        now: SimTime,
        clocks: &[DriftClock],
    ) {
        if let Some(acting) = self.actings.iter_mut().find(|acting| acting.id == id) {
            let killed = clocks[acting.node].global_at(acting.deadline);
            if acting.stop.is_none() && now < killed {
                acting.deadline = acting.deadline.max(deadline);
            }
        }
    }

    /// The driver asked a child to stop.
    pub fn acting_stop_requested(&mut self, id: u64, now: SimTime) {
        if let Some(acting) = self.actings.iter_mut().find(|acting| acting.id == id) {
            acting.stop.get_or_insert(now);
        }
    }

    /// When the child will be (or was) gone, as far as is known now.
    pub fn child_end(&self, id: u64, clocks: &[DriftClock]) -> Option<SimTime> {
        self.actings
            .iter()
            .find(|acting| acting.id == id)
            .map(|acting| acting.end(clocks))
    }

    /// The oracle's id of the child `node` runs at `now`, if any (not yet gone).
    pub fn running_child(&self, node: usize, now: SimTime, clocks: &[DriftClock]) -> Option<u64> {
        self.actings
            .iter()
            .filter(|acting| acting.node == node && acting.end(clocks) > now)
            .max_by_key(|acting| acting.start)
            .map(|acting| acting.id)
    }

    /// The term `node` was last seen in (status or durable write).
    pub fn term(&self, node: usize) -> Term {
        self.views[node].term.max(self.views[node].persisted_term)
    }

    /// The node seen leading `term`, if any.
    pub fn leader_of(&self, term: Term) -> Option<usize> {
        self.leaders.get(&term).copied()
    }

    /// The software of `node` stopped (a crash, or the end of a graceful shutdown): a node
    /// that is down casts no vote, and comes back in boot quarantine.
    pub fn stopped_running(&mut self, node: usize) {
        self.views[node].running = false;
    }

    /// A node's status after a turn of its driver.
    pub fn status(&mut self, node: usize, now: SimTime, status: &Status<'_>) {
        self.views[node].running = true;
        self.views[node].bound_until = status.promise_until.max(status.quarantine_until);
        let term = self.views[node].term;
        if self.quorum && status.term < term {
            let detail = format!(
                "{} went from term {} back to {}",
                name(node),
                term,
                status.term
            );
            self.report(Invariant::TermMonotonic, now, detail);
        }
        self.views[node].term = self.views[node].term.max(status.term);
        match status.voted_for {
            Some(voted_for) => self.vote(node, status.term, voted_for, now),
            None => {
                // A vote, once cast, is the node's vote for the rest of the term, also across
                // restarts. A node that comes back without it could cast a second one as soon
                // as a request of that term reaches it; that takes a message delayed past the
                // boot quarantine, which real networks deliver rarely and the simulation
                // rarely produces, so the lost vote itself is the violation.
                if let Some(first) = self.votes.get(&(node, status.term)) {
                    let detail = format!(
                        "{} voted for {} in term {} and then held no vote in that term: it \
                         forgot its vote and may vote again",
                        name(node),
                        name_of(*first),
                        status.term
                    );
                    self.report(Invariant::SingleVote, now, detail);
                }
            }
        }
        if status.role == RoleKind::Leader {
            self.last_leader = Some(node);
            let first = *self.leaders.entry(status.term).or_insert(node);
            if first != node {
                let detail = format!(
                    "{} and {} both led term {}",
                    name(first),
                    name(node),
                    status.term
                );
                self.report(Invariant::ElectionSafety, now, detail);
            }
        }
        if let Some(leadership) = status.leadership {
            let open = self.leases.iter_mut().rev().find(|lease| {
                lease.node == node
                    && lease.term == status.term
                    && lease.relinquished.is_none()
                    && status.now < lease.until
            });
            match open {
                Some(lease) => lease.until = lease.until.max(leadership.lease_until),
                None if leadership.holds_lease(status.now) => self.leases.push(Lease {
                    node,
                    term: status.term,
                    start: now,
                    until: leadership.lease_until,
                    relinquished: None,
                }),
                None => {}
            }
        }
    }

    /// A node made `state` durable.
    pub fn persisted(&mut self, node: usize, now: SimTime, state: PersistentState) {
        let persisted_term = self.views[node].persisted_term;
        if state.term < persisted_term {
            let detail = format!(
                "{} persisted term {} after term {}",
                name(node),
                state.term,
                persisted_term
            );
            self.report(Invariant::TermMonotonic, now, detail);
        }
        self.views[node].persisted_term = persisted_term.max(state.term);
        if let Some(voted_for) = state.voted_for {
            self.vote(node, state.term, voted_for, now);
        }
    }

    /// A node sent a granted vote for `candidate` in `term`.
    pub fn vote_sent(&mut self, node: usize, term: Term, candidate: NodeId, now: SimTime) {
        self.vote(node, term, candidate, now);
    }

    /// A node handed over (phase two of a resignation): its followers drop their promises, so
    /// its lease ends now.
    pub fn relinquished(&mut self, node: usize, now: SimTime) {
        if let Some(lease) = self
            .leases
            .iter_mut()
            .rev()
            .find(|lease| lease.node == node && lease.relinquished.is_none())
        {
            lease.relinquished = Some(now);
        }
    }

    // ----- Inputs from the world ---------------------------------------------------------------

    /// A fault of `kind` struck (or, with `None`, every fault was healed). A fault that finds a
    /// leader still acting after the previous one did not dethrone it, so that one's failover
    /// is dropped; a new one is measured from this fault if a leader acts now.
    pub fn fault(&mut self, kind: Option<FaultKind>, now: SimTime, clocks: &[DriftClock]) {
        let open: Vec<u64> = self
            .actings
            .iter()
            .filter(|acting| acting.end(clocks) > now)
            .map(|acting| acting.id)
            .collect();
        self.pending
            .retain(|pending| !open.contains(&pending.acting_id));
        let Some(kind) = kind else {
            return;
        };
        if let Some(acting) = self
            .actings
            .iter()
            .filter(|acting| open.contains(&acting.id))
            .max_by_key(|acting| acting.token)
        {
            self.pending.push(PendingFailover {
                kind,
                at: now,
                token: acting.token,
                acting_id: acting.id,
            });
        }
    }

    /// The faults have healed and the network is calm from `calm` on: a leader must act by
    /// `calm + bound`.
    pub fn arm_liveness(&mut self, calm: SimTime, bound: std::time::Duration) {
        self.liveness = Some(Liveness {
            healed_at: calm,
            deadline: calm.after(bound),
            satisfied: false,
        });
    }

    /// The node that acts now, else the last one seen leading.
    pub fn leader(&self, now: SimTime, clocks: &[DriftClock]) -> Option<usize> {
        self.actings
            .iter()
            .filter(|acting| acting.end(clocks) > now)
            .max_by_key(|acting| acting.token)
            .map(|acting| acting.node)
            .or(self.last_leader)
    }

    // ----- The check after every step --------------------------------------------------------

    /// Checks every invariant over what happened up to `now`, then forgets what can no longer
    /// matter. Exact for the past: an interval counts as over only once its end has passed.
    pub fn check(&mut self, now: SimTime, clocks: &[DriftClock]) {
        if self.violation.is_some() {
            return;
        }
        self.admit();
        self.check_acting(now, clocks);
        self.check_leases(clocks);
        if self.quorum {
            self.check_promises(now, clocks);
        }
        self.check_liveness(now, clocks);
        self.retire(now, clocks);
    }

    /// fencing_monotonic, and failovers: new intervals in the order they started.
    fn admit(&mut self) {
        let mut new: Vec<usize> = (0..self.actings.len())
            .filter(|index| !self.actings[*index].admitted)
            .collect();
        new.sort_by_key(|index| (self.actings[*index].start, self.actings[*index].node));
        for index in new {
            let acting = self.actings[index];
            self.actings[index].admitted = true;
            if let Some((token, node, start)) = self.highest {
                if acting.token <= token {
                    let detail = format!(
                        "{} acted with token {} from {}, after {} acted with token {} from {}",
                        name(acting.node),
                        acting.token,
                        acting.start,
                        name(node),
                        token,
                        start
                    );
                    self.report(Invariant::FencingMonotonic, acting.start, detail);
                    return;
                }
            }
            self.highest = Some((acting.token, acting.node, acting.start));
            let resolved: Vec<PendingFailover> = self
                .pending
                .iter()
                .copied()
                .filter(|pending| pending.token < acting.token)
                .collect();
            self.pending.retain(|pending| pending.token >= acting.token);
            for pending in resolved {
                self.failovers.push(Failover {
                    kind: pending.kind,
                    fault_at: pending.at,
                    duration: acting.start.since(pending.at),
                    from: pending.token,
                    to: acting.token,
                });
            }
        }
    }

    /// acting_safety: no two children overlap, and every child lives within its lease.
    fn check_acting(&mut self, now: SimTime, clocks: &[DriftClock]) {
        for (index, a) in self.actings.iter().enumerate() {
            for b in &self.actings[index + 1..] {
                let start = a.start.max(b.start);
                if start < a.end(clocks).min(b.end(clocks)) {
                    let detail = format!(
                        "{} (token {}, from {}) and {} (token {}, from {}) both acted at {}",
                        name(a.node),
                        a.token,
                        a.start,
                        name(b.node),
                        b.token,
                        b.start,
                        start
                    );
                    self.report(Invariant::ActingSafety, start, detail);
                    return;
                }
            }
        }
        for acting in &self.actings {
            let term = Term(acting.token.0);
            let lease = self.leases.iter().rev().find(|lease| {
                lease.node == acting.node && lease.term == term && lease.start <= acting.start
            });
            let Some(lease) = lease else {
                let detail = format!(
                    "{} acted with token {} from {} without a lease",
                    name(acting.node),
                    acting.token,
                    acting.start
                );
                self.report(Invariant::ActingSafety, acting.start, detail);
                return;
            };
            let lease_end = lease.end(clocks);
            let acting_end = acting.end(clocks);
            if lease_end < acting_end.min(now) {
                let detail = format!(
                    "{}'s child (token {}) outlived its lease: the lease ended at {}, the child \
                     at {}",
                    name(acting.node),
                    acting.token,
                    lease_end,
                    if acting_end > now {
                        "a later time".to_owned()
                    } else {
                        acting_end.to_string()
                    }
                );
                self.report(Invariant::ActingSafety, lease_end, detail);
                return;
            }
        }
    }

    /// lease_safety: no two leases overlap in global time.
    fn check_leases(&mut self, clocks: &[DriftClock]) {
        for (index, a) in self.leases.iter().enumerate() {
            for b in &self.leases[index + 1..] {
                if (a.node, a.term) == (b.node, b.term) {
                    continue;
                }
                let start = a.start.max(b.start);
                if start < a.end(clocks).min(b.end(clocks)) {
                    let detail = format!(
                        "{} (term {}, lease from {} to {}) and {} (term {}, lease from {} to {}) \
                         both held a lease at {}",
                        name(a.node),
                        a.term,
                        a.start,
                        a.end(clocks),
                        name(b.node),
                        b.term,
                        b.start,
                        b.end(clocks),
                        start
                    );
                    self.report(Invariant::LeaseSafety, start, detail);
                    return;
                }
            }
        }
    }

    /// lease_backed: every lease valid now is covered to its end by a majority of nodes
    /// that cannot vote for anyone else until then.
    fn check_promises(&mut self, now: SimTime, clocks: &[DriftClock]) {
        let majority = self.views.len() / 2 + 1;
        for lease in &self.leases {
            let end = lease.end(clocks);
            if !(lease.start <= now && now < end) {
                continue;
            }
            let bound = |node: usize| {
                let view = &self.views[node];
                !view.running
                    || view.bound_until.is_some_and(|until| {
                        clocks[node]
                            .global_at(until)
                            .0
                            .saturating_add(PROMISE_SLACK_NANOS)
                            >= end.0
                    })
            };
            let backing: Vec<usize> = (0..self.views.len()).filter(|node| bound(*node)).collect();
            if backing.len() < majority {
                let promises: Vec<String> = (0..self.views.len())
                    .map(|node| {
                        let view = &self.views[node];
                        match (view.running, view.bound_until) {
                            (false, _) => format!("{} down", name(node)),
                            (true, None) => format!("{} unpromised", name(node)),
                            (true, Some(until)) => {
                                format!("{} until {}", name(node), clocks[node].global_at(until))
                            }
                        }
                    })
                    .collect();
                let detail = format!(
                    "{}'s lease of term {} runs to {}, but only {} of {} nodes are promised, \
                     quarantined or down until then ({})",
                    name(lease.node),
                    lease.term,
                    end,
                    backing.len(),
                    self.views.len(),
                    promises.join(", ")
                );
                self.report(Invariant::LeaseBacked, now, detail);
                return;
            }
        }
    }

    fn check_liveness(&mut self, now: SimTime, clocks: &[DriftClock]) {
        let Some(liveness) = &mut self.liveness else {
            return;
        };
        if liveness.satisfied {
            return;
        }
        if self
            .actings
            .iter()
            .any(|acting| acting.end(clocks) > liveness.healed_at)
        {
            liveness.satisfied = true;
            return;
        }
        if now >= liveness.deadline {
            let detail = format!(
                "no node acted between the heal at {} and the bound at {}",
                liveness.healed_at, liveness.deadline
            );
            let at = liveness.deadline;
            self.report(Check::Liveness, at, detail);
        }
    }

    /// Forgets intervals that are over: nothing that starts from now on can overlap them.
    fn retire(&mut self, now: SimTime, clocks: &[DriftClock]) {
        self.actings.retain(|acting| acting.end(clocks) > now);
        let actings = &self.actings;
        self.leases.retain(|lease| {
            lease.end(clocks) > now
                || actings
                    .iter()
                    .any(|acting| acting.node == lease.node && Term(acting.token.0) == lease.term)
        });
    }

    fn vote(&mut self, node: usize, term: Term, voted_for: NodeId, now: SimTime) {
        let first = *self.votes.entry((node, term)).or_insert(voted_for);
        if first != voted_for {
            let detail = format!(
                "{} voted for {} and then for {} in term {}",
                name(node),
                name_of(first),
                name_of(voted_for),
                term
            );
            self.report(Invariant::SingleVote, now, detail);
        }
    }
}

/// The host name of node `id`: ids are indices plus one.
pub fn name_of(id: NodeId) -> String {
    format!("n{}", id.0)
}

/// The host name of node index `node` (`n1`, `n2`, …), as in schedules and traces.
pub fn name(node: usize) -> String {
    format!("n{}", node + 1)
}
