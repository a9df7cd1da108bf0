//! The benchmark: crash failover, graceful handover and footprint of real `tenure` processes,
//! and the same failover measured on etcd 3.4's `etcdctl lock`, in one run. Run it through
//! `scripts/bench.sh` (which installs etcd and builds in release); docs/benchmarks.md holds the
//! figures and explains them.
//!
//! ```sh
//! cargo run --release -p tenure-harness --bin bench -- --rounds 20 --out target/bench
//! ```
//!
//! What it measures, each over `--rounds` rounds on clusters of 3 nodes on 127.0.0.x, every
//! node supervising the ledger child (`tenure_harness::child`, run as `bench __child`):
//!
//! - crash failover: SIGKILL of the acting node's tenure until the next child's `start` line
//!   (both on `CLOCK_MONOTONIC`); the killed node is restarted and the next round starts once
//!   it has rejoined, after a random fraction of a heartbeat;
//! - graceful handover: SIGTERM instead, with the old child's stop time apart;
//! - footprint at the default timing, over `--idle`: resident memory and CPU time of every
//!   tenure process and of the acting node's guard, and datagrams sent per second;
//! - crash failover at every lease of `--leases` (heartbeat and stop grace scaled with it);
//!   the first three measurements are at `--lease` (default 2 s, the default timing);
//! - etcd 3.4 (`--etcd`, on by default): a 3-member cluster on 127.0.0.1 and 3 contenders
//!   `etcdctl lock --ttl 2 tenure-bench -- bench __child ...`; failover after SIGKILL of the
//!   holding etcdctl, whether its old child still runs when the new one starts, and the
//!   memory and idle CPU of the members and contenders.
//!
//! `--quick` measures only crash failover and graceful handover at `--lease` (what the shipped
//! binary's former hidden `tenure bench` measured), in a minute or two.
//!
//! It writes `report.md` (the tables), `samples.csv` (every round) and `failover.svg` (failover
//! against lease, with etcd's point) into `--out`. Exit status 0, or 1 when a measurement could
//! not be taken (the message says why), 130 on Ctrl-C.
//!
//! The benchmark's parts: `session` (the run, its order and its waits), `tenure` (failover and
//! handover rounds), `footprint`, `etcd` (etcd's cluster and its failover), `results` (what was
//! measured), `machine`, `report` (report.md and samples.csv) and `plot` (failover.svg).

mod etcd;
mod footprint;
mod machine;
mod plot;
mod report;
mod results;
mod session;
mod tenure;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tenure_harness::interrupt_flag;

use crate::session::Bench;

/// The hidden first argument that makes this binary run as the supervised child.
const CHILD_MODE: &str = "__child";
/// The children's alive stamps (only for the end-of-run overlap check).
const CHILD_ALIVE: Duration = Duration::from_millis(100);
/// Longest wait for any one step (an election, a restart, etcd starting).
const STEP_LIMIT: Duration = Duration::from_secs(30);
/// How often waits poll.
const POLL: Duration = Duration::from_millis(10);
/// The prefix of the benchmark's directories, followed by its process ID (see
/// `procfs::remove_stale_runs`).
const RUN_PREFIX: &str = "tenure-bench-";
/// etcd's lock TTL: the same as tenure's default lease.
const ETCD_TTL_SECONDS: u64 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "bench",
    about = "Measure crash failover, graceful handover and footprint of tenure, and failover of \
             etcdctl lock, on this machine",
    after_help = "Run it through scripts/bench.sh, which installs etcd and builds in release."
)]
struct Args {
    /// Rounds of every failover and handover measurement.
    #[arg(long, default_value_t = 20)]
    rounds: u32,
    /// How long to watch an idle cluster for CPU and datagrams.
    #[arg(long, default_value = "30s", value_parser = tenure_node::cli::parse_duration)]
    idle: Duration,
    /// The lease measured in full (crash failover, graceful handover, footprint); heartbeat
    /// and stop grace scale with it. The default is tenure's default timing.
    #[arg(long, default_value = "2s", value_parser = tenure_node::cli::parse_duration)]
    lease: Duration,
    /// Leases to measure crash failover at, besides --lease.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1s,500ms,250ms",
        value_parser = tenure_node::cli::parse_duration
    )]
    leases: Vec<Duration>,
    /// Only crash failover and graceful handover at --lease: no other leases, no footprint,
    /// no etcd.
    #[arg(long)]
    quick: bool,
    /// Also measure etcd 3.4 (`etcd` and `etcdctl` on PATH).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    etcd: bool,
    /// Where to write report.md, samples.csv and failover.svg.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
}

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().collect();
    if raw.get(1).map(String::as_str) == Some(CHILD_MODE) {
        return tenure_harness::child::run(&raw[2..]);
    }
    let args = Args::parse();
    let interrupted = interrupt_flag();
    let mut bench = Bench::new(args, &interrupted);
    match bench.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Interrupted) => {
            println!("interrupted; everything the benchmark started has been stopped");
            ExitCode::from(130)
        }
        Err(Failure::Failed(problem)) => {
            eprintln!("bench failed: {problem}");
            ExitCode::FAILURE
        }
    }
}

/// Why the benchmark stopped early.
#[derive(Debug)]
enum Failure {
    Interrupted,
    Failed(String),
}

fn failed(problem: impl Into<String>) -> Failure {
    Failure::Failed(problem.into())
}
