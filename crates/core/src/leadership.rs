//! The answer to "am I the leader, and may I act?".

use crate::id::FencingToken;
use crate::time::Instant;

/// A node's leadership at one instant (protocol: Leases; protocol: Acting).
///
/// Returned by [`crate::Node::leadership`] while the node is leader and holds a lease or acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Leadership {
    /// The token to hand the child: the term.
    pub fencing_token: FencingToken,
    /// The lease is valid while `now < lease_until` (local clock).
    pub lease_until: Instant,
    /// The node may act (run its child, hand out the token) while `now < acting_until`:
    /// `lease_until − stop_margin`, or earlier once a resignation was requested.
    pub acting_until: Instant,
}

impl Leadership {
    /// Whether the lease is valid at `now`.
    #[must_use]
    pub fn holds_lease(&self, now: Instant) -> bool {
        now < self.lease_until
    }

    /// Whether the node may act at `now`.
    #[must_use]
    pub fn is_acting(&self, now: Instant) -> bool {
        now < self.acting_until
    }
}
