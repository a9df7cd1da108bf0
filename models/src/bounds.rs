//! The bounds that make the state space finite.
//!
//! A bound never hides a state: the model offers no action that would exceed a budget, and a
//! state that is beyond a bound anyway (a term above `max_term`, more messages than
//! `max_in_flight`) is still checked, but it is terminal: the model offers no action in it.
//! `Model::within_boundary` is not used, because stateright drops a successor outside the
//! boundary before it checks any property on it.

use std::fmt;

/// The limits of one check. Every result names the bounds it holds under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// The highest term any node may reach, and any message may carry. A state beyond it is
    /// checked and then not explored further.
    pub max_term: u64,
    /// The last instant of global time, in units of a third of the lease at the nominal rate
    /// (`clock::TICKS_PER_UNIT` ticks). Time stops at every instant in between at which
    /// anything can change, not at whole units.
    pub horizon: u8,
    /// How many faults a run may contain in all: each lost message, cut link and crash counts
    /// one (a message to a crashed node or over a cut link is lost for free: the crash or the
    /// cut was the fault; a heal and a restart are free).
    pub max_faults: u8,
    /// How many of those faults may be crashes.
    pub max_crashes: u8,
    /// How many resignations (`handle_resign`) a run may contain.
    pub max_resigns: u8,
    /// How many messages may be in flight or held at once. A state with more is checked and
    /// then not explored further.
    pub max_in_flight: u8,
    /// How many messages a run may hold back (or duplicate, which holds back a copy): such a
    /// message arrives at any later instant, across any number of term changes, or never.
    pub max_holds: u8,
    /// The delivery window of a message in flight, in global ticks: it arrives at any instant
    /// at which the model stops from its send to its send + `max_latency`.
    pub max_latency: u32,
}

impl Bounds {
    /// The default check (what CI runs): terms up to 3, three faults of which one may be a
    /// crash, a resignation, one message held back across terms, three leases of time (see
    /// `docs/verification.md`).
    pub const DEFAULT: Bounds = Bounds {
        max_term: 3,
        horizon: 9,
        max_faults: 3,
        max_crashes: 1,
        max_resigns: 1,
        max_in_flight: 4,
        max_holds: 1,
        max_latency: 0,
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
             max_in_flight {}, max_holds {}, max_latency {} ticks",
            self.max_term,
            self.horizon,
            self.max_faults,
            self.max_crashes,
            self.max_resigns,
            self.max_in_flight,
            self.max_holds,
            self.max_latency
        )
    }
}
