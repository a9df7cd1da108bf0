//! The driver's [`Observer`] in the binary: logs every step worth a line, and keeps the node's
//! latest status for the HTTP API and the metrics.
//!
//! Log levels: role changes, acting and handovers at `info` (one line per role change, with the
//! term and the fencing token); a child lost or a failure at `warn`/`error`; persisted states and
//! dropped messages at `debug`; every message sent or received at `trace`.
//!
//! A node that cannot get elected says why, once per change, instead of flapping between
//! `pre_candidate` and `follower` at `info` several times a second: each failed election round
//! is summarised ([`RoundOutcome`]: which peers stayed silent, which refused) and logged at
//! `warn` only when the summary differs from the last one; the role changes of such rounds go to
//! `debug`. The end of the boot quarantine is logged once. One kind of drop is
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
use tenure_core::{StoreOutcome, StoreReply, StoreRequest};
use tenure_driver::{ActingState, Counters, Health, Observation, Observer, Status};

/// Everything the HTTP API reads, shared between the driver's observer and the server.
#[derive(Debug)]
pub struct Shared {
    pub info: NodeInfo,
    snapshot: Mutex<Snapshot>,
    /// Set when the daemon failed for good and `--exit-on-daemon-failure` asked the node to
    /// shut down for it.
    daemon_failed: std::sync::atomic::AtomicBool,
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
    /// Whether the child's health is checked (`--health-cmd` or `--health-http`).
    pub health_checked: bool,
    /// The end of the boot quarantine (protocol: Boot quarantine): the node grants no vote
    /// before it. `None` when there is none (the very first boot of a cluster of one).
    pub quarantine_until: Option<Instant>,
    /// With `--backend`: the store that holds the election (protocol: Store leases).
    pub store: Option<StoreInfo>,
}

/// What the status page shows of a store backend.
#[derive(Debug)]
pub struct StoreInfo {
    /// The store's URL without its password.
    pub backend: String,
    pub election: String,
    /// Who judges expiry: "contenders" or "store".
    pub judge: &'static str,
    /// This node's id in the store's record.
    pub id: NodeId,
    /// The names of the holders the store named, by id, as the adapter read them.
    pub names: crate::backend::HolderNames,
}

impl NodeInfo {
    /// The name of node `id`: a member's, this node's own in the store, or a holder's the
    /// store named.
    pub fn name_of(&self, id: NodeId) -> Option<String> {
        if let Some(name) = self.members.name(id) {
            if self.store.is_none() {
                return Some(name.to_string());
            }
        }
        let store = self.store.as_ref()?;
        if id == store.id {
            return Some(self.members.own_name().to_string());
        }
        store.names.get(id)
    }

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
    /// In maintenance mode (`tenure pause`): votes, never campaigns.
    pub paused: bool,
    /// Messages refused for a term jump beyond `MAX_TERM_STEP` (protocol: Term jumps are
    /// bounded), and the last one refused.
    pub term_jumps: TermJumps,
    /// The child's health as its checks reported it (protocol: Health-gated acting).
    pub health: Health,
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
                paused: false,
                term_jumps: TermJumps::default(),
                health: Health::default(),
            }),
            daemon_failed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// A copy of the latest snapshot.
    pub fn snapshot(&self) -> Snapshot {
        self.lock().clone()
    }

    /// Whether the node shut down because its daemon failed for good.
    pub fn daemon_failed(&self) -> bool {
        self.daemon_failed
            .load(std::sync::atomic::Ordering::Relaxed)
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

/// What one election round (pre-vote or vote) heard from the other members.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoundOutcome {
    /// Members that granted.
    pub granted: Vec<NodeId>,
    /// Members that answered but refused: promised to a leader, quarantined after a restart,
    /// or already voted in this term.
    pub refused: Vec<NodeId>,
    /// Members that did not answer at all: down, cut off, or not sharing our cluster key.
    pub silent: Vec<NodeId>,
}

impl RoundOutcome {
    /// The outcome of a round in which `granted` and `refused` answered, out of `peers`.
    fn of(peers: impl Iterator<Item = NodeId>, granted: &[NodeId], refused: &[NodeId]) -> Self {
        let silent = peers
            .filter(|peer| !granted.contains(peer) && !refused.contains(peer))
            .collect();
        RoundOutcome {
            granted: granted.to_vec(),
            refused: refused.to_vec(),
            silent,
        }
    }
}

