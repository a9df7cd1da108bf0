//! What the driver reports: every step it takes ([`Observation`]), and after every turn the
//! node's [`Status`] with its [`Counters`]. Logs, metrics and the HTTP status page of the binary,
//! and the trace and oracle of the simulation, are all [`Observer`]s.

use std::fmt::Debug;

use tenure_core::{
    CommandError, DropReason, Duration, Envelope, Event, FencingToken, Instant, Leadership,
    MessageKind, NodeId, PersistentState, Received, RoleKind, StoreOp, StoreOutcome, StoreReply,
    StoreRequest, Term,
};

use crate::health::Health;

/// Receives the driver's reports. Both methods default to doing nothing, and `()` is the
/// observer that ignores everything. `Out` and `In` are what the core sends and receives
/// (envelopes by default; store requests and replies for a store lease).
pub trait Observer<Out = Envelope, In = Envelope> {
    /// One step of the driver, at local time `now`, in the order taken.
    fn observe(&mut self, now: Instant, observation: &Observation<Out, In>) {
        let _ = (now, observation);
    }

    /// The node's state after a turn of the loop, just before the driver waits.
    fn status(&mut self, status: &Status<'_>) {
        let _ = status;
    }
}

impl<Out, In> Observer<Out, In> for () {}

/// One step of the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation<Out = Envelope, In = Envelope> {
    /// The core reported an event.
    Event(Event),
    /// A state was made durable.
    Persisted(PersistentState),
    /// An envelope (or store request) was handed to the transport.
    Sent(Out),
    /// An envelope (or store reply) arrived and the core accepted or dropped it.
    Received(In, Received),
    /// The sink was told to start acting.
    ActingStarted {
        fencing_token: FencingToken,
        acting_until: Instant,
    },
    /// The sink's acting deadline moved later.
    ActingExtended { acting_until: Instant },
    /// The sink was told to stop.
    ActingStopRequested,
    /// The sink reported acting over.
    ActingStopped,
    /// The child ended on its own while the node could still act; the driver asked the core
    /// to hand leadership over (the result says whether it still led).
    ChildLost(Result<(), CommandError>),
    /// A health check of the acting child failed: `consecutive_failures` in a row, of the
    /// `failures` that make the node give leadership up (protocol: Health-gated acting).
    HealthCheckFailed {
        consecutive_failures: u32,
        failures: u32,
        reason: String,
    },
    /// A health check passed after `after_failures` failed ones in a row.
    HealthRecovered { after_failures: u32 },
    /// The child failed its health checks too often in a row while the node could act; the
    /// driver asked the core to hand leadership over (the result says whether it still led),
    /// which stops the child first.
    Unhealthy(Result<(), CommandError>),
    /// After a lost leadership, the node holds its campaigns for `hold`: the `losses`-th loss
    /// in a row (protocol: Campaign holds).
    CampaignHeld { losses: u32, hold: Duration },
    /// A [`super::Command::Resign`] and its result.
    ResignCommand(Option<NodeId>, Result<(), CommandError>),
    /// A [`super::Command::Shutdown`] arrived; the result says whether a handover started.
    Shutdown(Result<(), CommandError>),
    /// A [`super::Command::Pause`]: the node no longer campaigns; `leading` if it was the
    /// leader and is handing over.
    Paused { leading: bool },
    /// A [`super::Command::Resume`]: the node may campaign again.
    Resumed,
    /// Phase two of a handover: the child was gone and the core was told so
    /// ([`tenure_core::Node::handle_acting_stopped`]). On `Ok` the node gave up its lease and
    /// queued `Resign` and `TimeoutNow`.
    HandedOver(Result<(), CommandError>),
    /// A part failed; the driver is about to return the error.
    Failed,
}

impl<Out, In> Observation<Out, In> {
    /// The same observation under other traffic types, or `None` for [`Observation::Sent`] and
    /// [`Observation::Received`], the only ones that carry traffic. An observer of a store
    /// lease handles those two itself and shares the handling of every other step with the
    /// quorum's.
    #[must_use]
    pub fn without_traffic<Out2, In2>(&self) -> Option<Observation<Out2, In2>> {
        Some(match self {
            Observation::Sent(_) | Observation::Received(..) => return None,
            Observation::Event(event) => Observation::Event(*event),
            Observation::Persisted(state) => Observation::Persisted(*state),
            Observation::ActingStarted {
                fencing_token,
                acting_until,
            } => Observation::ActingStarted {
                fencing_token: *fencing_token,
                acting_until: *acting_until,
            },
            Observation::ActingExtended { acting_until } => Observation::ActingExtended {
                acting_until: *acting_until,
            },
            Observation::ActingStopRequested => Observation::ActingStopRequested,
            Observation::ActingStopped => Observation::ActingStopped,
            Observation::ChildLost(result) => Observation::ChildLost(*result),
            Observation::HealthCheckFailed {
                consecutive_failures,
                failures,
                reason,
            } => Observation::HealthCheckFailed {
                consecutive_failures: *consecutive_failures,
                failures: *failures,
                reason: reason.clone(),
            },
            Observation::HealthRecovered { after_failures } => Observation::HealthRecovered {
                after_failures: *after_failures,
            },
            Observation::Unhealthy(result) => Observation::Unhealthy(*result),
            Observation::CampaignHeld { losses, hold } => Observation::CampaignHeld {
                losses: *losses,
                hold: *hold,
            },
            Observation::ResignCommand(successor, result) => {
                Observation::ResignCommand(*successor, *result)
            }
            Observation::Shutdown(result) => Observation::Shutdown(*result),
            Observation::Paused { leading } => Observation::Paused { leading: *leading },
            Observation::Resumed => Observation::Resumed,
            Observation::HandedOver(result) => Observation::HandedOver(*result),
            Observation::Failed => Observation::Failed,
        })
    }
}

