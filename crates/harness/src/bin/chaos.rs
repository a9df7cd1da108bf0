//! The chaos runner: clusters of 3 and 5 real `tenure run` processes, put through faults in an
//! order drawn from a seed, with the safety of their children and of a fenced store checked at
//! the end. See docs/benchmarks.md ("Chaos") for what it shows and how to read its summary.
//!
//! ```sh
//! cargo run --release -p tenure-harness --bin chaos -- --seed 7 --duration 2m --nodes 3,5
//! ```
//!
//! Each node supervises the ledger child (`tenure_harness::child`, run as `chaos __child`), which
//! records its start, alive stamps and stop in a shared ledger, and writes to the fenced store
//! (`tenure_harness::store`) with its token every 50 ms. One fault per cycle, then the runner
//! heals it and waits until the cluster is healthy again (one child runs, every node follows
//! its node and is heard by it, nobody is in boot quarantine; `Cluster::healthy`):
//!
//! | fault | what it does | what must happen |
//! | --- | --- | --- |
//! | `kill-leader` | SIGKILL of the leader's tenure; restarted after up to a lease | its guard stops the child at once; a successor acts within the crash bound |
//! | `crash-restart-leader` | SIGKILL of the leader's tenure, restarted at once | as above; the restarted node sits out its boot quarantine |
//! | `term-leader` | SIGTERM of the leader's tenure (graceful handover); restarted | exit status 0; a successor acts within the handover bound |
//! | `pause-leader` | SIGSTOP of the leader's tenure for longer than the lease, then SIGCONT | the guard stops the child before the lease can end; a successor within the crash bound |
//! | `freeze-leader-node` | SIGSTOP of the leader's tenure, guard and child together (a frozen machine), past the successor's start, then SIGCONT | a successor within the crash bound; the frozen child overlaps it (reported apart: the documented limit) and every write it tries after the resume is rejected by the store |
//! | `partition-leader` | the leader cut off from every other node, then healed | as for a pause |
//! | `partition-leader-and-follower` | (5 nodes) the leader and a follower cut off | as for a pause |
//! | `kill-follower`, `pause-follower`, `partition-follower`, `restart-follower` | the same to a follower | the cluster stays or becomes healthy |
//!
//! Checks, at the end of each cluster's run (`tenure_harness::analysis`): no two children alive
//! at the same instant (from the ledger; whole-node freezes apart); the store never accepted a
//! lower token after a higher one, and rejected no write of a child that was not frozen; no
//! acknowledged write is missing from the store's log; and, as the run goes, every failover
//! and handover within its bound derived from the configuration, every guard stop before the
//! lease could end, and recovery after every fault. It prints a summary and exits 1 on any
//! violation (with the command that reruns the seed), 130 on Ctrl-C, 2 on bad usage.
//!
//! Partitions use network namespaces when it can (root and `ip`; `scripts/chaos-deps.sh`),
//! else a UDP fault proxy on loopback; the summary says which. Nothing is sent anywhere but
//! loopback and the namespaces the runner creates and deletes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use rustix::process::{kill_process_group, Pid};
use tenure_harness::analysis::{
    check_children, check_store, read_acks, ChildrenReport, StoreReport,
};
use tenure_harness::ledger_tail::LedgerTail;
use tenure_harness::netns::NamespaceNetwork;
use tenure_harness::procfs;
use tenure_harness::proxy::FaultProxy;
use tenure_harness::stats::{millis, Summary};
use tenure_harness::store::{read_store_log, FencedStore};
use tenure_harness::{
    intervals, monotonic_nanos, read_ledger, tenure_binary, Cluster, ClusterSpec, Healthy, Signal,
    Timing,
};
use tenure_node::cluster::interrupt_flag;
use tenure_node::guard::{GUARD_SUBCOMMAND, MAX_POLL_WAIT};
use tenure_node::settings::KILL_AFTER;

/// The hidden first argument that makes this binary run as the supervised child.
const CHILD_MODE: &str = "__child";
/// The children's alive stamps and store writes.
const CHILD_PERIOD: Duration = Duration::from_millis(50);
/// How often the runner polls the ledger and the nodes.
const POLL: Duration = Duration::from_millis(50);
/// The prefix of each cluster's directory, followed by the runner's process ID: every process
/// of a cluster mentions it, so a later run can find what a killed run left behind.
const RUN_PREFIX: &str = "tenure-chaos-";
/// Recovery after a fault is a liveness check, not a measurement: a restarted node's boot
/// quarantine (one lease) plus a crash failover plus this much for a loaded machine.
const RECOVERY_EXTRA: Duration = Duration::from_secs(10);

