//! The driver's [`Observer`] in the binary: logs every step worth a line, and keeps the node's
//! latest status for the HTTP API and the metrics.
//!
//! Log levels: role changes, acting and handovers at `info` (one line per role change, with the
//! term and the fencing token); a child lost or a failure at `warn`/`error`; persisted states and
//! dropped messages at `debug`; every message sent or received at `trace`. One kind of drop is
//! a `warn`: a term jump the core refused (`term_too_far`, protocol: Term jumps are bounded),
//! which no correct member sends; it is logged at most once per peer per
//! `TERM_JUMP_WARNING_INTERVAL`, with the count of the ones suppressed meanwhile, so a flood of
//! them cannot fill the disk.

use std::sync::{Arc, Mutex, MutexGuard};

use tenure_core::{
    DropReason, Duration, Envelope, Event, Instant, Leadership, NodeId, Received, RoleKind, Term,
};
use tracing::{debug, error, info, trace, warn};

use crate::members::Members;
use crate::supervisor::ChildStats;
use crate::transport::{PeerTable, TransportStats};
use tenure_driver::{ActingState, Counters, Observation, Observer, Status};

/// Everything the HTTP API reads, shared between the driver's observer and the server.
#[derive(Debug)]
pub struct Shared {
    pub info: NodeInfo,
    snapshot: Mutex<Snapshot>,
}

/// What does not change while the node runs.
#[derive(Debug)]
pub struct NodeInfo {
    pub members: Members,
    pub peers: Arc<PeerTable>,
    pub transport: Arc<TransportStats>,
    pub child: Arc<ChildStats>,
    /// The configured lease, for the health check.
    pub lease_duration: tenure_core::Duration,
    /// Whether a command is supervised (false: an observer-only node).
    pub supervises_child: bool,
    /// The end of the boot quarantine (protocol: Boot quarantine): the node grants no vote
    /// before it. `None` when there is none (the very first boot of a cluster of one).
    pub quarantine_until: Option<Instant>,
}

impl NodeInfo {
    /// Whether the node is still in its boot quarantine at local time `now`.
    pub fn is_quarantined(&self, now: Instant) -> bool {
        self.quarantine_until.is_some_and(|until| now < until)
    }
}

/// The node as of the driver's last turn.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The local time of the turn.
    pub at: Instant,
    pub role: RoleKind,
    pub term: Term,
    pub voted_for: Option<NodeId>,
    pub leader: Option<NodeId>,
    pub leadership: Option<Leadership>,
    pub acting: ActingState,
    pub counters: Counters,
    /// Elections this node started (it became a candidate).
    pub elections: u64,
    /// Elections this node won.
    pub elections_won: u64,
    /// False once the driver loop has ended.
    pub driver_running: bool,
    /// Messages refused for a term jump beyond `MAX_TERM_STEP` (protocol: Term jumps are
    /// bounded), and the last one refused.
    pub term_jumps: TermJumps,
}

/// What the node has seen of refused term jumps: no correct member sends one, so each means a
/// buggy member or someone holding the cluster key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TermJumps {
    /// Messages refused since the start.
    pub refused: u64,
    /// The last refused message's sender and term.
    pub last: Option<(NodeId, Term)>,
}

impl Snapshot {
    /// Whether the node acts at local time `now`: its child runs under the current token and
    /// the acting deadline has not passed. A turn of the driver may be up to a timer away, so
    /// the deadline is checked against `now`, not against the time of the turn.
    pub fn is_acting(&self, now: Instant) -> bool {
        let child_running = matches!(
            self.acting,
            ActingState::Acting { acting_until, .. } if now < acting_until
        );
        child_running
            && self
                .leadership
                .is_some_and(|leadership| leadership.is_acting(now))
    }

    /// The remaining lease at `now`, if this node holds one.
    pub fn lease_remaining(&self, now: Instant) -> Option<tenure_core::Duration> {
        self.leadership
            .filter(|leadership| leadership.holds_lease(now))
            .map(|leadership| leadership.lease_until.saturating_duration_since(now))
    }
}

