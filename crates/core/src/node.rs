//! [`Node`]: one member's election state machine.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::config::{Config, ElectionOrder};
use crate::id::{FencingToken, NodeId, Term, MAX_TERM, MAX_TERM_STEP};
use crate::leadership::Leadership;
use crate::message::{Envelope, Message};
use crate::output::{DropReason, Event, Output, PersistentState, Received, RoleKind};
use crate::time::{Duration, Instant};
use crate::variant::Variant;

/// How many unacknowledged heartbeats a leader remembers. At the default 250 ms interval that
/// is 16 s of heartbeats, far beyond any lease; older ones could never extend a lease anyway.
pub const MAX_OUTSTANDING_HEARTBEATS: usize = 64;

/// How many times a pre-candidate or candidate asks the members that have not granted again,
/// every half election step: enough to cover two steps, by when the next rank has started
/// anyway (protocol: Election timing).
pub const MAX_ELECTION_RESENDS: u64 = 4;

/// The `seq` of a [`Message::HeartbeatAck`] that acknowledges no heartbeat: the answer to a
/// heartbeat of an older term, which tells its sender the newer term and promises nothing.
/// Heartbeats are numbered from 1 in every term, so no heartbeat has this number.
pub const NO_HEARTBEAT: u64 = 0;

/// More outputs than this pending means the driver stopped draining: a programmer error.
const MAX_PENDING_OUTPUTS: usize = 1_024;

/// The election state machine of one node. See the crate docs for the call protocol.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Node {
    config: SharedConfig,
    id: NodeId,
    term: Term,
    voted_for: Option<NodeId>,
    role: Role,
    /// protocol: Promises. Until this local instant the node grants no vote or pre-vote and does
    /// not campaign. A leader is its own acker: it promises from each heartbeat it sends.
    promise_until: Option<Instant>,
    /// protocol: Boot quarantine. A node that booted may have forgotten a promise, so
    /// it grants no vote, not even to itself, until this instant.
    quarantine_until: Option<Instant>,
    /// protocol: Campaign holds. Until this local instant the node does not campaign, not even
    /// at a `TimeoutNow`; it still votes. Set by the driver (a node whose daemon keeps failing
    /// backs off), never by a message.
    campaign_hold_until: Option<Instant>,
    /// The leader this node last accepted a heartbeat from (itself, once it led): the first
    /// election after it is gone goes by rank after it (protocol: Election timing).
    last_leader: Option<NodeId>,
    /// Set by a failed election round or a lapsed leadership, cleared by a leader's heartbeat:
    /// the next election waits a random jitter instead of the rank's delay, so liveness never
    /// depends on the ranking (protocol: Election timing).
    backoff: bool,
    outputs: VecDeque<Output>,
    /// The `now` of the latest input, to assert that the driver's clock never goes back.
    latest_now: LatestNow,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Role {
    Follower {
        leader: Option<NodeId>,
        /// No election before this instant (beyond promise and quarantine).
        not_before: Instant,
        /// The election starts at this instant: drawn with fresh jitter once every other
        /// obstacle has passed, and forgotten when a leader shows up.
        election_at: Option<Instant>,
    },
    PreCandidate {
        granted: BTreeSet<NodeId>,
        round_until: Instant,
        /// When to ask the members that have not granted again.
        resend_at: Instant,
    },
    Candidate {
        granted: BTreeSet<NodeId>,
        round_until: Instant,
        resend_at: Instant,
    },
    Leader(LeaderState),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct LeaderState {
    elected_at: Instant,
    next_seq: u64,
    next_heartbeat_at: Instant,
    /// Heartbeats newer than the lease basis, oldest first, at most
    /// [`MAX_OUTSTANDING_HEARTBEATS`].
    sent: VecDeque<SentHeartbeat>,
    /// The highest heartbeat each peer acknowledged in this term.
    acked: BTreeMap<NodeId, u64>,
    /// The newest heartbeat a majority (the leader counted) acknowledged: the lease runs from
    /// its send time (protocol: Leases).
    lease_basis: Option<SentHeartbeat>,
    resigning: Option<Resigning>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct SentHeartbeat {
    seq: u64,
    at: Instant,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Resigning {
    since: Instant,
    successor: Option<NodeId>,
}

/// Why a node could not be created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewNodeError {
    /// The node's own id is not in the configured members.
    NotAMember { id: NodeId },
    /// The persisted vote names a node that is not a member.
    UnknownVote { voted_for: NodeId },
    /// The persisted term is beyond the accepted range.
    TermOutOfRange { term: Term },
}

impl fmt::Display for NewNodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NewNodeError::NotAMember { id } => {
                write!(f, "{id} is not one of the configured members")
            }
            NewNodeError::UnknownVote { voted_for } => write!(
                f,
                "the persisted state records a vote for {voted_for}, which is not a member"
            ),
            NewNodeError::TermOutOfRange { term } => {
                write!(
                    f,
                    "the persisted term {term} is beyond the maximum of {MAX_TERM}"
                )
            }
        }
    }
}

impl std::error::Error for NewNodeError {}

/// Misuse of the command API. The state is left unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandError {
    /// Only a leader can resign.
    NotLeader,
    /// The proposed successor is not another member.
    InvalidSuccessor { successor: NodeId },
    /// `handle_acting_stopped` without a pending resignation.
    NotResigning,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::NotLeader => write!(f, "this node is not the leader"),
            CommandError::InvalidSuccessor { successor } => {
                write!(f, "{successor} is not another member of the cluster")
            }
            CommandError::NotResigning => write!(f, "no resignation is pending"),
        }
    }
}

impl std::error::Error for CommandError {}