#[derive(Debug, Parser)]
#[command(
    name = "chaos",
    about = "Fault-inject clusters of real tenure processes and check that no two children \
             ever ran at once and that the fenced store never took a stale write",
    after_help = "Example: cargo run --release -p tenure-harness --bin chaos -- --seed 7 \
                  --duration 2m --nodes 3,5\nExit status: 0 when every check passed, 1 on a \
                  violation, 130 on Ctrl-C, 2 on bad usage."
)]
struct Args {
    /// The seed of the fault order (kinds, targets, pauses).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How long to inject faults, shared equally among the cluster sizes (default 2m, unless
    /// --cycles is given).
    #[arg(long, value_parser = tenure_node::cli::parse_duration)]
    duration: Option<std::time::Duration>,
    /// How many fault cycles to run in total, shared equally among the cluster sizes.
    #[arg(long)]
    cycles: Option<u32>,
    /// Cluster sizes, run one after the other.
    #[arg(long, value_delimiter = ',', default_value = "3,5")]
    nodes: Vec<usize>,
    /// `--lease` of the nodes.
    #[arg(long, default_value = "1s", value_parser = tenure_node::cli::parse_duration)]
    lease: std::time::Duration,
    /// `--heartbeat` of the nodes.
    #[arg(long, default_value = "100ms", value_parser = tenure_node::cli::parse_duration)]
    heartbeat: std::time::Duration,
    /// `--stop-grace` of the nodes.
    #[arg(long, default_value = "300ms", value_parser = tenure_node::cli::parse_duration)]
    stop_grace: std::time::Duration,
    /// Added to every failover and handover bound for scheduling on a loaded machine.
    #[arg(long, default_value = "1s", value_parser = tenure_node::cli::parse_duration)]
    slack: std::time::Duration,
    /// How to cut nodes off: network namespaces (needs root and iproute2), a UDP fault proxy
    /// on loopback, or namespaces when available and the proxy otherwise.
    #[arg(long, value_enum, default_value = "auto")]
    partition: PartitionMode,
    /// Only these faults (names as in the summary, comma-separated), to study one of them.
    #[arg(long, value_delimiter = ',')]
    faults: Vec<String>,
    /// `--log-level` of the nodes (their logs are in each cluster's directory).
    #[arg(long, default_value = "info")]
    node_log_level: String,
    /// Keep each cluster's directory (ledger, store log, node logs); kept anyway on a
    /// violation.
    #[arg(long)]
    keep: bool,
    /// Check the checker: do not set whole-node freezes apart, so that their overlaps and the
    /// store's rejections of the frozen children count as violations. A run with freezes must
    /// then fail.
    #[arg(long, hide = true)]
    count_freezes_as_violations: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum PartitionMode {
    Auto,
    Namespaces,
    Proxy,
}

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().collect();
    if raw.get(1).map(String::as_str) == Some(CHILD_MODE) {
        return tenure_harness::child::run(&raw[2..]);
    }
    let args = Args::parse();
    // Below 3 nodes, losing the leader leaves no majority, so no leader fault could heal.
    if args.nodes.is_empty() || args.nodes.iter().any(|size| !(3..=9).contains(size)) {
        eprintln!("chaos: --nodes takes cluster sizes from 3 to 9, such as 3,5");
        return ExitCode::from(2);
    }
    let known: Vec<&str> = Fault::WEIGHTS
        .iter()
        .map(|(fault, _)| fault.name())
        .collect();
    if let Some(unknown) = args
        .faults
        .iter()
        .find(|name| !known.contains(&name.as_str()))
    {
        eprintln!(
            "chaos: unknown fault {unknown:?}; the faults are {}",
            known.join(", ")
        );
        return ExitCode::from(2);
    }
    let interrupted = interrupt_flag();
    let mut run = Run::new(args, &interrupted);
    let outcome = run.execute();
    run.print_summary();
    match outcome {
        Err(Abort::Interrupted) => {
            println!("interrupted; everything the run started has been stopped and deleted");
            ExitCode::from(130)
        }
        _ if run.violations() > 0 => {
            println!("\nRESULT: FAIL. Rerun this seed with:\n  {}", run.command());
            ExitCode::FAILURE
        }
        Err(Abort::Setup(problem)) => {
            println!("\nRESULT: the run could not start: {problem}");
            ExitCode::FAILURE
        }
        _ => {
            println!("\nRESULT: PASS");
            ExitCode::SUCCESS
        }
    }
}

/// Why a run or one cluster's campaign ended early.
#[derive(Debug)]
enum Abort {
    Interrupted,
    /// The cluster did not recover; recorded as a violation, the campaign ends.
    Stuck,
    /// The environment could not be set up (namespaces, store, ports).
    Setup(String),
}

/// The faults; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    KillLeader,
    CrashRestartLeader,
    TermLeader,
    PauseLeader,
    FreezeLeaderNode,
    PartitionLeader,
    PartitionLeaderAndFollower,
    KillFollower,
    PauseFollower,
    PartitionFollower,
    RestartFollower,
}

impl Fault {
    /// Every fault with its weight in the random choice.
    const WEIGHTS: [(Fault, u64); 11] = [
        (Fault::KillLeader, 3),
        (Fault::CrashRestartLeader, 1),
        (Fault::TermLeader, 2),
        (Fault::PauseLeader, 2),
        (Fault::FreezeLeaderNode, 2),
        (Fault::PartitionLeader, 2),
        (Fault::PartitionLeaderAndFollower, 1),
        (Fault::KillFollower, 1),
        (Fault::PauseFollower, 1),
        (Fault::PartitionFollower, 1),
        (Fault::RestartFollower, 1),
    ];

    fn name(self) -> &'static str {
        match self {
            Fault::KillLeader => "kill-leader",
            Fault::CrashRestartLeader => "crash-restart-leader",
            Fault::TermLeader => "term-leader",
            Fault::PauseLeader => "pause-leader",
            Fault::FreezeLeaderNode => "freeze-leader-node",
            Fault::PartitionLeader => "partition-leader",
            Fault::PartitionLeaderAndFollower => "partition-leader-and-follower",
            Fault::KillFollower => "kill-follower",
            Fault::PauseFollower => "pause-follower",
            Fault::PartitionFollower => "partition-follower",
            Fault::RestartFollower => "restart-follower",
        }
    }

    fn is_available(self, size: usize) -> bool {
        match self {
            // Cutting off two of three would leave no majority anywhere.
            Fault::PartitionLeaderAndFollower => size >= 5,
            _ => true,
        }
    }
}

/// SplitMix64: a small, well-mixed generator; the fault order is a pure function of the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, bound)`; 0 when `bound` is 0.
    fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            0
        } else {
            self.next() % bound
        }
    }

    /// Uniform in `[0, limit)`.
    fn duration(&mut self, limit: Duration) -> Duration {
        Duration::from_nanos(self.below(u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX)))
    }
}