impl Shared {
    /// The shared state of a node booted at local time `now`.
    pub fn new(info: NodeInfo, now: Instant) -> Shared {
        Shared {
            info,
            snapshot: Mutex::new(Snapshot {
                at: now,
                role: RoleKind::Follower,
                term: Term(0),
                voted_for: None,
                leader: None,
                leadership: None,
                acting: ActingState::Idle,
                counters: Counters::default(),
                elections: 0,
                elections_won: 0,
                driver_running: true,
                term_jumps: TermJumps::default(),
            }),
        }
    }

    /// A copy of the latest snapshot.
    pub fn snapshot(&self) -> Snapshot {
        self.lock().clone()
    }

    /// Marks the driver loop as ended, for the health check.
    pub fn driver_ended(&self) {
        self.lock().driver_running = false;
    }

    fn lock(&self) -> MutexGuard<'_, Snapshot> {
        // The snapshot is plain data written whole; a panic mid-update cannot leave it in a
        // state worse than stale, so a poisoned lock is still usable.
        self.snapshot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// How often at most a refused term jump from one peer is logged as a warning.
pub const TERM_JUMP_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// The observer of the binary.
pub struct NodeObserver {
    shared: Arc<Shared>,
    elections: u64,
    elections_won: u64,
    term_jumps: TermJumps,
    /// Per sender (indexed by `NodeId`): when its last refused term jump was logged, and how
    /// many were refused since without a line.
    term_jump_warnings: Vec<Option<(Instant, u64)>>,
}

impl NodeObserver {
    pub fn new(shared: Arc<Shared>) -> NodeObserver {
        let members = shared.info.members.len();
        NodeObserver {
            shared,
            elections: 0,
            elections_won: 0,
            term_jumps: TermJumps::default(),
            term_jump_warnings: vec![None; members],
        }
    }

    /// Counts a message the core refused for its term jump, and warns about it unless this
    /// sender was warned about within `TERM_JUMP_WARNING_INTERVAL`.
    fn term_jump_refused(&mut self, now: Instant, envelope: &Envelope) {
        let term = envelope.message.term();
        self.term_jumps.refused += 1;
        self.term_jumps.last = Some((envelope.from, term));
        let Some(slot) = usize::try_from(envelope.from.0)
            .ok()
            .and_then(|index| self.term_jump_warnings.get_mut(index))
        else {
            return;
        };
        let suppressed = match *slot {
            Some((warned_at, suppressed))
                if now.saturating_duration_since(warned_at) < TERM_JUMP_WARNING_INTERVAL =>
            {
                *slot = Some((warned_at, suppressed + 1));
                return;
            }
            Some((_, suppressed)) => suppressed,
            None => 0,
        };
        *slot = Some((now, 0));
        let peer = self.name(envelope.from);
        warn!(
            %peer,
            refused_term = term.0,
            our_term = self.shared.lock().term.0,
            max_term_step = tenure_core::MAX_TERM_STEP,
            suppressed,
            message = envelope.message.kind().name(),
            "refused a term jump: peer {peer} sent term {}, more than {} above ours; no correct \
             member does that, so it is a buggy member or someone holding the cluster key \
             (at most one such line per peer per {} s; `suppressed` counts the ones not logged)",
            term.0,
            tenure_core::MAX_TERM_STEP,
            TERM_JUMP_WARNING_INTERVAL.as_millis() / 1000,
        );
    }

    fn name(&self, id: NodeId) -> String {
        self.shared.info.members.display(id)
    }

