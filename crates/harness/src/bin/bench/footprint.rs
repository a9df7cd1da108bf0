//! The footprint of an idle cluster: resident memory and CPU time of every tenure process and
//! of the acting node's guard (from /proc), and datagrams sent per second (from `/metrics`).

use std::time::{Duration, Instant};

use tenure_harness::ledger_tail::LedgerTail;
use tenure_harness::{metric, procfs, Cluster};
use tenure_node::guard::GUARD_SUBCOMMAND;

use crate::results::NodeFootprint;
use crate::session::Bench;
use crate::Failure;

impl Bench<'_> {
    /// Memory, CPU and datagrams of an idle cluster over `--idle`.
    pub(crate) fn footprint(
        &self,
        cluster: &Cluster,
        tail: &mut LedgerTail,
    ) -> Result<Vec<NodeFootprint>, Failure> {
        let healthy = self.wait_healthy(cluster, tail)?;
        // Let the restart of the last round settle.
        self.sleep(Duration::from_secs(2))?;
        let guard = procfs::children_of(cluster.pid(healthy.leader))
            .into_iter()
            .find(|pid| {
                procfs::command_line(*pid).is_some_and(|line| line.contains(GUARD_SUBCOMMAND))
            });
        let pids: Vec<i32> = (0..cluster.nodes.len())
            .map(|index| cluster.pid(index))
            .collect();
        let sent = |index: usize| {
            cluster
                .get(index, "/metrics")
                .ok()
                .and_then(|answer| metric(&answer.body, "tenure_datagrams_sent_total"))
                .unwrap_or(0.0)
        };
        let ticks = |pid: i32| procfs::stat(pid).map_or(0, |stat| stat.cpu_ticks);
        let sent_before: Vec<f64> = (0..pids.len()).map(sent).collect();
        let ticks_before: Vec<u64> = pids.iter().map(|pid| ticks(*pid)).collect();
        let guard_before = guard.map(ticks);
        let window_start = Instant::now();
        self.say(&format!(
            "tenure lease {}: watching the idle cluster for {} s",
            humantime::format_duration(cluster.timing.lease),
            self.args.idle.as_secs()
        ));
        self.sleep(self.args.idle)?;
        let window = window_start.elapsed().as_secs_f64();
        let per_second = procfs::ticks_per_second() as f64;
        let cpu = |before: u64, after: u64| {
            after.saturating_sub(before) as f64 / per_second / window * 100.0
        };
        let footprint = pids
            .iter()
            .enumerate()
            .map(|(index, pid)| {
                let leads = index == healthy.leader;
                NodeFootprint {
                    name: cluster.nodes[index].name.clone(),
                    leads,
                    tenure_kib: procfs::resident_kib(*pid).unwrap_or(0),
                    tenure_cpu: cpu(ticks_before[index], ticks(*pid)),
                    guard_kib: guard.filter(|_| leads).and_then(procfs::resident_kib),
                    guard_cpu: guard
                        .filter(|_| leads)
                        .zip(guard_before)
                        .map(|(guard, before)| cpu(before, ticks(guard))),
                    sent_per_second: (sent(index) - sent_before[index]) / window,
                }
            })
            .collect();
        if cluster.healthy(tail).map(|now| now.token) != Some(healthy.token) {
            println!("  note: leadership changed during the idle window");
        }
        Ok(footprint)
    }
}
