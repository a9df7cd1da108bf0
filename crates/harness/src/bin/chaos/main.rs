//! The chaos runner: clusters of 3 and 5 real `tenure run` processes, put through faults in an
//! order drawn from a seed, with the safety of their children and of a fenced store checked at
//! the end. See docs/benchmarks.md: Chaos for what it shows and how to read its summary.
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
//!
//! The runner's parts: `fault` (the faults and the seeded plan that picks them), `bounds` (the
//! timed checks), `network` (partitions), `run` (the campaigns over the cluster sizes),
//! `campaign` (one cluster under faults), `leader` and `follower` (one fault each), `report`
//! (what a campaign found, and the summary).

mod bounds;
mod campaign;
mod fault;
mod follower;
mod leader;
mod network;
mod report;
mod run;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use tenure_harness::interrupt_flag;

use crate::fault::Fault;
use crate::run::Run;

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