impl Node {
    /// Boots a node at local time `now`, from its persisted state if it has any.
    ///
    /// Every boot starts in quarantine for one lease duration, except the very first boot of
    /// a single-node cluster (protocol: Boot quarantine).
    pub fn new(
        config: Arc<Config>,
        id: NodeId,
        persisted: Option<PersistentState>,
        now: Instant,
    ) -> Result<Node, NewNodeError> {
        if !config.members().contains(&id) {
            return Err(NewNodeError::NotAMember { id });
        }
        let fresh = persisted.is_none();
        let mut state = persisted.unwrap_or_default();
        if state.term > MAX_TERM {
            return Err(NewNodeError::TermOutOfRange { term: state.term });
        }
        if let Some(voted_for) = state.voted_for {
            if !config.members().contains(&voted_for) {
                return Err(NewNodeError::UnknownVote { voted_for });
            }
        }
        if config.breaks(Variant::ForgetVoteOnRestart) {
            state.voted_for = None;
        }
        // The first boot of a cluster of one has no promise it could have forgotten and no old
        // child that could still be stopping: it may elect itself at once.
        let first_boot_alone = fresh && config.members().len() == 1;
        let quarantined = !(first_boot_alone || config.breaks(Variant::NoBootQuarantine));
        let quarantine_until = quarantined.then(|| now + config.lease_duration());
        let node = Node {
            config: SharedConfig(config),
            id,
            term: state.term,
            voted_for: state.voted_for,
            role: Role::Follower {
                leader: None,
                not_before: now,
                election_at: None,
            },
            promise_until: None,
            quarantine_until,
            campaign_hold_until: None,
            last_leader: None,
            backoff: false,
            outputs: VecDeque::new(),
            latest_now: LatestNow(now),
        };
        node.check_invariants(&node.snapshot());
        Ok(node)
    }

    // ----- Inputs ---------------------------------------------------------------------------

    /// A message arrived at local time `now`.
    pub fn handle_message(&mut self, now: Instant, envelope: Envelope) -> Received {
        self.advance_now(now);
        let before = self.snapshot();
        let received = self.receive(now, envelope);
        self.finish(&before);
        received
    }

    /// The time from [`Node::poll_timeout`] has come (calling earlier is harmless).
    ///
    /// `entropy` is a uniformly random `u64` from the driver; the core derives the election
    /// jitter from it when it needs one and ignores it otherwise. The core has no RNG of its own.
    pub fn handle_timeout(&mut self, now: Instant, entropy: u64) {
        self.advance_now(now);
        let before = self.snapshot();
        self.expire(now);
        match &self.role {
            Role::Leader(leader) => {
                if now >= leader.next_heartbeat_at {
                    self.send_heartbeat(now);
                }
            }
            Role::Follower { .. } => self.follower_tick(now, entropy),
            Role::PreCandidate {
                round_until,
                resend_at,
                ..
            }
            | Role::Candidate {
                round_until,
                resend_at,
                ..
            } => {
                if now >= *round_until {
                    // The round failed (lost messages, a split vote, a ranked node that cannot
                    // win): retry after fresh jitter, not by rank (protocol: Election timing).
                    self.backoff = true;
                    self.role = Role::Follower {
                        leader: None,
                        not_before: now,
                        election_at: None,
                    };
                    self.follower_tick(now, entropy);
                } else if now >= *resend_at {
                    self.resend_requests(now);
                }
            }
        }
        self.finish(&before);
    }

    /// Asks the leader to hand over gracefully (protocol: Graceful handover).
    ///
    /// Phase one: the node stops acting at once ([`Node::leadership`] reports it) but keeps its
    /// lease and keeps renewing it. The driver stops the child and then calls
    /// [`Node::handle_acting_stopped`]. `successor` picks who campaigns first; `None` lets the
    /// core pick the most recently acknowledging peer.
    pub fn handle_resign(
        &mut self,
        now: Instant,
        successor: Option<NodeId>,
    ) -> Result<(), CommandError> {
        self.advance_now(now);
        if let Some(successor) = successor {
            if successor == self.id || !self.config.members().contains(&successor) {
                return Err(CommandError::InvalidSuccessor { successor });
            }
        }
        if !self.leads_at(now) {
            return Err(CommandError::NotLeader);
        }
        let before = self.snapshot();
        self.expire(now);
        let term = self.term;
        let result = match &mut self.role {
            Role::Leader(leader) if leader.resigning.is_none() => {
                leader.resigning = Some(Resigning {
                    since: now,
                    successor,
                });
                self.push(Output::Event(Event::ResignRequested { term }));
                Ok(())
            }
            // Asking twice changes nothing: the first request's time and successor stand.
            Role::Leader(_) => Ok(()),
            _ => Err(CommandError::NotLeader),
        };
        self.finish(&before);
        result
    }

    /// Phase two of a handover: the driver reports that the child is really gone. Only now do
    /// `Resign` and `TimeoutNow` leave; sending them earlier could let two children overlap.
    pub fn handle_acting_stopped(&mut self, now: Instant) -> Result<(), CommandError> {
        self.advance_now(now);
        let resigning = matches!(&self.role, Role::Leader(leader) if leader.resigning.is_some());
        if !resigning || !self.leads_at(now) {
            return Err(CommandError::NotResigning);
        }
        let before = self.snapshot();
        self.expire(now);
        let (resigning, best_peer) = match &self.role {
            Role::Leader(LeaderState {
                resigning: Some(resigning),
                acked,
                ..
            }) => {
                // The peer that acknowledged the newest heartbeat is the most likely to be
                // reachable. Ties go to the next member after us in id order, round the ring,
                // so that repeated handovers give every member its turn (protocol: Graceful
                // handover) instead of bouncing between the two lowest ids.
                let best = acked
                    .iter()
                    .max_by_key(|(id, seq)| (**seq, std::cmp::Reverse(self.turn_of(**id))));
                (*resigning, best.map(|(id, _)| *id))
            }
            _ => unreachable!("checked above: a resigning leader whose window is open"),
        };
        let successor = resigning
            .successor
            .or(best_peer)
            .or_else(|| self.peers().min_by_key(|peer| self.turn_of(*peer)));
        let term = self.term;
        // TimeoutNow goes first: a successor that handled Resign first would no longer know
        // its leader. The successor also gets a Resign, which releases its promise should the
        // TimeoutNow be lost.
        if let Some(successor) = successor {
            self.send(successor, Message::TimeoutNow { term });
        }
        for peer in self.peers().collect::<Vec<_>>() {
            self.send(peer, Message::Resign { term });
        }
        // The child is gone, so the node may release its own promise: it is free to vote for
        // its successor. It does not campaign itself for a lease duration, to give the
        // successor its turn.
        self.promise_until = None;
        self.role = Role::Follower {
            leader: None,
            not_before: now + self.config.lease_duration(),
            election_at: None,
        };
        self.finish(&before);
        Ok(())
    }

