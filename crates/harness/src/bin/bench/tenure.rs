//! tenure's crash failover and graceful handover, round by round on a 3-node cluster. Each
//! round starts from a healthy cluster after a random fraction of a heartbeat, and ends once
//! the faulted node is back and the cluster is healthy again.

use std::collections::BTreeSet;
use std::time::Duration;

use tenure_harness::analysis::check_children;
use tenure_harness::ledger_tail::LedgerTail;
use tenure_harness::stats::millis;
use tenure_harness::{intervals, read_ledger, Cluster, Healthy, LedgerEntry, Signal, Timing};

use crate::load::BackgroundLoad;
use crate::results::{HandoverSeries, LeaseResult, Takeover};
use crate::session::Bench;
use crate::store_results::BackendKind;
use crate::{failed, Failure, CHILD_ALIVE, STEP_LIMIT};

/// The timing measured at each lease. From 2 s up it is `tenure run`'s own defaults (heartbeat
/// 250 ms, stop grace 500 ms, which do not follow `--lease`). Below, those defaults would
/// leave no acting window (`stop grace + 150 ms + heartbeat < L·(1−ρ)/(1+ρ)`,
/// docs/operations.md: Tuning), so heartbeat and stop grace scale down with the lease: a tenth
/// of it each at 250 ms. The election step is not passed: `tenure run` derives it from
/// `--lease` (protocol: Election timing).
pub(crate) fn timing_for(lease: Duration) -> Timing {
    let (heartbeat, stop_grace) = match lease.as_millis() {
        2000.. => (Duration::from_millis(250), Duration::from_millis(500)),
        1000.. => (Duration::from_millis(100), Duration::from_millis(300)),
        500.. => (Duration::from_millis(50), Duration::from_millis(100)),
        _ => (lease / 10, lease / 10),
    };
    Timing {
        lease,
        heartbeat,
        stop_grace,
        max_drift: 0.01,
    }
}

/// How much is measured on one cluster: crash failover always, then graceful handover, then
/// (in full) graceful handover beside busy loops and the footprint at idle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Extent {
    Failover,
    Handover,
    Full,
}

/// A cluster being measured, with its ledger and its state at rest.
pub(crate) struct Measured {
    pub(crate) cluster: Cluster,
    pub(crate) tail: LedgerTail,
    pub(crate) healthy: Healthy,
    /// The lease, for the progress lines and samples.csv.
    pub(crate) lease: String,
    /// What is measured, for the progress lines and samples.csv: `tenure` for the quorum,
    /// the backend and cluster size for a store.
    pub(crate) name: String,
    /// The store the election is held in; `None` for the quorum.
    pub(crate) backend: Option<BackendKind>,
}

impl Measured {
    /// The cluster's member names.
    pub(crate) fn members(&self) -> Vec<String> {
        self.cluster
            .nodes
            .iter()
            .map(|node| node.name.clone())
            .collect()
    }

    /// The change of leadership from the state at rest to the child that started, `took`
    /// after the fault.
    pub(crate) fn takeover(&self, next: &LedgerEntry, took: Duration) -> Takeover {
        Takeover {
            took,
            from: Some(self.cluster.nodes[self.healthy.leader].name.clone()),
            to: next.node.clone(),
            token_step: next.token.saturating_sub(self.healthy.token),
        }
    }

    /// Shuts the cluster down and counts overlapping children in its ledger.
    pub(crate) fn finish(self) -> usize {
        let mut cluster = self.cluster;
        cluster.shutdown();
        overlaps(&cluster)
    }
}

