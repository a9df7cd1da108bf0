//! [`DatagramDropReason`]: why the transport dropped an incoming datagram, before the core
//! saw it. The core's own `tenure_core::DropReason` says why it dropped a decoded message.

use std::fmt;

use tenure_driver::replay::ReplayError;

/// Why an incoming datagram was dropped. `name` gives the stable metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DatagramDropReason {
    /// Longer than `MAX_DATAGRAM`.
    Oversized,
    /// Too short, length field inconsistent, or a payload the core's codec cannot decode.
    Malformed,
    /// Does not start with `MAGIC`: not tenure, or another layout version.
    BadMagic,
    /// The sender index is not another member of this cluster.
    UnknownPeer,
    /// Addressed to another member.
    Misaddressed,
    /// The tag does not verify: forged, damaged, or sealed with another key.
    Unauthenticated,
    /// A sequence already accepted, or older than the replay window.
    Replayed,
    /// From an earlier incarnation (boot) of the sender than one already seen.
    StaleIncarnation,
}

impl DatagramDropReason {
    /// Every reason, for registering metrics up front.
    pub const ALL: [DatagramDropReason; 8] = [
        DatagramDropReason::Oversized,
        DatagramDropReason::Malformed,
        DatagramDropReason::BadMagic,
        DatagramDropReason::UnknownPeer,
        DatagramDropReason::Misaddressed,
        DatagramDropReason::Unauthenticated,
        DatagramDropReason::Replayed,
        DatagramDropReason::StaleIncarnation,
    ];

    /// The stable snake_case name used as a metric label. Never change one: dashboards and
    /// alerts depend on them.
    pub fn name(self) -> &'static str {
        match self {
            DatagramDropReason::Oversized => "oversized",
            DatagramDropReason::Malformed => "malformed",
            DatagramDropReason::BadMagic => "bad_magic",
            DatagramDropReason::UnknownPeer => "unknown_peer",
            DatagramDropReason::Misaddressed => "misaddressed",
            DatagramDropReason::Unauthenticated => "unauthenticated",
            DatagramDropReason::Replayed => "replayed",
            DatagramDropReason::StaleIncarnation => "stale_incarnation",
        }
    }
}

impl fmt::Display for DatagramDropReason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

impl std::error::Error for DatagramDropReason {}

impl From<ReplayError> for DatagramDropReason {
    fn from(error: ReplayError) -> DatagramDropReason {
        match error {
            ReplayError::StaleIncarnation => DatagramDropReason::StaleIncarnation,
            ReplayError::Replayed => DatagramDropReason::Replayed,
        }
    }
}