/// The bounds every timed check uses, derived from the configuration.
#[derive(Clone, Copy, Debug)]
struct Bounds {
    timing: Timing,
    slack: Duration,
}

impl Bounds {
    /// Real time a follower may still keep its promise after the leader's last heartbeat: L on
    /// its own clock, which may run slow by ρ (DESIGN: Time).
    fn promise(&self) -> Duration {
        self.timing.lease.div_f64(1.0 - self.timing.max_drift)
    }

    /// The election jitter bound, L/4, in real time.
    fn jitter(&self) -> Duration {
        self.timing.jitter().div_f64(1.0 - self.timing.max_drift)
    }

    /// Pre-vote and vote rounds, each timing out after two heartbeats, and one retry of both
    /// after a split vote.
    fn rounds(&self) -> Duration {
        self.timing.heartbeat * 8
    }

    /// Crash failover: promise + jitter + a second jitter for a split-vote retry + rounds +
    /// slack (DESIGN: Failover).
    fn crash(&self) -> Duration {
        self.promise() + self.jitter() * 2 + self.rounds() + self.slack
    }

    /// Graceful handover: the child's stop (at most stop grace + reserve) + jitter (the
    /// successor may campaign on its own; docs/operations.md) + rounds + slack.
    fn handover(&self) -> Duration {
        self.timing.stop_margin() + self.jitter() + self.rounds() + self.slack
    }

    /// Recovery after a fault is healed (a liveness check): see `RECOVERY_EXTRA`.
    fn recovery(&self) -> Duration {
        self.timing.lease + self.crash() + RECOVERY_EXTRA
    }

    /// How long a child frozen with its whole node may run after the resume, as
    /// docs/operations.md says: the guard looks at its deadline within `MAX_POLL_WAIT`, then
    /// SIGTERM, SIGKILL after the stop grace, the kernel within `KILL_AFTER`; plus slack.
    fn stale_run(&self) -> Duration {
        MAX_POLL_WAIT + self.timing.stop_grace + KILL_AFTER + self.slack
    }

    fn describe(&self) -> String {
        format!(
            "crash failover <= {} ms (promise L/(1-rho) {} + 2 x jitter {} + 8 heartbeats {} + \
             slack {}); handover <= {} ms (stop margin {} + jitter + 8 heartbeats + slack); \
             guard stop <= {} ms after the fault (the lease held per renewal)",
            millis(self.crash()),
            millis(self.promise()),
            millis(self.jitter()),
            millis(self.rounds()),
            millis(self.slack),
            millis(self.handover()),
            millis(self.timing.stop_margin()),
            millis(self.timing.lease_hold()),
        )
    }
}

/// How partitions are made.
enum Network {
    Namespaces(NamespaceNetwork),
    Proxy(FaultProxy),
}

impl Network {
    fn isolate(&self, index: usize) -> Result<(), String> {
        match self {
            Network::Namespaces(network) => {
                network.isolate(index).map_err(|error| error.to_string())
            }
            Network::Proxy(proxy) => {
                proxy.isolate(index);
                Ok(())
            }
        }
    }

    fn heal(&self, index: usize) -> Result<(), String> {
        match self {
            Network::Namespaces(network) => network.heal(index).map_err(|error| error.to_string()),
            Network::Proxy(proxy) => {
                proxy.heal(index);
                Ok(())
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Network::Namespaces(network) => network.describe(),
            Network::Proxy(proxy) => proxy.describe(),
        }
    }
}

/// One whole-node freeze, for the summary.
#[derive(Clone, Debug)]
struct Freeze {
    pid: u32,
    token: u64,
    resumed_at: u64,
    /// From the resume to the frozen child's stop line.
    stale_run: Option<Duration>,
}

/// What one cluster's campaign produced.
#[derive(Debug, Default)]
struct CampaignReport {
    size: usize,
    network: String,
    cycles: u32,
    faults: BTreeMap<Fault, u32>,
    crash_failovers: Vec<Duration>,
    handovers: Vec<Duration>,
    failovers_checked: u32,
    guard_stops_checked: u32,
    freezes: Vec<Freeze>,
    leader_changes_on_follower_faults: u32,
    children: ChildrenReport,
    store: StoreReport,
    rejected_after_resume: usize,
    violations: Vec<String>,
    kept: Option<PathBuf>,
}

/// The whole run: campaigns over the cluster sizes.
struct Run<'a> {
    args: Args,
    interrupted: &'a AtomicBool,
    started: Instant,
    mode: Option<(PartitionMode, String)>,
    reports: Vec<CampaignReport>,
}

