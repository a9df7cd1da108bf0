//! tenure's crash failover and graceful handover, round by round on a 3-node cluster. Each
//! round starts from a healthy cluster after a random fraction of a heartbeat, and ends once
//! the faulted node is back and the cluster is healthy again.

use std::collections::BTreeSet;
use std::time::Duration;

use tenure_harness::analysis::check_children;
use tenure_harness::ledger_tail::LedgerTail;
use tenure_harness::stats::millis;
use tenure_harness::{intervals, read_ledger, Cluster, Healthy, Signal, Timing};

use crate::results::LeaseResult;
use crate::session::Bench;
use crate::{failed, Failure, CHILD_ALIVE, STEP_LIMIT};

/// The timing measured at each lease: heartbeat and stop grace scale with the lease so that
/// the acting window stays open (docs/operations.md: Tuning).
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
/// the footprint at idle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Extent {
    Failover,
    Handover,
    Footprint,
}

/// A cluster being measured, with its ledger and its state at rest.
struct Measured {
    cluster: Cluster,
    tail: LedgerTail,
    healthy: Healthy,
    /// The lease, for the progress lines and samples.csv.
    lease: String,
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
        };
        let failovers = self.crash_rounds(&mut measured, rounds)?;
        self.sample_load();
        if extent >= Extent::Handover {
            self.handover_rounds(&mut measured, rounds)?;
            self.sample_load();
        }
        if extent >= Extent::Footprint {
            self.results.footprint = self.footprint(&measured.cluster, &mut measured.tail)?;
            self.sample_load();
        }
        let mut cluster = measured.cluster;
        cluster.shutdown();
        let report = check_children(
            &intervals(&read_ledger(&cluster.ledger)),
            &BTreeSet::new(),
            CHILD_ALIVE,
        );
        for violation in &report.violations {
            println!("  overlap check: {violation}");
        }
        Ok(LeaseResult {
            timing,
            failovers,
            overlaps: report.violations.len(),
        })
    }

    /// SIGKILL of the acting node's tenure until the next child's start line.
    fn crash_rounds(
        &mut self,
        measured: &mut Measured,
        rounds: u32,
    ) -> Result<Vec<Duration>, Failure> {
        let heartbeat = measured.cluster.timing.heartbeat;
        let lease = measured.lease.clone();
        let mut failovers = Vec::new();
        for round in 1..=rounds {
            let phase = self.rng.duration(heartbeat);
            self.sleep(phase)?;
            let leader = measured.healthy.leader;
            let killed_at = measured.cluster.kill(leader);
            let next =
                self.wait_start(&mut measured.tail, measured.healthy.token, "the next child")?;
            let took = Duration::from_nanos(next.at.saturating_sub(killed_at));
            self.say(&format!(
                "tenure lease {lease}: crash failover {round:>2}/{rounds}: {} ms",
                millis(took)
            ));
            self.samples.push(format!(
                "tenure crash failover,{lease},{round},{}",
                took.as_secs_f64() * 1e3
            ));
            failovers.push(took);
            measured.cluster.spawn(leader);
            measured.healthy = self.wait_healthy(&measured.cluster, &mut measured.tail)?;
        }
        Ok(failovers)
    }

    /// SIGTERM to the acting node's tenure until the next child's start line, with the old
    /// child's stop apart.
    fn handover_rounds(&mut self, measured: &mut Measured, rounds: u32) -> Result<(), Failure> {
        let heartbeat = measured.cluster.timing.heartbeat;
        let lease = measured.lease.clone();
        for round in 1..=rounds {
            let phase = self.rng.duration(heartbeat);
            self.sleep(phase)?;
            let Healthy {
                leader,
                token,
                child_pid,
            } = measured.healthy;
            let terminated_at = measured.cluster.signal(leader, Signal::TERM);
            let next = self.wait_start(&mut measured.tail, token, "the successor's child")?;
            let stopped = measured
                .tail
                .stop_of(child_pid)
                .map_or(next.at, |stop| stop.at);
            let took = Duration::from_nanos(next.at.saturating_sub(terminated_at));
            let child_stop = Duration::from_nanos(stopped.saturating_sub(terminated_at));
            let after_stop = Duration::from_nanos(next.at.saturating_sub(stopped));
            self.say(&format!(
                "tenure lease {lease}: graceful handover {round:>2}/{rounds}: {} ms (old child \
                 stopped after {} ms, the next one started {} ms later)",
                millis(took),
                millis(child_stop),
                millis(after_stop)
            ));
            self.samples.push(format!(
                "tenure graceful handover,{lease},{round},{}",
                took.as_secs_f64() * 1e3
            ));
            self.results.handovers.push(took);
            self.results.child_stops.push(child_stop);
            self.results.after_child_stop.push(after_stop);
            if measured
                .cluster
                .try_wait_for_exit(leader, STEP_LIMIT)
                .is_none()
            {
                return Err(failed("a node did not exit after SIGTERM"));
            }
            measured.cluster.spawn(leader);
            measured.healthy = self.wait_healthy(&measured.cluster, &mut measured.tail)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_measured_timings_keep_the_acting_window_open() {
        // The configuration's own rule (docs/operations.md: Tuning): stop grace + the 150 ms
        // SIGKILL reserve + one heartbeat stays below the lease held per renewal.
        for millis in [250, 500, 1000, 2000, 6000] {
            let timing = timing_for(Duration::from_millis(millis));
            assert!(
                timing.stop_margin() + timing.heartbeat < timing.lease_hold(),
                "{timing:?}"
            );
        }
    }
}
