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
//! - etcd 3.4 (`--etcd`, on by default): a 3-member cluster on 127.0.0.1 and 3 contenders
//!   `etcdctl lock --ttl 2 tenure-bench -- bench __child ...`; failover after SIGKILL of the
//!   holding etcdctl, whether its old child still runs when the new one starts, and the
//!   memory and idle CPU of the members and contenders.
//!
//! It writes `report.md` (the tables), `samples.csv` (every round) and `failover.svg` (failover
//! against lease, with etcd's point) into `--out`. Exit status 0, or 1 when a measurement could
//! not be taken (the message says why), 130 on Ctrl-C.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use tenure_harness::analysis::check_children;
use tenure_harness::ledger_tail::LedgerTail;
use tenure_harness::stats::{millis, Summary};
use tenure_harness::{
    free_tcp, intervals, metric, monotonic_nanos, procfs, read_ledger, tenure_binary, Cluster,
    ClusterSpec, Healthy, LedgerEntry, Signal, Timing,
};
use tenure_node::cluster::interrupt_flag;
use tenure_node::cluster::process::{exit_with_parent, is_alive, processes_mentioning, signal};

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
    /// Leases to measure crash failover at, besides the default of 2s.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1s,500ms,250ms",
        value_parser = tenure_node::cli::parse_duration
    )]
    leases: Vec<Duration>,
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
    let mut bench = Bench {
        args,
        interrupted: &interrupted,
        started: Instant::now(),
        machine: String::new(),
        loads: Vec::new(),
        samples: Vec::new(),
        results: Results::default(),
        rng: Rng(monotonic_nanos()),
    };
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

/// SplitMix64, for the random phase of each round.
struct Rng(u64);

impl Rng {
    fn duration(&mut self, limit: Duration) -> Duration {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let bound = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX).max(1);
        Duration::from_nanos(z % bound)
    }
}

/// The timing measured at each lease: heartbeat and stop grace scale with the lease so that
/// the acting window stays open (docs/operations.md, "Tuning").
fn timing_for(lease: Duration) -> Timing {
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

/// Crash failovers measured at one lease.
#[derive(Clone, Debug)]
struct LeaseResult {
    timing: Timing,
    failovers: Vec<Duration>,
    overlaps: usize,
}

/// The footprint of one node at idle.
#[derive(Clone, Debug)]
struct NodeFootprint {
    name: String,
    leads: bool,
    tenure_kib: u64,
    tenure_cpu: f64,
    guard_kib: Option<u64>,
    guard_cpu: Option<f64>,
    sent_per_second: f64,
}

/// etcd's side.
#[derive(Clone, Debug, Default)]
struct EtcdResult {
    version: String,
    failovers: Vec<Duration>,
    old_child_still_running: u32,
    member_kib: Vec<u64>,
    contender_kib: Vec<u64>,
    member_cpu: Vec<f64>,
    contender_cpu: Vec<f64>,
}

#[derive(Debug, Default)]
struct Results {
    leases: Vec<LeaseResult>,
    handovers: Vec<Duration>,
    child_stops: Vec<Duration>,
    after_child_stop: Vec<Duration>,
    footprint: Vec<NodeFootprint>,
    etcd: Option<EtcdResult>,
}

struct Bench<'a> {
    args: Args,
    interrupted: &'a AtomicBool,
    started: Instant,
    /// The machine and its load when the run started.
    machine: String,
    /// One-minute load averages sampled during the run.
    loads: Vec<f64>,
    /// `measurement,setting,round,milliseconds` lines for samples.csv.
    samples: Vec<String>,
    results: Results,
    rng: Rng,
}

