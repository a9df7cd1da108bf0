//! The bounds that make the store model's state space finite, and its default suite.

use std::fmt;

/// The limits of one store-model check. As in the quorum model (`SearchBounds`), the model
/// offers no action that would exceed a budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreBounds {
    /// The last instant of global time, in units of a third of the lease at the nominal rate
    /// (`clock::TICKS_PER_UNIT` ticks).
    pub horizon: u8,
    /// Faults per run: each lost request, lost reply and crash counts one (a request of a
    /// crashed node that is never applied is free: the crash was the fault).
    pub max_faults: u8,
    /// How many of those faults may be crashes. A restart is free.
    pub max_crashes: u8,
    /// Graceful resignations per run.
    pub max_resigns: u8,
    /// Requests held back past their window (applied at any later instant, or never) and
    /// replies duplicated, per run.
    pub max_holds: u8,
    /// Slow requests and replies per run. Every other request is applied at the instant it is
    /// sent, and every other reply arrives at the instant the store sent it (in any order with
    /// whatever else happens at that instant); a slow one is applied, or arrives, at any
    /// later instant until its node gives the request up.
    pub max_delays: u8,
}

impl StoreBounds {
    /// The default suite of the store model, each run under both judges: together they reach
    /// every kind of fault the model has, and each catches some broken variant (see
    /// `docs/verification.md`). Two faults with a slow request or reply in the same run take
    /// about half a minute per judge, so that combination is a documented command rather
    /// than a member.
    pub const SUITE: [StoreSuiteMember; 4] = [
        StoreSuiteMember {
            name: "store-faults",
            covers: "two faults (lost or failed requests and replies, one crash) over three \
                     leases",
            bounds: StoreBounds {
                horizon: 10,
                max_faults: 2,
                max_crashes: 1,
                max_resigns: 0,
                max_holds: 0,
                max_delays: 0,
            },
        },
        StoreSuiteMember {
            name: "store-slow",
            covers: "a request applied, or a reply delivered, at any instant until its sender \
                     gives it up, with one fault",
            bounds: StoreBounds {
                horizon: 9,
                max_faults: 1,
                max_crashes: 1,
                max_resigns: 0,
                max_holds: 0,
                max_delays: 1,
            },
        },
        StoreSuiteMember {
            name: "store-held",
            covers: "a request applied after its sender gave it up, or a duplicated reply, \
                     with one fault",
            bounds: StoreBounds {
                horizon: 9,
                max_faults: 1,
                max_crashes: 1,
                max_resigns: 0,
                max_holds: 1,
                max_delays: 0,
            },
        },
        StoreSuiteMember {
            name: "store-handover",
            covers: "a graceful resignation and release, with one fault",
            bounds: StoreBounds {
                horizon: 9,
                max_faults: 1,
                max_crashes: 1,
                max_resigns: 1,
                max_holds: 0,
                max_delays: 0,
            },
        },
    ];

    /// The first member of the suite: what `check --core store` starts from when any bound
    /// is given on the command line.
    pub const DEFAULT: StoreBounds = StoreBounds::SUITE[0].bounds;
}

/// One run of the store model's default suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreSuiteMember {
    /// A short name for the report.
    pub name: &'static str,
    /// What it reaches that the others do not.
    pub covers: &'static str,
    /// Its bounds.
    pub bounds: StoreBounds,
}

impl fmt::Display for StoreBounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "horizon {} units, max_faults {} (max_crashes {}), max_resigns {}, max_holds {}, \
             max_delays {}",
            self.horizon,
            self.max_faults,
            self.max_crashes,
            self.max_resigns,
            self.max_holds,
            self.max_delays
        )
    }
}