    /// Holds this node's campaigns until local time `until` (protocol: Campaign holds): it
    /// starts no election and ignores `TimeoutNow` before then, but keeps voting, so it still
    /// counts towards every quorum. A later hold extends an earlier one; an earlier one changes
    /// nothing. The driver holds a node whose daemon keeps failing, so that leadership moves
    /// to the others and comes back only after a backoff. Holding is always safe: elections
    /// that start later cannot break a lease.
    pub fn handle_campaign_hold(&mut self, now: Instant, until: Instant) {
        self.advance_now(now);
        let before = self.snapshot();
        self.expire(now);
        if until > now {
            self.campaign_hold_until = Some(
                self.campaign_hold_until
                    .map_or(until, |held| held.max(until)),
            );
        }
        self.finish(&before);
    }

    /// Ends every campaign hold at once (protocol: Campaign holds): the node may campaign again
    /// as soon as nothing else stops it. The driver calls it when an operator resumes a paused
    /// node. Releasing is as safe as holding: when an election starts cannot break a lease.
    pub fn handle_campaign_release(&mut self, now: Instant) {
        self.advance_now(now);
        let before = self.snapshot();
        self.expire(now);
        self.campaign_hold_until = None;
        self.finish(&before);
    }

    // ----- Outputs and queries --------------------------------------------------------------