impl Bench<'_> {
    fn run(&mut self) -> Result<(), Failure> {
        fs::create_dir_all(&self.args.out).map_err(|error| {
            failed(format!(
                "cannot create {}: {error}",
                self.args.out.display()
            ))
        })?;
        procfs::remove_stale_runs(RUN_PREFIX);
        let rounds = self.args.rounds.max(1);
        let binary = tenure_binary();
        println!(
            "bench: {rounds} rounds each; tenure binary {}{}",
            binary.display(),
            if binary.components().any(|part| part.as_os_str() == "debug") {
                " (a DEBUG build: timings are not representative; use --release)"
            } else {
                ""
            }
        );
        self.machine = machine();
        println!("{}", self.machine.replace('\n', "\n  "));
        self.sample_load();

        // The default timing: crash failover, graceful handover, footprint.
        let default = timing_for(Duration::from_secs(2));
        let result = self.tenure(default, rounds, true)?;
        self.results.leases.push(result);
        for lease in self.args.leases.clone() {
            let result = self.tenure(timing_for(lease), rounds, false)?;
            self.results.leases.push(result);
        }
        self.results
            .leases
            .sort_by_key(|result| result.timing.lease);
        if self.args.etcd {
            let result = self.etcd(rounds)?;
            self.results.etcd = Some(result);
        }
        self.sample_load();
        let report = self.report();
        println!("\n{report}");
        let out = &self.args.out;
        let written = fs::write(out.join("report.md"), &report)
            .and_then(|()| fs::write(out.join("samples.csv"), self.csv()))
            .and_then(|()| fs::write(out.join("failover.svg"), self.svg()));
        written.map_err(|error| failed(format!("cannot write to {}: {error}", out.display())))?;
        println!(
            "wrote {0}/report.md, {0}/samples.csv and {0}/failover.svg",
            out.display()
        );
        Ok(())
    }

    fn say(&self, text: &str) {
        println!("[{:>7.1}s] {text}", self.started.elapsed().as_secs_f64());
    }

    fn sample_load(&mut self) {
        if let Some(load) = fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|text| text.split_whitespace().next()?.parse().ok())
        {
            self.loads.push(load);
        }
    }

    fn check_interrupt(&self) -> Result<(), Failure> {
        if self.interrupted.load(Ordering::SeqCst) {
            Err(Failure::Interrupted)
        } else {
            Ok(())
        }
    }

    /// Polls `check` until it returns `Some`, for at most `limit`.
    fn wait_for<T>(
        &self,
        limit: Duration,
        what: &str,
        mut check: impl FnMut() -> Option<T>,
    ) -> Result<T, Failure> {
        let give_up = Instant::now() + limit;
        loop {
            self.check_interrupt()?;
            if let Some(value) = check() {
                return Ok(value);
            }
            if Instant::now() >= give_up {
                return Err(failed(format!(
                    "timed out after {} s waiting for {what}",
                    limit.as_secs()
                )));
            }
            std::thread::sleep(POLL);
        }
    }

    fn sleep(&self, duration: Duration) -> Result<(), Failure> {
        let until = Instant::now() + duration;
        while Instant::now() < until {
            self.check_interrupt()?;
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
        }
        Ok(())
    }

    fn child_spec(&self, timing: Timing) -> Result<ClusterSpec, Failure> {
        let executable = std::env::current_exe()
            .map_err(|error| failed(format!("cannot find this program: {error}")))?;
        Ok(ClusterSpec {
            timing,
            child_leading_arguments: vec![CHILD_MODE.to_string()],
            child_arguments: vec![
                "--alive-ms".to_string(),
                CHILD_ALIVE.as_millis().to_string(),
            ],
            log_level: "info".to_string(),
            directory_prefix: format!("{RUN_PREFIX}{}-", std::process::id()),
            ..ClusterSpec::new(3, &executable.display().to_string())
        })
    }

    fn wait_healthy(&self, cluster: &Cluster, tail: &mut LedgerTail) -> Result<Healthy, Failure> {
        self.wait_for(STEP_LIMIT, "a healthy cluster", || cluster.healthy(tail))
    }

    fn wait_start(
        &self,
        tail: &mut LedgerTail,
        above: u64,
        what: &str,
    ) -> Result<LedgerEntry, Failure> {
        self.wait_for(STEP_LIMIT, what, || {
            tail.poll();
            tail.start_above(above).cloned()
        })
    }

    /// Crash failover (and, with `full`, graceful handover and the footprint) at `timing`.
    fn tenure(&mut self, timing: Timing, rounds: u32, full: bool) -> Result<LeaseResult, Failure> {
        let lease = humantime::format_duration(timing.lease).to_string();
        self.say(&format!(
            "tenure, lease {lease}, heartbeat {}, stop grace {}: starting 3 nodes",
            humantime::format_duration(timing.heartbeat),
            humantime::format_duration(timing.stop_grace)
        ));
        let mut cluster = Cluster::start(self.child_spec(timing)?);
        let mut tail = LedgerTail::new(&cluster.ledger);
        let mut healthy = self.wait_healthy(&cluster, &mut tail)?;
        let mut failovers = Vec::new();
        for round in 1..=rounds {
            let phase = self.rng.duration(timing.heartbeat);
            self.sleep(phase)?;
            let killed_at = cluster.kill(healthy.leader);
            let next = self.wait_start(&mut tail, healthy.token, "the next child")?;
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
            cluster.spawn(healthy.leader);
            healthy = self.wait_healthy(&cluster, &mut tail)?;
        }
        self.sample_load();
        if full {
            for round in 1..=rounds {
                let phase = self.rng.duration(timing.heartbeat);
                self.sleep(phase)?;
                let terminated_at = cluster.signal(healthy.leader, Signal::TERM);
                let next = self.wait_start(&mut tail, healthy.token, "the successor's child")?;
                let stopped = tail
                    .stop_of(healthy.child_pid)
                    .map(|stop| stop.at)
                    .unwrap_or(next.at);
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
                if cluster
                    .try_wait_for_exit(healthy.leader, STEP_LIMIT)
                    .is_none()
                {
                    return Err(failed("a node did not exit after SIGTERM"));
                }
                cluster.spawn(healthy.leader);
                healthy = self.wait_healthy(&cluster, &mut tail)?;
            }
            self.sample_load();
            self.results.footprint = self.footprint(&cluster, &mut tail)?;
            self.sample_load();
        }
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

    /// Memory, CPU and datagrams of an idle cluster over `--idle`.
    fn footprint(
        &self,
        cluster: &Cluster,
        tail: &mut LedgerTail,
    ) -> Result<Vec<NodeFootprint>, Failure> {
        let healthy = self.wait_healthy(cluster, tail)?;
        // Let the restart of the last round settle.
        self.sleep(Duration::from_secs(2))?;
        let guard = procfs::children_of(cluster.pid(healthy.leader))
            .into_iter()
            .find(|pid| procfs::command_line(*pid).is_some_and(|line| line.contains("__guard")));
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
            "tenure lease 2s: watching the idle cluster for {} s",
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

    /// etcd's failover with `etcdctl lock --ttl 2`.
    fn etcd(&mut self, rounds: u32) -> Result<EtcdResult, Failure> {
        let version = etcd_version()?;
        self.say(&format!(
            "etcd {version}: starting 3 members and 3 `etcdctl lock --ttl {ETCD_TTL_SECONDS}` \
             contenders on 127.0.0.1"
        ));
        let mut etcd = Etcd::start()?;
        let endpoints = etcd.endpoints();
        self.wait_for(STEP_LIMIT, "etcd to become healthy", || {
            let status = Command::new("etcdctl")
                .args(["--endpoints", &endpoints, "endpoint", "health"])
                .env("ETCDCTL_API", "3")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .ok()?;
            status.success().then_some(())
        })?;
        let executable = std::env::current_exe()
            .map_err(|error| failed(format!("cannot find this program: {error}")))?;
        for index in 0..3 {
            etcd.start_contender(index, &executable)?;
        }
        let mut tail = LedgerTail::new(&etcd.ledger);
        let mut result = EtcdResult {
            version,
            ..EtcdResult::default()
        };
        for round in 1..=rounds {
            // The holder: the contender whose child runs.
            let holder = self.wait_for(STEP_LIMIT, "a contender to hold the lock", || {
                tail.poll();
                let running = tail.running();
                let [child] = running[..] else {
                    return None;
                };
                let index = child
                    .node
                    .strip_prefix('c')?
                    .parse::<usize>()
                    .ok()?
                    .checked_sub(1)?;
                Some((index, child.clone()))
            })?;
            // A random phase against etcdctl's keep-alives (every TTL/3).
            let phase = self.rng.duration(Duration::from_secs(ETCD_TTL_SECONDS) / 3);
            self.sleep(phase)?;
            let killed_at = etcd.kill_contender(holder.0);
            let next = self.wait_for(STEP_LIMIT, "the next contender's child", || {
                tail.poll();
                tail.starts()
                    .iter()
                    .find(|start| start.at > killed_at && start.pid != holder.1.pid)
                    .cloned()
            })?;
            let still_running = is_alive(holder.1.pid as i32);
            let took = Duration::from_nanos(next.at.saturating_sub(killed_at));
            self.say(&format!(
                "etcd: failover {round:>2}/{rounds}: {} ms; old child {}",
                millis(took),
                if still_running {
                    "still running"
                } else {
                    "gone"
                }
            ));
            self.samples.push(format!(
                "etcd crash failover,{ETCD_TTL_SECONDS}s,{round},{}",
                took.as_secs_f64() * 1e3
            ));
            result.failovers.push(took);
            if still_running {
                result.old_child_still_running += 1;
            }
            // Stop the orphan (nothing else ever would) and bring the contender back.
            signal(holder.1.pid as i32, Signal::TERM);
            self.wait_for(STEP_LIMIT, "the orphaned child to stop", || {
                (!is_alive(holder.1.pid as i32)).then_some(())
            })?;
            etcd.start_contender(holder.0, &executable)?;
        }
        self.sample_load();
        self.say(&format!(
            "etcd: watching the idle cluster for {} s",
            self.args.idle.as_secs()
        ));
        let members: Vec<i32> = etcd.members.iter().map(|child| child.id() as i32).collect();
        let contenders: Vec<i32> = etcd
            .contenders
            .iter()
            .flatten()
            .map(|child| child.id() as i32)
            .collect();
        let ticks = |pid: &i32| procfs::stat(*pid).map_or(0, |stat| stat.cpu_ticks);
        let members_before: Vec<u64> = members.iter().map(ticks).collect();
        let contenders_before: Vec<u64> = contenders.iter().map(ticks).collect();
        let window_start = Instant::now();
        self.sleep(self.args.idle)?;
        let window = window_start.elapsed().as_secs_f64();
        let per_second = procfs::ticks_per_second() as f64;
        let cpu = |pids: &[i32], before: &[u64]| -> Vec<f64> {
            pids.iter()
                .zip(before)
                .map(|(pid, before)| {
                    ticks(pid).saturating_sub(*before) as f64 / per_second / window * 100.0
                })
                .collect()
        };
        result.member_cpu = cpu(&members, &members_before);
        result.contender_cpu = cpu(&contenders, &contenders_before);
        result.member_kib = members
            .iter()
            .filter_map(|pid| procfs::resident_kib(*pid))
            .collect();
        result.contender_kib = contenders
            .iter()
            .filter_map(|pid| procfs::resident_kib(*pid))
            .collect();
        self.sample_load();
        Ok(result)
    }

    fn csv(&self) -> String {
        let mut text = String::from("measurement,setting,round,milliseconds\n");
        for line in &self.samples {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    fn report(&self) -> String {
        let mut text = String::new();
        let results = &self.results;
        let _ = writeln!(text, "## Machine\n");
        let _ = writeln!(text, "```text\n{}", self.machine);
        let loads = Summary::of(
            &self
                .loads
                .iter()
                .map(|load| Duration::from_secs_f64(*load))
                .collect::<Vec<_>>(),
        );
        if let Some(loads) = loads {
            let _ = writeln!(
                text,
                "load average (1 min) during the run: {:.2} to {:.2}, median {:.2}",
                loads.min.as_secs_f64(),
                loads.max.as_secs_f64(),
                loads.median.as_secs_f64()
            );
        }
        let _ = writeln!(
            text,
            "tenure binary: {}\nrounds per measurement: {}\n```\n",
            tenure_binary().display(),
            self.args.rounds
        );

        let _ = writeln!(
            text,
            "## Crash failover against lease\n\nSIGKILL of the acting node's tenure until the \
             next node's child starts. Target: p99 <= 1.2 x lease + 100 ms.\n"
        );
        let _ = writeln!(
            text,
            "| lease | heartbeat | stop grace | rounds | min | median | p99 | max | p99 / lease \
             | target | met | overlaps |"
        );
        let _ = writeln!(
            text,
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
        );
        for result in &results.leases {
            let Some(summary) = Summary::of(&result.failovers) else {
                continue;
            };
            let target = result.timing.lease.mul_f64(1.2) + Duration::from_millis(100);
            let _ = writeln!(
                text,
                "| {} | {} | {} | {} | {} ms | {} ms | **{} ms** | {} ms | {:.2} | {} ms | {} | {} |",
                humantime::format_duration(result.timing.lease),
                humantime::format_duration(result.timing.heartbeat),
                humantime::format_duration(result.timing.stop_grace),
                summary.count,
                millis(summary.min),
                millis(summary.median),
                millis(summary.p99),
                millis(summary.max),
                summary.p99.as_secs_f64() / result.timing.lease.as_secs_f64(),
                millis(target),
                if summary.p99 <= target { "yes" } else { "no" },
                result.overlaps
            );
        }
        if let Some(etcd) = &results.etcd {
            if let Some(summary) = Summary::of(&etcd.failovers) {
                let _ = writeln!(
                    text,
                    "| etcd `--ttl {ETCD_TTL_SECONDS}` | (keep-alive TTL/3) | none | {} | {} ms | {} \
                     ms | **{} ms** | {} ms | {:.2} | | | {} of {} rounds: old child still running \
                     |",
                    summary.count,
                    millis(summary.min),
                    millis(summary.median),
                    millis(summary.p99),
                    millis(summary.max),
                    summary.p99.as_secs_f64() / ETCD_TTL_SECONDS as f64,
                    etcd.old_child_still_running,
                    summary.count
                );
            }
        }

        let _ = writeln!(
            text,
            "\n## Graceful handover (lease 2s)\n\nSIGTERM to the acting node's tenure until the \
             next node's child starts; the first part is the old child's stop (tenure tells its \
             guard, the guard sends SIGTERM, the child records its stop), the second is the \
             election of the successor. Target: p99 <= 100 ms + the child's stop time.\n"
        );
        let _ = writeln!(text, "| part | rounds | min | median | p99 | max |");
        let _ = writeln!(text, "| --- | --- | --- | --- | --- | --- |");
        for (name, samples) in [
            ("SIGTERM until the next child starts", &results.handovers),
            ("SIGTERM until the old child stopped", &results.child_stops),
            (
                "old child stopped until the next child starts",
                &results.after_child_stop,
            ),
        ] {
            if let Some(summary) = Summary::of(samples) {
                let _ = writeln!(
                    text,
                    "| {name} | {} | {} ms | {} ms | **{} ms** | {} ms |",
                    summary.count,
                    millis(summary.min),
                    millis(summary.median),
                    millis(summary.p99),
                    millis(summary.max)
                );
            }
        }

        let _ = writeln!(
            text,
            "\n## Footprint at the default timing (lease 2s, heartbeat 250ms), idle for {} s\n",
            self.args.idle.as_secs()
        );
        let _ = writeln!(
            text,
            "| node | role | tenure RSS | tenure CPU | guard RSS | guard CPU | datagrams sent/s |"
        );
        let _ = writeln!(text, "| --- | --- | --- | --- | --- | --- | --- |");
        let mut total_sent = 0.0;
        for node in &results.footprint {
            total_sent += node.sent_per_second;
            let _ = writeln!(
                text,
                "| {} | {} | {:.1} MiB | {:.3} % | {} | {} | {:.1} |",
                node.name,
                if node.leads { "leader" } else { "follower" },
                node.tenure_kib as f64 / 1024.0,
                node.tenure_cpu,
                node.guard_kib.map_or("-".to_string(), |kib| format!(
                    "{:.1} MiB",
                    kib as f64 / 1024.0
                )),
                node.guard_cpu
                    .map_or("-".to_string(), |cpu| format!("{cpu:.3} %")),
                node.sent_per_second
            );
        }
        let _ = writeln!(
            text,
            "\nDatagrams per second, the whole cluster: {total_sent:.1}. CPU is user + system \
             time from /proc/PID/stat over the window, as % of one core."
        );

        if let Some(etcd) = &results.etcd {
            let _ = writeln!(
                text,
                "\n## etcd {} (`etcdctl lock --ttl {ETCD_TTL_SECONDS}`)\n",
                etcd.version
            );
            let _ = writeln!(text, "| process | RSS | CPU at idle |");
            let _ = writeln!(text, "| --- | --- | --- |");
            for (index, (kib, cpu)) in etcd.member_kib.iter().zip(&etcd.member_cpu).enumerate() {
                let _ = writeln!(
                    text,
                    "| etcd member e{} | {:.1} MiB | {cpu:.3} % |",
                    index + 1,
                    *kib as f64 / 1024.0
                );
            }
            for (index, (kib, cpu)) in etcd
                .contender_kib
                .iter()
                .zip(&etcd.contender_cpu)
                .enumerate()
            {
                let _ = writeln!(
                    text,
                    "| etcdctl lock contender {} | {:.1} MiB | {cpu:.3} % |",
                    index + 1,
                    *kib as f64 / 1024.0
                );
            }
            let _ = writeln!(
                text,
                "\nOld child still running after the new one started: {} of {} rounds.",
                etcd.old_child_still_running,
                etcd.failovers.len()
            );
        }
        text
    }

    /// Failover against lease: tenure's min-max range, median and p99 per lease, the target
    /// line and etcd's point. Hand-written SVG from the measured numbers.
    fn svg(&self) -> String {
        let results = &self.results;
        let (width, height) = (720.0, 440.0);
        let (left, right, top, bottom) = (70.0, 190.0, 40.0, 60.0);
        let max_lease = results
            .leases
            .iter()
            .map(|result| result.timing.lease.as_secs_f64())
            .fold(2.0, f64::max);
        let x_max = max_lease * 1.12;
        let mut y_max: f64 = results
            .leases
            .iter()
            .flat_map(|result| result.failovers.iter())
            .chain(results.etcd.iter().flat_map(|etcd| etcd.failovers.iter()))
            .map(|sample| sample.as_secs_f64() * 1e3)
            .fold(max_lease * 1.3e3, f64::max);
        y_max = (y_max / 500.0).ceil() * 500.0;
        let x = |seconds: f64| left + seconds / x_max * (width - left - right);
        let y = |millis: f64| height - bottom - millis / y_max * (height - top - bottom);
        let mut svg = String::new();
        let _ = writeln!(
            svg,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
             viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">"
        );
        let _ = writeln!(svg, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"22\" font-size=\"14\" text-anchor=\"middle\">Crash failover \
             against lease: SIGKILL of the leader until the next child starts</text>",
            (left + width - right) / 2.0
        );
        // Axes and grid.
        let _ = writeln!(
            svg,
            "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>",
            y(0.0),
            x(x_max),
            y(0.0)
        );
        let _ = writeln!(
            svg,
            "<line x1=\"{left}\" y1=\"{}\" x2=\"{left}\" y2=\"{}\" stroke=\"black\"/>",
            y(0.0),
            y(y_max)
        );
        let mut tick = 0.0;
        while tick <= y_max + 1.0 {
            let _ = writeln!(
                svg,
                "<line x1=\"{left}\" y1=\"{0:.1}\" x2=\"{1:.1}\" y2=\"{0:.1}\" stroke=\"#ddd\"/>\
                 <text x=\"{2}\" y=\"{3:.1}\" text-anchor=\"end\">{tick}</text>",
                y(tick),
                x(x_max),
                left - 6.0,
                y(tick) + 4.0
            );
            tick += 500.0;
        }
        for result in &results.leases {
            let lease = result.timing.lease.as_secs_f64();
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                x(lease),
                y(0.0) + 18.0,
                humantime::format_duration(result.timing.lease)
            );
        }
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">lease</text>\
             <text x=\"18\" y=\"{:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {:.1})\">\
             failover (ms)</text>",
            (left + width - right) / 2.0,
            height - 16.0,
            (top + height - bottom) / 2.0,
            (top + height - bottom) / 2.0
        );
        // Reference lines: one lease, and the target 1.2 x lease + 100 ms.
        let _ = writeln!(
            svg,
            "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#888\" \
             stroke-dasharray=\"2,3\"/>",
            x(0.0),
            y(0.0),
            x(x_max),
            y(x_max * 1e3)
        );
        let _ = writeln!(
            svg,
            "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#c00\" \
             stroke-dasharray=\"6,4\"/>",
            x(0.0),
            y(100.0),
            x(x_max),
            y(x_max * 1.2e3 + 100.0)
        );
        // tenure: range, median (circle) and p99 (square), medians joined.
        let mut medians = Vec::new();
        for result in &results.leases {
            let Some(summary) = Summary::of(&result.failovers) else {
                continue;
            };
            let lease = result.timing.lease.as_secs_f64();
            let _ = writeln!(
                svg,
                "<line x1=\"{0:.1}\" y1=\"{1:.1}\" x2=\"{0:.1}\" y2=\"{2:.1}\" stroke=\"#1f5fbf\" \
                 stroke-width=\"2\" opacity=\"0.5\"/>",
                x(lease),
                y(summary.min.as_secs_f64() * 1e3),
                y(summary.max.as_secs_f64() * 1e3)
            );
            let _ = writeln!(
                svg,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"8\" height=\"8\" fill=\"white\" \
                 stroke=\"#1f5fbf\" stroke-width=\"2\"/>",
                x(lease) - 4.0,
                y(summary.p99.as_secs_f64() * 1e3) - 4.0
            );
            medians.push((x(lease), y(summary.median.as_secs_f64() * 1e3)));
        }
        let path: Vec<String> = medians
            .iter()
            .map(|(px, py)| format!("{px:.1},{py:.1}"))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"#1f5fbf\"/>",
            path.join(" ")
        );
        for (px, py) in &medians {
            let _ = writeln!(
                svg,
                "<circle cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"4.5\" fill=\"#1f5fbf\"/>"
            );
        }
        // etcd at its TTL, shifted right a little so it does not hide tenure's 2 s point.
        if let Some(summary) = results
            .etcd
            .as_ref()
            .and_then(|etcd| Summary::of(&etcd.failovers))
        {
            let ex = x(ETCD_TTL_SECONDS as f64) + 14.0;
            let _ = writeln!(
                svg,
                "<line x1=\"{ex:.1}\" y1=\"{:.1}\" x2=\"{ex:.1}\" y2=\"{:.1}\" stroke=\"#e07000\" \
                 stroke-width=\"2\" opacity=\"0.5\"/>\
                 <rect x=\"{:.1}\" y=\"{:.1}\" width=\"8\" height=\"8\" fill=\"white\" \
                 stroke=\"#e07000\" stroke-width=\"2\"/>\
                 <circle cx=\"{ex:.1}\" cy=\"{:.1}\" r=\"4.5\" fill=\"#e07000\"/>",
                y(summary.min.as_secs_f64() * 1e3),
                y(summary.max.as_secs_f64() * 1e3),
                ex - 4.0,
                y(summary.p99.as_secs_f64() * 1e3) - 4.0,
                y(summary.median.as_secs_f64() * 1e3)
            );
        }
        // Legend.
        let lx = width - right + 16.0;
        let entries = [
            "<circle cx=\"8\" cy=\"0\" r=\"4.5\" fill=\"#1f5fbf\"/>|tenure median",
            "<rect x=\"4\" y=\"-4\" width=\"8\" height=\"8\" fill=\"white\" stroke=\"#1f5fbf\" stroke-width=\"2\"/>|tenure p99",
            "<line x1=\"8\" y1=\"-7\" x2=\"8\" y2=\"7\" stroke=\"#1f5fbf\" stroke-width=\"2\" opacity=\"0.5\"/>|tenure min to max",
            "<circle cx=\"8\" cy=\"0\" r=\"4.5\" fill=\"#e07000\"/>|etcd --ttl 2 median",
            "<rect x=\"4\" y=\"-4\" width=\"8\" height=\"8\" fill=\"white\" stroke=\"#e07000\" stroke-width=\"2\"/>|etcd p99",
            "<line x1=\"0\" y1=\"0\" x2=\"16\" y2=\"0\" stroke=\"#c00\" stroke-dasharray=\"6,4\"/>|target 1.2 L + 100 ms",
            "<line x1=\"0\" y1=\"0\" x2=\"16\" y2=\"0\" stroke=\"#888\" stroke-dasharray=\"2,3\"/>|one lease",
        ];
        for (row, entry) in entries.iter().enumerate() {
            let (mark, label) = entry.split_once('|').unwrap_or((entry, ""));
            let ly = top + 20.0 + row as f64 * 22.0;
            let _ = writeln!(
                svg,
                "<g transform=\"translate({lx:.1} {ly:.1})\">{mark}<text x=\"24\" y=\"4\">{label}\
                 </text></g>"
            );
        }
        let _ = writeln!(svg, "</svg>");
        svg
    }
}

