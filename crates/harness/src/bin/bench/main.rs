//! The benchmark: crash failover, partition failover, cold start, graceful handover and
//! footprint of real `tenure` processes, and the same crash failover measured on etcd 3.4's
//! `etcdctl lock` at the same TTL, in one run. Run it through `scripts/bench.sh` (which installs
//! etcd and builds in release); docs/benchmarks.md holds the figures and explains them.
//!
//! ```sh
//! cargo run --release -p tenure-harness --bin bench -- --rounds 15 --out target/bench
//! ```
//!
//! What it measures, each over `--rounds` rounds on clusters of 3 nodes on 127.0.0.x, every
//! node supervising the ledger child (`tenure_harness::child`, run as `bench __child`), at
//! every lease of the sweep (`--leases`, with `--lease` added; heartbeat and stop grace scale
//! with the lease, see `tenure::timing_for`), from the shortest lease up:
//!
//! - crash failover: SIGKILL of the acting node's tenure until the next child's `start` line
//!   (both on `CLOCK_MONOTONIC`), which node took over and its token; the killed node is
//!   restarted and the next round starts once it has rejoined, after a random fraction of a
//!   heartbeat;
//! - partition failover: the acting node cut off from the others by a UDP fault proxy
//!   (`tenure_harness::proxy`) in front of every node, until the next child starts; then healed;
//! - cold start: a fresh cluster (no state) started at once, until the first child starts;
//! - etcd 3.4 (`--etcd`, on by default), at a TTL equal to the lease where etcd can set one: a
//!   3-member cluster on 127.0.0.1 and 3 contenders `etcdctl lock --ttl N tenure-bench -- bench
//!   __child ...`; failover after SIGKILL of the holding etcdctl, and whether its old child
//!   still runs when the new one starts;
//! - at `--lease` only (default 2 s, the default timing): graceful handover (SIGTERM instead of
//!   SIGKILL, with the old child's stop apart), once on a quiet machine and once beside
//!   `--load-processes` busy loops (`load`); the footprint over `--idle` (resident memory and
//!   CPU time of every tenure process and of the acting node's guard, datagrams sent per
//!   second); and the memory and idle CPU of etcd's members and contenders.
//!
//! `--quick` measures only crash failover and graceful handover at `--lease` (what the shipped
//! binary's former hidden `tenure bench` measured), in a minute or two.
//!
//! It writes `report.md` (the tables), `samples.csv` (every round) and `failover.svg` (failover
//! against lease and the limit line, with etcd's points) into `--out`. Exit status 0, or 1 when
//! a measurement could not be taken (the message says why), 130 on Ctrl-C.
//!
//! The benchmark's parts: `session` (the run, its order and its waits), `tenure` (crash failover
//! and handover rounds), `partition` (partition failover and cold start), `load`, `footprint`,
//! `etcd` (etcd's cluster and its failover), `results` (what was measured), `ranking` (who
//! should take over), `targets` (the limit line), `machine`, `report` (report.md and
//! samples.csv) and `plot` (failover.svg).

mod etcd;
mod footprint;
mod load;
mod machine;
mod partition;
mod plot;
mod ranking;
mod report;
mod results;
mod session;
mod store_load;
mod store_report;
mod store_results;
mod stores;
mod targets;
mod tenure;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tenure_harness::interrupt_flag;

use crate::session::Bench;
use crate::store_results::BackendKind;

/// The hidden first argument that makes this binary run as the supervised child.
const CHILD_MODE: &str = "__child";
/// The hidden first argument that makes this binary a busy loop (`load`).
const SPIN_MODE: &str = "__spin";
/// The children's alive stamps (only for the end-of-run overlap check).
const CHILD_ALIVE: Duration = Duration::from_millis(100);
/// Longest wait for any one step (an election, a restart, etcd starting).
const STEP_LIMIT: Duration = Duration::from_secs(30);
/// How often waits poll.
const POLL: Duration = Duration::from_millis(10);
/// The prefix of the benchmark's directories, followed by its process ID (see
/// `procfs::remove_stale_runs`).
const RUN_PREFIX: &str = "tenure-bench-";