impl<'a> Run<'a> {
    fn new(args: Args, interrupted: &'a AtomicBool) -> Run<'a> {
        Run {
            args,
            interrupted,
            started: Instant::now(),
            mode: None,
            reports: Vec::new(),
        }
    }

    fn timing(&self) -> Timing {
        Timing {
            lease: self.args.lease,
            heartbeat: self.args.heartbeat,
            stop_grace: self.args.stop_grace,
            max_drift: 0.01,
        }
    }

    fn bounds(&self) -> Bounds {
        Bounds {
            timing: self.timing(),
            slack: self.args.slack,
        }
    }

    fn command(&self) -> String {
        let budget = match (self.args.cycles, self.args.duration) {
            (Some(cycles), _) => format!("--cycles {cycles}"),
            (None, Some(duration)) => {
                format!("--duration {}", humantime::format_duration(duration))
            }
            (None, None) => "--duration 2m".to_string(),
        };
        let release = std::env::current_exe()
            .is_ok_and(|path| path.components().any(|part| part.as_os_str() == "release"));
        format!(
            "cargo run{} -p tenure-harness --bin chaos -- --seed {} {budget} --nodes {} \
             --lease {} --heartbeat {} --stop-grace {} --slack {} --partition {}",
            if release { " --release" } else { "" },
            self.args.seed,
            self.args
                .nodes
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(","),
            humantime::format_duration(self.args.lease),
            humantime::format_duration(self.args.heartbeat),
            humantime::format_duration(self.args.stop_grace),
            humantime::format_duration(self.args.slack),
            match self.mode.as_ref().map(|(mode, _)| *mode) {
                Some(PartitionMode::Proxy) => "proxy",
                Some(PartitionMode::Namespaces) => "namespaces",
                _ => "auto",
            }
        ) + &if self.args.faults.is_empty() {
            String::new()
        } else {
            format!(" --faults {}", self.args.faults.join(","))
        } + if self.args.count_freezes_as_violations {
            " --count-freezes-as-violations"
        } else {
            ""
        }
    }

    fn violations(&self) -> usize {
        self.reports
            .iter()
            .map(|report| report.violations.len())
            .sum()
    }

    fn execute(&mut self) -> Result<(), Abort> {
        // A run killed with SIGKILL loses its nodes (parent-death signal), whose guards then stop
        // the children, except on a node frozen at that moment: its guard and child stay
        // stopped. Those, and the run's directories, go now.
        procfs::remove_stale_runs(RUN_PREFIX);
        let mode = self.choose_partition_mode()?;
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
        println!("partitions: {}", mode.1);
        println!(
            "load average at the start: {}",
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
        println!("bounds: {}", self.bounds().describe());
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

    fn choose_partition_mode(&self) -> Result<(PartitionMode, String), Abort> {
        let namespaces = || {
            if !rustix::process::geteuid().is_root() {
                return Err("not root".to_string());
            }
            NamespaceNetwork::remove_stale();
            NamespaceNetwork::probe()
        };
        match self.args.partition {
            PartitionMode::Proxy => Ok((
                PartitionMode::Proxy,
                "a UDP fault proxy on loopback (--partition proxy)".to_string(),
            )),
            PartitionMode::Namespaces => namespaces()
                .map(|()| {
                    (
                        PartitionMode::Namespaces,
                        "network namespaces with veth pairs".to_string(),
                    )
                })
                .map_err(|problem| {
                    Abort::Setup(format!(
                        "network namespaces are unavailable ({problem}); run \
                         scripts/chaos-deps.sh as root, or use --partition proxy"
                    ))
                }),
            PartitionMode::Auto => Ok(match namespaces() {
                Ok(()) => (
                    PartitionMode::Namespaces,
                    "network namespaces with veth pairs".to_string(),
                ),
                Err(problem) => (
                    PartitionMode::Proxy,
                    format!(
                        "a UDP fault proxy on loopback, because network namespaces are \
                         unavailable here ({problem})"
                    ),
                ),
            }),
        }
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

    fn clock(&self) -> String {
        format!("{:>7.1}s", self.started.elapsed().as_secs_f64())
    }

    fn print_summary(&self) {
        let bounds = self.bounds();
        println!("\n== chaos summary: seed {}", self.args.seed);
        println!(
            "machine: {} CPUs; load average now {}",
            std::thread::available_parallelism().map_or(0, usize::from),
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
        if let Some((_, mode)) = &self.mode {
            println!("partitions: {mode}");
        }
        let all_faults: BTreeSet<Fault> = self
            .reports
            .iter()
            .flat_map(|report| report.faults.keys().copied())
            .collect();
        let mut header = format!("{:<32}", "fault cycles");
        for report in &self.reports {
            header.push_str(&format!("{:>10}", format!("{} nodes", report.size)));
        }
        header.push_str(&format!("{:>10}", "total"));
        println!("{header}");
        for fault in &all_faults {
            let mut line = format!("  {:<30}", fault.name());
            let mut total = 0;
            for report in &self.reports {
                let count = report.faults.get(fault).copied().unwrap_or(0);
                total += count;
                line.push_str(&format!("{count:>10}"));
            }
            line.push_str(&format!("{total:>10}"));
            println!("{line}");
        }
        let mut line = format!("{:<32}", "all");
        let mut total = 0;
        for report in &self.reports {
            total += report.cycles;
            line.push_str(&format!("{:>10}", report.cycles));
        }
        line.push_str(&format!("{total:>10}"));
        println!("{line}");

        let crash: Vec<Duration> = self
            .reports
            .iter()
            .flat_map(|report| report.crash_failovers.iter().copied())
            .collect();
        let handovers: Vec<Duration> = self
            .reports
            .iter()
            .flat_map(|report| report.handovers.iter().copied())
            .collect();
        println!();
        print_timing(
            "failover (leader killed, paused, frozen or cut off)",
            &crash,
            bounds.crash(),
        );
        print_timing("graceful handover (SIGTERM)", &handovers, bounds.handover());

        let freezes: Vec<&Freeze> = self
            .reports
            .iter()
            .flat_map(|report| report.freezes.iter())
            .collect();
        let overlaps: Vec<Duration> = self
            .reports
            .iter()
            .flat_map(|report| {
                report
                    .children
                    .freeze_overlaps
                    .iter()
                    .map(|overlap| overlap.overlap)
            })
            .collect();
        let stale_runs: Vec<Duration> = freezes
            .iter()
            .filter_map(|freeze| freeze.stale_run)
            .collect();
        let rejected_after_resume: usize = self
            .reports
            .iter()
            .map(|report| report.rejected_after_resume)
            .sum();
        println!(
            "\nwhole-node freezes (tenure, guard and child stopped together; the documented \
             limit of leases):"
        );
        println!(
            "  {} freezes; {} of them overlapped their successor in the ledger (longest {} ms, \
             the freeze itself included)",
            freezes.len(),
            overlaps.len(),
            overlaps.iter().max().map_or(0, |longest| millis(*longest))
        );
        println!(
            "  after the resume the frozen child ran on for at most {} ms (bound {} ms: guard \
             poll + stop grace + kill allowance + slack)",
            stale_runs
                .iter()
                .max()
                .map_or(0, |longest| millis(*longest)),
            millis(bounds.stale_run())
        );
        println!(
            "  stale writes the frozen children tried after their resume: {rejected_after_resume}, \
             all rejected by the fenced store"
        );

        let children: usize = self
            .reports
            .iter()
            .map(|report| report.children.children)
            .sum();
        let without_stop: usize = self
            .reports
            .iter()
            .map(|report| report.children.without_stop)
            .sum();
        let accepted: usize = self
            .reports
            .iter()
            .map(|report| report.store.accepted)
            .sum();
        let rejected: usize = self
            .reports
            .iter()
            .map(|report| report.store.rejected)
            .sum();
        let rejected_frozen: usize = self
            .reports
            .iter()
            .map(|report| report.store.rejected_frozen)
            .sum();
        let acknowledged: usize = self
            .reports
            .iter()
            .map(|report| report.store.acknowledged)
            .sum();
        let failovers_checked: u32 = self
            .reports
            .iter()
            .map(|report| report.failovers_checked)
            .sum();
        let guard_stops: u32 = self
            .reports
            .iter()
            .map(|report| report.guard_stops_checked)
            .sum();
        let follower_changes: u32 = self
            .reports
            .iter()
            .map(|report| report.leader_changes_on_follower_faults)
            .sum();
        let violations: Vec<&String> = self
            .reports
            .iter()
            .flat_map(|report| report.violations.iter())
            .collect();
        let mark = |kind: &str| {
            if violations
                .iter()
                .any(|violation| violation.starts_with(kind))
            {
                "FAIL"
            } else {
                " ok "
            }
        };
        println!("\nchecks:");
        println!(
            "  [{}] no two children alive at once, whole-node freezes apart ({children} children; \
             {without_stop} ended without a stop line)",
            mark("ledger")
        );
        println!(
            "  [{}] the fenced store accepted no stale write and rejected no live child \
             ({accepted} accepted, {rejected} rejected, {rejected_frozen} of them from children \
             frozen with their node)",
            mark("store")
        );
        println!(
            "  [{}] no acknowledged write lost ({acknowledged} acknowledged)",
            mark("acks")
        );
        println!(
            "  [{}] every failover and handover within its bound ({failovers_checked} measured)",
            mark("bound")
        );
        println!(
            "  [{}] every guard stopped its child before the lease could end ({guard_stops} \
             checked)",
            mark("guard")
        );
        println!(
            "  [{}] the cluster recovered after every fault",
            mark("recovery")
        );
        println!(
            "  (for information: {follower_changes} leadership changes while a follower was \
             faulted)"
        );
        for report in &self.reports {
            if let Some(kept) = &report.kept {
                println!(
                    "  {} nodes: directory kept at {}",
                    report.size,
                    kept.display()
                );
            }
        }
        if violations.is_empty() {
            println!("\nviolations: none");
        } else {
            println!("\nviolations ({}):", violations.len());
            for violation in violations.iter().take(50) {
                println!("  - {violation}");
            }
        }
    }
}

fn print_timing(name: &str, samples: &[Duration], bound: Duration) {
    match Summary::of(samples) {
        Some(summary) => println!(
            "{name}: n={} min {} median {} p99 {} max {} ms (bound {} ms)",
            summary.count,
            millis(summary.min),
            millis(summary.median),
            millis(summary.p99),
            millis(summary.max),
            millis(bound)
        ),
        None => println!("{name}: none measured"),
    }
}

/// When a campaign stops injecting faults.
struct Budget {
    until: Instant,
    cycles: Option<u32>,
}

/// One cluster under faults. Field order is drop order: the cluster's processes go first,
/// then the store, then the network namespaces they ran in.
struct Campaign<'a> {
    cluster: Cluster,
    store: FencedStore,
    network: Network,
    run: &'a Run<'a>,
    size: usize,
    rng: Rng,
    bounds: Bounds,
    tail: LedgerTail,
    acks: PathBuf,
    store_log: PathBuf,
    frozen: BTreeSet<u32>,
}

impl<'a> Campaign<'a> {
    fn start(
        run: &'a Run<'a>,
        number: usize,
        size: usize,
        seed: u64,
        mode: PartitionMode,
    ) -> Result<Campaign<'a>, Abort> {
        let executable = std::env::current_exe()
            .map_err(|error| Abort::Setup(format!("cannot find this program: {error}")))?;
        let spec = ClusterSpec {
            timing: run.timing(),
            child_leading_arguments: vec![CHILD_MODE.to_string()],
            log_level: run.args.node_log_level.clone(),
            directory_prefix: format!("{RUN_PREFIX}{}-", std::process::id()),
            ..ClusterSpec::new(size, &executable.display().to_string())
        };
        let mut cluster = Cluster::prepare(spec);
        let directory = cluster.directory().to_path_buf();
        let store_log = directory.join("store.log");
        let acks = directory.join("acks");
        let store = FencedStore::start(&directory.join("store.sock"), &store_log)
            .map_err(|error| Abort::Setup(format!("cannot start the fenced store: {error}")))?;
        let network = match mode {
            PartitionMode::Namespaces => {
                let network =
                    NamespaceNetwork::create(&number.to_string(), size).map_err(|error| {
                        Abort::Setup(format!("cannot create the namespaces: {error}"))
                    })?;
                for (index, node) in cluster.nodes.iter_mut().enumerate() {
                    let address = network.address(index).into();
                    node.udp = SocketAddr::new(address, 7101);
                    node.advertised = node.udp;
                    node.http = SocketAddr::new(address, 8101);
                    node.launcher = network.launcher(index);
                }
                cluster.http_route = Some(network.http_route());
                Network::Namespaces(network)
            }
            PartitionMode::Auto | PartitionMode::Proxy => {
                let targets: Vec<SocketAddr> = cluster.nodes.iter().map(|node| node.udp).collect();
                let proxy = FaultProxy::start(&targets)
                    .map_err(|error| Abort::Setup(format!("cannot start the proxy: {error}")))?;
                for (index, node) in cluster.nodes.iter_mut().enumerate() {
                    node.advertised = proxy.address(index);
                }
                Network::Proxy(proxy)
            }
        };
        let ledger = cluster.ledger.clone();
        let child_arguments = [
            "--alive-ms".to_string(),
            CHILD_PERIOD.as_millis().to_string(),
            "--store".to_string(),
            store.socket().display().to_string(),
            "--write-ms".to_string(),
            CHILD_PERIOD.as_millis().to_string(),
            "--acks".to_string(),
            acks.display().to_string(),
        ];
        // The child's arguments name files in the cluster's own directory, which exists only
        // once the cluster is prepared.
        cluster.set_child_arguments(&child_arguments);
        for index in 0..size {
            cluster.spawn(index);
        }
        Ok(Campaign {
            cluster,
            store,
            network,
            run,
            size,
            rng: Rng(seed),
            bounds: run.bounds(),
            tail: LedgerTail::new(&ledger),
            acks,
            store_log,
            frozen: BTreeSet::new(),
        })
    }

    fn say(&self, text: &str) {
        println!("[{}] {} nodes {text}", self.run.clock(), self.size);
    }

    fn name(&self, index: usize) -> String {
        self.cluster.nodes[index].name.clone()
    }

    fn check_interrupt(&self) -> Result<(), Abort> {
        if self.run.interrupted.load(Ordering::SeqCst) {
            Err(Abort::Interrupted)
        } else {
            Ok(())
        }
    }

    /// Sleeps `duration`, waking to notice Ctrl-C.
    fn sleep(&self, duration: Duration) -> Result<(), Abort> {
        let until = Instant::now() + duration;
        loop {
            self.check_interrupt()?;
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            std::thread::sleep((until - now).min(POLL));
        }
    }

    fn run(&mut self, budget: &Budget, report: &mut CampaignReport) -> Result<(), Abort> {
        let first = self.bounds.recovery() + self.bounds.timing.lease;
        let Some(mut healthy) = self.wait_healthy(first)? else {
            report.violations.push(format!(
                "recovery: no healthy cluster within {} ms of the start",
                millis(first)
            ));
            return Err(Abort::Stuck);
        };
        self.say(&format!(
            "up: {} acts with token {}",
            self.name(healthy.leader),
            healthy.token
        ));
        let choices: Vec<(Fault, u64)> = Fault::WEIGHTS
            .iter()
            .copied()
            .filter(|(fault, _)| fault.is_available(self.size))
            .filter(|(fault, _)| {
                let only = &self.run.args.faults;
                only.is_empty() || only.iter().any(|name| name == fault.name())
            })
            .collect();
        if choices.is_empty() {
            self.say("none of the --faults applies to this cluster size");
            return Ok(());
        }
        let total_weight: u64 = choices.iter().map(|(_, weight)| weight).sum();
        // Bounded by the budget: by time, and by cycles when given.
        loop {
            if Instant::now() >= budget.until
                || budget.cycles.is_some_and(|cycles| report.cycles >= cycles)
            {
                return Ok(());
            }
            self.check_interrupt()?;
            let mut pick = self.rng.below(total_weight);
            let mut fault = choices[0].0;
            for (candidate, weight) in &choices {
                if pick < *weight {
                    fault = *candidate;
                    break;
                }
                pick -= weight;
            }
            report.cycles += 1;
            *report.faults.entry(fault).or_default() += 1;
            let outcome = match fault {
                Fault::KillFollower
                | Fault::PauseFollower
                | Fault::PartitionFollower
                | Fault::RestartFollower => self.follower_fault(fault, &healthy, report)?,
                _ => self.leader_fault(fault, &healthy, report)?,
            };
            match outcome {
                Some(next) => healthy = next,
                None => {
                    report.violations.push(format!(
                        "recovery: the cluster was not healthy within {} ms after {} (cycle {})",
                        millis(self.bounds.recovery()),
                        fault.name(),
                        report.cycles
                    ));
                    return Err(Abort::Stuck);
                }
            }
        }
    }

    /// Polls until the cluster is healthy, for at most `limit`.
    fn wait_healthy(&mut self, limit: Duration) -> Result<Option<Healthy>, Abort> {
        let give_up = Instant::now() + limit;
        loop {
            self.check_interrupt()?;
            if let Some(healthy) = self.cluster.healthy(&mut self.tail) {
                return Ok(Some(healthy));
            }
            if Instant::now() >= give_up {
                return Ok(None);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits for a child with a token above `token`, for at most `limit`.
    fn wait_successor(
        &mut self,
        token: u64,
        limit: Duration,
    ) -> Result<Option<tenure_harness::LedgerEntry>, Abort> {
        let give_up = Instant::now() + limit;
        loop {
            self.check_interrupt()?;
            self.tail.poll();
            if let Some(start) = self.tail.start_above(token) {
                return Ok(Some(start.clone()));
            }
            if Instant::now() >= give_up {
                return Ok(None);
            }
            std::thread::sleep(POLL / 5);
        }
    }

    /// Waits for the stop line of child `pid`, for at most `limit`.
    fn wait_stop(&mut self, pid: u32, limit: Duration) -> Result<Option<u64>, Abort> {
        let give_up = Instant::now() + limit;
        loop {
            self.check_interrupt()?;
            self.tail.poll();
            if let Some(stop) = self.tail.stop_of(pid) {
                return Ok(Some(stop.at));
            }
            if Instant::now() >= give_up {
                return Ok(None);
            }
            std::thread::sleep(POLL / 5);
        }
    }

    fn random_follower(&mut self, leader: usize) -> usize {
        let offset = 1 + self.rng.below(u64::try_from(self.size - 1).unwrap_or(1));
        (leader + usize::try_from(offset).unwrap_or(1)) % self.size
    }

    /// A fault that takes the leader out; measures the failover and checks its bound.
    fn leader_fault(
        &mut self,
        fault: Fault,
        healthy: &Healthy,
        report: &mut CampaignReport,
    ) -> Result<Option<Healthy>, Abort> {
        let leader = healthy.leader;
        let leader_name = self.name(leader);
        let partner =
            (fault == Fault::PartitionLeaderAndFollower).then(|| self.random_follower(leader));
        let mut frozen_groups = Vec::new();
        let faulted_at = match fault {
            Fault::KillLeader | Fault::CrashRestartLeader => {
                let at = self.cluster.signal(leader, Signal::KILL);
                self.cluster
                    .try_wait_for_exit(leader, Duration::from_secs(5));
                if fault == Fault::CrashRestartLeader {
                    self.cluster.spawn(leader);
                }
                at
            }
            Fault::TermLeader => self.cluster.signal(leader, Signal::TERM),
            Fault::PauseLeader => self.cluster.signal(leader, Signal::STOP),
            Fault::FreezeLeaderNode => {
                let at = self.cluster.signal(leader, Signal::STOP);
                frozen_groups = self.freeze_descendants(leader);
                self.frozen.insert(healthy.child_pid);
                at
            }
            Fault::PartitionLeader | Fault::PartitionLeaderAndFollower => {
                let at = monotonic_nanos();
                let cut = self
                    .network
                    .isolate(leader)
                    .and_then(|()| partner.map_or(Ok(()), |partner| self.network.isolate(partner)));
                if let Err(problem) = cut {
                    return Err(Abort::Setup(format!(
                        "cannot cut {leader_name} off: {problem}"
                    )));
                }
                at
            }
            _ => unreachable!("follower faults are handled by follower_fault"),
        };

        // The successor, within the bound.
        let bound = if fault == Fault::TermLeader {
            self.bounds.handover()
        } else {
            self.bounds.crash()
        };
        let successor = self.wait_successor(healthy.token, self.bounds.recovery())?;
        let mut line = format!(
            "#{} {} {leader_name} (token {})",
            report.cycles,
            fault.name(),
            healthy.token
        );
        if let Some(partner) = partner {
            line.push_str(&format!(" and {}", self.name(partner)));
        }
        match &successor {
            Some(start) => {
                let took = Duration::from_nanos(start.at.saturating_sub(faulted_at));
                report.failovers_checked += 1;
                if fault == Fault::TermLeader {
                    report.handovers.push(took);
                } else {
                    report.crash_failovers.push(took);
                }
                line.push_str(&format!(
                    ": {} acts with token {} after {} ms (bound {} ms)",
                    start.node,
                    start.token,
                    millis(took),
                    millis(bound)
                ));
                if took > bound {
                    report.violations.push(format!(
                        "bound: after {} of {leader_name} (cycle {}), {} acted after {} ms, \
                         beyond the bound of {} ms",
                        fault.name(),
                        report.cycles,
                        start.node,
                        millis(took),
                        millis(bound)
                    ));
                }
            }
            None => {
                line.push_str(": no successor");
                report.violations.push(format!(
                    "bound: after {} of {leader_name} (cycle {}), no child started within {} ms",
                    fault.name(),
                    report.cycles,
                    millis(self.bounds.recovery())
                ));
            }
        }

        // The guard stopped the old child before the lease could end: the last renewal was
        // sent no later than the fault, so the lease ends within the lease hold after it.
        if matches!(
            fault,
            Fault::KillLeader
                | Fault::CrashRestartLeader
                | Fault::PauseLeader
                | Fault::PartitionLeader
                | Fault::PartitionLeaderAndFollower
        ) {
            let hold = self.bounds.timing.lease_hold();
            let stop = self.wait_stop(healthy.child_pid, self.bounds.recovery())?;
            report.guard_stops_checked += 1;
            match stop {
                Some(stop) if stop <= faulted_at + nanos(hold) => {
                    line.push_str(&format!(
                        "; old child stopped {} ms after the fault",
                        (stop.saturating_sub(faulted_at)) / 1_000_000
                    ));
                }
                Some(stop) => report.violations.push(format!(
                    "guard: after {} of {leader_name} (cycle {}), its child stopped {} ms after \
                     the fault, past the lease held per renewal ({} ms)",
                    fault.name(),
                    report.cycles,
                    stop.saturating_sub(faulted_at) / 1_000_000,
                    millis(hold)
                )),
                None if !tenure_node::cluster::process::is_alive(healthy.child_pid as i32) => {
                    line.push_str("; old child killed without a stop line");
                }
                None => report.violations.push(format!(
                    "guard: after {} of {leader_name} (cycle {}), its child {} is still running",
                    fault.name(),
                    report.cycles,
                    healthy.child_pid
                )),
            }
        }

        // Heal.
        match fault {
            Fault::KillLeader => {
                let delay = self.rng.duration(self.bounds.timing.lease);
                self.sleep(delay)?;
                self.cluster.spawn(leader);
            }
            Fault::CrashRestartLeader => {}
            Fault::TermLeader => {
                let limit = self.bounds.handover();
                match self.cluster.try_wait_for_exit(leader, limit) {
                    Some(status) if status.code() == Some(0) => {}
                    Some(status) => report.violations.push(format!(
                        "graceful: {leader_name} exited with {status} after SIGTERM (cycle {})",
                        report.cycles
                    )),
                    None => {
                        report.violations.push(format!(
                            "graceful: {leader_name} did not exit within {} ms of SIGTERM \
                             (cycle {})",
                            millis(limit),
                            report.cycles
                        ));
                        self.cluster.signal(leader, Signal::KILL);
                        self.cluster
                            .try_wait_for_exit(leader, Duration::from_secs(5));
                    }
                }
                let delay = self.rng.duration(self.bounds.timing.lease);
                self.sleep(delay)?;
                self.cluster.spawn(leader);
            }
            Fault::PauseLeader => {
                // A pause longer than the lease, and past the successor's start.
                let extra = self.rng.duration(self.bounds.timing.lease / 2);
                let minimum = faulted_at + nanos(self.bounds.timing.lease.mul_f64(1.2));
                let until = minimum.max(monotonic_nanos()) + nanos(extra);
                self.sleep(Duration::from_nanos(
                    until.saturating_sub(monotonic_nanos()),
                ))?;
                self.cluster.signal(leader, Signal::CONT);
            }
            Fault::FreezeLeaderNode => {
                self.thaw_after_successor_wrote(leader, healthy, &frozen_groups, report)?;
                line.push_str(&format!(
                    "; frozen child ran {} ms after the resume",
                    report
                        .freezes
                        .last()
                        .and_then(|freeze| freeze.stale_run)
                        .map_or("?".to_string(), |run| millis(run).to_string())
                ));
            }
            Fault::PartitionLeader | Fault::PartitionLeaderAndFollower => {
                let extra = self.rng.duration(self.bounds.timing.lease);
                self.sleep(extra)?;
                let healed = self
                    .network
                    .heal(leader)
                    .and_then(|()| partner.map_or(Ok(()), |partner| self.network.heal(partner)));
                if let Err(problem) = healed {
                    return Err(Abort::Setup(format!(
                        "cannot heal {leader_name}: {problem}"
                    )));
                }
            }
            _ => {}
        }
        self.say(&line);
        self.wait_healthy(self.bounds.recovery())
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

    /// A fault of a follower; the leader should carry on.
    fn follower_fault(
        &mut self,
        fault: Fault,
        healthy: &Healthy,
        report: &mut CampaignReport,
    ) -> Result<Option<Healthy>, Abort> {
        let follower = self.random_follower(healthy.leader);
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
                let limit = self.bounds.handover();
                match self.cluster.try_wait_for_exit(follower, limit) {
                    Some(status) if status.code() == Some(0) => {}
                    Some(status) => report.violations.push(format!(
                        "graceful: follower {name} exited with {status} after SIGTERM (cycle {})",
                        report.cycles
                    )),
                    None => {
                        report.violations.push(format!(
                            "graceful: follower {name} did not exit within {} ms of SIGTERM \
                             (cycle {})",
                            millis(limit),
                            report.cycles
                        ));
                        self.cluster.signal(follower, Signal::KILL);
                        self.cluster
                            .try_wait_for_exit(follower, Duration::from_secs(5));
                    }
                }
                self.cluster.spawn(follower);
            }
            _ => unreachable!("leader faults are handled by leader_fault"),
        }
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

    /// Stops the cluster (the guards stop the children, which record their stop), then checks
    /// the ledger, the acknowledgements and the store's log.
    fn finish(mut self, report: &mut CampaignReport, keep: bool) {
        // Continue anything still frozen, so that its stop is recorded.
        for index in 0..self.size {
            if self.cluster.is_running(index) {
                self.cluster.signal(index, Signal::CONT);
            }
        }
        self.cluster.shutdown();
        if self.run.args.count_freezes_as_violations {
            self.frozen.clear();
        }
        let ledger = read_ledger(&self.cluster.ledger);
        report.children = check_children(&intervals(&ledger), &self.frozen, CHILD_PERIOD);
        let records = read_store_log(&self.store_log);
        report.store = check_store(&records, &read_acks(&self.acks), &self.frozen);
        for freeze in &report.freezes {
            let after_resume = records
                .iter()
                .filter(|record| record.pid == freeze.pid && record.at >= freeze.resumed_at);
            for record in after_resume {
                if record.accepted {
                    report.violations.push(format!(
                        "store: a write of the frozen child {} (token {}) was accepted after \
                         its resume",
                        freeze.pid, freeze.token
                    ));
                } else {
                    report.rejected_after_resume += 1;
                }
            }
        }
        for violation in &report.children.violations {
            report.violations.push(format!("ledger: {violation}"));
        }
        for violation in &report.store.violations {
            let prefix = if violation.starts_with("acknowledged") {
                "acks"
            } else {
                "store"
            };
            report.violations.push(format!("{prefix}: {violation}"));
        }
        self.say(&format!(
            "done: {} cycles, {} children, {} writes accepted, {} rejected, {} violations",
            report.cycles,
            report.children.children,
            report.store.accepted,
            report.store.rejected,
            report.violations.len()
        ));
        if keep || !report.violations.is_empty() {
            report.kept = self.cluster.keep_directory();
        }
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