/// nproc, CPU model, kernel, memory.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let model = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown".to_string());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|text| text.trim().to_string())
        .unwrap_or_default();
    let memory = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or("unknown".to_string(), |kib| {
            format!("{:.1} GiB", kib as f64 / 1048576.0)
        });
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "machine: {cpus} CPUs ({model}), Linux {kernel}, {memory} memory\nload average at \
         start: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

fn etcd_version() -> Result<String, Failure> {
    let output = Command::new("etcd")
        .arg("--version")
        .output()
        .map_err(|error| {
            failed(format!(
                "etcd is not installed ({error}); scripts/bench.sh installs it, or pass --etcd \
                 false"
            ))
        })?;
    let text = String::from_utf8_lossy(&output.stdout);
    let version = text
        .lines()
        .find_map(|line| line.strip_prefix("etcd Version:"))
        .map(|version| version.trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    if !version.starts_with("3.4") {
        println!("note: etcd {version} is not the 3.4 the comparison was written for");
    }
    Ok(version)
}

/// A 3-member etcd cluster on 127.0.0.1 and 3 lock contenders. Dropping it kills every
/// process it started, including the children that killed contenders orphaned.
struct Etcd {
    directory: tempfile::TempDir,
    marker: String,
    members: Vec<Child>,
    client_urls: Vec<String>,
    contenders: Vec<Option<Child>>,
    ledger: PathBuf,
}

impl Etcd {
    fn start() -> Result<Etcd, Failure> {
        let directory = tempfile::Builder::new()
            .prefix(&format!("{RUN_PREFIX}{}-etcd-", std::process::id()))
            .tempdir()
            .map_err(|error| failed(format!("no temporary directory: {error}")))?;
        let marker = directory.path().display().to_string();
        let port = || {
            free_tcp("127.0.0.1")
                .map(|address| address.port())
                .map_err(|error| failed(format!("no free port: {error}")))
        };
        let clients = (0..3)
            .map(|_| port())
            .collect::<Result<Vec<u16>, Failure>>()?;
        let peers = (0..3)
            .map(|_| port())
            .collect::<Result<Vec<u16>, Failure>>()?;
        let initial: Vec<String> = peers
            .iter()
            .enumerate()
            .map(|(index, port)| format!("e{}=http://127.0.0.1:{port}", index + 1))
            .collect();
        let mut etcd = Etcd {
            ledger: directory.path().join("ledger"),
            directory,
            marker,
            members: Vec::new(),
            client_urls: clients
                .iter()
                .map(|port| format!("http://127.0.0.1:{port}"))
                .collect(),
            contenders: vec![None, None, None],
        };
        for (index, peer) in peers.iter().enumerate() {
            let name = format!("e{}", index + 1);
            let log = fs::File::create(etcd.directory.path().join(format!("{name}.log")))
                .map_err(|error| failed(format!("cannot create etcd's log: {error}")))?;
            let mut command = Command::new("etcd");
            command
                .args(["--name", &name])
                .arg("--data-dir")
                .arg(etcd.directory.path().join(&name))
                .args(["--listen-client-urls", &etcd.client_urls[index]])
                .args(["--advertise-client-urls", &etcd.client_urls[index]])
                .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
                .args([
                    "--initial-advertise-peer-urls",
                    &format!("http://127.0.0.1:{peer}"),
                ])
                .args(["--initial-cluster", &initial.join(",")])
                .args(["--initial-cluster-state", "new"])
                .args([
                    "--initial-cluster-token",
                    &format!("tenure-bench-{}", std::process::id()),
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .process_group(0);
            exit_with_parent(&mut command, Signal::KILL);
            etcd.members.push(
                command
                    .spawn()
                    .map_err(|error| failed(format!("cannot start etcd: {error}")))?,
            );
        }
        Ok(etcd)
    }

    fn endpoints(&self) -> String {
        self.client_urls.join(",")
    }

    /// Starts (again) contender `index`: `etcdctl lock --ttl 2 tenure-bench -- CHILD`. Its
    /// stderr goes to `cN.log` in the directory.
    fn start_contender(&mut self, index: usize, executable: &Path) -> Result<(), Failure> {
        if let Some(mut old) = self.contenders[index].take() {
            let _ = old.kill();
            let _ = old.wait();
        }
        let log = fs::File::options()
            .create(true)
            .append(true)
            .open(self.directory.path().join(format!("c{}.log", index + 1)))
            .map_err(|error| failed(format!("cannot create etcdctl's log: {error}")))?;
        let mut command = Command::new("etcdctl");
        command
            .env("ETCDCTL_API", "3")
            .env("TENURE_NODE_ID", format!("c{}", index + 1))
            .env("TENURE_LEADER_ID", format!("c{}", index + 1))
            .args(["--endpoints", &self.endpoints()])
            .args([
                "lock",
                "--ttl",
                &ETCD_TTL_SECONDS.to_string(),
                "tenure-bench",
                "--",
            ])
            .arg(executable)
            .arg(CHILD_MODE)
            .arg(&self.ledger)
            .args(["--token-env", "ETCD_LOCK_REV"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0);
        exit_with_parent(&mut command, Signal::KILL);
        self.contenders[index] = Some(
            command
                .spawn()
                .map_err(|error| failed(format!("cannot start etcdctl: {error}")))?,
        );
        Ok(())
    }

    /// SIGKILL of contender `index`'s etcdctl (not its child); returns when it was sent.
    fn kill_contender(&mut self, index: usize) -> u64 {
        let at = monotonic_nanos();
        if let Some(mut contender) = self.contenders[index].take() {
            let _ = contender.kill();
            let _ = contender.wait();
        }
        at
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for child in self.contenders.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for child in &mut self.members {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The orphaned children of killed contenders, and anything else of this run.
        let give_up = Instant::now() + Duration::from_secs(5);
        while Instant::now() < give_up && !processes_mentioning(&self.marker).is_empty() {
            for pid in processes_mentioning(&self.marker) {
                signal(pid, Signal::KILL);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