    fn name_or_none(&self, id: Option<NodeId>) -> String {
        id.map_or_else(|| "none".to_string(), |id| self.name(id))
    }
}

impl Observer for NodeObserver {
    fn observe(&mut self, now: Instant, observation: &Observation) {
        match *observation {
            Observation::Event(Event::RoleChanged { role, term, leader }) => {
                match role {
                    RoleKind::Candidate => self.elections += 1,
                    RoleKind::Leader => self.elections_won += 1,
                    RoleKind::Follower | RoleKind::PreCandidate => {}
                }
                // The token a leader of this term hands out is the term; with no leader known
                // there is no token in force, and the field is left out.
                let fencing_token = leader.map(|_| term.0);
                info!(
                    role = role.name(),
                    term = term.0,
                    leader = %self.name_or_none(leader),
                    fencing_token,
                    "role changed"
                );
            }
            Observation::Event(Event::LeaseAcquired { term }) => {
                info!(
                    term = term.0,
                    "lease acquired: a majority acknowledged this leader"
                );
            }
            Observation::Event(Event::ResignRequested { term }) => {
                info!(
                    term = term.0,
                    "resigning: stopping the child before handing leadership over"
                );
            }
            Observation::Persisted(state) => {
                debug!(
                    term = state.term.0,
                    voted_for = %self.name_or_none(state.voted_for),
                    "state made durable"
                );
            }
            Observation::Sent(envelope) => {
                trace!(to = %self.name(envelope.to), message = ?envelope.message, "sent");
                if let tenure_core::Message::TimeoutNow { term } = envelope.message {
                    info!(
                        term = term.0,
                        successor = %self.name(envelope.to),
                        "handover: sent TimeoutNow to the successor"
                    );
                }
            }
            Observation::Received(envelope, received) => match received {
                Received::Accepted => {
                    trace!(from = %self.name(envelope.from), message = ?envelope.message, "received");
                }
                Received::Dropped(DropReason::TermTooFar) => {
                    self.term_jump_refused(now, &envelope);
                }
                Received::Dropped(reason) => {
                    debug!(
                        from = %self.name(envelope.from),
                        message = ?envelope.message,
                        reason = reason.name(),
                        "message dropped"
                    );
                }
            },
            Observation::ActingStarted { fencing_token, .. } => {
                info!(
                    fencing_token = fencing_token.0,
                    "acting: this node holds the lease and runs the child"
                );
            }
            Observation::ActingExtended { acting_until } => {
                trace!(
                    acting_until = acting_until.as_nanos(),
                    "acting deadline extended"
                );
            }
            Observation::ActingStopRequested => info!("acting ends: stopping the child"),
            Observation::ActingStopped => info!("acting ended: the child is gone"),
            Observation::ChildLost(result) => warn!(
                still_leader = result.is_ok(),
                "the child ended for good while this node could act; handing leadership over"
            ),
            Observation::CampaignHeld { losses, hold } => warn!(
                losses_in_a_row = losses,
                hold_ms = hold.as_millis(),
                "this node will not campaign for {} ms, so the other members get their turn",
                hold.as_millis()
            ),
            Observation::ResignCommand(successor, result) => info!(
                successor = %self.name_or_none(successor),
                result = ?result,
                "step-down requested"
            ),
            Observation::Shutdown(result) => info!(
                leading = result.is_ok(),
                "shutting down: stopping the child and handing leadership over if leading"
            ),
            Observation::HandedOver(result) => match result {
                Ok(()) => info!("handover: the child is gone; leadership released (Resign sent)"),
                Err(error) => info!(%error, "no handover: the leadership ended first"),
            },
            Observation::Failed => error!("the driver failed; stopping the child"),
        }
    }

    fn status(&mut self, status: &Status<'_>) {
        let mut snapshot = self.shared.lock();
        snapshot.at = status.now;
        snapshot.role = status.role;
        snapshot.term = status.term;
        snapshot.voted_for = status.voted_for;
        snapshot.leader = status.leader;
        snapshot.leadership = status.leadership;
        snapshot.acting = status.acting;
        snapshot.counters.clone_from(status.counters);
        snapshot.elections = self.elections;
        snapshot.elections_won = self.elections_won;
        snapshot.term_jumps = self.term_jumps;
    }
}
