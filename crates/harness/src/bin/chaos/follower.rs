//! A fault of a follower: kill, pause, cut off or restart it; the leader should carry on, and
//! the cluster must be healthy again afterwards.

use std::time::Duration;

use tenure_harness::{Healthy, Signal};

use crate::campaign::Campaign;
use crate::fault::Fault;
use crate::report::CampaignReport;
use crate::Abort;

impl Campaign<'_> {
    /// A fault of a follower drawn from the seed. Returns the healthy cluster after it, or
    /// `None` if it did not recover.
    pub(crate) fn follower_fault(
        &mut self,
        fault: Fault,
        healthy: &Healthy,
        report: &mut CampaignReport,
    ) -> Result<Option<Healthy>, Abort> {
        let follower = self.random_follower(healthy.leader);
        let name = self.name(follower);
        self.inject_and_heal(fault, follower, report)?;
        let after = self.wait_healthy(self.bounds.recovery())?;
        let mut line = format!("#{} {} {name}", report.cycles, fault.name());
        if let Some(after) = &after {
            if after.token == healthy.token {
                line.push_str(&format!(": {} still acts", self.name(after.leader)));
            } else {
                report.leader_changes_on_follower_faults += 1;
                line.push_str(&format!(
                    ": leadership moved to {} (token {}) meanwhile",
                    self.name(after.leader),
                    after.token
                ));
            }
        }
        self.say(&line);
        Ok(after)
    }

    /// Does what the fault does to `follower`, then undoes it after a delay drawn from the seed.
    fn inject_and_heal(
        &mut self,
        fault: Fault,
        follower: usize,
        report: &mut CampaignReport,
    ) -> Result<(), Abort> {
        let name = self.name(follower);
        let lease = self.bounds.timing.lease;
        match fault {
            Fault::KillFollower => {
                self.cluster.signal(follower, Signal::KILL);
                self.cluster
                    .try_wait_for_exit(follower, Duration::from_secs(5));
                let delay = self.rng.duration(lease);
                self.sleep(delay)?;
                self.cluster.spawn(follower);
            }
            Fault::PauseFollower => {
                self.cluster.signal(follower, Signal::STOP);
                let pause = lease + self.rng.duration(lease / 2);
                self.sleep(pause)?;
                self.cluster.signal(follower, Signal::CONT);
            }
            Fault::PartitionFollower => {
                self.network
                    .isolate(follower)
                    .map_err(|problem| Abort::Setup(format!("cannot cut {name} off: {problem}")))?;
                let cut = lease + self.rng.duration(lease);
                self.sleep(cut)?;
                self.network
                    .heal(follower)
                    .map_err(|problem| Abort::Setup(format!("cannot heal {name}: {problem}")))?;
            }
            Fault::RestartFollower => {
                self.cluster.signal(follower, Signal::TERM);
                self.expect_graceful_exit(follower, &format!("follower {name}"), report);
                self.cluster.spawn(follower);
            }
            _ => unreachable!("leader faults are handled by leader_fault"),
        }
        Ok(())
    }
}
