//! What the core asks of its driver, and what it tells it.

use crate::id::{NodeId, Term};
use crate::message::Envelope;

/// The persistent state of a node: written durably before any message that depends on it
/// leaves the node (protocol: Persist before send; raft-rs "Persisted Messages").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PersistentState {
    pub term: Term,
    pub voted_for: Option<NodeId>,
}

/// One output of the core, drained with [`crate::Node::poll_output`] in the order produced.
///
/// The order is the contract: a [`Output::Persist`] comes before every [`Output::Send`] that
/// depends on it, so a driver that handles outputs strictly in order — and does not move past
/// a `Persist` until it is durable — honours persist-before-send.
///
/// `M` is what the core sends: an [`Envelope`] for the quorum core, a
/// [`crate::StoreRequest`] for the store-lease core (which never persists).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Output<M = Envelope> {
    /// Make this state durable (write, fsync) before handling the next output.
    Persist(PersistentState),
    /// Send this message (or store request). Loss, duplication and reordering are tolerated.
    Send(M),
    /// Something an operator would want in the log or in metrics.
    Event(Event),
}

/// The coarse role of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RoleKind {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

impl RoleKind {
    /// A stable lowercase name for logs, metrics and the HTTP API.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            RoleKind::Follower => "follower",
            RoleKind::PreCandidate => "pre_candidate",
            RoleKind::Candidate => "candidate",
            RoleKind::Leader => "leader",
        }
    }
}

/// Observable happenings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// The role, the term or the known leader changed. The fencing token of a leader is `term`.
    RoleChanged {
        role: RoleKind,
        term: Term,
        leader: Option<NodeId>,
    },
    /// The leader acquired its first lease of this term: it may act now.
    LeaseAcquired { term: Term },
    /// The leader was asked to resign: it has stopped acting and waits for the driver to report
    /// the child gone ([`crate::Node::handle_acting_stopped`]).
    ResignRequested { term: Term },
}

/// What became of an incoming message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Received {
    /// The message was processed.
    Accepted,
    /// The message was dropped (perhaps after a refusal was sent back); count it by reason.
    Dropped(DropReason),
}

/// Why a message was dropped. Network input never panics the core (protocol: Bad input is
/// dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropReason {
    /// Addressed to another node.
    Misaddressed,
    /// From a node that is not a member, or from ourselves.
    UnknownPeer,
    /// A field is out of range (term above the maximum, a zero term or sequence, an ack for a
    /// heartbeat never sent).
    OutOfRange,
    /// From an older term; a refusal carrying our term may have been sent back.
    StaleTerm,
    /// A vote request while we promised a live leader not to vote (protocol: Promises).
    Promised,
    /// A vote request during boot quarantine (protocol: Boot quarantine).
    Quarantined,
    /// A second leader claimed our term: impossible in a correct cluster, never obeyed.
    ConflictingLeader,
    /// Valid, but not meaningful in our current role (a late reply, a duplicate).
    Unexpected,
    /// A term more than [`MAX_TERM_STEP`](crate::MAX_TERM_STEP) above ours: no correct cluster
    /// moves that far while a member is away, and adopting it would spend the term space
    /// (protocol: Term jumps are bounded).
    TermTooFar,
    /// A `TimeoutNow` while the driver holds our campaigns (protocol: Campaign holds).
    CampaignHeld,
}

impl DropReason {
    /// Every reason, in a fixed order (for metrics tables).
    pub const ALL: [DropReason; 10] = [
        DropReason::Misaddressed,
        DropReason::UnknownPeer,
        DropReason::OutOfRange,
        DropReason::StaleTerm,
        DropReason::Promised,
        DropReason::Quarantined,
        DropReason::ConflictingLeader,
        DropReason::Unexpected,
        DropReason::TermTooFar,
        DropReason::CampaignHeld,
    ];

    /// A stable snake_case name for metrics labels.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Misaddressed => "misaddressed",
            DropReason::UnknownPeer => "unknown_peer",
            DropReason::OutOfRange => "out_of_range",
            DropReason::StaleTerm => "stale_term",
            DropReason::Promised => "promised",
            DropReason::Quarantined => "quarantined",
            DropReason::ConflictingLeader => "conflicting_leader",
            DropReason::Unexpected => "unexpected",
            DropReason::TermTooFar => "term_too_far",
            DropReason::CampaignHeld => "campaign_held",
        }
    }
}
