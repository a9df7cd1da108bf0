//! The whole run: one campaign per cluster size, one after the other, sharing the time or
//! cycle budget equally; and the command that reruns it.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use tenure_harness::{procfs, tenure_binary, Timing};

use crate::bounds::Bounds;
use crate::campaign::{Budget, Campaign};
use crate::network::{choose_partition_mode, PartitionChoice};
use crate::report::{self, load_average, CampaignReport};
use crate::{Abort, Args, PartitionMode, RUN_PREFIX};

/// The whole run: campaigns over the cluster sizes.
pub(crate) struct Run<'a> {
    pub(crate) args: Args,
    pub(crate) interrupted: &'a AtomicBool,
    started: Instant,
    mode: Option<PartitionChoice>,
    reports: Vec<CampaignReport>,
}

impl<'a> Run<'a> {
    pub(crate) fn new(args: Args, interrupted: &'a AtomicBool) -> Run<'a> {
        Run {
            args,
            interrupted,
            started: Instant::now(),
            mode: None,
            reports: Vec::new(),
        }
    }

    pub(crate) fn timing(&self) -> Timing {
        Timing {
            lease: self.args.lease,
            heartbeat: self.args.heartbeat,
            stop_grace: self.args.stop_grace,
            max_drift: 0.01,
        }
    }

    pub(crate) fn bounds(&self) -> Bounds {
        Bounds {
            timing: self.timing(),
            slack: self.args.slack,
        }
    }

    /// The command that reruns this run: the same seed, budget, sizes, timing and partitions.
    pub(crate) fn command(&self) -> String {
        let args = &self.args;
        let budget = match (args.cycles, args.duration) {
            (Some(cycles), _) => format!("--cycles {cycles}"),
            (None, Some(duration)) => {
                format!("--duration {}", humantime::format_duration(duration))
            }
            (None, None) => "--duration 2m".to_string(),
        };
        let release = std::env::current_exe()
            .is_ok_and(|path| path.components().any(|part| part.as_os_str() == "release"));
        let sizes: Vec<String> = args.nodes.iter().map(usize::to_string).collect();
        let partition = match self.mode.as_ref().map(|(mode, _)| *mode) {
            Some(PartitionMode::Proxy) => "proxy",
            Some(PartitionMode::Namespaces) => "namespaces",
            _ => "auto",
        };
        let mut command = format!(
            "cargo run{} -p tenure-harness --bin chaos -- --seed {} {budget} --nodes {} \
             --lease {} --heartbeat {} --stop-grace {} --slack {} --partition {partition}",
            if release { " --release" } else { "" },
            args.seed,
            sizes.join(","),
            humantime::format_duration(args.lease),
            humantime::format_duration(args.heartbeat),
            humantime::format_duration(args.stop_grace),
            humantime::format_duration(args.slack),
        );
        if !args.faults.is_empty() {
            command.push_str(&format!(" --faults {}", args.faults.join(",")));
        }
        if args.count_freezes_as_violations {
            command.push_str(" --count-freezes-as-violations");
        }
        command
    }

    pub(crate) fn violations(&self) -> usize {
        self.reports
            .iter()
            .map(|report| report.violations.len())
            .sum()
    }

    pub(crate) fn execute(&mut self) -> Result<(), Abort> {
        // A run killed with SIGKILL loses its nodes (parent-death signal), whose guards then stop
        // the children, except on a node frozen at that moment: its guard and child stay
        // stopped. Those, and the run's directories, go now.
        procfs::remove_stale_runs(RUN_PREFIX);
        let mode = choose_partition_mode(self.args.partition)?;
        self.print_header(&mode.1);
        self.mode = Some(mode);
        let sizes = self.args.nodes.clone();
        let campaigns = u32::try_from(sizes.len()).unwrap_or(1);
        let total =
            self.args
                .duration
                .unwrap_or(Duration::from_secs(if self.args.cycles.is_some() {
                    24 * 3600
                } else {
                    120
                }));
        for (number, size) in sizes.into_iter().enumerate() {
            let budget = Budget {
                until: Instant::now() + total / campaigns,
                cycles: self.args.cycles.map(|cycles| cycles.div_ceil(campaigns)),
            };
            let seed = self.args.seed ^ (u64::try_from(number).unwrap_or(0) << 56);
            let mut report = CampaignReport {
                size,
                ..CampaignReport::default()
            };
            let outcome = self.campaign(number, size, seed, &budget, &mut report);
            self.reports.push(report);
            outcome?;
        }
        Ok(())
    }

    fn print_header(&self, partitions: &str) {
        let binary = tenure_binary();
        println!(
            "chaos: seed {}, clusters of {:?} nodes, lease {}, heartbeat {}, stop grace {}",
            self.args.seed,
            self.args.nodes,
            humantime::format_duration(self.args.lease),
            humantime::format_duration(self.args.heartbeat),
            humantime::format_duration(self.args.stop_grace)
        );
        println!(
            "tenure binary: {}{}",
            binary.display(),
            if binary.components().any(|part| part.as_os_str() == "debug") {
                " (a debug build: fine for safety checks, not for timing figures)"
            } else {
                ""
            }
        );
        println!("partitions: {partitions}");
        println!("load average at the start: {}", load_average());
        println!("bounds: {}", self.bounds().describe());
    }

    fn campaign(
        &self,
        number: usize,
        size: usize,
        seed: u64,
        budget: &Budget,
        report: &mut CampaignReport,
    ) -> Result<(), Abort> {
        let mode = self
            .mode
            .as_ref()
            .map_or(PartitionMode::Proxy, |(mode, _)| *mode);
        let mut campaign = Campaign::start(self, number, size, seed, mode)?;
        report.network = campaign.network.describe();
        println!(
            "\n[{}] {size} nodes: {}; directory {}",
            self.clock(),
            report.network,
            campaign.cluster.directory().display()
        );
        let outcome = campaign.run(budget, report);
        campaign.finish(report, self.args.keep);
        outcome
    }

    /// Seconds since the run started, for the progress lines.
    pub(crate) fn clock(&self) -> String {
        format!("{:>7.1}s", self.started.elapsed().as_secs_f64())
    }

    pub(crate) fn print_summary(&self) {
        report::print_summary(
            self.args.seed,
            self.mode
                .as_ref()
                .map(|(_, partitions)| partitions.as_str()),
            &self.reports,
            &self.bounds(),
        );
    }
}
