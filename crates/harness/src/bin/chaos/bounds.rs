//! The bounds every timed check of the runner uses, derived from the configuration.

use std::time::Duration;

use tenure_harness::stats::millis;
use tenure_harness::Timing;
use tenure_node::guard::MAX_POLL_WAIT;
use tenure_node::settings::KILL_AFTER;

use crate::RECOVERY_EXTRA;

/// The bounds every timed check uses, derived from the configuration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounds {
    pub(crate) timing: Timing,
    pub(crate) slack: Duration,
}

impl Bounds {
    /// Real time a follower may still keep its promise after the leader's last heartbeat: L on
    /// its own clock, which may run slow by ρ (protocol: Time).
    pub(crate) fn promise(&self) -> Duration {
        self.timing.lease.div_f64(1.0 - self.timing.max_drift)
    }

    /// The election jitter bound, L/4, in real time.
    pub(crate) fn jitter(&self) -> Duration {
        self.timing.jitter().div_f64(1.0 - self.timing.max_drift)
    }

    /// Pre-vote and vote rounds, each timing out after two heartbeats, and one retry of both
    /// after a split vote.
    pub(crate) fn rounds(&self) -> Duration {
        self.timing.heartbeat * 8
    }

    /// Crash failover: promise + jitter + a second jitter for a split-vote retry + rounds +
    /// slack (protocol: Crash failover).
    pub(crate) fn crash(&self) -> Duration {
        self.promise() + self.jitter() * 2 + self.rounds() + self.slack
    }

    /// Graceful handover: the child's stop (at most stop grace + reserve) + jitter (the
    /// successor may campaign on its own; docs/operations.md) + rounds + slack.
    pub(crate) fn handover(&self) -> Duration {
        self.timing.stop_margin() + self.jitter() + self.rounds() + self.slack
    }

    /// Recovery after a fault is healed (a liveness check): see `RECOVERY_EXTRA`.
    pub(crate) fn recovery(&self) -> Duration {
        self.timing.lease + self.crash() + RECOVERY_EXTRA
    }

    /// How long a child frozen with its whole node may run after the resume, as
    /// docs/operations.md says: the guard looks at its deadline within `MAX_POLL_WAIT`, then
    /// SIGTERM, SIGKILL after the stop grace, the kernel within `KILL_AFTER`; plus slack.
    pub(crate) fn stale_run(&self) -> Duration {
        MAX_POLL_WAIT + self.timing.stop_grace + KILL_AFTER + self.slack
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "crash failover <= {} ms (promise L/(1-rho) {} + 2 x jitter {} + 8 heartbeats {} + \
             slack {}); handover <= {} ms (stop margin {} + jitter + 8 heartbeats + slack); \
             guard stop <= {} ms after the fault (the lease held per renewal)",
            millis(self.crash()),
            millis(self.promise()),
            millis(self.jitter()),
            millis(self.rounds()),
            millis(self.slack),
            millis(self.handover()),
            millis(self.timing.stop_margin()),
            millis(self.timing.lease_hold()),
        )
    }
}
