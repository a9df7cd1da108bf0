//! What the benchmark measured of the store backends (`--backends`), and the targets it is
//! reported against, derived from the timing (protocol: Store leases). Targets are what the
//! report compares with, never what a test asserts.

use std::time::Duration;

use tenure_harness::stats::nearest_rank;
use tenure_harness::Timing;

use crate::results::HandoverSeries;

/// Above the worst case of a crash failover (L + one poll interval, and for etcd its lessor's
/// check period), for the election's requests and the child's start.
pub(crate) const FAILOVER_ALLOWANCE: Duration = Duration::from_millis(100);
/// How often etcd's lessor looks for expired leases: a key outlives its TTL by up to this.
pub(crate) const ETCD_LESSOR_PERIOD: Duration = Duration::from_millis(500);
/// etcd's shortest TTL at its default Raft timing: 1.5 election timeouts of 1 s, rounded up to
/// whole seconds.
pub(crate) const ETCD_MINIMUM_TTL: Duration = Duration::from_secs(2);

/// A store backend the benchmark can measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub(crate) enum BackendKind {
    Postgres,
    Etcd,
}

impl BackendKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            BackendKind::Postgres => "PostgreSQL",
            BackendKind::Etcd => "etcd",
        }
    }

    /// How long a silent holder's tenure lasts in this store: L itself where the contenders
    /// judge expiry (PostgreSQL); etcd's TTL, the lease rounded up to whole seconds and raised
    /// to etcd's minimum, where the store judges.
    pub(crate) fn effective_lease(self, lease: Duration) -> Duration {
        match self {
            BackendKind::Postgres => lease,
            BackendKind::Etcd => etcd_ttl(lease),
        }
    }

    /// The worst case of a crash failover before the allowance: the effective lease, one poll
    /// interval (a contender sees the change at its next read), and for etcd the lessor's
    /// check period.
    pub(crate) fn failover_worst(self, timing: &Timing) -> Duration {
        let lessor = match self {
            BackendKind::Postgres => Duration::ZERO,
            BackendKind::Etcd => ETCD_LESSOR_PERIOD,
        };
        self.effective_lease(timing.lease) + timing.heartbeat + lessor
    }
}

/// etcd's TTL for a lease: whole seconds, rounded up, at least etcd's minimum.
pub(crate) fn etcd_ttl(lease: Duration) -> Duration {
    let seconds = lease.as_secs() + u64::from(lease.subsec_nanos() > 0);
    Duration::from_secs(seconds).max(ETCD_MINIMUM_TTL)
}

/// The timing measured with a store: `tenure run`'s store defaults for the lease
/// (docs/backends.md: Timing and load): poll interval (`--heartbeat`) L/8, stop grace L/4.
pub(crate) fn store_timing(lease: Duration) -> Timing {
    Timing {
        lease,
        heartbeat: lease / 8,
        stop_grace: lease / 4,
        max_drift: 0.01,
    }
}

/// The target the brief set for a crash failover: L + one poll interval + 100 ms.
pub(crate) fn failover_target(timing: &Timing) -> Duration {
    timing.lease + timing.heartbeat + FAILOVER_ALLOWANCE
}

/// The target a graceful handover is held to: one poll interval (the contenders' next read
/// finds the record released) + 100 ms, the test child stopping at once.
pub(crate) fn handover_target(timing: &Timing) -> Duration {
    timing.heartbeat + FAILOVER_ALLOWANCE
}

/// Median, p90 and p99 (nearest rank) and maximum of a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Percentiles {
    pub(crate) count: usize,
    pub(crate) min: Duration,
    pub(crate) median: Duration,
    pub(crate) p90: Duration,
    pub(crate) p99: Duration,
    pub(crate) max: Duration,
}

impl Percentiles {
    pub(crate) fn of(samples: &[Duration]) -> Option<Percentiles> {
        let mut sorted = samples.to_vec();
        sorted.sort();
        Some(Percentiles {
            count: sorted.len(),
            min: *sorted.first()?,
            median: nearest_rank(&sorted, 0.5)?,
            p90: nearest_rank(&sorted, 0.9)?,
            p99: nearest_rank(&sorted, 0.99)?,
            max: *sorted.last()?,
        })
    }
}