impl Bench<'_> {
    /// Crash failover, and as far as `extent` says graceful handover and the footprint, at
    /// `timing`.
    pub(crate) fn tenure(
        &mut self,
        timing: Timing,
        rounds: u32,
        extent: Extent,
    ) -> Result<LeaseResult, Failure> {
        let lease = humantime::format_duration(timing.lease).to_string();
        self.say(&format!(
            "tenure, lease {lease}, heartbeat {}, stop grace {}: starting 3 nodes",
            humantime::format_duration(timing.heartbeat),
            humantime::format_duration(timing.stop_grace)
        ));
        let cluster = Cluster::start(self.child_spec(timing)?);
        let mut tail = LedgerTail::new(&cluster.ledger);
        let healthy = self.wait_healthy(&cluster, &mut tail)?;
        let mut measured = Measured {
            cluster,
            tail,
            healthy,
            lease,
            name: "tenure".to_string(),
            backend: None,
        };
        let mut result = LeaseResult::new(timing);
        result.members = measured.members();
        result.crashes = self.crash_rounds(&mut measured, rounds)?;
        self.sample_load();
        if extent >= Extent::Handover {
            let series = self.handover_rounds(&mut measured, rounds, 0)?;
            self.results.handovers.push(series);
            self.sample_load();
        }
        if extent >= Extent::Full {
            let busy = self
                .args
                .load_processes
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
            if busy > 0 {
                let series = self.handover_rounds(&mut measured, rounds, busy)?;
                self.results.handovers.push(series);
            }
            self.results.footprint = self.footprint(&measured.cluster, &mut measured.tail)?;
            self.sample_load();
        }
        result.overlaps += measured.finish();
        Ok(result)
    }

    /// SIGKILL of the acting node's tenure until the next child's start line.
    pub(crate) fn crash_rounds(
        &mut self,
        measured: &mut Measured,
        rounds: u32,
    ) -> Result<Vec<Takeover>, Failure> {
        let heartbeat = measured.cluster.timing.heartbeat;
        let (name, lease) = (measured.name.clone(), measured.lease.clone());
        let members = measured.members();
        let mut takeovers = Vec::new();
        for round in 1..=rounds {
            let phase = self.rng.duration(heartbeat);
            self.sleep(phase)?;
            let leader = measured.healthy.leader;
            let killed_at = measured.cluster.kill(leader);
            let next =
                self.wait_start(&mut measured.tail, measured.healthy.token, "the next child")?;
            let took = Duration::from_nanos(next.at.saturating_sub(killed_at));
            let takeover = measured.takeover(&next, took);
            self.say(&format!(
                "{name} lease {lease}: crash failover {round:>2}/{rounds}: {} ms, {} -> {} \
                 (token +{})",
                millis(took),
                takeover.from.as_deref().unwrap_or("?"),
                takeover.to,
                takeover.token_step
            ));
            self.keep_sample(
                &format!("{name} crash failover"),
                &lease,
                round,
                took,
                Some((&takeover, &members)),
            );
            takeovers.push(takeover);
            measured.cluster.spawn(leader);
            measured.healthy = self.wait_settled(measured)?;
        }
        Ok(takeovers)
    }

    /// SIGTERM to the acting node's tenure until the next child's start line, with the old
    /// child's stop apart; beside `busy` busy loops when not 0.
    pub(crate) fn handover_rounds(
        &mut self,
        measured: &mut Measured,
        rounds: u32,
        busy: usize,
    ) -> Result<HandoverSeries, Failure> {
        let heartbeat = measured.cluster.timing.heartbeat;
        let (name, lease) = (measured.name.clone(), measured.lease.clone());
        let members = measured.members();
        let (what, measurement) = handover_labels(&name, busy);
        let mut load = if busy > 0 {
            self.say(&format!("{name} lease {lease}: starting {busy} busy loops"));
            Some(BackgroundLoad::start(busy)?)
        } else {
            None
        };
        let mut series = HandoverSeries {
            load_processes: busy,
            ..HandoverSeries::default()
        };
        for round in 1..=rounds {
            let phase = self.rng.duration(heartbeat);
            self.sleep(phase)?;
            let leader = measured.healthy.leader;
            let (takeover, child_stop, after_stop) = self.terminate_holder(measured)?;
            let took = takeover.took;
            self.say(&format!(
                "{name} lease {lease}: {what} {round:>2}/{rounds}: {} ms (old child stopped \
                 after {} ms, the next one started {} ms later), {} -> {} (token +{})",
                millis(took),
                millis(child_stop),
                millis(after_stop),
                takeover.from.as_deref().unwrap_or("?"),
                takeover.to,
                takeover.token_step
            ));
            self.keep_sample(
                &measurement,
                &lease,
                round,
                took,
                Some((&takeover, &members)),
            );
            series.takeovers.push(takeover);
            series.child_stops.push(child_stop);
            series.after_child_stop.push(after_stop);
            if measured
                .cluster
                .try_wait_for_exit(leader, STEP_LIMIT)
                .is_none()
            {
                return Err(failed("a node did not exit after SIGTERM"));
            }
            measured.cluster.spawn(leader);
            measured.healthy = self.wait_settled(measured)?;
        }
        if let Some(load) = &mut load {
            let running = load.running();
            if running < busy {
                self.say(&format!(
                    "note: only {running} of {busy} busy loops ran to the end of the series"
                ));
            }
        }
        drop(load);
        Ok(series)
    }

    /// SIGTERM to the acting node's tenure, until the next child starts: the takeover, the
    /// time until the old child recorded its stop, and from there until the next child's start.
    fn terminate_holder(
        &mut self,
        measured: &mut Measured,
    ) -> Result<(Takeover, Duration, Duration), Failure> {
        let Healthy {
            leader, child_pid, ..
        } = measured.healthy;
        let terminated_at = measured.cluster.signal(leader, Signal::TERM);
        let next = self.wait_start(
            &mut measured.tail,
            measured.healthy.token,
            "the successor's child",
        )?;
        let stopped = measured
            .tail
            .stop_of(child_pid)
            .map_or(next.at, |stop| stop.at);
        let took = Duration::from_nanos(next.at.saturating_sub(terminated_at));
        let child_stop = Duration::from_nanos(stopped.saturating_sub(terminated_at));
        let after_stop = Duration::from_nanos(next.at.saturating_sub(stopped));
        Ok((measured.takeover(&next, took), child_stop, after_stop))
    }
}