/// The election round in progress, as far as the replies tell.
#[derive(Clone, Debug, Default)]
struct Round {
    /// The term of the replies that count (the proposed term of a pre-vote).
    term: Term,
    granted: Vec<NodeId>,
    refused: Vec<NodeId>,
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
    /// The pre-vote or vote round in progress, if any.
    round: Option<Round>,
    /// The last failed round's outcome that was logged.
    last_failed_round: Option<RoundOutcome>,
    /// The role last reported, to tell a failed round's return to follower.
    last_role: RoleKind,
    /// Whether the end of the boot quarantine is still to be logged.
    quarantine_pending: bool,
    /// With `--exit-on-daemon-failure`: where to ask for a shutdown once the daemon failed
    /// for good.
    exit_on_daemon_failure: Option<tokio::sync::mpsc::Sender<tenure_driver::Command>>,
    /// With a store backend: requests in a row whose outcome was unknown (protocol: The
    /// store-lease acting rule), so that an outage is logged once when it begins and once
    /// when it ends.
    store_failures: u32,
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
            round: None,
            last_failed_round: None,
            last_role: RoleKind::Follower,
            quarantine_pending: true,
            exit_on_daemon_failure: None,
            store_failures: 0,
        }
    }

    /// Shuts the node down through `commands` once the daemon failed for good
    /// (`--exit-on-daemon-failure`): it hands leadership over first, as on SIGTERM.
    pub fn exit_on_daemon_failure(
        mut self,
        commands: tokio::sync::mpsc::Sender<tenure_driver::Command>,
    ) -> NodeObserver {
        self.exit_on_daemon_failure = Some(commands);
        self
    }

    /// The daemon ended for good while this node could act: with `--exit-on-daemon-failure`,
    /// shut down so that the exit status says so.
    fn daemon_lost(&mut self) {
        let Some(commands) = self.exit_on_daemon_failure.take() else {
            return;
        };
        self.shared
            .daemon_failed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        error!(
            "the daemon failed for good; --exit-on-daemon-failure: handing leadership over and \
             exiting with status 3"
        );
        // A full queue means commands are pending already; a shutdown among them or not, the
        // flag above makes the exit status say that the daemon failed.
        let _ = commands.try_send(tenure_driver::Command::Shutdown);
    }

    /// Logs a role change: at `info`, except the churn of failed election rounds (becoming a
    /// pre-candidate, and a follower again with no leader, in the same term), which goes to
    /// `debug`; a failed round is summarised by [`NodeObserver::round_ended`] instead.
    fn role_changed(&mut self, role: RoleKind, term: Term, leader: Option<NodeId>) {
        match role {
            RoleKind::Candidate => self.elections += 1,
            RoleKind::Leader => self.elections_won += 1,
            RoleKind::Follower | RoleKind::PreCandidate => {}
        }
        let from = std::mem::replace(&mut self.last_role, role);
        let round_failed = matches!(from, RoleKind::PreCandidate | RoleKind::Candidate)
            && role == RoleKind::Follower
            && leader.is_none();
        if round_failed {
            self.round_ended();
        } else if role == RoleKind::Leader || leader.is_some() {
            // A leader emerged: the next failure is news again.
            self.last_failed_round = None;
        }
        self.round = match role {
            RoleKind::PreCandidate => Some(Round {
                term: Term(term.0.saturating_add(1)),
                ..Round::default()
            }),
            RoleKind::Candidate => Some(Round {
                term,
                ..Round::default()
            }),
            RoleKind::Follower | RoleKind::Leader => None,
        };
        // The token a leader of this term hands out is the term; with no leader known there is
        // no token in force, and the field is left out.
        let fencing_token = leader.map(|_| term.0);
        let leader = self.name_or_none(leader);
        if role == RoleKind::PreCandidate || round_failed {
            debug!(role = role.name(), term = term.0, %leader, fencing_token, "role changed");
        } else {
            info!(role = role.name(), term = term.0, %leader, fencing_token, "role changed");
        }
    }

    /// Records a reply to this node's pre-vote or vote request.
    fn reply(&mut self, from: NodeId, term: Term, granted: bool) {
        let Some(round) = self.round.as_mut().filter(|round| round.term == term) else {
            return;
        };
        let (answered, other) = if granted {
            (&mut round.granted, &mut round.refused)
        } else {
            (&mut round.refused, &mut round.granted)
        };
        if !answered.contains(&from) {
            answered.push(from);
        }
        // A later grant supersedes a refusal (a resend asked again).
        other.retain(|peer| *peer != from);
    }

    /// A round failed: says why, unless it failed the same way last time.
    fn round_ended(&mut self) {
        let round = self.round.take().unwrap_or_default();
        let own = self.shared.info.members.own_id();
        let peers = self
            .shared
            .info
            .members
            .ids()
            .into_iter()
            .filter(|id| *id != own);
        let outcome = RoundOutcome::of(peers, &round.granted, &round.refused);
        if self.last_failed_round.as_ref() == Some(&outcome) {
            return;
        }
        let names = |ids: &[NodeId]| {
            ids.iter()
                .map(|id| self.name(*id))
                .collect::<Vec<_>>()
                .join(",")
        };
        let majority = self.shared.info.members.majority();
        let why = if outcome.granted.len() + outcome.refused.len() + 1 < majority {
            "no quorum reachable: too many members are silent (down, cut off, or holding \
             another cluster key)"
        } else {
            "refused by peers: they are promised to a live leader, in boot quarantine, or \
             voted for another candidate in this term"
        };
        warn!(
            granted = %names(&outcome.granted),
            refused = %names(&outcome.refused),
            silent = %names(&outcome.silent),
            majority,
            "cannot get elected, {why}; this node keeps trying and logs again only when this \
             changes"
        );
        self.last_failed_round = Some(outcome);
    }

    /// Logs the end of the boot quarantine, once.
    fn quarantine_check(&mut self, now: Instant) {
        if self.quarantine_pending && !self.shared.info.is_quarantined(now) {
            self.quarantine_pending = false;
            if self.shared.info.quarantine_until.is_some() {
                info!("boot quarantine over: this node may vote and campaign now");
            }
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

    /// Logs the commands the driver handled and how they ended.
    fn log_command(&self, observation: &Observation) {
        match *observation {
            Observation::ResignCommand(successor, result) => info!(
                successor = %self.name_or_none(successor),
                result = %result.map_or_else(|error| error.to_string(), |()| "ok".to_string()),
                "step-down requested"
            ),
            Observation::Shutdown(result) => info!(
                leading = result.is_ok(),
                "shutting down: stopping the child and handing leadership over if leading"
            ),
            Observation::HandedOver(result) => match result {
                Ok(()) => info!(
                    "handover: the child is gone; leadership released, TimeoutNow and then \
                         Resign queued for sending"
                ),
                Err(error) => info!(%error, "no handover: the leadership ended first"),
            },
            Observation::Failed => error!("the driver failed; stopping the child"),
            Observation::Paused { leading } => info!(
                leading,
                "paused: this node votes but will not campaign until resumed{}",
                if leading {
                    "; handing leadership over"
                } else {
                    ""
                }
            ),
            Observation::Resumed => info!("resumed: this node may campaign again"),
            // The other observations are logged by `observe` itself.
            _ => {}
        }
    }

    /// Logs a received message: refused term jumps as warnings, other drops at `debug`.
    fn received(&mut self, now: Instant, envelope: &Envelope, received: Received) {
        let from = self.name(envelope.from);
        let message = envelope.message.kind().name();
        let term = envelope.message.term().0;
        match received {
            Received::Accepted => trace!(%from, message, term, "received"),
            Received::Dropped(DropReason::TermTooFar) => self.term_jump_refused(now, envelope),
            Received::Dropped(reason) => {
                debug!(%from, message, term, reason = reason.name(), "message dropped");
            }
        }
    }

    fn name(&self, id: NodeId) -> String {
        self.shared
            .info
            .name_of(id)
            .unwrap_or_else(|| id.to_string())
    }

    fn name_or_none(&self, id: Option<NodeId>) -> String {
        id.map_or_else(|| "none".to_string(), |id| self.name(id))
    }
}

impl Observer for NodeObserver {
    fn observe(&mut self, now: Instant, observation: &Observation) {
        match *observation {
            Observation::Event(Event::RoleChanged { role, term, leader }) => {
                self.role_changed(role, term, leader);
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
                trace!(
                    to = %self.name(envelope.to),
                    message = envelope.message.kind().name(),
                    term = envelope.message.term().0,
                    "sent"
                );
                if let tenure_core::Message::TimeoutNow { term } = envelope.message {
                    info!(
                        term = term.0,
                        successor = %self.name(envelope.to),
                        "handover: sent TimeoutNow to the successor"
                    );
                }
            }
            Observation::Received(envelope, received) => {
                if let tenure_core::Message::PreVoteReply { term, granted }
                | tenure_core::Message::VoteReply { term, granted } = envelope.message
                {
                    self.reply(envelope.from, term, granted);
                }
                self.received(now, &envelope, received);
            }
            Observation::ActingStarted { .. }
            | Observation::ActingExtended { .. }
            | Observation::ActingStopRequested
            | Observation::ActingStopped
            | Observation::ChildLost(_)
            | Observation::CampaignHeld { .. }
            | Observation::HealthCheckFailed { .. }
            | Observation::HealthRecovered { .. }
            | Observation::Unhealthy(_) => {
                if matches!(observation, Observation::ChildLost(_)) {
                    self.daemon_lost();
                }
                log_acting(observation);
            }
            Observation::ResignCommand(..)
            | Observation::Shutdown(_)
            | Observation::HandedOver(_)
            | Observation::Failed
            | Observation::Paused { .. }
            | Observation::Resumed => self.log_command(observation),
        }
    }

    fn status(&mut self, status: &Status<'_>) {
        self.quarantine_check(status.now);
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
        snapshot.paused = status.paused;
        snapshot.health.clone_from(status.health);
    }
}

/// The observer of a node whose election is held in a store (protocol: Store leases): the
/// store's traffic is its own, every other step is logged as for the quorum.
impl Observer<StoreRequest, StoreReply> for NodeObserver {
    fn observe(&mut self, now: Instant, observation: &Observation<StoreRequest, StoreReply>) {
        match observation {
            Observation::Sent(request) => {
                trace!(
                    op = request.op.name(),
                    request = request.id,
                    "store request sent"
                );
            }
            Observation::Received(reply, received) => self.store_reply(reply, *received),
            Observation::Event(Event::LeaseAcquired { term }) => {
                info!(
                    fencing_token = term.0,
                    "the store granted this node the election: acting"
                );
            }
            Observation::Event(Event::ResignRequested { term }) => {
                info!(
                    fencing_token = term.0,
                    "resigning: stopping the child before releasing the election in the store"
                );
            }
            Observation::HandedOver(Ok(())) => {
                info!("handover: the child is gone; releasing the election in the store");
            }
            other => {
                if let Some(common) = other.without_traffic::<Envelope, Envelope>() {
                    Observer::<Envelope, Envelope>::observe(self, now, &common);
                }
            }
        }
    }

    fn status(&mut self, status: &Status<'_>) {
        Observer::<Envelope, Envelope>::status(self, status);
    }
}

impl NodeObserver {
    /// Logs the store's answers: the start and the end of an outage once each, and a reply
    /// that contradicts its request as a warning.
    fn store_reply(&mut self, reply: &StoreReply, received: Received) {
        match (reply.outcome, received) {
            (_, Received::Dropped(DropReason::Unexpected)) => {
                debug!(
                    request = reply.id,
                    "a late store reply, for a request given up"
                );
            }
            (_, Received::Dropped(reason)) => warn!(
                request = reply.id,
                reason = reason.name(),
                "the store's reply contradicts the request; taken as a failure (a store that \
                 loses writes, or a bug)"
            ),
            (StoreOutcome::Failed, Received::Accepted) => {
                if self.store_failures == 0 {
                    warn!(
                        "the store did not answer, or the outcome is unknown (unreachable, \
                         timed out, refused): no renewal counts until it answers, and a holder \
                         stops acting when its window closes"
                    );
                }
                self.store_failures = self.store_failures.saturating_add(1);
            }
            (StoreOutcome::Applied(_) | StoreOutcome::Conflict(_), Received::Accepted) => {
                if self.store_failures > 0 {
                    info!(
                        failed_requests = self.store_failures,
                        "the store answers again"
                    );
                }
                self.store_failures = 0;
            }
        }
    }
}

/// Logs what happened to the child and its acting period.
fn log_acting(observation: &Observation) {
    match *observation {
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
        Observation::HealthCheckFailed {
            consecutive_failures,
            failures,
            ref reason,
        } => warn!(
            consecutive_failures,
            failures,
            %reason,
            "health check of the child failed ({consecutive_failures} of {failures} in a \
             row): {reason}"
        ),
        Observation::HealthRecovered { after_failures } => info!(
            after_failures,
            "health check of the child passed again after {after_failures} failed"
        ),
        Observation::Unhealthy(result) => warn!(
            still_leader = result.is_ok(),
            "the child failed its health checks too often in a row; stopping it and \
                 handing leadership over"
        ),
        // The other observations are logged by `NodeObserver::observe` itself.
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use tenure_core::{Message, Term};

    use super::*;
    use crate::transport::TransportStats;

    /// The observer of n2 in n1, n2, n3.
    fn observer_of_n2() -> NodeObserver {
        let members = Members::new("n2", ["n1", "n3"]).expect("valid names");
        let peers = Arc::new(PeerTable::new(&members, &[]));
        let info = NodeInfo {
            members,
            peers,
            transport: Arc::new(TransportStats::default()),
            child: Arc::new(ChildStats::default()),
            lease_duration: Duration::from_secs(2),
            supervises_child: true,
            health_checked: false,
            quarantine_until: None,
            store: None,
        };
        NodeObserver::new(Arc::new(Shared::new(info, Instant::ZERO)))
    }

    fn role(observer: &mut NodeObserver, role: RoleKind, term: u64, leader: Option<NodeId>) {
        let event = Event::RoleChanged {
            role,
            term: Term(term),
            leader,
        };
        observer.observe(
            Instant::ZERO,
            &Observation::<Envelope, Envelope>::Event(event),
        );
    }

    fn pre_vote_reply(observer: &mut NodeObserver, from: NodeId, term: u64, granted: bool) {
        let envelope = Envelope {
            from,
            to: observer.shared.info.members.own_id(),
            message: Message::PreVoteReply {
                term: Term(term),
                granted,
            },
        };
        let received = if granted {
            Received::Accepted
        } else {
            Received::Dropped(DropReason::Unexpected)
        };
        observer.observe(Instant::ZERO, &Observation::Received(envelope, received));
    }

    #[test]
    fn a_failed_round_is_summarised_once_per_change() {
        let mut observer = observer_of_n2();
        let members = observer.shared.info.members.ids();
        let (n1, n3) = (members[0], members[2]);

        // Round one: n1 refuses (promised), n3 is silent.
        role(&mut observer, RoleKind::PreCandidate, 4, None);
        pre_vote_reply(&mut observer, n1, 5, false);
        role(&mut observer, RoleKind::Follower, 4, None);
        let first = RoundOutcome {
            granted: vec![],
            refused: vec![n1],
            silent: vec![n3],
        };
        assert_eq!(observer.last_failed_round, Some(first.clone()));

        // A reply for another term counts for nothing; the same outcome is not news.
        role(&mut observer, RoleKind::PreCandidate, 4, None);
        pre_vote_reply(&mut observer, n3, 9, true);
        pre_vote_reply(&mut observer, n1, 5, false);
        role(&mut observer, RoleKind::Follower, 4, None);
        assert_eq!(observer.last_failed_round, Some(first));

        // Asked again, n1 grants: a later grant supersedes its refusal.
        role(&mut observer, RoleKind::PreCandidate, 4, None);
        pre_vote_reply(&mut observer, n1, 5, false);
        pre_vote_reply(&mut observer, n1, 5, true);
        assert_eq!(
            observer.round.as_ref().map(|round| round.granted.clone()),
            Some(vec![n1])
        );
        assert_eq!(
            observer.round.as_ref().map(|round| round.refused.len()),
            Some(0)
        );

        // A leader shows up: the next failure is news again.
        role(&mut observer, RoleKind::Follower, 6, Some(n1));
        assert_eq!(observer.last_failed_round, None);
        assert_eq!(observer.elections, 0, "no pre-vote counts as an election");
    }
}
