//! A fault that takes the leader out: inject it, measure the successor against its bound,
//! check that the guard stopped the old child before the lease could end, heal it. A
//! whole-node freeze also stops the node's guards and children, and is resumed only once the
//! successor's child has written to the store.

use std::time::{Duration, Instant};

use rustix::process::{kill_process_group, Pid};
use tenure_harness::stats::millis;
use tenure_harness::{monotonic_nanos, procfs, Healthy, Signal};
use tenure_node::cluster::process::is_alive;
use tenure_node::guard::GUARD_SUBCOMMAND;

use crate::campaign::Campaign;
use crate::fault::Fault;
use crate::report::{CampaignReport, Freeze};
use crate::{Abort, POLL};

/// A leader fault under way.
struct LeaderCycle {
    fault: Fault,
    leader: usize,
    leader_name: String,
    /// The follower cut off with the leader, for `partition-leader-and-follower`.
    partner: Option<usize>,
    /// `CLOCK_MONOTONIC` nanoseconds when the fault was injected.
    faulted_at: u64,
    /// The process groups of a frozen node's guards and children.
    frozen_groups: Vec<i32>,
    /// The cycle's progress line.
    line: String,
}

impl Campaign<'_> {
    /// A fault that takes the leader out; measures the failover and checks its bound. Returns
    /// the healthy cluster after it, or `None` if it did not recover.
    pub(crate) fn leader_fault(
        &mut self,
        fault: Fault,
        healthy: &Healthy,
        report: &mut CampaignReport,
    ) -> Result<Option<Healthy>, Abort> {
        let leader = healthy.leader;
        let partner =
            (fault == Fault::PartitionLeaderAndFollower).then(|| self.random_follower(leader));
        let mut cycle = LeaderCycle {
            fault,
            leader,
            leader_name: self.name(leader),
            partner,
            faulted_at: 0,
            frozen_groups: Vec::new(),
            line: String::new(),
        };
        self.inject_leader_fault(&mut cycle, healthy)?;
        cycle.line = format!(
            "#{} {} {} (token {})",
            report.cycles,
            fault.name(),
            cycle.leader_name,
            healthy.token
        );
        if let Some(partner) = partner {
            cycle.line.push_str(&format!(" and {}", self.name(partner)));
        }
        self.check_successor(&mut cycle, healthy, report)?;
        if fault.lets_the_lease_run_out() {
            self.check_guard_stop(&mut cycle, healthy, report)?;
        }
        self.heal_leader_fault(&mut cycle, healthy, report)?;
        self.say(&cycle.line);
        self.wait_healthy(self.bounds.recovery())
    }

    /// Does what the fault does to the leader, and records when.
    fn inject_leader_fault(
        &mut self,
        cycle: &mut LeaderCycle,
        healthy: &Healthy,
    ) -> Result<(), Abort> {
        let leader = cycle.leader;
        cycle.faulted_at = match cycle.fault {
            Fault::KillLeader | Fault::CrashRestartLeader => {
                let at = self.cluster.signal(leader, Signal::KILL);
                self.cluster
                    .try_wait_for_exit(leader, Duration::from_secs(5));
                if cycle.fault == Fault::CrashRestartLeader {
                    self.cluster.spawn(leader);
                }
                at
            }
            Fault::TermLeader => self.cluster.signal(leader, Signal::TERM),
            Fault::PauseLeader => self.cluster.signal(leader, Signal::STOP),
            Fault::FreezeLeaderNode => {
                let at = self.cluster.signal(leader, Signal::STOP);
                cycle.frozen_groups = self.freeze_descendants(leader);
                self.frozen.insert(healthy.child_pid);
                at
            }
            Fault::PartitionLeader | Fault::PartitionLeaderAndFollower => {
                let at = monotonic_nanos();
                let cut = self.network.isolate(leader).and_then(|()| {
                    cycle
                        .partner
                        .map_or(Ok(()), |partner| self.network.isolate(partner))
                });
                if let Err(problem) = cut {
                    return Err(Abort::Setup(format!(
                        "cannot cut {} off: {problem}",
                        cycle.leader_name
                    )));
                }
                at
            }
            _ => unreachable!("follower faults are handled by follower_fault"),
        };
        Ok(())
    }

    /// The successor, within the bound: the handover bound after SIGTERM, else the crash bound.
    fn check_successor(
        &mut self,
        cycle: &mut LeaderCycle,
        healthy: &Healthy,
        report: &mut CampaignReport,
    ) -> Result<(), Abort> {
        let graceful = cycle.fault == Fault::TermLeader;
        let bound = if graceful {
            self.bounds.handover()
        } else {
            self.bounds.crash()
        };
        let Some(start) = self.wait_successor(healthy.token, self.bounds.recovery())? else {
            cycle.line.push_str(": no successor");
            report.violations.push(format!(
                "bound: after {} of {} (cycle {}), no child started within {} ms",
                cycle.fault.name(),
                cycle.leader_name,
                report.cycles,
                millis(self.bounds.recovery())
            ));
            return Ok(());
        };
        let took = Duration::from_nanos(start.at.saturating_sub(cycle.faulted_at));
        report.failovers_checked += 1;
        if graceful {
            report.handovers.push(took);
        } else {
            report.crash_failovers.push(took);
        }
        cycle.line.push_str(&format!(
            ": {} acts with token {} after {} ms (bound {} ms)",
            start.node,
            start.token,
            millis(took),
            millis(bound)
        ));
        if took > bound {
            report.violations.push(format!(
                "bound: after {} of {} (cycle {}), {} acted after {} ms, beyond the bound of {} \
                 ms",
                cycle.fault.name(),
                cycle.leader_name,
                report.cycles,
                start.node,
                millis(took),
                millis(bound)
            ));
        }
        Ok(())
    }

    /// The guard stopped the old child before the lease could end: the last renewal was sent
    /// no later than the fault, so the lease ends within the lease hold after it.
    fn check_guard_stop(
        &mut self,
        cycle: &mut LeaderCycle,
        healthy: &Healthy,
        report: &mut CampaignReport,
    ) -> Result<(), Abort> {
        let hold = self.bounds.timing.lease_hold();
        let stop = self.wait_stop(healthy.child_pid, self.bounds.recovery())?;
        report.guard_stops_checked += 1;
        let faulted_at = cycle.faulted_at;
        let after_fault = |stop: u64| stop.saturating_sub(faulted_at) / 1_000_000;
        match stop {
            Some(stop) if stop <= faulted_at + nanos(hold) => {
                cycle.line.push_str(&format!(
                    "; old child stopped {} ms after the fault",
                    after_fault(stop)
                ));
            }
            Some(stop) => report.violations.push(format!(
                "guard: after {} of {} (cycle {}), its child stopped {} ms after the fault, past \
                 the lease held per renewal ({} ms)",
                cycle.fault.name(),
                cycle.leader_name,
                report.cycles,
                after_fault(stop),
                millis(hold)
            )),
            None if !is_alive(healthy.child_pid as i32) => {
                cycle
                    .line
                    .push_str("; old child killed without a stop line");
            }
            None => report.violations.push(format!(
                "guard: after {} of {} (cycle {}), its child {} is still running",
                cycle.fault.name(),
                cycle.leader_name,
                report.cycles,
                healthy.child_pid
            )),
        }
        Ok(())
    }

    /// Undoes the fault: restart, resume or reconnect the leader, after a delay drawn from the
    /// seed.
    fn heal_leader_fault(
        &mut self,
        cycle: &mut LeaderCycle,
        healthy: &Healthy,
        report: &mut CampaignReport,
    ) -> Result<(), Abort> {
        let lease = self.bounds.timing.lease;
        let leader = cycle.leader;
        match cycle.fault {
            Fault::KillLeader => {
                let delay = self.rng.duration(lease);
                self.sleep(delay)?;
                self.cluster.spawn(leader);
            }
            Fault::TermLeader => {
                self.expect_graceful_exit(leader, &cycle.leader_name, report);
                let delay = self.rng.duration(lease);
                self.sleep(delay)?;
                self.cluster.spawn(leader);
            }
            Fault::PauseLeader => {
                // A pause longer than the lease, and past the successor's start.
                let extra = self.rng.duration(lease / 2);
                let minimum = cycle.faulted_at + nanos(lease.mul_f64(1.2));
                let until = minimum.max(monotonic_nanos()) + nanos(extra);
                self.sleep(Duration::from_nanos(
                    until.saturating_sub(monotonic_nanos()),
                ))?;
                self.cluster.signal(leader, Signal::CONT);
            }
            Fault::FreezeLeaderNode => {
                self.thaw_after_successor_wrote(leader, healthy, &cycle.frozen_groups, report)?;
                let stale_run = report.freezes.last().and_then(|freeze| freeze.stale_run);
                cycle.line.push_str(&format!(
                    "; frozen child ran {} ms after the resume",
                    stale_run.map_or("?".to_string(), |run| millis(run).to_string())
                ));
            }
            Fault::PartitionLeader | Fault::PartitionLeaderAndFollower => {
                let extra = self.rng.duration(lease);
                self.sleep(extra)?;
                let healed = self.network.heal(leader).and_then(|()| {
                    cycle
                        .partner
                        .map_or(Ok(()), |partner| self.network.heal(partner))
                });
                if let Err(problem) = healed {
                    return Err(Abort::Setup(format!(
                        "cannot heal {}: {problem}",
                        cycle.leader_name
                    )));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// SIGSTOP of the (already stopped) node's deadline guards and children, by process
    /// group: with tenure itself stopped first, nothing new can be started meanwhile. Returns
    /// the groups, to be continued later.
    fn freeze_descendants(&self, index: usize) -> Vec<i32> {
        let tenure = self.cluster.pid(index);
        let mut groups = Vec::new();
        for guard in procfs::children_of(tenure) {
            let is_guard =
                procfs::command_line(guard).is_some_and(|line| line.contains(GUARD_SUBCOMMAND));
            if !is_guard {
                continue;
            }
            if let Some(stat) = procfs::stat(guard) {
                groups.push(stat.process_group);
            }
            for child in procfs::children_of(guard) {
                if let Some(stat) = procfs::stat(child) {
                    groups.push(stat.process_group);
                }
            }
        }
        groups.sort_unstable();
        groups.dedup();
        for group in &groups {
            signal_group(*group, Signal::STOP);
        }
        groups
    }

    /// Keeps the node frozen until its successor's child has written to the store (so the
    /// frozen child's next write is stale), then a little longer, then resumes tenure, guard
    /// and child together, as a machine resumes, and measures how long the child ran on.
    fn thaw_after_successor_wrote(
        &mut self,
        index: usize,
        healthy: &Healthy,
        groups: &[i32],
        report: &mut CampaignReport,
    ) -> Result<(), Abort> {
        let give_up = Instant::now() + self.bounds.recovery();
        while self.store.highest() <= healthy.token && Instant::now() < give_up {
            self.sleep(POLL / 5)?;
        }
        let extra = self.rng.duration(self.bounds.timing.lease / 2);
        self.sleep(extra)?;
        let resumed_at = monotonic_nanos();
        for group in groups {
            signal_group(*group, Signal::CONT);
        }
        self.cluster.signal(index, Signal::CONT);
        let stop = self.wait_stop(healthy.child_pid, self.bounds.recovery())?;
        let stale_run = stop.map(|stop| Duration::from_nanos(stop.saturating_sub(resumed_at)));
        if let Some(run) = stale_run {
            if run > self.bounds.stale_run() {
                report.violations.push(format!(
                    "guard: the child frozen with {} (cycle {}) ran {} ms after the resume, \
                     beyond {} ms",
                    self.name(index),
                    report.cycles,
                    millis(run),
                    millis(self.bounds.stale_run())
                ));
            }
        }
        report.freezes.push(Freeze {
            pid: healthy.child_pid,
            token: healthy.token,
            resumed_at,
            stale_run,
        });
        Ok(())
    }
}

fn signal_group(group: i32, kind: Signal) {
    if let Some(group) = Pid::from_raw(group) {
        let _ = kill_process_group(group, kind);
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
