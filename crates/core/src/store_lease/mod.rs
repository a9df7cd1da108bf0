//! [`StoreLease`]: the sans-IO election core for a coordination store (protocol: Store leases).
//!
//! Where the quorum core ([`crate::Node`]) holds an election among tenure nodes, this core holds
//! one in a store that is highly available on its own (PostgreSQL, etcd). It does no I/O: it
//! emits [`StoreRequest`]s, each a compare-and-set on the election's [`Record`], and takes the
//! store's [`StoreReply`]s. The driver runs it through the same [`crate::Election`] interface
//! as the quorum core, with the same acting sink, guard, token and status.
//!
//! # The rules
//!
//! - **Acting** (protocol: The store-lease acting rule). A renewal (or acquisition) that the
//!   store applied, *sent* at local time s, lets the holder act until
//!   `s + L·(1−ρ)/(1+ρ) − stop_margin`. The store applied it after s, so in real time the
//!   child is gone before `applied + L/(1+ρ)`. A reply that never comes, or says nothing sure
//!   ([`StoreOutcome::Failed`]), extends nothing. A conflict ends acting at once.
//! - **Takeover** (protocol: Who judges expiry). With [`ExpiryJudge::Contenders`] a contender
//!   takes a record over by compare-and-set on a version it has seen unchanged for `L` on its
//!   own clock, counted from the reply that first showed it: that reply left the store after
//!   the holder's latest renewal was applied, so `L` there is at least `L/(1+ρ)` of real time
//!   after it. With [`ExpiryJudge::Store`] it takes only a record the store made vacant.
//! - A vacant record (released, or expired by the store) is taken at once.
//!
//! # The call protocol
//!
//! As for [`crate::Node`]: inputs `handle_*(now, …)` with a `now` that never goes back, outputs
//! drained with [`StoreLease::poll_output`] after every input, and
//! [`StoreLease::poll_timeout`] for the next timer. At most one request is outstanding at a
//! time; a reply to any other is dropped as [`DropReason::Unexpected`].

mod config;
mod store;
// Without the feature the variants exist only so `StoreLeaseConfig::breaks` can name them.
#[cfg_attr(not(feature = "broken-variants"), allow(dead_code, unreachable_pub))]
mod variant;

use std::collections::VecDeque;

use crate::election::Summary;
use crate::id::{FencingToken, NodeId, Term};
use crate::leadership::Leadership;
use crate::node::{CommandError, LatestNow};
use crate::output::{DropReason, Event, Output, Received, RoleKind};
use crate::time::Instant;

pub use config::{StoreLeaseConfig, StoreLeaseConfigError, StoreLeaseParams};
pub use store::{
    ExpiryJudge, Record, ReferenceStore, StoreOp, StoreOutcome, StoreReply, StoreRequest,
};
pub use variant::StoreVariant;

/// After releasing the election, a node waits this many poll intervals before it may take it
/// again, so that a graceful handover goes to another contender when there is one.
pub const RELEASE_HOLD_POLLS: u64 = 2;

/// A failed renewal is retried after this fraction of the renew interval, not at once, so a
/// store that fails fast is not hammered.
pub const RENEW_RETRY_DIVISOR: u64 = 4;

/// More outputs than this pending means the driver stopped draining: a programmer error.
const MAX_PENDING_OUTPUTS: usize = 64;