    /// The next output, in the order the contract of [`Output`] states.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When to call [`Node::handle_timeout`] next (local time). It may be in the past: then
    /// call it at once.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.role {
            Role::Leader(leader) => Some(leader.next_heartbeat_at.min(self.window_until(leader))),
            // A hold (or a later `not_before`) may have moved the earliest election past the
            // delay drawn before it: then wake when it ends, not at the past instant.
            Role::Follower {
                election_at: Some(at),
                ..
            } => Some((*at).max(self.election_base())),
            Role::Follower {
                election_at: None, ..
            } => Some(self.election_base()),
            Role::PreCandidate {
                round_until,
                resend_at,
                ..
            }
            | Role::Candidate {
                round_until,
                resend_at,
                ..
            } => Some((*round_until).min(*resend_at)),
        }
    }

    /// This node's leadership at `now`: `Some` while it leads and holds a lease or acts.
    #[must_use]
    pub fn leadership(&self, now: Instant) -> Option<Leadership> {
        let Role::Leader(leader) = &self.role else {
            return None;
        };
        let basis = leader.lease_basis?;
        let lease_until = basis.at + self.lease_hold();
        let window_until = self.window_until(leader);
        let acting_until = match leader.resigning {
            Some(resigning) => window_until.min(resigning.since),
            None => window_until,
        };
        let leadership = Leadership {
            fencing_token: FencingToken::from(self.term),
            lease_until,
            acting_until,
        };
        (leadership.holds_lease(now) || leadership.is_acting(now)).then_some(leadership)
    }

    /// Whether this node may act at `now`.
    #[must_use]
    pub fn is_acting(&self, now: Instant) -> bool {
        self.leadership(now)
            .is_some_and(|leadership| leadership.is_acting(now))
    }

    /// This node's id.
    #[must_use]
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The shared configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config.0
    }

    /// The current term.
    #[must_use]
    pub fn term(&self) -> Term {
        self.term
    }

    /// Whom this node voted for in the current term.
    #[must_use]
    pub fn voted_for(&self) -> Option<NodeId> {
        self.voted_for
    }

    /// The state that must survive a crash.
    #[must_use]
    pub fn persistent_state(&self) -> PersistentState {
        PersistentState {
            term: self.term,
            voted_for: self.voted_for,
        }
    }

    /// The coarse role.
    #[must_use]
    pub fn role(&self) -> RoleKind {
        match self.role {
            Role::Follower { .. } => RoleKind::Follower,
            Role::PreCandidate { .. } => RoleKind::PreCandidate,
            Role::Candidate { .. } => RoleKind::Candidate,
            Role::Leader(_) => RoleKind::Leader,
        }
    }

    /// The leader this node knows of in its term (itself when leading).
    #[must_use]
    pub fn leader(&self) -> Option<NodeId> {
        match self.role {
            Role::Follower { leader, .. } => leader,
            Role::Leader(_) => Some(self.id),
            Role::PreCandidate { .. } | Role::Candidate { .. } => None,
        }
    }

    /// Until when this node has promised not to vote, if it has.
    #[must_use]
    pub fn promise_until(&self) -> Option<Instant> {
        self.promise_until
    }

    /// Until when this node is in boot quarantine, if it is.
    #[must_use]
    pub fn quarantine_until(&self) -> Option<Instant> {
        self.quarantine_until
    }

    /// Until when this node holds its campaigns (see [`Node::handle_campaign_hold`]), if it
    /// does.
    #[must_use]
    pub fn campaign_hold_until(&self) -> Option<Instant> {
        self.campaign_hold_until
    }

    // ----- Message handling -----------------------------------------------------------------

    fn receive(&mut self, now: Instant, envelope: Envelope) -> Received {
        let Envelope { from, to, message } = envelope;
        if to != self.id {
            return Received::Dropped(DropReason::Misaddressed);
        }
        if from == self.id || !self.config.members().contains(&from) {
            return Received::Dropped(DropReason::UnknownPeer);
        }
        if message.term() > MAX_TERM || message.term() == Term(0) {
            // Term 0 exists only before the first election: nobody sends messages in it.
            return Received::Dropped(DropReason::OutOfRange);
        }
        if message.term().0 > self.term.0.saturating_add(MAX_TERM_STEP) {
            // protocol: Term jumps are bounded. One datagram must not spend the term space.
            return Received::Dropped(DropReason::TermTooFar);
        }
        self.expire(now);
        match message {
            Message::Heartbeat { term, seq } => self.receive_heartbeat(now, from, term, seq),
            Message::HeartbeatAck { term, seq } => self.receive_heartbeat_ack(now, from, term, seq),
            Message::PreVote { term } => self.receive_pre_vote(now, from, term),
            Message::PreVoteReply { term, granted } => {
                self.receive_pre_vote_reply(now, from, term, granted)
            }
            Message::RequestVote { term } => self.receive_request_vote(now, from, term),
            Message::VoteReply { term, granted } => {
                self.receive_vote_reply(now, from, term, granted)
            }
            Message::Resign { term } => self.receive_resign(now, from, term),
            Message::TimeoutNow { term } => self.receive_timeout_now(now, from, term),
        }
    }

    fn receive_heartbeat(&mut self, now: Instant, from: NodeId, term: Term, seq: u64) -> Received {
        self.assert_admitted(from, term);
        if seq == NO_HEARTBEAT {
            return Received::Dropped(DropReason::OutOfRange);
        }
        if term < self.term {
            // Tell the stale leader our term so that it is deposed (Raft §5.1). The reply carries
            // our term, so it must acknowledge no heartbeat: a leader of our term would take
            // `(our term, their seq)` for an ack of its own heartbeat `seq`, and extend a lease
            // on a promise we never made (protocol: Stale replies acknowledge nothing).
            let acknowledged = if self.config.breaks(Variant::StaleAck) {
                seq
            } else {
                NO_HEARTBEAT
            };
            self.send(
                from,
                Message::HeartbeatAck {
                    term: self.term,
                    seq: acknowledged,
                },
            );
            return Received::Dropped(DropReason::StaleTerm);
        }
        if term == self.term {
            let conflicting = match self.role {
                Role::Leader(_) => true,
                Role::Follower {
                    leader: Some(leader),
                    ..
                } => leader != from,
                _ => false,
            };
            if conflicting {
                return Received::Dropped(DropReason::ConflictingLeader);
            }
        } else {
            self.adopt_term(now, term);
        }
        assert_eq!(self.term, term, "a heartbeat is accepted in its own term");
        // protocol: Promises. Accepting a heartbeat at t promises no vote, pre-vote or campaign
        // until t + L.
        let promise = now + self.config.lease_duration();
        self.promise_until = Some(
            self.promise_until
                .map_or(promise, |until| until.max(promise)),
        );
        self.role = Role::Follower {
            leader: Some(from),
            not_before: now,
            election_at: None,
        };
        self.last_leader = Some(from);
        self.backoff = false;
        self.send(from, Message::HeartbeatAck { term, seq });
        Received::Accepted
    }

    fn receive_heartbeat_ack(
        &mut self,
        now: Instant,
        from: NodeId,
        term: Term,
        seq: u64,
    ) -> Received {
        self.assert_admitted(from, term);
        if term > self.term {
            // A follower moved on to a newer term: this leadership is over.
            self.adopt_term(now, term);
            return Received::Accepted;
        }
        if term < self.term {
            return Received::Dropped(DropReason::StaleTerm);
        }
        let Role::Leader(leader) = &mut self.role else {
            return Received::Dropped(DropReason::Unexpected);
        };
        // An ack counts only for a heartbeat this leader sent in this term: `NO_HEARTBEAT`
        // answers a stale heartbeat and promises nothing (protocol: Stale replies acknowledge
        // nothing).
        if seq == NO_HEARTBEAT || seq >= leader.next_seq {
            return Received::Dropped(DropReason::OutOfRange);
        }
        let acked = leader.acked.entry(from).or_insert(0);
        if seq <= *acked {
            return Received::Dropped(DropReason::Unexpected);
        }
        *acked = seq;
        self.update_lease();
        Received::Accepted
    }

    fn receive_pre_vote(&mut self, now: Instant, from: NodeId, term: Term) -> Received {
        self.assert_admitted(from, term);
        // A pre-vote changes no state: it only asks whether a real vote could succeed.
        let granted = term > self.term && self.may_vote(now).is_ok();
        self.send(from, Message::PreVoteReply { term, granted });
        Received::Accepted
    }

    fn receive_pre_vote_reply(
        &mut self,
        now: Instant,
        from: NodeId,
        term: Term,
        granted: bool,
    ) -> Received {
        self.assert_admitted(from, term);
        let proposed = self.term.next();
        let Role::PreCandidate { granted: votes, .. } = &mut self.role else {
            return Received::Dropped(DropReason::Unexpected);
        };
        if Some(term) != proposed || !granted {
            return Received::Dropped(DropReason::Unexpected);
        }
        votes.insert(from);
        if votes.len() >= self.config.majority() {
            self.become_candidate(now);
        }
        Received::Accepted
    }

    fn receive_request_vote(&mut self, now: Instant, from: NodeId, term: Term) -> Received {
        self.assert_admitted(from, term);
        if term < self.term {
            self.send(
                from,
                Message::VoteReply {
                    term: self.term,
                    granted: false,
                },
            );
            return Received::Dropped(DropReason::StaleTerm);
        }
        // protocol: Promises; protocol: Boot quarantine. A promised or quarantined node
        // ignores the request without adopting its term, so a candidate cannot depose a
        // leader a majority still protects.
        if let Err(reason) = self.may_vote(now) {
            return Received::Dropped(reason);
        }
        if term > self.term {
            self.adopt_term(now, term);
        }
        assert_eq!(
            self.term, term,
            "a vote is granted in the request's term only"
        );
        let granted = self.voted_for.is_none_or(|voted_for| voted_for == from);
        if granted {
            if self.voted_for.is_none() {
                self.voted_for = Some(from);
                self.persist();
            }
            if let Role::Follower {
                not_before,
                election_at,
                ..
            } = &mut self.role
            {
                // Give the candidate time to win before campaigning ourselves (Raft §5.2).
                *not_before = now + self.config.0.election_round_timeout();
                *election_at = None;
            }
        }
        self.send(
            from,
            Message::VoteReply {
                term: self.term,
                granted,
            },
        );
        Received::Accepted
    }

    fn receive_vote_reply(
        &mut self,
        now: Instant,
        from: NodeId,
        term: Term,
        granted: bool,
    ) -> Received {
        self.assert_admitted(from, term);
        if term > self.term {
            self.adopt_term(now, term);
            return Received::Accepted;
        }
        let current = self.term;
        let Role::Candidate { granted: votes, .. } = &mut self.role else {
            return Received::Dropped(DropReason::Unexpected);
        };
        if term != current || !granted {
            return Received::Dropped(DropReason::Unexpected);
        }
        votes.insert(from);
        if votes.len() >= self.config.majority() {
            self.become_leader(now);
        }
        Received::Accepted
    }

    fn receive_resign(&mut self, now: Instant, from: NodeId, term: Term) -> Received {
        self.assert_admitted(from, term);
        if term < self.term {
            return Received::Dropped(DropReason::StaleTerm);
        }
        match self.role {
            Role::Follower {
                leader: Some(leader),
                ..
            } if leader == from && term == self.term => {
                // The leader has stopped acting for good: the promise protected nothing now.
                // Its chosen successor campaigns at its TimeoutNow; the others leave it two
                // steps to win before their ranks start (protocol: Election timing).
                self.promise_until = None;
                let not_before = match self.config.election_order() {
                    ElectionOrder::Ranked => {
                        now + self.config.election_step() + self.config.election_step()
                    }
                    ElectionOrder::Random => now,
                };
                self.role = Role::Follower {
                    leader: None,
                    not_before,
                    election_at: None,
                };
                Received::Accepted
            }
            _ => Received::Dropped(DropReason::Unexpected),
        }
    }

    fn receive_timeout_now(&mut self, now: Instant, from: NodeId, term: Term) -> Received {
        self.assert_admitted(from, term);
        if term < self.term {
            return Received::Dropped(DropReason::StaleTerm);
        }
        // From our leader; or, if its Resign overtook it, from anyone once our promise is
        // gone. Campaigning is always safe (votes and promises guard the lease); only
        // releasing a promise is not, and that happens here only at our leader's word.
        let from_leader =
            matches!(self.role, Role::Follower { leader: Some(leader), .. } if leader == from);
        let released = matches!(self.role, Role::Follower { leader: None, .. })
            && self.promise_until.is_none();
        if term != self.term || !(from_leader || released) {
            return Received::Dropped(DropReason::Unexpected);
        }
        if self.quarantine_until.is_some() {
            return Received::Dropped(DropReason::Quarantined);
        }
        if self.campaign_hold_until.is_some() {
            // protocol: Campaign holds. Our daemon keeps failing: let the others campaign. The
            // Resign that came with this TimeoutNow releases their promises.
            return Received::Dropped(DropReason::CampaignHeld);
        }
        // The leader resigned and chose us: campaign at once, without a pre-vote round.
        self.promise_until = None;
        self.become_candidate(now);
        Received::Accepted
    }

    // ----- Role changes ---------------------------------------------------------------------

    fn follower_tick(&mut self, now: Instant, entropy: u64) {
        let base = self.election_base();
        let delay = if self.backoff || self.config.election_order() == ElectionOrder::Random {
            self.jitter(entropy)
        } else {
            self.rank_delay()
        };
        let Role::Follower { election_at, .. } = &mut self.role else {
            unreachable!("only a follower's timer can start an election");
        };
        if now < base {
            return;
        }
        let at = *election_at.get_or_insert(now + delay);
        if now >= at {
            self.become_pre_candidate(now);
        }
    }

    fn become_pre_candidate(&mut self, now: Instant) {
        assert!(
            matches!(self.role, Role::Follower { .. }),
            "only a follower campaigns"
        );
        assert!(
            self.may_vote(now).is_ok(),
            "campaigning while promised or quarantined"
        );
        assert!(
            self.election_base() <= now,
            "campaigning before the election timer, a promise, quarantine or a hold ran out"
        );
        let Some(term) = self.term.next() else {
            // Out of terms (2^62 elections): stay a follower rather than wrap.
            self.role = Role::Follower {
                leader: None,
                not_before: now + self.config.lease_duration(),
                election_at: None,
            };
            return;
        };
        self.role = Role::PreCandidate {
            granted: BTreeSet::from([self.id]),
            round_until: now + self.config.0.election_round_timeout(),
            resend_at: self.first_resend(now),
        };
        for peer in self.peers().collect::<Vec<_>>() {
            self.send(peer, Message::PreVote { term });
        }
        if self.config.majority() == 1 {
            self.become_candidate(now);
        }
    }

    fn become_candidate(&mut self, now: Instant) {
        let majority = self.config.majority();
        assert!(
            match &self.role {
                // A pre-vote round won by a majority.
                Role::PreCandidate { granted, .. } => granted.len() >= majority,
                // The leader's TimeoutNow, or a pre-vote skipped after a resignation.
                Role::Follower { .. } => true,
                Role::Candidate { .. } | Role::Leader(_) => false,
            },
            "only a follower told to, or a pre-candidate with a majority, stands for election"
        );
        // A candidate votes for itself, so it must be free to vote (protocol: Promises).
        assert!(
            self.may_vote(now).is_ok(),
            "standing for election while promised or quarantined"
        );
        let Some(term) = self.term.next() else {
            return;
        };
        self.term = term;
        self.voted_for = Some(self.id);
        self.persist();
        self.role = Role::Candidate {
            granted: BTreeSet::from([self.id]),
            round_until: now + self.config.0.election_round_timeout(),
            resend_at: self.first_resend(now),
        };
        for peer in self.peers().collect::<Vec<_>>() {
            self.send(peer, Message::RequestVote { term });
        }
        if self.config.majority() == 1 {
            self.become_leader(now);
        }
    }

    fn become_leader(&mut self, now: Instant) {
        let majority = self.config.majority();
        assert!(
            matches!(&self.role, Role::Candidate { granted, .. } if granted.len() >= majority),
            "only a candidate with a majority of votes becomes leader"
        );
        assert_eq!(
            self.voted_for,
            Some(self.id),
            "a leader voted for itself in its term"
        );
        assert!(self.term > Term(0), "nobody leads term 0");
        self.last_leader = Some(self.id);
        self.backoff = false;
        self.role = Role::Leader(LeaderState {
            elected_at: now,
            next_seq: 1,
            next_heartbeat_at: now,
            sent: VecDeque::new(),
            acked: BTreeMap::new(),
            lease_basis: None,
            resigning: None,
        });
        self.send_heartbeat(now);
    }

    /// Moves to a newer term: no vote yet, no known leader. The promise stays: it was made to
    /// protect a lease that may still be running.
    fn adopt_term(&mut self, now: Instant, term: Term) {
        assert!(
            term > self.term,
            "adopting term {term} from term {}: terms only grow",
            self.term
        );
        assert!(term <= MAX_TERM, "adopting term {term} beyond MAX_TERM");
        self.term = term;
        self.voted_for = None;
        self.persist();
        self.role = match self.role {
            Role::Follower {
                not_before,
                election_at,
                ..
            } => Role::Follower {
                leader: None,
                not_before,
                election_at,
            },
            _ => Role::Follower {
                leader: None,
                not_before: now,
                election_at: None,
            },
        };
    }

    /// Drops what time has made obsolete. Called first by every input, so that the leadership
    /// of a leader whose acting window closed lapses before it handles anything else, and so
    /// that equal states look equal to a model checker.
    fn expire(&mut self, now: Instant) {
        if self.promise_until.is_some_and(|until| until <= now) {
            self.promise_until = None;
        }
        if self.quarantine_until.is_some_and(|until| until <= now) {
            self.quarantine_until = None;
        }
        if self.campaign_hold_until.is_some_and(|until| until <= now) {
            self.campaign_hold_until = None;
        }
        if let Role::Leader(leader) = &self.role {
            if now >= self.window_until(leader) {
                // protocol: Lapse. A leader that cannot renew lapses into a follower. It keeps
                // its own promise (from its last heartbeat), so it cannot vote a successor in
                // while its old lease may still run. It may be the node that cannot reach the
                // others, so it does not campaign by rank again (protocol: Election timing).
                self.backoff = true;
                self.role = Role::Follower {
                    leader: None,
                    not_before: now,
                    election_at: None,
                };
            }
        }
    }

    // ----- The lease ------------------------------------------------------------------------

    fn send_heartbeat(&mut self, now: Instant) {
        let term = self.term;
        let interval = self.config.heartbeat_interval();
        let lease_duration = self.config.lease_duration();
        let Role::Leader(leader) = &mut self.role else {
            unreachable!("only a leader sends heartbeats");
        };
        let seq = leader.next_seq;
        leader.next_seq += 1;
        leader.sent.push_back(SentHeartbeat { seq, at: now });
        if leader.sent.len() > MAX_OUTSTANDING_HEARTBEATS {
            leader.sent.pop_front();
        }
        leader.next_heartbeat_at = now + interval;
        // The leader counts as its own ack, so it promises like a follower (protocol: Promises).
        self.promise_until = Some(now + lease_duration);
        for peer in self.peers().collect::<Vec<_>>() {
            self.send(peer, Message::Heartbeat { term, seq });
        }
        self.update_lease();
    }

    /// Moves the lease basis to the newest heartbeat a majority has acknowledged.
    fn update_lease(&mut self) {
        let majority = self.config.majority();
        let peers: Vec<NodeId> = self.peers().collect();
        let term = self.term;
        let Role::Leader(leader) = &mut self.role else {
            unreachable!("only a leader holds a lease");
        };
        // The leader acknowledged its newest heartbeat by sending it.
        let mut acks: Vec<u64> = vec![leader.next_seq - 1];
        acks.extend(
            peers
                .iter()
                .map(|peer| leader.acked.get(peer).copied().unwrap_or(0)),
        );
        acks.sort_unstable_by(|a, b| b.cmp(a));
        let quorum_seq = acks[majority - 1];
        let basis_seq = leader.lease_basis.map_or(0, |basis| basis.seq);
        if quorum_seq <= basis_seq {
            return;
        }
        // Use the newest remembered heartbeat at or before the quorum's: an older send time
        // only shortens the lease, which is always safe.
        let Some(heartbeat) = leader
            .sent
            .iter()
            .rev()
            .find(|sent| sent.seq <= quorum_seq)
            .copied()
        else {
            return;
        };
        if heartbeat.seq <= basis_seq {
            return;
        }
        let first = leader.lease_basis.is_none();
        leader.lease_basis = Some(heartbeat);
        leader.sent.retain(|sent| sent.seq > heartbeat.seq);
        if first {
            self.push(Output::Event(Event::LeaseAcquired { term }));
        }
    }

    /// L·(1−ρ)/(1+ρ), or L itself in the `no_drift_compensation` variant.
    fn lease_hold(&self) -> Duration {
        if self.config.breaks(Variant::NoDriftCompensation) {
            self.config.lease_duration()
        } else {
            self.config.lease_hold()
        }
    }

    /// The end of the acting window: `lease_until − stop_margin`. A leader with no lease yet
    /// gets the window its first heartbeat would have given it, and lapses when it closes
    /// (protocol: Lapse).
    fn window_until(&self, leader: &LeaderState) -> Instant {
        let start = leader
            .lease_basis
            .map_or(leader.elected_at, |basis| basis.at);
        let lease_until = start + self.lease_hold();
        if self.config.breaks(Variant::ActPastLease) {
            lease_until + self.config.stop_margin()
        } else {
            lease_until - self.config.stop_margin()
        }
    }

    // ----- Helpers --------------------------------------------------------------------------

    /// Opens every input: `now` must not be earlier than the `now` of the input before. The
    /// driver's clock is monotonic by contract (crate docs, "The call protocol"); a time that
    /// goes back would let a lease or a promise outlast its rule, so it is a programmer error
    /// of the driver, not an input to handle.
    fn advance_now(&mut self, now: Instant) {
        let latest = self.latest_now.0;
        assert!(
            now >= latest,
            "{}: now went back from {latest} to {now}; the driver must pass a monotonic clock",
            self.id
        );
        self.latest_now.0 = now;
    }

    /// The precondition of every message handler, established by [`Node::receive`]: the
    /// message comes from another member, in a term that exists and is not too far ahead.
    fn assert_admitted(&self, from: NodeId, term: Term) {
        assert!(from != self.id && self.config.members().contains(&from));
        assert!(
            term > Term(0) && term <= MAX_TERM,
            "message term {term} out of range"
        );
        assert!(term.0 <= self.term.0.saturating_add(MAX_TERM_STEP));
    }

    /// Whether the node is leader at `now` and stays so through `expire(now)`.
    fn leads_at(&self, now: Instant) -> bool {
        matches!(&self.role, Role::Leader(leader) if now < self.window_until(leader))
    }

    /// Whether this node may grant a vote or pre-vote now (protocol: Promises; protocol: Boot
    /// quarantine).
    fn may_vote(&self, now: Instant) -> Result<(), DropReason> {
        if self.quarantine_until.is_some_and(|until| now < until) {
            return Err(DropReason::Quarantined);
        }
        let promised = self.promise_until.is_some_and(|until| now < until);
        if promised && !self.config.breaks(Variant::NoPromise) {
            return Err(DropReason::Promised);
        }
        Ok(())
    }

    /// The earliest instant a follower may start an election, before jitter.
    fn election_base(&self) -> Instant {
        let not_before = match self.role {
            Role::Follower { not_before, .. } => not_before,
            _ => Instant::ZERO,
        };
        not_before
            .max(self.promise_until.unwrap_or(Instant::ZERO))
            .max(self.quarantine_until.unwrap_or(Instant::ZERO))
            .max(self.campaign_hold_until.unwrap_or(Instant::ZERO))
    }

    /// When a round started at `now` first asks again: half a step later in ranked elections;
    /// never, only at the round's end, in random ones, which retry by timeout as Raft does.
    fn first_resend(&self, now: Instant) -> Instant {
        match self.config.election_order() {
            ElectionOrder::Ranked => now + self.config.election_resend_interval(),
            ElectionOrder::Random => now + self.config.election_round_timeout(),
        }
    }

    /// Re-sends the round's request to the members that have not granted it: a reply may be
    /// lost, or a voter may have been promised a moment ago and be free now.
    fn resend_requests(&mut self, now: Instant) {
        let interval = self.config.election_resend_interval();
        let round_timeout = self.config.election_round_timeout();
        // Bounded like every retry: after MAX_ELECTION_RESENDS the round waits for its end.
        let next = |round_until: Instant| {
            let started = Instant::from_nanos(
                round_until
                    .as_nanos()
                    .saturating_sub(round_timeout.as_nanos()),
            );
            let last = started
                + Duration::from_nanos(interval.as_nanos().saturating_mul(MAX_ELECTION_RESENDS));
            let next = now + interval;
            if next <= last {
                next
            } else {
                round_until
            }
        };
        let (message, granted) = match &mut self.role {
            Role::PreCandidate {
                granted,
                resend_at,
                round_until,
            } => {
                *resend_at = next(*round_until);
                let Some(term) = self.term.next() else {
                    return;
                };
                (Message::PreVote { term }, granted.clone())
            }
            Role::Candidate {
                granted,
                resend_at,
                round_until,
            } => {
                *resend_at = next(*round_until);
                (Message::RequestVote { term: self.term }, granted.clone())
            }
            _ => return,
        };
        let unanswered: Vec<NodeId> = self
            .peers()
            .filter(|peer| !granted.contains(peer))
            .collect();
        for peer in unanswered {
            self.send(peer, message);
        }
    }

    /// How long after its promise ends this follower starts the first election after a leader
    /// is gone: `rank × election_step` (protocol: Election timing).
    fn rank_delay(&self) -> Duration {
        let step = self.config.election_step().as_nanos();
        Duration::from_nanos(step.saturating_mul(u64::from(self.election_rank())))
    }

    /// This node's place in the order in which followers start that first election: 0 for the
    /// member after the last leader in id order, round the ring, skipping the leader; by id
    /// from the lowest if no leader was ever heard, as at a cold start. Every member computes
    /// a different rank from the same leader, so the best-placed live node starts alone.
    fn election_rank(&self) -> u32 {
        let members = self.config.members();
        let order: Vec<NodeId> = match self.last_leader {
            Some(leader) => members
                .range(leader..)
                .skip(1)
                .chain(members.range(..leader))
                .copied()
                .collect(),
            None => members.iter().copied().collect(),
        };
        let rank = order
            .iter()
            .position(|id| *id == self.id)
            .unwrap_or(members.len() - 1);
        u32::try_from(rank).expect("at most MAX_CLUSTER_SIZE members")
    }

    /// A uniform draw from `[0, election_jitter_max]`; none for a cluster of one, which has
    /// nobody to split the vote with.
    fn jitter(&self, entropy: u64) -> Duration {
        if self.config.members().len() == 1 {
            return Duration::ZERO;
        }
        let span = u128::from(self.config.election_jitter_max().as_nanos()) + 1;
        // (entropy · span) / 2^64 < span ≤ u64::MAX + 1, so it fits in a u64.
        Duration::from_nanos(((u128::from(entropy) * span) >> 64) as u64)
    }

    /// How many places after this node `id` comes in id order, round the ring (0 for the
    /// next member). Handovers go to the next member in turn.
    fn turn_of(&self, id: NodeId) -> u32 {
        id.0.wrapping_sub(self.id.0).wrapping_sub(1)
    }

    fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        let id = self.id;
        self.config
            .members()
            .iter()
            .copied()
            .filter(move |member| *member != id)
    }

    fn send(&mut self, to: NodeId, message: Message) {
        self.push(Output::Send(Envelope {
            from: self.id,
            to,
            message,
        }));
    }

    /// Queues the current persistent state. Consecutive writes coalesce into the last one.
    fn persist(&mut self) {
        let state = self.persistent_state();
        if let Some(Output::Persist(pending)) = self.outputs.back_mut() {
            *pending = state;
            return;
        }
        self.push(Output::Persist(state));
    }

    fn push(&mut self, output: Output) {
        assert!(
            self.outputs.len() < MAX_PENDING_OUTPUTS,
            "the driver must drain poll_output after every handle_* call"
        );
        self.outputs.push_back(output);
    }

    // ----- Invariants -----------------------------------------------------------------------

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            term: self.term,
            voted_for: self.voted_for,
            role: self.role(),
            leader: self.leader(),
        }
    }

    /// Closes every input: reports a role change and checks the invariants.
    fn finish(&mut self, before: &Snapshot) {
        let after = self.snapshot();
        if (after.role, after.term, after.leader) != (before.role, before.term, before.leader) {
            self.push(Output::Event(Event::RoleChanged {
                role: after.role,
                term: after.term,
                leader: after.leader,
            }));
        }
        self.check_invariants(before);
    }

    /// TigerBeetle-style split assertions, run after every input, in release builds too.
    fn check_invariants(&self, before: &Snapshot) {
        // term_monotonic: a node's term never decreases.
        assert!(
            self.term >= before.term,
            "term went back from {} to {}",
            before.term,
            self.term
        );
        // single_vote: at most one vote per term.
        if self.term == before.term && before.voted_for.is_some() {
            assert_eq!(
                self.voted_for, before.voted_for,
                "a second vote in term {}",
                self.term
            );
        }
        assert!(self.term <= MAX_TERM);
        assert!(
            self.voted_for
                .is_none_or(|voted_for| self.config.members().contains(&voted_for)),
            "a vote for a non-member"
        );
        self.check_role_invariants();
        assert!(self.outputs.len() < MAX_PENDING_OUTPUTS);
    }

    /// What each role implies about the rest of the state.
    fn check_role_invariants(&self) {
        match &self.role {
            Role::Follower { leader, .. } => {
                assert!(leader.is_none_or(|leader| leader != self.id));
            }
            Role::PreCandidate { granted, .. } => {
                assert!(granted.contains(&self.id));
                assert!(granted.is_subset(self.config.members()));
                assert!(
                    self.term.next().is_some(),
                    "a pre-candidate has a term to propose"
                );
            }
            Role::Candidate { granted, .. } => {
                assert!(granted.contains(&self.id));
                assert!(granted.is_subset(self.config.members()));
                assert_eq!(
                    self.voted_for,
                    Some(self.id),
                    "a candidate voted for itself"
                );
            }
            Role::Leader(leader) => self.check_leader_invariants(leader),
        }
    }

    /// A leader's heartbeats, acks and lease.
    fn check_leader_invariants(&self, leader: &LeaderState) {
        assert_eq!(self.voted_for, Some(self.id), "a leader voted for itself");
        let now = self.latest_now.0;
        assert!(leader.elected_at <= now, "a leader elected in the future");
        assert!(leader.sent.iter().all(|sent| sent.at <= now));
        assert!(leader.next_seq >= 2, "a leader has sent a heartbeat");
        assert!(leader.sent.len() <= MAX_OUTSTANDING_HEARTBEATS);
        assert!(leader.sent.iter().all(|sent| sent.seq < leader.next_seq));
        assert!(leader.acked.values().all(|seq| *seq < leader.next_seq));
        if let Some(basis) = leader.lease_basis {
            // The lease never reaches past what the acks justify: a majority, the
            // leader counted, acknowledged the basis heartbeat or a newer one.
            let acks = 1 + leader
                .acked
                .values()
                .filter(|seq| **seq >= basis.seq)
                .count();
            assert!(
                acks >= self.config.majority(),
                "lease without a majority of acks"
            );
            assert!(basis.seq < leader.next_seq);
            assert!(leader.sent.iter().all(|sent| sent.seq > basis.seq));
        }
        // acting ⊂ lease.
        if !self.config.breaks(Variant::ActPastLease) {
            if let Some(basis) = leader.lease_basis {
                assert!(self.window_until(leader) <= basis.at + self.lease_hold());
            }
        }
    }
}

