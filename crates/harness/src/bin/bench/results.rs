//! What the benchmark measured, for the report and the plot.

use std::time::Duration;

use tenure_harness::Timing;

/// One change of leadership: a crash or partition failover, a handover or a cold start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Takeover {
    /// From the fault (or the first node's start) until the next child's `start` line.
    pub(crate) took: Duration,
    /// The node that acted before; `None` at a cold start.
    pub(crate) from: Option<String>,
    /// The node whose child started.
    pub(crate) to: String,
    /// The new fencing token minus the old one (the new token itself at a cold start). A step
    /// above 1 means a term was burned: an election round failed on the way.
    pub(crate) token_step: u64,
}

/// Everything measured at one lease.
#[derive(Clone, Debug)]
pub(crate) struct LeaseResult {
    pub(crate) timing: Timing,
    /// The member names of the clusters measured, for the ranking (`ranking::first_ranked`).
    pub(crate) members: Vec<String>,
    /// SIGKILL of the acting node's tenure.
    pub(crate) crashes: Vec<Takeover>,
    /// The acting node cut off from the others (not crashed).
    pub(crate) partitions: Vec<Takeover>,
    /// Every node started together, with no state, until the first child starts.
    pub(crate) cold_starts: Vec<Takeover>,
    /// Overlapping children found in the ledgers of this lease's clusters.
    pub(crate) overlaps: usize,
}

impl LeaseResult {
    pub(crate) fn new(timing: Timing) -> LeaseResult {
        LeaseResult {
            timing,
            members: Vec::new(),
            crashes: Vec::new(),
            partitions: Vec::new(),
            cold_starts: Vec::new(),
            overlaps: 0,
        }
    }
}

/// A series of graceful handovers at the full timing (`--lease`).
#[derive(Clone, Debug, Default)]
pub(crate) struct HandoverSeries {
    /// Busy-loop processes running during the series (0: none).
    pub(crate) load_processes: usize,
    /// SIGTERM until the next child starts, with the successor and the token step.
    pub(crate) takeovers: Vec<Takeover>,
    /// SIGTERM until the old child recorded its stop.
    pub(crate) child_stops: Vec<Duration>,
    /// The old child's stop until the next child starts.
    pub(crate) after_child_stop: Vec<Duration>,
}

/// The footprint of one node at idle.
#[derive(Clone, Debug)]
pub(crate) struct NodeFootprint {
    pub(crate) name: String,
    pub(crate) leads: bool,
    pub(crate) tenure_kib: u64,
    pub(crate) tenure_cpu: f64,
    pub(crate) guard_kib: Option<u64>,
    pub(crate) guard_cpu: Option<f64>,
    pub(crate) sent_per_second: f64,
}

/// etcd's failovers with `etcdctl lock --ttl` at one TTL.
#[derive(Clone, Debug, Default)]
pub(crate) struct EtcdFailovers {
    pub(crate) ttl: Duration,
    pub(crate) failovers: Vec<Duration>,
    pub(crate) old_child_still_running: u32,
}

/// A lease of the sweep that etcd could not be measured at, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EtcdUnmatched {
    pub(crate) lease: Duration,
    pub(crate) reason: String,
}

/// etcd's side.
#[derive(Clone, Debug, Default)]
pub(crate) struct EtcdResult {
    pub(crate) version: String,
    /// By TTL, ascending.
    pub(crate) failovers: Vec<EtcdFailovers>,
    pub(crate) unmatched: Vec<EtcdUnmatched>,
    /// The footprint at idle, measured at the TTL of `--lease` when etcd could set it.
    pub(crate) footprint_ttl: Option<Duration>,
    pub(crate) member_kib: Vec<u64>,
    pub(crate) contender_kib: Vec<u64>,
    pub(crate) member_cpu: Vec<f64>,
    pub(crate) contender_cpu: Vec<f64>,
}

impl EtcdResult {
    /// The failovers measured at a TTL equal to `lease`, if any.
    pub(crate) fn at(&self, lease: Duration) -> Option<&EtcdFailovers> {
        self.failovers.iter().find(|run| run.ttl == lease)
    }
}

/// Everything measured, by measurement.
#[derive(Debug, Default)]
pub(crate) struct Results {
    /// The timing measured in full (`--lease`): handover and footprint.
    pub(crate) full: Option<Timing>,
    /// By lease, ascending.
    pub(crate) leases: Vec<LeaseResult>,
    /// Without background load, then with it.
    pub(crate) handovers: Vec<HandoverSeries>,
    pub(crate) footprint: Vec<NodeFootprint>,
    pub(crate) etcd: Option<EtcdResult>,
}

/// The durations of `takeovers`, in order.
pub(crate) fn durations(takeovers: &[Takeover]) -> Vec<Duration> {
    takeovers.iter().map(|takeover| takeover.took).collect()
}

/// How many of `takeovers` burned a term (token step above 1).
pub(crate) fn burned_terms(takeovers: &[Takeover]) -> usize {
    takeovers
        .iter()
        .filter(|takeover| takeover.token_step > 1)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn takeover(millis: u64, token_step: u64) -> Takeover {
        Takeover {
            took: Duration::from_millis(millis),
            from: Some("n1".to_string()),
            to: "n2".to_string(),
            token_step,
        }
    }

    #[test]
    fn a_token_step_above_one_is_a_burned_term() {
        let takeovers = [
            takeover(5, 1),
            takeover(900, 2),
            takeover(7, 1),
            takeover(1200, 3),
        ];
        assert_eq!(burned_terms(&takeovers), 2);
        assert_eq!(
            durations(&takeovers),
            [5, 900, 7, 1200].map(Duration::from_millis)
        );
        assert_eq!(burned_terms(&[]), 0);
    }
}