/// The store-lease election state machine of one node. See the module docs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StoreLease {
    config: StoreLeaseConfig,
    id: NodeId,
    role: Role,
    /// The request in flight, if any: at most one.
    outstanding: Option<Outstanding>,
    next_request_id: u64,
    /// When the next request is due (a poll, a renewal, a retry).
    next_request_at: Instant,
    /// The latest record the store showed us, and when we first saw its version.
    observed: Option<Observed>,
    /// protocol: Campaign holds. No acquisition before this instant.
    campaign_hold_until: Option<Instant>,
    /// No acquisition before this instant: set by our own release.
    not_before: Instant,
    /// The token of a tenure this node released, while the store may still show it held: a
    /// release whose outcome is unknown is sent again once per poll interval for as long as a
    /// read shows the record held by us under this token (protocol: Graceful handover).
    releasing: Option<FencingToken>,
    /// The largest fencing token any reply showed: a store that hands out a smaller or equal
    /// one on acquisition is broken, and we refuse to act on it (protocol: The fencing token).
    highest_token: FencingToken,
    outputs: VecDeque<Output<StoreRequest>>,
    latest_now: LatestNow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Role {
    Contender,
    Holder(Tenure),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Tenure {
    token: FencingToken,
    /// The tenure holds while `now < lease_until`: the latest applied renewal's send time plus
    /// the lease hold.
    lease_until: Instant,
    /// Since when a resignation is pending, if one is: acting ended then.
    resigning_since: Option<Instant>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Outstanding {
    id: u64,
    op: StoreOp,
    sent_at: Instant,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Observed {
    record: Record,
    /// When a reply first showed this record's version.
    seen_at: Instant,
}

impl StoreLease {
    /// Boots at local time `now`. The first request (a read) is due at once. Nothing is
    /// persisted locally: the store holds the election's state, and a node that restarts
    /// treats a record naming itself like anyone's.
    #[must_use]
    pub fn new(config: StoreLeaseConfig, id: NodeId, now: Instant) -> StoreLease {
        StoreLease {
            config,
            id,
            role: Role::Contender,
            outstanding: None,
            next_request_id: 1,
            next_request_at: now,
            observed: None,
            campaign_hold_until: None,
            not_before: now,
            releasing: None,
            highest_token: FencingToken(0),
            outputs: VecDeque::new(),
            latest_now: LatestNow(now),
        }
    }

    // ----- Inputs ---------------------------------------------------------------------------

    /// The store's reply arrived at local time `now`.
    pub fn handle_reply(&mut self, now: Instant, reply: StoreReply) -> Received {
        self.advance_now(now);
        self.expire(now);
        let Some(outstanding) = self.outstanding.filter(|o| o.id == reply.id) else {
            return Received::Dropped(DropReason::Unexpected);
        };
        self.outstanding = None;
        let received = match reply.outcome {
            StoreOutcome::Applied(record) => {
                if self.applied(now, outstanding, record) {
                    Received::Accepted
                } else {
                    Received::Dropped(DropReason::OutOfRange)
                }
            }
            StoreOutcome::Conflict(record) => {
                if self.conflict(now, outstanding, record) {
                    Received::Accepted
                } else {
                    Received::Dropped(DropReason::OutOfRange)
                }
            }
            StoreOutcome::Failed => {
                self.failed(now, outstanding);
                Received::Accepted
            }
        };
        self.expire(now);
        self.send_due(now);
        self.check_invariants(now);
        received
    }

    /// The time from [`StoreLease::poll_timeout`] has come (calling earlier is harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance_now(now);
        self.expire(now);
        if let Some(outstanding) = self.outstanding {
            if now >= outstanding.sent_at + self.config.params().request_timeout {
                // No answer in time: the request may or may not have been applied.
                self.outstanding = None;
                self.failed(now, outstanding);
                self.expire(now);
            }
        }
        self.send_due(now);
        self.check_invariants(now);
    }

    /// Asks the holder to hand over gracefully (protocol: Graceful handover): it stops acting
    /// at once and keeps renewing; once the driver reports the child gone
    /// ([`StoreLease::handle_acting_stopped`]) it releases the record. Any other contender
    /// may then take it; `successor` is not used by a store.
    pub fn handle_resign(&mut self, now: Instant) -> Result<(), CommandError> {
        self.advance_now(now);
        self.expire(now);
        if !matches!(self.role, Role::Holder(_)) {
            return Err(CommandError::NotLeader);
        }
        self.resign(now);
        self.check_invariants(now);
        Ok(())
    }

    /// The child is gone after a resignation: release the record so another node takes it at
    /// its next read. A request still in flight is abandoned; if it applies after the release,
    /// it conflicts.
    pub fn handle_acting_stopped(&mut self, now: Instant) -> Result<(), CommandError> {
        self.advance_now(now);
        self.expire(now);
        let Role::Holder(tenure) = self.role else {
            return Err(CommandError::NotResigning);
        };
        if tenure.resigning_since.is_none() {
            return Err(CommandError::NotResigning);
        }
        self.outstanding = None;
        self.become_contender(now);
        self.releasing = Some(tenure.token);
        self.send(
            now,
            StoreOp::Release {
                token: tenure.token,
            },
        );
        let polls = self
            .config
            .params()
            .poll_interval
            .mul_ratio(RELEASE_HOLD_POLLS, 1);
        self.not_before = now + polls;
        self.check_invariants(now);
        Ok(())
    }

    /// Holds acquisitions until `until` (protocol: Campaign holds).
    pub fn handle_campaign_hold(&mut self, now: Instant, until: Instant) {
        self.advance_now(now);
        self.expire(now);
        if until > now {
            self.campaign_hold_until = Some(
                self.campaign_hold_until
                    .map_or(until, |held| held.max(until)),
            );
        }
        self.check_invariants(now);
    }

    /// Ends every campaign hold.
    pub fn handle_campaign_release(&mut self, now: Instant) {
        self.advance_now(now);
        self.expire(now);
        self.campaign_hold_until = None;
        self.send_due(now);
        self.check_invariants(now);
    }

    // ----- Outputs and queries --------------------------------------------------------------

    /// The next output: [`Output::Send`] of a store request, or [`Output::Event`]. Never
    /// [`Output::Persist`].
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output<StoreRequest>> {
        self.outputs.pop_front()
    }

    /// When to call [`StoreLease::handle_timeout`] next (local time).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let request = match self.outstanding {
            Some(outstanding) => outstanding.sent_at + self.config.params().request_timeout,
            None => self.next_send_at(),
        };
        Some(match self.role {
            Role::Holder(tenure) => request.min(self.lapse_at(tenure)),
            Role::Contender => request,
        })
    }

    /// The holder's leadership at `now`: `Some` while it holds the tenure.
    #[must_use]
    pub fn leadership(&self, now: Instant) -> Option<Leadership> {
        let Role::Holder(tenure) = self.role else {
            return None;
        };
        let leadership = Leadership {
            fencing_token: tenure.token,
            lease_until: tenure.lease_until,
            acting_until: self.acting_until(tenure),
        };
        (leadership.holds_lease(now) || leadership.is_acting(now)).then_some(leadership)
    }

    #[must_use]
    pub fn id(&self) -> NodeId {
        self.id
    }

    #[must_use]
    pub fn config(&self) -> &StoreLeaseConfig {
        &self.config
    }

    /// The latest record the store showed this node, if any.
    #[must_use]
    pub fn observed(&self) -> Option<Record> {
        self.observed.map(|observed| observed.record)
    }

    /// The request in flight, if any.
    #[must_use]
    pub fn outstanding(&self) -> Option<StoreRequest> {
        self.outstanding.map(|outstanding| StoreRequest {
            id: outstanding.id,
            from: self.id,
            op: outstanding.op,
        })
    }

    // ----- Replies --------------------------------------------------------------------------

    /// An applied request. Returns `false`, and takes the reply as [`StoreOutcome::Failed`],
    /// when the record contradicts the request: a broken or hostile store never makes us act.
    fn applied(&mut self, now: Instant, outstanding: Outstanding, record: Record) -> bool {
        // Where contenders judge expiry, a write they cannot see (one that left the version as
        // it was) must not count: they would time the older write (protocol: Who judges
        // expiry).
        let new_version = |seen: Option<u64>| {
            self.config.judge() == ExpiryJudge::Store || seen != Some(record.version)
        };
        let consistent = match outstanding.op {
            StoreOp::Read => true,
            StoreOp::Release { .. } => record.holder.is_none(),
            StoreOp::Acquire { version } => {
                record.holder == Some(self.id)
                    && record.token > self.highest_token
                    && new_version(Some(version))
            }
            StoreOp::Renew { token } => {
                record.holder == Some(self.id)
                    && record.token == token
                    && new_version(self.observed.map(|observed| observed.record.version))
            }
        };
        if !consistent {
            self.failed(now, outstanding);
            return false;
        }
        self.observe(now, record);
        match outstanding.op {
            StoreOp::Read | StoreOp::Release { .. } => {}
            StoreOp::Acquire { .. } => {
                if self.role == Role::Contender {
                    self.become_holder(now, outstanding, record.token);
                    if self.earliest_acquire_allowed() > now {
                        // A hold began while the acquisition was in flight (a pause, a lost
                        // child): the tenure is taken only to be handed back, never acted on.
                        self.resign(now);
                    }
                }
            }
            StoreOp::Renew { token } => self.extend(now, outstanding, token),
        }
        true
    }

    /// A refused request. Returns `false`, and takes the reply as [`StoreOutcome::Failed`],
    /// when the record shows that the compare-and-set should have applied: such a store is
    /// not to be asked again at once.
    fn conflict(&mut self, now: Instant, outstanding: Outstanding, record: Record) -> bool {
        let contradicts = match outstanding.op {
            StoreOp::Read => true,
            StoreOp::Acquire { version } => {
                record.version == version
                    && (record.holder.is_none() || self.config.judge() == ExpiryJudge::Contenders)
            }
            StoreOp::Renew { token } | StoreOp::Release { token } => {
                record.holder == Some(self.id) && record.token == token
            }
        };
        if contradicts {
            self.failed(now, outstanding);
            return false;
        }
        if let (Role::Holder(tenure), StoreOp::Renew { token }) = (self.role, outstanding.op) {
            if tenure.token == token {
                // Someone else holds the election, or it expired: stop acting at once.
                self.become_contender(now);
            }
        }
        self.observe(now, record);
        if let StoreOp::Acquire { .. } = outstanding.op {
            // Lost a race: one acquisition per poll interval at most.
            self.not_before = self
                .not_before
                .max(now + self.config.params().poll_interval);
        }
        true
    }

    fn failed(&mut self, now: Instant, outstanding: Outstanding) {
        let retry = self
            .config
            .params()
            .renew_interval
            .mul_ratio(1, RENEW_RETRY_DIVISOR);
        match outstanding.op {
            StoreOp::Renew { token } => {
                if self.config.breaks(StoreVariant::ExtendOnAmbiguous) {
                    self.extend(now, outstanding, token);
                }
                self.next_request_at = now + retry;
            }
            // An acquisition that may have applied leaves a record naming us that we do not
            // hold: we treat it like anyone's, and the version we saw is stale either way.
            StoreOp::Acquire { .. } => {
                self.observed = None;
                self.next_request_at = now + self.config.params().poll_interval;
            }
            StoreOp::Read | StoreOp::Release { .. } => {
                self.next_request_at = now + self.config.params().poll_interval;
            }
        }
    }

    /// A renewal of `token`, sent at `outstanding.sent_at`, was applied: the tenure holds until
    /// that send time plus the lease hold (protocol: The store-lease acting rule).
    fn extend(&mut self, now: Instant, outstanding: Outstanding, token: FencingToken) {
        let basis = self.lease_basis(now, outstanding);
        let lease_hold = self.config.lease_hold();
        if let Role::Holder(tenure) = &mut self.role {
            if tenure.token == token {
                tenure.lease_until = tenure.lease_until.max(basis + lease_hold);
                let renew_at = outstanding.sent_at + self.config.params().renew_interval;
                self.next_request_at = renew_at.max(now);
            }
        }
    }

    /// Remembers `record`, and when its version was first seen. Only an unbroken run of
    /// replies showing one version keeps its first sighting (protocol: Who judges expiry).
    fn observe(&mut self, now: Instant, record: Record) {
        let seen_at = match self.observed {
            Some(observed) if observed.record.version == record.version => observed.seen_at,
            _ => now,
        };
        self.highest_token = self.highest_token.max(record.token);
        if self
            .releasing
            .is_some_and(|token| record.holder != Some(self.id) || record.token != token)
        {
            self.releasing = None;
        }
        self.observed = Some(Observed { record, seen_at });
        self.next_request_at = now + self.config.params().poll_interval;
    }

    // ----- Roles ----------------------------------------------------------------------------

    fn become_holder(&mut self, now: Instant, outstanding: Outstanding, token: FencingToken) {
        assert_eq!(self.role, Role::Contender, "only a contender acquires");
        let lease_until = self.lease_basis(now, outstanding) + self.config.lease_hold();
        self.role = Role::Holder(Tenure {
            token,
            lease_until,
            resigning_since: None,
        });
        self.next_request_at = (outstanding.sent_at + self.config.params().renew_interval).max(now);
        let term = Term(token.0);
        self.push(Output::Event(Event::RoleChanged {
            role: RoleKind::Leader,
            term,
            leader: Some(self.id),
        }));
        self.push(Output::Event(Event::LeaseAcquired { term }));
    }

    /// Phase one of a handover: acting ends now; the tenure is kept and renewed until the driver
    /// reports the child gone.
    fn resign(&mut self, now: Instant) {
        if let Role::Holder(tenure) = &mut self.role {
            if tenure.resigning_since.is_none() {
                tenure.resigning_since = Some(now);
                let term = Term(tenure.token.0);
                self.push(Output::Event(Event::ResignRequested { term }));
            }
        }
    }

    /// Ends a tenure (a lapse, a conflict, a release): the former holder must see a version
    /// unchanged for a whole lease before it takes the record again, like anyone.
    fn become_contender(&mut self, now: Instant) {
        let Role::Holder(tenure) = self.role else {
            return;
        };
        self.role = Role::Contender;
        self.observed = None;
        self.next_request_at = now;
        self.push(Output::Event(Event::RoleChanged {
            role: RoleKind::Follower,
            term: Term(tenure.token.0),
            leader: None,
        }));
    }

    /// protocol: Lapse. Once the acting window has closed without a renewal, the tenure is
    /// over for this node: no later renewal reopens it, and the child never restarts under the
    /// same token. A resigning holder keeps renewing until it releases, or until its lease ends.
    fn expire(&mut self, now: Instant) {
        if let Role::Holder(tenure) = self.role {
            if now >= self.lapse_at(tenure) {
                self.become_contender(now);
            }
        }
    }

    /// When the tenure ends for this node unless renewed: the close of the acting window, or
    /// for a resigning holder the end of the lease.
    fn lapse_at(&self, tenure: Tenure) -> Instant {
        match tenure.resigning_since {
            None => self.window_until(tenure),
            Some(_) => tenure.lease_until,
        }
    }

    // ----- Requests -------------------------------------------------------------------------

    /// Sends the request that is due, if one is and none is in flight.
    fn send_due(&mut self, now: Instant) {
        if self.outstanding.is_some() || now < self.next_send_at() {
            return;
        }
        let op = match self.role {
            Role::Holder(tenure) => StoreOp::Renew {
                token: tenure.token,
            },
            Role::Contender => match (self.unreleased(), self.acquirable(now)) {
                (Some(token), _) => StoreOp::Release { token },
                (None, Some(version)) => StoreOp::Acquire { version },
                (None, None) => StoreOp::Read,
            },
        };
        self.send(now, op);
    }

    fn send(&mut self, now: Instant, op: StoreOp) {
        assert!(self.outstanding.is_none(), "one request in flight at most");
        let id = self.next_request_id;
        self.next_request_id += 1;
        self.outstanding = Some(Outstanding {
            id,
            op,
            sent_at: now,
        });
        self.push(Output::Send(StoreRequest {
            id,
            from: self.id,
            op,
        }));
    }

    /// The token of our released tenure, if the latest record still shows it held by us: the
    /// release is then sent again (it is guarded by the token, so it can end nothing newer).
    fn unreleased(&self) -> Option<FencingToken> {
        let token = self.releasing?;
        let record = self.observed?.record;
        (record.holder == Some(self.id) && record.token == token).then_some(token)
    }

    /// When the next request is due: a renewal, a read, or, for a contender, an acquisition
    /// that may come before the next read.
    fn next_send_at(&self) -> Instant {
        match self.role {
            Role::Holder(_) => self.next_request_at,
            Role::Contender => self.next_request_at.min(self.earliest_acquire()),
        }
    }

    /// The version a contender may take over at `now`, if it may: a vacant record at once, or,
    /// where contenders judge expiry, a version seen unchanged for a whole lease.
    fn acquirable(&self, now: Instant) -> Option<u64> {
        let observed = self.observed?;
        (now >= self.earliest_acquire()).then_some(observed.record.version)
    }

    /// The earliest instant this contender may send an acquisition, or the far future.
    fn earliest_acquire(&self) -> Instant {
        let never = Instant::from_nanos(u64::MAX);
        let Some(observed) = self.observed else {
            return never;
        };
        let expired_at = match (observed.record.holder, self.config.judge()) {
            (None, _) => observed.seen_at,
            (Some(_), ExpiryJudge::Contenders) => observed.seen_at + self.config.lease_duration(),
            (Some(_), ExpiryJudge::Store) => never,
        };
        expired_at.max(self.earliest_acquire_allowed())
    }

    /// The earliest instant a campaign hold or our own release allows an acquisition.
    fn earliest_acquire_allowed(&self) -> Instant {
        let held = self.campaign_hold_until.unwrap_or(Instant::ZERO);
        held.max(self.not_before)
    }

    /// Where a renewal's lease runs from: its send time (protocol: The store-lease acting
    /// rule), or the reply's arrival in the `deadline_from_reply` variant.
    fn lease_basis(&self, now: Instant, outstanding: Outstanding) -> Instant {
        if self.config.breaks(StoreVariant::DeadlineFromReply) {
            now
        } else {
            outstanding.sent_at
        }
    }

    /// `lease_until − stop_margin`: acting lies within the lease (protocol: The store-lease
    /// acting rule).
    fn window_until(&self, tenure: Tenure) -> Instant {
        Instant::from_nanos(
            tenure
                .lease_until
                .as_nanos()
                .saturating_sub(self.config.stop_margin().as_nanos()),
        )
    }

    fn acting_until(&self, tenure: Tenure) -> Instant {
        match tenure.resigning_since {
            Some(since) => self.window_until(tenure).min(since),
            None => self.window_until(tenure),
        }
    }

    fn push(&mut self, output: Output<StoreRequest>) {
        assert!(
            self.outputs.len() < MAX_PENDING_OUTPUTS,
            "the driver must drain the outputs after every input"
        );
        self.outputs.push_back(output);
    }

    fn advance_now(&mut self, now: Instant) {
        let latest = self.latest_now.0;
        assert!(
            now >= latest,
            "{}: now went back from {latest} to {now}; the driver must pass a monotonic clock",
            self.id
        );
        self.latest_now.0 = now;
    }

    /// Checked after every input, in release builds too.
    fn check_invariants(&self, now: Instant) {
        if let Some(outstanding) = self.outstanding {
            assert!(
                outstanding.id < self.next_request_id,
                "requests are numbered in order"
            );
            assert!(outstanding.sent_at <= now, "a request is sent before now");
        }
        if let Role::Holder(tenure) = self.role {
            assert!(
                tenure.token.0 > 0,
                "a holder holds a token from an acquisition"
            );
            assert!(
                tenure.token <= self.highest_token,
                "the tenure's token was seen"
            );
            assert!(
                self.acting_until(tenure) <= tenure.lease_until,
                "acting lies within the lease"
            );
            assert!(
                now < self.lapse_at(tenure),
                "a holder whose window closed has lapsed"
            );
        }
    }

    /// What the status page shows: holder or contender, the latest token seen as the term,
    /// and the holder the store named last.
    #[must_use]
    pub fn summary(&self) -> Summary {
        let (role, leader) = match self.role {
            Role::Holder(_) => (RoleKind::Leader, Some(self.id)),
            Role::Contender => {
                let acquiring = matches!(
                    self.outstanding.map(|outstanding| outstanding.op),
                    Some(StoreOp::Acquire { .. })
                );
                let role = if acquiring {
                    RoleKind::Candidate
                } else {
                    RoleKind::Follower
                };
                (
                    role,
                    self.observed.and_then(|observed| observed.record.holder),
                )
            }
        };
        Summary {
            id: self.id,
            role,
            term: Term(self.highest_token.0),
            voted_for: None,
            leader,
            promise_until: None,
            quarantine_until: None,
        }
    }
}
