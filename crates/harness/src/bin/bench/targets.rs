//! The limit line and the targets the failovers are reported against, all derived from the
//! timing measured (protocol: Crash failover).
//!
//! After a crash at a uniformly random instant, the followers' promises end L − U(0, h) after
//! it (h the heartbeat interval): no election can start earlier. The limit line is the median of
//! that, L − h/2, and L the worst case. The targets add a few tens of milliseconds for the
//! election's round trips and the child's start. They are what the benchmark reports against,
//! never what a test asserts.

use std::time::Duration;

use tenure_harness::Timing;

/// Above the limit line, for the median crash failover.
pub(crate) const MEDIAN_ALLOWANCE: Duration = Duration::from_millis(40);
/// Above one lease, for the p99 crash failover.
pub(crate) const P99_ALLOWANCE: Duration = Duration::from_millis(60);
/// Above one lease, for the p99 failover after a partition of the leader, and above one boot
/// quarantine (one lease) for a cold start.
pub(crate) const PARTITION_ALLOWANCE: Duration = Duration::from_millis(100);

/// The limit line L − h/2: the median end of the followers' promises after a crash.
pub(crate) fn limit(timing: &Timing) -> Duration {
    timing.lease.saturating_sub(timing.heartbeat / 2)
}

/// The target for the median crash failover: L − h/2 + 40 ms.
pub(crate) fn median_target(timing: &Timing) -> Duration {
    limit(timing) + MEDIAN_ALLOWANCE
}

/// The target for the p99 crash failover: L + 60 ms.
pub(crate) fn p99_target(timing: &Timing) -> Duration {
    timing.lease + P99_ALLOWANCE
}

/// The target for the p99 partition failover, and for a cold start: L + 100 ms.
pub(crate) fn partition_target(timing: &Timing) -> Duration {
    timing.lease + PARTITION_ALLOWANCE
}

/// Signed milliseconds from `reference` to `measured` (negative: below it).
pub(crate) fn excess_millis(measured: Duration, reference: Duration) -> f64 {
    measured.as_secs_f64() * 1e3 - reference.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenure::timing_for;

    #[test]
    fn the_limit_line_is_a_lease_less_half_a_heartbeat() {
        let at = |millis: u64| limit(&timing_for(Duration::from_millis(millis)));
        assert_eq!(at(250), Duration::from_micros(237_500), "heartbeat 25 ms");
        assert_eq!(at(1_000), Duration::from_millis(950), "heartbeat 100 ms");
        assert_eq!(at(2_000), Duration::from_millis(1_875), "heartbeat 250 ms");
        assert_eq!(at(5_000), Duration::from_millis(4_875), "heartbeat 250 ms");
    }

    #[test]
    fn the_targets_add_their_allowances() {
        let timing = timing_for(Duration::from_secs(2));
        assert_eq!(median_target(&timing), Duration::from_millis(1_915));
        assert_eq!(p99_target(&timing), Duration::from_millis(2_060));
        assert_eq!(partition_target(&timing), Duration::from_millis(2_100));
    }

    #[test]
    fn the_excess_is_signed() {
        let second = Duration::from_secs(1);
        assert_eq!(excess_millis(Duration::from_millis(1_030), second), 30.0);
        assert_eq!(excess_millis(Duration::from_millis(990), second), -10.0);
    }
}
