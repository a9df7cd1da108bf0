//! The bounds that make the state space finite, applied through `Model::within_boundary`.

use std::fmt;

/// The limits of one check. A state beyond any of them is not explored: the behaviours it
/// would start are out of scope of that run, and every result names the bounds it holds under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// The highest term any node may reach, and any message may carry (a pre-vote proposes
    /// term + 1, so at `max_term` nobody campaigns any more).
    pub max_term: u64,
    /// The last instant of global time, in units (one unit = one heartbeat interval at the
    /// nominal rate; the lease is 3 units).
    pub horizon: u8,
    /// How many faults a run may contain in all: each lost, duplicated or delayed message, each
    /// cut link and each crash counts one (a message to a crashed node or over a cut link is
    /// lost for free: the crash or the cut was the fault; a heal and a restart are free).
    pub max_faults: u8,
    /// How many of those faults may be crashes.
    pub max_crashes: u8,
    /// How many resignations (`handle_resign`) a run may contain.
    pub max_resigns: u8,
    /// How many messages may be in flight at once.
    pub max_in_flight: u8,
}

impl Bounds {
    /// The default check: wide enough for terms up to 3, a crash and a restart, loss,
    /// duplication and delay, a resignation and two failovers in a row (see
    /// `docs/verification.md`).
    pub const DEFAULT: Bounds = Bounds {
        max_term: 3,
        horizon: 9,
        max_faults: 2,
        max_crashes: 1,
        max_resigns: 1,
        max_in_flight: 3,
    };
}

impl Default for Bounds {
    fn default() -> Bounds {
        Bounds::DEFAULT
    }
}

impl fmt::Display for Bounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "max_term {}, horizon {} units, max_faults {} (max_crashes {}), max_resigns {}, \
             max_in_flight {}",
            self.max_term,
            self.horizon,
            self.max_faults,
            self.max_crashes,
            self.max_resigns,
            self.max_in_flight
        )
    }
}
