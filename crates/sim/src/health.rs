//! The health checks of the simulated daemons (protocol: Health-gated acting): when they run,
//! and how long a hung daemon takes to be handed over.
//!
//! A simulated daemon is healthy unless a fault says otherwise: a hang (`Fault::Hang`) makes its
//! checks fail by their timeout until it is stopped, an outage (`Fault::Outage`) makes every
//! daemon's checks fail at once, fast, as a check does whose database refuses connections.
//! Checks run only in runs whose schedule has such a fault, so the runs of the random campaign,
//! which draws neither, are exactly what they were without health checks.

use std::num::NonZeroU32;
use std::time::Duration;

use tenure_driver::HealthPolicy;

/// When the simulated checks run, in global time: shorter than the binary's defaults, so that
/// a hang is handed over within a few seconds of a one-minute run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthTiming {
    /// No check before this long after the child started.
    pub grace: Duration,
    /// From the start of one check to the start of the next.
    pub interval: Duration,
    /// A check of a hung daemon fails after this long.
    pub timeout: Duration,
    /// Failed checks in a row after which the leader gives leadership up.
    pub failures: NonZeroU32,
}

impl Default for HealthTiming {
    fn default() -> HealthTiming {
        HealthTiming {
            grace: Duration::from_secs(1),
            interval: Duration::from_millis(500),
            timeout: Duration::from_millis(200),
            failures: tenure_driver::DEFAULT_HEALTH_FAILURES,
        }
    }
}

impl HealthTiming {
    /// The driver's policy for these checks.
    pub fn policy(&self) -> HealthPolicy {
        HealthPolicy {
            failures: self.failures,
        }
    }

    /// The longest a running, checked daemon that hangs takes to fail `failures` checks in a
    /// row: the first failing check starts up to one interval after the hang, the last one
    /// `failures − 1` intervals later, and fails one timeout after its start.
    pub fn detection_max(&self) -> Duration {
        self.interval * self.failures.get() + self.timeout
    }

    /// The shortest: the hang comes just before a check starts.
    pub fn detection_min(&self) -> Duration {
        self.interval * (self.failures.get() - 1) + self.timeout
    }
}
