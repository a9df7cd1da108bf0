//! What the benchmark measured, for the report and the plot.

use std::time::Duration;

use tenure_harness::Timing;

/// Crash failovers measured at one lease.
#[derive(Clone, Debug)]
pub(crate) struct LeaseResult {
    pub(crate) timing: Timing,
    pub(crate) failovers: Vec<Duration>,
    pub(crate) overlaps: usize,
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

/// etcd's side.
#[derive(Clone, Debug, Default)]
pub(crate) struct EtcdResult {
    pub(crate) version: String,
    pub(crate) failovers: Vec<Duration>,
    pub(crate) old_child_still_running: u32,
    pub(crate) member_kib: Vec<u64>,
    pub(crate) contender_kib: Vec<u64>,
    pub(crate) member_cpu: Vec<f64>,
    pub(crate) contender_cpu: Vec<f64>,
}

/// Everything measured, by measurement.
#[derive(Debug, Default)]
pub(crate) struct Results {
    /// The timing measured in full (`--lease`): handover and footprint.
    pub(crate) full: Option<Timing>,
    /// Crash failovers, by lease.
    pub(crate) leases: Vec<LeaseResult>,
    pub(crate) handovers: Vec<Duration>,
    pub(crate) child_stops: Vec<Duration>,
    pub(crate) after_child_stop: Vec<Duration>,
    pub(crate) footprint: Vec<NodeFootprint>,
    pub(crate) etcd: Option<EtcdResult>,
}
