//! [`Election`]: the one interface through which the driver runs either election core, the
//! quorum ([`crate::Node`]) or a store lease ([`crate::StoreLease`]) (protocol: Store leases).

use std::fmt::Debug;

use crate::id::{NodeId, Term};
use crate::leadership::Leadership;
use crate::message::Envelope;
use crate::node::{CommandError, Node};
use crate::output::{Output, PersistentState, Received, RoleKind};
use crate::store_lease::{StoreLease, StoreOp, StoreReply, StoreRequest};
use crate::time::{Duration, Instant};

/// An election core, in the `handle_*` / `poll_*` shape: no I/O, time and entropy as
/// arguments. Both cores answer the one question the driver acts on, [`Election::leadership`].
pub trait Election {
    /// What the core sends: quorum messages, or store requests.
    type Outbound: Copy + Debug + Eq;
    /// What the core receives: quorum messages, or store replies.
    type Inbound: Copy + Debug + Eq;

    /// A message or reply arrived at local time `now`.
    fn handle_inbound(&mut self, now: Instant, inbound: Self::Inbound) -> Received;
    /// The time from [`Election::poll_timeout`] has come.
    fn handle_timeout(&mut self, now: Instant, entropy: u64);
    /// Hand over gracefully: stop acting now, release once the child is gone.
    fn handle_resign(
        &mut self,
        now: Instant,
        successor: Option<NodeId>,
    ) -> Result<(), CommandError>;
    /// The child is gone after a resignation.
    fn handle_acting_stopped(&mut self, now: Instant) -> Result<(), CommandError>;
    /// protocol: Campaign holds.
    fn handle_campaign_hold(&mut self, now: Instant, until: Instant);
    /// Ends every campaign hold.
    fn handle_campaign_release(&mut self, now: Instant);

    /// The next output, in order.
    fn poll_output(&mut self) -> Option<Output<Self::Outbound>>;
    /// When to call [`Election::handle_timeout`] next.
    fn poll_timeout(&self) -> Option<Instant>;
    /// This node's leadership at `now`, if it leads or acts.
    fn leadership(&self, now: Instant) -> Option<Leadership>;
    /// The lease: the unit of campaign holds.
    fn lease_duration(&self) -> Duration;
    /// What the status page shows.
    fn summary(&self) -> Summary;
    /// What must survive a restart (nothing, for a store lease).
    fn persistent_state(&self) -> PersistentState;
    /// Whether the request that hands this node's tenure over is still on its way: a store
    /// release sent and not yet answered or timed out. A node that shuts down waits for it, or
    /// the next holder waits a whole lease for the record to expire (protocol: Graceful
    /// handover). The quorum's Resign and TimeoutNow leave when they are sent.
    fn handover_in_flight(&self) -> bool;

    /// Whether this node may act at `now`.
    fn is_acting(&self, now: Instant) -> bool {
        self.leadership(now)
            .is_some_and(|leadership| leadership.is_acting(now))
    }
}

/// A core's state, as the status page and metrics show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Summary {
    pub id: NodeId,
    pub role: RoleKind,
    /// The quorum's term; for a store lease, the latest fencing token seen.
    pub term: Term,
    pub voted_for: Option<NodeId>,
    /// The leader (or the store's holder) this node knows of; itself when leading.
    pub leader: Option<NodeId>,
    pub promise_until: Option<Instant>,
    pub quarantine_until: Option<Instant>,
}

impl Election for Node {
    type Outbound = Envelope;
    type Inbound = Envelope;

    fn handle_inbound(&mut self, now: Instant, inbound: Envelope) -> Received {
        self.handle_message(now, inbound)
    }
    fn handle_timeout(&mut self, now: Instant, entropy: u64) {
        Node::handle_timeout(self, now, entropy);
    }
    fn handle_resign(
        &mut self,
        now: Instant,
        successor: Option<NodeId>,
    ) -> Result<(), CommandError> {
        Node::handle_resign(self, now, successor)
    }
    fn handle_acting_stopped(&mut self, now: Instant) -> Result<(), CommandError> {
        Node::handle_acting_stopped(self, now)
    }
    fn handle_campaign_hold(&mut self, now: Instant, until: Instant) {
        Node::handle_campaign_hold(self, now, until);
    }
    fn handle_campaign_release(&mut self, now: Instant) {
        Node::handle_campaign_release(self, now);
    }
    fn poll_output(&mut self) -> Option<Output> {
        Node::poll_output(self)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Node::poll_timeout(self)
    }
    fn leadership(&self, now: Instant) -> Option<Leadership> {
        Node::leadership(self, now)
    }
    fn lease_duration(&self) -> Duration {
        self.config().lease_duration()
    }
    fn summary(&self) -> Summary {
        Summary {
            id: self.id(),
            role: self.role(),
            term: self.term(),
            voted_for: self.voted_for(),
            leader: self.leader(),
            promise_until: self.promise_until(),
            quarantine_until: self.quarantine_until(),
        }
    }
    fn persistent_state(&self) -> PersistentState {
        Node::persistent_state(self)
    }
    fn handover_in_flight(&self) -> bool {
        false
    }
}

impl Election for StoreLease {
    type Outbound = StoreRequest;
    type Inbound = StoreReply;

    fn handle_inbound(&mut self, now: Instant, inbound: StoreReply) -> Received {
        self.handle_reply(now, inbound)
    }
    fn handle_timeout(&mut self, now: Instant, _entropy: u64) {
        StoreLease::handle_timeout(self, now);
    }
    fn handle_resign(
        &mut self,
        now: Instant,
        _successor: Option<NodeId>,
    ) -> Result<(), CommandError> {
        StoreLease::handle_resign(self, now)
    }
    fn handle_acting_stopped(&mut self, now: Instant) -> Result<(), CommandError> {
        StoreLease::handle_acting_stopped(self, now)
    }
    fn handle_campaign_hold(&mut self, now: Instant, until: Instant) {
        StoreLease::handle_campaign_hold(self, now, until);
    }
    fn handle_campaign_release(&mut self, now: Instant) {
        StoreLease::handle_campaign_release(self, now);
    }
    fn poll_output(&mut self) -> Option<Output<StoreRequest>> {
        StoreLease::poll_output(self)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        StoreLease::poll_timeout(self)
    }
    fn leadership(&self, now: Instant) -> Option<Leadership> {
        StoreLease::leadership(self, now)
    }
    fn lease_duration(&self) -> Duration {
        self.config().lease_duration()
    }
    fn summary(&self) -> Summary {
        StoreLease::summary(self)
    }
    fn persistent_state(&self) -> PersistentState {
        PersistentState::default()
    }
    fn handover_in_flight(&self) -> bool {
        self.outstanding()
            .is_some_and(|request| matches!(request.op, StoreOp::Release { .. }))
    }
}