/// The driver's view of the acting sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActingState {
    /// No child.
    Idle,
    /// The child runs with this token until this local deadline.
    Acting {
        fencing_token: FencingToken,
        acting_until: Instant,
    },
    /// The child was told to stop and is not gone yet.
    Stopping,
}

/// The node after a turn of the loop.
#[derive(Clone, Copy, Debug)]
pub struct Status<'a> {
    /// Local time.
    pub now: Instant,
    pub id: NodeId,
    pub role: RoleKind,
    pub term: Term,
    pub voted_for: Option<NodeId>,
    /// The leader this node knows of in its term (itself when leading).
    pub leader: Option<NodeId>,
    /// `Some` while this node leads and holds a lease or may act.
    pub leadership: Option<Leadership>,
    /// Until when this node has promised not to vote or campaign (protocol: Promises, leases,
    /// acting), if it has. Expired promises may still show until the core's next input.
    pub promise_until: Option<Instant>,
    /// Until when this node is in boot quarantine, if it is.
    pub quarantine_until: Option<Instant>,
    pub acting: ActingState,
    pub counters: &'a Counters,
    /// The child's health as its checks reported it (protocol: Health-gated acting).
    pub health: &'a Health,
    /// In maintenance mode: votes, never campaigns.
    pub paused: bool,
}

impl Status<'_> {
    /// How long the lease still holds, if this node holds one.
    pub fn lease_remaining(&self) -> Option<Duration> {
        self.leadership
            .filter(|leadership| leadership.holds_lease(self.now))
            .map(|leadership| leadership.lease_until.saturating_duration_since(self.now))
    }
}

/// Running totals since the driver started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Messages handed to the transport, indexed like [`MessageKind::ALL`].
    pub sent: [u64; MessageKind::ALL.len()],
    /// Messages received, accepted or not, indexed like [`MessageKind::ALL`].
    pub received: [u64; MessageKind::ALL.len()],
    /// Received messages the core dropped, indexed like [`DropReason::ALL`].
    pub dropped: [u64; DropReason::ALL.len()],
    /// Store requests sent, indexed like [`StoreOp::KINDS`] (a store lease only).
    pub store_requests: [u64; StoreOp::KINDS.len()],
    /// Store replies received, indexed like [`StoreOutcome::KINDS`]; timeouts are the core's
    /// and are not replies.
    pub store_replies: [u64; StoreOutcome::KINDS.len()],
    /// States made durable.
    pub persisted: u64,
    /// Calls of `handle_timeout`.
    pub timeouts: u64,
}

impl Counters {
    /// Messages of `kind` sent.
    pub fn sent(&self, kind: MessageKind) -> u64 {
        self.sent[kind_index(kind)]
    }

    /// Messages of `kind` received.
    pub fn received(&self, kind: MessageKind) -> u64 {
        self.received[kind_index(kind)]
    }

    /// Received messages dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason_index(reason)]
    }

    fn count_dropped(&mut self, received: Received) {
        if let Received::Dropped(reason) = received {
            self.dropped[reason_index(reason)] += 1;
        }
    }
}

/// What the driver counts of what the core sends: messages by kind for the quorum, requests
/// by kind for a store lease.
pub trait SentTraffic: Copy + Debug + Eq {
    fn count_sent(&self, counters: &mut Counters);
}

/// What the driver counts of what the core receives, and of what the core made of it.
pub trait ReceivedTraffic: Copy + Debug + Eq {
    fn count_received(&self, received: Received, counters: &mut Counters);
}

impl SentTraffic for Envelope {
    fn count_sent(&self, counters: &mut Counters) {
        counters.sent[kind_index(self.message.kind())] += 1;
    }
}

impl ReceivedTraffic for Envelope {
    fn count_received(&self, received: Received, counters: &mut Counters) {
        counters.received[kind_index(self.message.kind())] += 1;
        counters.count_dropped(received);
    }
}

impl SentTraffic for StoreRequest {
    fn count_sent(&self, counters: &mut Counters) {
        counters.store_requests[self.op.kind_index()] += 1;
    }
}

impl ReceivedTraffic for StoreReply {
    fn count_received(&self, received: Received, counters: &mut Counters) {
        counters.store_replies[self.outcome.kind_index()] += 1;
        counters.count_dropped(received);
    }
}

fn kind_index(kind: MessageKind) -> usize {
    MessageKind::ALL
        .iter()
        .position(|candidate| *candidate == kind)
        .expect("MessageKind::ALL lists every kind")
}

fn reason_index(reason: DropReason) -> usize {
    DropReason::ALL
        .iter()
        .position(|candidate| *candidate == reason)
        .expect("DropReason::ALL lists every reason")
}