#[derive(Debug, Parser)]
#[command(
    name = "bench",
    about = "Measure crash and partition failover, cold start, graceful handover and footprint \
             of tenure, and failover of etcdctl lock at the same TTL, on this machine",
    after_help = "Run it through scripts/bench.sh, which installs etcd and builds in release."
)]
struct Args {
    /// Rounds of every failover and handover measurement.
    #[arg(long, default_value_t = 20)]
    rounds: u32,
    /// How long to watch an idle cluster for CPU and datagrams.
    #[arg(long, default_value = "30s", value_parser = tenure_node::cli::parse_duration)]
    idle: Duration,
    /// The lease measured in full (graceful handover with and without load, footprint, etcd's
    /// footprint), besides the sweep; heartbeat and stop grace scale with it. The default is
    /// tenure's default timing.
    #[arg(long, default_value = "2s", value_parser = tenure_node::cli::parse_duration)]
    lease: Duration,
    /// The sweep: leases to measure crash failover, partition failover, cold start and etcd at
    /// (--lease is added if missing).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "250ms,500ms,1s,2s,5s",
        value_parser = tenure_node::cli::parse_duration
    )]
    leases: Vec<Duration>,
    /// Busy-loop processes beside the second series of graceful handovers; 0 skips that series.
    /// The default is one per CPU.
    #[arg(long)]
    load_processes: Option<usize>,
    /// Only crash failover and graceful handover at --lease: no other leases, no partitions,
    /// no cold starts, no load, no footprint, no etcd.
    #[arg(long)]
    quick: bool,
    /// Also measure etcd 3.4 (`etcd` and `etcdctl` on PATH).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    etcd: bool,
    /// Measure these store backends (protocol: Store leases) instead of the quorum: crash
    /// failover, graceful handover and the store's load at --lease, for every size of
    /// --store-nodes, and `etcdctl lock` on the same etcd (unless --etcd false). The stores
    /// are those of scripts/stores.sh, started if need be.
    #[arg(long, value_delimiter = ',', value_enum)]
    backends: Vec<BackendKind>,
    /// Cluster sizes measured with --backends (at least 2 nodes each).
    #[arg(long, value_delimiter = ',', default_value = "2,3", value_parser = parse_store_nodes)]
    store_nodes: Vec<usize>,
    /// Rounds of every --backends measurement.
    #[arg(long, default_value_t = 10)]
    store_rounds: u32,
    /// Where to write report.md, samples.csv and failover.svg.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
}

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().collect();
    if raw.get(1).map(String::as_str) == Some(CHILD_MODE) {
        return tenure_harness::child::run(&raw[2..]);
    }
    if raw.get(1).map(String::as_str) == Some(SPIN_MODE) {
        return load::spin(&raw[2..]);
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

/// A cluster size for --store-nodes: a failover needs a second node, and more than 9 only
/// slows the run.
fn parse_store_nodes(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(nodes) if (2..=9).contains(&nodes) => Ok(nodes),
        _ => Err(format!("{text} is no cluster size from 2 to 9")),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_cluster_sizes_need_a_second_node() {
        assert_eq!(parse_store_nodes("2"), Ok(2));
        assert_eq!(parse_store_nodes("9"), Ok(9));
        for refused in ["1", "0", "10", "two", ""] {
            assert!(parse_store_nodes(refused).is_err(), "{refused}");
        }
        let args = Args::try_parse_from(["bench", "--backends", "etcd,postgres"]).unwrap();
        assert_eq!(args.backends, [BackendKind::Etcd, BackendKind::Postgres]);
        assert_eq!(args.store_nodes, [2, 3]);
        assert_eq!(args.store_rounds, 10);
        assert!(Args::try_parse_from(["bench", "--backends", "mysql"]).is_err());
    }
}
