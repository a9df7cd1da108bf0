//! What the store-lease core asks of a coordination store, and the store's answers
//! (protocol: Store leases).
//!
//! One election is one record in the store. Every write is a compare-and-set that the store
//! applies atomically (linearizably) or not at all. [`ReferenceStore`] states the semantics
//! in code: the model checker and the simulation run it as their store, and the PostgreSQL and
//! etcd adapters of the `tenure` binary are tested against it.

use crate::id::{FencingToken, NodeId};
use crate::time::{Duration, Instant};

/// The record of one election in the store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Record {
    /// The node that holds the election, or `None` when it is vacant (never held, released,
    /// or, where the store judges expiry, expired).
    pub holder: Option<NodeId>,
    /// Changes with every write the store applies, and never repeats, even across a failover
    /// of the store: contenders watch it to see that the holder is alive (protocol: When the
    /// store fails over).
    pub version: u64,
    /// The fencing token of the current or latest holder. Every acquisition gives a larger one.
    pub token: FencingToken,
}

/// One request to the store. Every write is a compare-and-set: it applies in full or not at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StoreOp {
    /// Read the record. Changes nothing.
    Read,
    /// Take the election if the record still has `version` (and, where the store judges
    /// expiry, is vacant): the holder becomes the sender, the token grows.
    Acquire { version: u64 },
    /// Renew the tenure that `token` names, if the sender still holds it: the version changes
    /// (and, where the store judges expiry, the expiry clock restarts).
    Renew { token: FencingToken },
    /// Give up the tenure that `token` names, if the sender still holds it: the record becomes
    /// vacant.
    Release { token: FencingToken },
}

impl StoreOp {
    /// Every kind of request, in a fixed order (for metrics tables).
    pub const KINDS: [&'static str; 4] = ["read", "acquire", "renew", "release"];

    /// The index of this request's kind in [`StoreOp::KINDS`].
    #[must_use]
    pub fn kind_index(self) -> usize {
        match self {
            StoreOp::Read => 0,
            StoreOp::Acquire { .. } => 1,
            StoreOp::Renew { .. } => 2,
            StoreOp::Release { .. } => 3,
        }
    }

    /// A stable snake_case name for logs and metrics labels.
    #[must_use]
    pub fn name(self) -> &'static str {
        StoreOp::KINDS[self.kind_index()]
    }
}

/// A request as the core emits it: the adapter runs `op` for `from` and answers with a
/// [`StoreReply`] carrying the same `id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StoreRequest {
    /// Numbers the node's requests from 1; a reply names the request it answers.
    pub id: u64,
    pub from: NodeId,
    pub op: StoreOp,
}

/// What became of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StoreOutcome {
    /// The store applied the request; the record as it left it.
    Applied(Record),
    /// The store refused the compare-and-set; the record as it is.
    Conflict(Record),
    /// Unknown: the request may or may not have been applied (a timeout, a lost connection, a
    /// server error). Never taken as a success.
    Failed,
}

impl StoreOutcome {
    /// Every kind of outcome, in a fixed order (for metrics tables).
    pub const KINDS: [&'static str; 3] = ["applied", "conflict", "failed"];

    /// The index of this outcome's kind in [`StoreOutcome::KINDS`].
    #[must_use]
    pub fn kind_index(self) -> usize {
        match self {
            StoreOutcome::Applied(_) => 0,
            StoreOutcome::Conflict(_) => 1,
            StoreOutcome::Failed => 2,
        }
    }
}

/// The store's answer to the request numbered `id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StoreReply {
    pub id: u64,
    pub outcome: StoreOutcome,
}

/// Who decides that a holder's tenure is over (protocol: Who judges expiry).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExpiryJudge {
    /// The contenders, each on its own monotonic clock: a version unchanged for a lease since
    /// a contender first saw it may be taken over by compare-and-set on that version. The store
    /// needs no clock at all (the PostgreSQL backend).
    Contenders,
    /// The store, on its own clock: it makes the record vacant a lease after the latest
    /// acquisition or renewal, and contenders take only a vacant record (etcd's lease TTL).
    Store,
}

/// The semantics of the store, in code: one record, compare-and-set writes applied atomically.
/// With [`ExpiryJudge::Store`] it also expires the holder on its own clock, a `ttl` after the
/// latest acquisition or renewal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReferenceStore {
    record: Record,
    judge: ExpiryJudge,
    ttl: Duration,
    /// With [`ExpiryJudge::Store`]: the store-clock instant at which the holder expires.
    expires_at: Option<Instant>,
}

impl ReferenceStore {
    /// A store whose election was never held.
    #[must_use]
    pub fn new(judge: ExpiryJudge, ttl: Duration) -> ReferenceStore {
        ReferenceStore {
            record: Record::default(),
            judge,
            ttl,
            expires_at: None,
        }
    }

    /// The record as it is at store-clock instant `now` (after any expiry).
    #[must_use]
    pub fn record(&self, now: Instant) -> Record {
        let mut store = *self;
        store.expire(now);
        store.record
    }

    /// Applies `request` at store-clock instant `now`, as one atomic step, and returns the
    /// outcome. Never [`StoreOutcome::Failed`]: failures are the network's and the adapter's.
    pub fn apply(&mut self, now: Instant, request: StoreRequest) -> StoreOutcome {
        self.expire(now);
        let record = self.record;
        let held_by_sender =
            |token: FencingToken| record.holder == Some(request.from) && record.token == token;
        let applies = match request.op {
            StoreOp::Read => return StoreOutcome::Applied(record),
            StoreOp::Acquire { version } => {
                record.version == version
                    && (self.judge == ExpiryJudge::Contenders || record.holder.is_none())
            }
            StoreOp::Renew { token } | StoreOp::Release { token } => held_by_sender(token),
        };
        if !applies {
            return StoreOutcome::Conflict(record);
        }
        self.record.version += 1;
        match request.op {
            StoreOp::Read => unreachable!("a read returned above"),
            StoreOp::Acquire { .. } => {
                self.record.holder = Some(request.from);
                self.record.token = FencingToken(record.token.0 + 1);
                self.expires_at = Some(now + self.ttl);
            }
            StoreOp::Renew { .. } => self.expires_at = Some(now + self.ttl),
            StoreOp::Release { .. } => {
                self.record.holder = None;
                self.expires_at = None;
            }
        }
        StoreOutcome::Applied(self.record)
    }

    /// The holder expires once the store's clock reaches its expiry (only where the store
    /// judges expiry). Expiry is a write: the version changes.
    fn expire(&mut self, now: Instant) {
        if self.judge == ExpiryJudge::Store
            && self.expires_at.is_some_and(|expires_at| now >= expires_at)
        {
            self.record.holder = None;
            self.record.version += 1;
            self.expires_at = None;
        }
    }
}
