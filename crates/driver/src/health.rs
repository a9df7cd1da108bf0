//! Health-gated acting (protocol: Health-gated acting): the acting sink reports the result of
//! every health check of its child ([`crate::ActingSink::health_check`]), and the driver counts
//! the failures in a row. At [`HealthPolicy::failures`] it gives leadership up as it does for a
//! child that ended for good: it holds its own campaigns for a backoff that doubles with every
//! loss in a row, and resigns, which stops the child (SIGTERM, grace, SIGKILL of its group in
//! the binary) before `Resign` and `TimeoutNow` leave (protocol: Campaign holds; protocol:
//! Graceful handover).
//!
//! When and how the checks run (a grace after each start of the child, an interval, a timeout)
//! is the sink's business: only the sink knows when its child started or was restarted, and in
//! which environment a check must run. What a run of failures leads to is the driver's, so the
//! binary and the simulation share it.

use std::num::NonZeroU32;

/// The result of one health check of the acting child.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HealthCheck {
    Passed,
    /// Failed, with a short reason for the logs and the status page (an exit status, an HTTP
    /// status, a timeout).
    Failed(String),
}

/// When the driver gives up on an unhealthy child.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HealthPolicy {
    /// Failed checks in a row that make the leader give leadership up.
    pub failures: NonZeroU32,
}

/// The default number of failed checks in a row: one failure is often a blip (a slow query, a
/// busy machine), three in a row rarely are.
pub const DEFAULT_HEALTH_FAILURES: NonZeroU32 = match NonZeroU32::new(3) {
    Some(failures) => failures,
    None => unreachable!(),
};

impl Default for HealthPolicy {
    fn default() -> HealthPolicy {
        HealthPolicy {
            failures: DEFAULT_HEALTH_FAILURES,
        }
    }
}

/// Where the child's health stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum HealthState {
    /// No check has reported since this node last started acting, or it does not act.
    #[default]
    Unknown,
    /// The last check passed.
    Healthy,
    /// The last check failed, fewer than the policy's failures in a row so far.
    Failing,
    /// The policy's failures in a row: this node gave leadership up. Stays until it acts again.
    Unhealthy,
}

impl HealthState {
    /// The snake_case name for the status page and the metrics.
    pub fn name(self) -> &'static str {
        match self {
            HealthState::Unknown => "unknown",
            HealthState::Healthy => "healthy",
            HealthState::Failing => "failing",
            HealthState::Unhealthy => "unhealthy",
        }
    }
}

/// What the driver knows of the child's health, reported in every [`crate::Status`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Health {
    pub state: HealthState,
    /// Failed checks in a row, in this acting period.
    pub consecutive_failures: u32,
    /// Failed checks since the driver started.
    pub failures_total: u64,
    /// The reason of the last failed check, if any check ever failed.
    pub last_error: Option<String>,
}

/// What one check result leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing to do.
    Carry,
    /// A run of failures ended.
    Recovered { after_failures: u32 },
    /// A failure, not yet enough in a row.
    Failed,
    /// The policy's failures in a row: give leadership up.
    GiveUp,
}

impl Health {
    /// Counts `check` under `policy`.
    pub(crate) fn record(&mut self, check: &HealthCheck, policy: HealthPolicy) -> Verdict {
        match check {
            HealthCheck::Passed => {
                let after_failures = std::mem::take(&mut self.consecutive_failures);
                self.state = HealthState::Healthy;
                if after_failures > 0 {
                    Verdict::Recovered { after_failures }
                } else {
                    Verdict::Carry
                }
            }
            HealthCheck::Failed(reason) => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.failures_total = self.failures_total.saturating_add(1);
                self.last_error = Some(reason.clone());
                if self.consecutive_failures >= policy.failures.get() {
                    self.state = HealthState::Unhealthy;
                    Verdict::GiveUp
                } else {
                    self.state = HealthState::Failing;
                    Verdict::Failed
                }
            }
        }
    }

    /// A new acting period: earlier failures were another process's, or another leadership's.
    pub(crate) fn acting_started(&mut self) {
        self.state = HealthState::Unknown;
        self.consecutive_failures = 0;
    }

    /// Acting ended. An `Unhealthy` verdict stays, so the status page still says why this node
    /// gave leadership up; anything else says nothing about a child that no longer runs.
    pub(crate) fn acting_stopped(&mut self) {
        if self.state != HealthState::Unhealthy {
            self.state = HealthState::Unknown;
            self.consecutive_failures = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(failures: u32) -> HealthPolicy {
        HealthPolicy {
            failures: NonZeroU32::new(failures).expect("positive"),
        }
    }

    #[test]
    fn failures_in_a_row_give_up_and_a_pass_in_between_starts_over() {
        let mut health = Health::default();
        let failed = HealthCheck::Failed("exit status 1".into());
        assert_eq!(health.record(&failed, policy(3)), Verdict::Failed);
        assert_eq!(health.record(&failed, policy(3)), Verdict::Failed);
        assert_eq!(
            health.record(&HealthCheck::Passed, policy(3)),
            Verdict::Recovered { after_failures: 2 }
        );
        assert_eq!(health.state, HealthState::Healthy);
        assert_eq!(health.record(&failed, policy(3)), Verdict::Failed);
        assert_eq!(health.record(&failed, policy(3)), Verdict::Failed);
        assert_eq!(health.record(&failed, policy(3)), Verdict::GiveUp);
        assert_eq!(health.state, HealthState::Unhealthy);
        assert_eq!(health.consecutive_failures, 3);
        assert_eq!(health.failures_total, 5);
        assert_eq!(health.last_error.as_deref(), Some("exit status 1"));
    }

    #[test]
    fn an_unhealthy_verdict_outlives_acting_until_the_next_start() {
        let mut health = Health::default();
        let failed = HealthCheck::Failed("timed out".into());
        assert_eq!(health.record(&failed, policy(1)), Verdict::GiveUp);
        health.acting_stopped();
        assert_eq!(health.state, HealthState::Unhealthy);
        health.acting_started();
        assert_eq!(health.state, HealthState::Unknown);
        assert_eq!(health.consecutive_failures, 0);
        assert_eq!(health.failures_total, 1, "totals are never reset");
    }
}