/// What an input must not change in forbidden ways, captured before it runs.
struct Snapshot {
    term: Term,
    voted_for: Option<NodeId>,
    role: RoleKind,
    leader: Option<NodeId>,
}

/// The latest `now` a node was given. It is not protocol state, only a check of the driver:
/// two nodes that differ in it alone behave alike at every later `now`, so it takes no part in
/// comparing or hashing, and a model checker sees the same states with it as without it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LatestNow(pub(crate) Instant);

impl PartialEq for LatestNow {
    fn eq(&self, _other: &LatestNow) -> bool {
        true
    }
}

impl Eq for LatestNow {}

impl Hash for LatestNow {
    fn hash<H: Hasher>(&self, _state: &mut H) {
        // Hashing nothing is consistent with `eq`, which holds for any two values.
    }
}

/// The configuration, shared by pointer. It is the same for every state a model checker
/// explores, so it takes no part in hashing, and equal configurations compare equal.
#[derive(Clone)]
struct SharedConfig(Arc<Config>);

impl std::ops::Deref for SharedConfig {
    type Target = Config;
    fn deref(&self) -> &Config {
        &self.0
    }
}

impl PartialEq for SharedConfig {
    fn eq(&self, other: &SharedConfig) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || *self.0 == *other.0
    }
}

impl Eq for SharedConfig {}

impl Hash for SharedConfig {
    fn hash<H: Hasher>(&self, _state: &mut H) {
        // Hashing nothing is consistent with `eq`: equal values hash equally.
    }
}

impl fmt::Debug for SharedConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Config { .. }")
    }
}