/// What a series of handovers is called in the progress lines and in samples.csv.
fn handover_labels(name: &str, busy: usize) -> (String, String) {
    if busy == 0 {
        (
            "graceful handover".to_string(),
            format!("{name} graceful handover"),
        )
    } else {
        (
            format!("graceful handover beside {busy} busy loops"),
            format!("{name} graceful handover under load"),
        )
    }
}

/// Overlapping children in the ledger of a cluster that was shut down, each printed.
pub(crate) fn overlaps(cluster: &Cluster) -> usize {
    let report = check_children(
        &intervals(&read_ledger(&cluster.ledger)),
        &BTreeSet::new(),
        CHILD_ALIVE,
    );
    for violation in &report.violations {
        println!("  overlap check: {violation}");
    }
    report.violations.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_measured_timings_keep_the_acting_window_open() {
        // The configuration's own rule (docs/operations.md: Tuning): stop grace + the 150 ms
        // SIGKILL reserve + one heartbeat stays below the lease held per renewal.
        for millis in [250, 500, 1000, 2000, 5000, 6000] {
            let timing = timing_for(Duration::from_millis(millis));
            assert!(
                timing.stop_margin() + timing.heartbeat < timing.lease_hold(),
                "{timing:?}"
            );
            assert!(timing.heartbeat * 3 < timing.lease, "{timing:?}");
        }
    }

    #[test]
    fn from_two_seconds_up_the_timing_is_tenure_runs_defaults() {
        for millis in [2000, 5000] {
            let timing = timing_for(Duration::from_millis(millis));
            assert_eq!(timing.heartbeat, tenure_node::settings::DEFAULT_HEARTBEAT);
            assert_eq!(timing.stop_grace, tenure_node::settings::DEFAULT_STOP_GRACE);
        }
    }
}