/// One backend at one cluster size.
#[derive(Clone, Debug)]
pub(crate) struct StoreSeries {
    pub(crate) backend: BackendKind,
    pub(crate) nodes: usize,
    pub(crate) timing: Timing,
    /// SIGKILL of the holder's tenure until another node's child starts.
    pub(crate) crashes: Vec<Duration>,
    /// SIGTERM of the holder's tenure until another node's child starts.
    pub(crate) handovers: HandoverSeries,
    pub(crate) load: Option<StoreLoad>,
    /// Overlapping children found in the ledger.
    pub(crate) overlaps: usize,
}

/// Requests one node sent to the store over the steady window, by kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NodeRequests {
    pub(crate) name: String,
    pub(crate) holds: bool,
    /// read, acquire, renew, release (`StoreOp::KINDS`).
    pub(crate) requests: [u64; 4],
}

impl NodeRequests {
    pub(crate) fn total(&self) -> u64 {
        self.requests.iter().sum()
    }
}

/// The store's load over a steady window: one holder, the others contending.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StoreLoad {
    pub(crate) window: Duration,
    pub(crate) poll_interval: Duration,
    pub(crate) nodes: Vec<NodeRequests>,
    /// What the store itself counted over the same window, and what it counts (a whole-store
    /// figure: any other client of the store adds to it).
    pub(crate) store_side: Option<(f64, String)>,
}

impl StoreLoad {
    /// Poll intervals in the window.
    pub(crate) fn intervals(&self) -> f64 {
        self.window.as_secs_f64() / self.poll_interval.as_secs_f64()
    }

    /// Requests per poll interval of one node.
    pub(crate) fn per_interval(&self, node: &NodeRequests) -> f64 {
        node.total() as f64 / self.intervals()
    }
}

/// `etcdctl lock` on the stores' etcd, with as many contenders as nodes.
#[derive(Clone, Debug, Default)]
pub(crate) struct LockSeries {
    pub(crate) contenders: usize,
    pub(crate) ttl: Duration,
    pub(crate) failovers: Vec<Duration>,
    pub(crate) old_child_still_running: u32,
}

/// Everything measured of the store backends.
#[derive(Debug, Default)]
pub(crate) struct StoreResults {
    pub(crate) series: Vec<StoreSeries>,
    pub(crate) locks: Vec<LockSeries>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcds_ttl_is_whole_seconds_at_least_its_minimum() {
        assert_eq!(etcd_ttl(Duration::from_secs(2)), Duration::from_secs(2));
        assert_eq!(
            etcd_ttl(Duration::from_millis(2_100)),
            Duration::from_secs(3)
        );
        assert_eq!(etcd_ttl(Duration::from_millis(500)), Duration::from_secs(2));
        assert_eq!(etcd_ttl(Duration::from_secs(5)), Duration::from_secs(5));
    }

    #[test]
    fn the_targets_follow_the_store_defaults() {
        let timing = store_timing(Duration::from_secs(2));
        assert_eq!(timing.heartbeat, Duration::from_millis(250));
        assert_eq!(timing.stop_grace, Duration::from_millis(500));
        assert_eq!(failover_target(&timing), Duration::from_millis(2_350));
        assert_eq!(handover_target(&timing), Duration::from_millis(350));
        assert_eq!(
            BackendKind::Postgres.failover_worst(&timing),
            Duration::from_millis(2_250)
        );
        assert_eq!(
            BackendKind::Etcd.failover_worst(&store_timing(Duration::from_millis(1_500))),
            Duration::from_micros(2_687_500)
        );
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<Duration> = (1..=10).rev().map(Duration::from_millis).collect();
        let summary = Percentiles::of(&samples).unwrap();
        assert_eq!(summary.median, Duration::from_millis(5));
        assert_eq!(summary.p90, Duration::from_millis(9));
        assert_eq!(summary.p99, Duration::from_millis(10));
        assert_eq!(summary.min, Duration::from_millis(1));
        assert_eq!(Percentiles::of(&[]), None);
    }

    #[test]
    fn load_is_counted_per_poll_interval() {
        let node = |name: &str, holds, requests| NodeRequests {
            name: name.to_string(),
            holds,
            requests,
        };
        let load = StoreLoad {
            window: Duration::from_secs(30),
            poll_interval: Duration::from_millis(250),
            nodes: vec![
                node("n1", true, [0, 0, 120, 0]),
                node("n2", false, [114, 0, 0, 0]),
            ],
            store_side: None,
        };
        assert_eq!(load.intervals(), 120.0);
        assert_eq!(load.per_interval(&load.nodes[0]), 1.0);
        assert_eq!(load.per_interval(&load.nodes[1]), 0.95);
    }
}
