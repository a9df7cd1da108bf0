//! The bounds that make the state space finite.
//!
//! A bound never hides a state: the model offers no action that would exceed a budget, and a
//! state that is beyond a bound anyway (a term above `max_term`, more messages than
//! `max_in_flight`) is still checked, but it is terminal: the model offers no action in it.
//! `Model::within_boundary` is not used, because stateright drops a successor outside the
//! boundary before it checks any property on it.

use std::fmt;

/// The limits of one check, which make its state space finite. Every result names the bounds
/// it holds under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SearchBounds {
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

impl SearchBounds {
    /// The first member of the default suite, and the base that `check` starts from when any
    /// bound is given on the command line.
    pub const DEFAULT: SearchBounds = SearchBounds::SUITE[0].bounds;

    /// The default check (what CI runs): four exhaustive runs whose bounds together reach
    /// three faults, a message held back across term changes (alone with a crash, and with two
    /// faults), and a graceful handover, each within minutes. One run with all of them at once has too many states to finish on a
    /// small machine; see `docs/verification.md` for what each member covers and what the
    /// suite cannot see.
    pub const SUITE: [SuiteMember; 4] = [
        SuiteMember {
            name: "faults",
            covers: "three faults (lost messages, cut links, one crash, in any mix) over three \
                     leases",
            bounds: SearchBounds {
                max_term: 3,
                horizon: 9,
                max_faults: 3,
                max_crashes: 1,
                max_resigns: 0,
                max_in_flight: 4,
                max_holds: 0,
                max_latency: 0,
            },
        },
        SuiteMember {
            name: "held",
            covers: "a message held back across term changes (or duplicated), with one fault \
                     (a crash, say)",
            bounds: SearchBounds {
                max_term: 3,
                horizon: 8,
                max_faults: 1,
                max_crashes: 1,
                max_resigns: 0,
                max_in_flight: 4,
                max_holds: 1,
                max_latency: 0,
            },
        },
        SuiteMember {
            name: "held2",
            covers: "a held message with two faults (a vote lost in a crash and asked for \
                     again by a held request), in terms 1 and 2",
            bounds: SearchBounds {
                max_term: 2,
                horizon: 7,
                max_faults: 2,
                max_crashes: 1,
                max_resigns: 0,
                max_in_flight: 3,
                max_holds: 1,
                max_latency: 0,
            },
        },
        SuiteMember {
            name: "handover",
            covers: "a graceful resignation with one fault, and two failovers in a row",
            bounds: SearchBounds {
                max_term: 3,
                horizon: 9,
                max_faults: 1,
                max_crashes: 1,
                max_resigns: 1,
                max_in_flight: 4,
                max_holds: 0,
                max_latency: 0,
            },
        },
    ];
}

/// One run of the default suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SuiteMember {
    /// A short name for the report.
    pub name: &'static str,
    /// What it reaches that the others do not.
    pub covers: &'static str,
    /// Its bounds.
    pub bounds: SearchBounds,
}

impl Default for SearchBounds {
    fn default() -> SearchBounds {
        SearchBounds::DEFAULT
    }
}

impl fmt::Display for SearchBounds {
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
