//! `dagster`: three real `tenure` nodes supervising the real `dagster-daemon run` of
//! `examples/dagster/`, put through the faults of docs/dagster.md and checked from outside
//! tenure. `scripts/dagster-test.sh` installs PostgreSQL and Dagster, starts the database and
//! runs this; run it through the script.
//!
//! What it checks (docs/dagster.md: The real-client test):
//! - at no poll of `/proc` (every 20 ms) do the daemon process trees of two nodes, or of two
//!   fencing tokens, run at once. A process belongs to a daemon tree when its command line
//!   names dagster (and is no health check) and its environment holds the `TENURE_NODE_ID`
//!   and `TENURE_FENCING_TOKEN` tenure gave the daemon, which its code servers and run workers
//!   inherit; a SIGSTOPped process counts until it is gone;
//! - no node's log says that "Another … daemon is still sending heartbeats";
//! - `dagster-daemon liveness-check` passes after each fault;
//! - every schedule tick was launched exactly once: Dagster's run tags in PostgreSQL hold each
//!   scheduled execution time once, with no minute missing between the first and the last;
//! - the daemons' fencing tokens strictly increase, in the order they started.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use tenure_harness::tenure_binary;
use tenure_node::cluster::{Addresses, ClusterSpec, Output, ProcessCluster, Signal, Stop};

/// How often the watcher reads `/proc`.
const POLL: Duration = Duration::from_millis(20);
/// The recipe's lease (examples/dagster/tenure.toml).
const LEASE: Duration = Duration::from_secs(6);
/// The recipe's health grace: a daemon is hung only once it has run longer, so that its
/// checks have begun.
const HEALTH_GRACE: Duration = Duration::from_secs(90);
/// The longest wait for a successor after a crash, a freeze or a handover.
const FAILOVER_WAIT: Duration = Duration::from_secs(60);
/// The longest wait for a successor after the daemon hangs: its heartbeats go stale within
/// 30 s + 45 s, then three checks 10 s apart, then the stop grace; with room to spare.
const HANG_WAIT: Duration = Duration::from_secs(180);
/// The longest wait for `dagster-daemon liveness-check` to pass after a fault.
const LIVENESS_WAIT: Duration = Duration::from_secs(120);
/// The longest wait for a restarted node to follow the leader again (boot quarantine).
const REJOIN_WAIT: Duration = Duration::from_secs(60);
/// What the logs must never say: Dagster's own overlap detector.
const OVERLAP_MESSAGE: &str = "daemon is still sending heartbeats";

#[derive(Debug, Parser)]
#[command(about = "The real Dagster daemon under three tenure nodes, through faults")]
struct Args {
    /// short: each fault once (CI); full: six rounds of every fault (30 faults).
    #[arg(long, value_enum, default_value = "short")]
    mode: Mode,
    /// The recipe directory (examples/dagster), with workspace.yaml and health-check.sh.
    #[arg(long)]
    recipe: PathBuf,
    /// A shell command that restarts PostgreSQL and returns once it accepts connections.
    #[arg(long)]
    pg_restart: String,
    /// Keep the cluster's directory (logs, state) and print where it is.
    #[arg(long)]
    keep: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    Short,
    Full,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    KillTenure,
    FreezeTenure,
    Handover,
    HangDaemon,
    RestartPostgres,
}

impl Fault {
    const ALL: [Fault; 5] = [
        Fault::KillTenure,
        Fault::FreezeTenure,
        Fault::Handover,
        Fault::HangDaemon,
        Fault::RestartPostgres,
    ];

    fn name(self) -> &'static str {
        match self {
            Fault::KillTenure => "SIGKILL of the leader's tenure",
            Fault::FreezeTenure => "SIGSTOP of the leader's tenure past the lease",
            Fault::Handover => "SIGTERM of the leader's tenure (handover)",
            Fault::HangDaemon => "SIGSTOP of the daemon itself (health check)",
            Fault::RestartPostgres => "restart of PostgreSQL",
        }
    }
}

/// A daemon process tree as the watcher saw it: which node, which token, when it appeared.
#[derive(Clone, Debug)]
struct Daemon {
    node: String,
    token: u64,
    first_seen: Instant,
}

/// What the watcher has seen.
#[derive(Debug, Default)]
struct Watched {
    /// Every daemon tree, in the order it appeared.
    daemons: Vec<Daemon>,
    /// Polls that saw more than one tree, and the first such sight.
    overlaps: u64,
    first_overlap: Option<String>,
    polls: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("dagster test FAILED: {problem}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let recipe = fs::canonicalize(&args.recipe)
        .map_err(|problem| format!("recipe {}: {problem}", args.recipe.display()))?;
    let flags: Vec<OsString> = [
        "--lease",
        "6s",
        "--heartbeat",
        "500ms",
        "--stop-grace",
        "3s",
        "--health-interval",
        "10s",
        "--health-timeout",
        "8s",
        "--health-failures",
        "3",
        "--health-grace",
        "90s",
    ]
    .into_iter()
    .map(OsString::from)
    .chain(["--health-cmd".into(), recipe.join("health-check.sh").into()])
    .collect();
    let mut cluster = ProcessCluster::prepare(ClusterSpec {
        size: 3,
        executable: tenure_binary(),
        addresses: Addresses::OnePerNode,
        run_flags: flags,
        admin_token: false,
        directory_prefix: "tenure-dagster-".to_string(),
        output: Output::LogFile,
        parent_death_signal: Signal::KILL,
        stop: Stop::Terminate {
            grace: Duration::from_secs(20),
        },
        backend: None,
    })
    .map_err(|problem| format!("cannot prepare the cluster: {problem}"))?;
    cluster.set_child(vec![
        "dagster-daemon".into(),
        "run".into(),
        "-w".into(),
        recipe.join("workspace.yaml").into(),
    ]);
    if args.keep {
        if let Some(path) = cluster.keep_directory() {
            println!("keeping the cluster's directory: {}", path.display());
        }
    }

    let watched = Arc::new(Mutex::new(Watched::default()));
    let stop_watching = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (watched, stop) = (watched.clone(), stop_watching.clone());
        thread::spawn(move || watch(&watched, &stop))
    };
    let started = Instant::now();
    let result = exercise(args, &mut cluster, &watched);
    let stopped_at = Instant::now();
    let left = cluster.stop_all();
    // Let the watcher see the last daemon go.
    thread::sleep(Duration::from_millis(500));
    stop_watching.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    let logs: Vec<PathBuf> = cluster.nodes.iter().map(|node| node.log.clone()).collect();
    let checks = check_after(&watched, &logs, left);
    println!(
        "ran {:.0} s; stopping the cluster took {:.1} s",
        stopped_at.duration_since(started).as_secs_f64(),
        stopped_at.elapsed().as_secs_f64()
    );
    if result.is_err() || checks.is_err() {
        if let Some(path) = cluster.keep_directory() {
            eprintln!("the cluster's logs are kept in {}", path.display());
        }
    }
    result.and(checks)
}

/// Starts the cluster, injects the faults and measures each.
fn exercise(
    args: &Args,
    cluster: &mut ProcessCluster,
    watched: &Mutex<Watched>,
) -> Result<(), String> {
    for index in 0..cluster.nodes.len() {
        cluster
            .start_node(index)
            .map_err(|problem| format!("cannot start node {index}: {problem}"))?;
    }
    let first = wait_for_daemon_after(watched, 0, Duration::from_secs(90))
        .ok_or("no daemon started within 90 s of the start")?;
    println!("first daemon on {} with token {}", first.node, first.token);
    wait_for_liveness(LIVENESS_WAIT)?;

    let rounds = match args.mode {
        Mode::Short => 1,
        Mode::Full => 6,
    };
    let mut figures: Vec<(Fault, Option<Duration>)> = Vec::new();
    for round in 0..rounds {
        for fault in Fault::ALL {
            let taken = inject(args, cluster, watched, fault)?;
            match taken {
                Some(taken) => println!(
                    "round {} {}: next daemon after {} ms",
                    round + 1,
                    fault.name(),
                    taken.as_millis()
                ),
                None => println!(
                    "round {} {}: the daemon stayed on its node",
                    round + 1,
                    fault.name()
                ),
            }
            figures.push((fault, taken));
            wait_for_liveness(LIVENESS_WAIT)?;
        }
    }
    // One more schedule tick after the last fault, so that a tick missed by it would show.
    thread::sleep(Duration::from_secs(65));
    println!("faults: {}", figures.len());
    for fault in Fault::ALL {
        let times: Vec<u128> = figures
            .iter()
            .filter(|(kind, _)| *kind == fault)
            .filter_map(|(_, taken)| taken.map(|taken| taken.as_millis()))
            .collect();
        println!("  {:<48} {:?} ms", fault.name(), times);
    }
    Ok(())
}

/// Injects `fault`, restores the cluster, and returns how long until the next daemon started
/// (`None` when none had to: a PostgreSQL restart that the daemon rode out).
fn inject(
    args: &Args,
    cluster: &mut ProcessCluster,
    watched: &Mutex<Watched>,
    fault: Fault,
) -> Result<Option<Duration>, String> {
    let (leader, token) = acting_leader(cluster)?;
    let seen = watched
        .lock()
        .map(|watched| watched.daemons.len())
        .unwrap_or(0);
    let at = Instant::now();
    let successor = match fault {
        Fault::KillTenure => {
            cluster.signal(leader, Signal::KILL);
            let _ = cluster.try_wait_for_exit(leader, Duration::from_secs(5));
            let next = wait_for_daemon_after(watched, seen, FAILOVER_WAIT);
            restart(cluster, leader)?;
            next
        }
        Fault::FreezeTenure => {
            cluster.signal(leader, Signal::STOP);
            thread::sleep(LEASE + Duration::from_secs(3));
            cluster.signal(leader, Signal::CONT);
            wait_for_daemon_after(watched, seen, FAILOVER_WAIT)
        }
        Fault::Handover => {
            cluster.signal(leader, Signal::TERM);
            let next = wait_for_daemon_after(watched, seen, FAILOVER_WAIT);
            if cluster
                .try_wait_for_exit(leader, Duration::from_secs(20))
                .is_none()
            {
                return Err("the leader did not exit within 20 s of SIGTERM".into());
            }
            restart(cluster, leader)?;
            next
        }
        Fault::HangDaemon => {
            let daemon = wait_until_daemon_ran(watched, HEALTH_GRACE + Duration::from_secs(5))?;
            let pid = daemon_main_process(&daemon.node, daemon.token)
                .ok_or("cannot find the acting daemon's process")?;
            let at = Instant::now();
            signal_pid(pid, Signal::STOP);
            let next = wait_for_daemon_after(watched, seen, HANG_WAIT);
            // Normally gone by now (SIGKILL ends a stopped process); harmless otherwise.
            signal_pid(pid, Signal::CONT);
            return match next {
                Some(next) => Ok(Some(next.first_seen.duration_since(at))),
                None => Err(format!(
                    "{}: no other node's daemon within {} s",
                    fault.name(),
                    HANG_WAIT.as_secs()
                )),
            };
        }
        Fault::RestartPostgres => {
            let status = Command::new("sh")
                .arg("-c")
                .arg(&args.pg_restart)
                .stdin(Stdio::null())
                .status()
                .map_err(|problem| format!("cannot restart PostgreSQL: {problem}"))?;
            if !status.success() {
                return Err(format!("restarting PostgreSQL failed: {status}"));
            }
            // The daemon reconnects; a handover would only come after three failed checks.
            thread::sleep(Duration::from_secs(20));
            return Ok(wait_for_daemon_after(watched, seen, Duration::ZERO)
                .map(|next| next.first_seen.duration_since(at)));
        }
    };
    let successor = successor.ok_or_else(|| {
        format!(
            "{}: no new daemon within {} s",
            fault.name(),
            FAILOVER_WAIT.as_secs()
        )
    })?;
    if successor.token <= token {
        return Err(format!(
            "{}: the next daemon has token {}, not above {token}",
            fault.name(),
            successor.token
        ));
    }
    wait_until_all_follow(cluster)?;
    Ok(Some(successor.first_seen.duration_since(at)))
}

/// The node that acts and its token, waiting up to a failover for one.
fn acting_leader(cluster: &ProcessCluster) -> Result<(usize, u64), String> {
    let give_up = Instant::now() + FAILOVER_WAIT;
    loop {
        if let [(index, token)] = cluster.acting()[..] {
            return Ok((index, token));
        }
        if Instant::now() >= give_up {
            return Err("no single acting node".into());
        }
        thread::sleep(Duration::from_millis(200));
    }
}

fn restart(cluster: &mut ProcessCluster, index: usize) -> Result<(), String> {
    let _ = cluster.try_wait_for_exit(index, Duration::from_secs(5));
    cluster
        .start_node(index)
        .map_err(|problem| format!("cannot restart node {index}: {problem}"))
}

/// Waits until every node runs and follows the acting leader (out of boot quarantine).
fn wait_until_all_follow(cluster: &ProcessCluster) -> Result<(), String> {
    let give_up = Instant::now() + REJOIN_WAIT;
    loop {
        if let [(leader, _)] = cluster.acting()[..] {
            let all = (0..cluster.nodes.len())
                .all(|index| index == leader || cluster.follows(index, leader));
            if all {
                return Ok(());
            }
        }
        if Instant::now() >= give_up {
            return Err("the nodes did not all follow one leader within 60 s".into());
        }
        thread::sleep(Duration::from_millis(250));
    }
}

/// Runs `dagster-daemon liveness-check` with the recipe's tolerance (45 s) until it passes.
fn wait_for_liveness(limit: Duration) -> Result<(), String> {
    let give_up = Instant::now() + limit;
    loop {
        let passed = Command::new("dagster-daemon")
            .arg("liveness-check")
            .env("DAGSTER_DAEMON_HEARTBEAT_TOLERANCE", "45")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if passed {
            return Ok(());
        }
        if Instant::now() >= give_up {
            return Err(format!(
                "dagster-daemon liveness-check did not pass within {} s",
                limit.as_secs()
            ));
        }
        thread::sleep(Duration::from_secs(2));
    }
}

/// The first daemon tree that appeared after the first `seen`, within `limit`.
fn wait_for_daemon_after(watched: &Mutex<Watched>, seen: usize, limit: Duration) -> Option<Daemon> {
    let give_up = Instant::now() + limit;
    loop {
        if let Some(daemon) = watched
            .lock()
            .ok()
            .and_then(|watched| watched.daemons.get(seen).cloned())
        {
            return Some(daemon);
        }
        if Instant::now() >= give_up {
            return None;
        }
        thread::sleep(POLL);
    }
}

/// The latest daemon, once it has run for `age`.
fn wait_until_daemon_ran(watched: &Mutex<Watched>, age: Duration) -> Result<Daemon, String> {
    let latest = watched
        .lock()
        .ok()
        .and_then(|watched| watched.daemons.last().cloned())
        .ok_or("no daemon yet")?;
    let ran = latest.first_seen.elapsed();
    if ran < age {
        thread::sleep(age - ran);
    }
    Ok(latest)
}

// ----- The watcher ----------------------------------------------------------------------------

/// Polls `/proc` until told to stop, recording every daemon tree and every overlap.
fn watch(watched: &Mutex<Watched>, stop: &AtomicBool) {
    let mut known: BTreeSet<(String, u64)> = BTreeSet::new();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let trees: BTreeSet<(String, u64)> = daemon_processes()
            .into_iter()
            .map(|(_, node, token)| (node, token))
            .collect();
        if let Ok(mut watched) = watched.lock() {
            watched.polls += 1;
            if trees.len() > 1 {
                watched.overlaps += 1;
                if watched.first_overlap.is_none() {
                    watched.first_overlap = Some(format!("{trees:?}"));
                }
            }
            for tree in &trees {
                if known.insert(tree.clone()) {
                    watched.daemons.push(Daemon {
                        node: tree.0.clone(),
                        token: tree.1,
                        first_seen: now,
                    });
                }
            }
        }
        thread::sleep(POLL);
    }
}

/// Every live process of a daemon tree: (pid, node, token).
fn daemon_processes() -> Vec<(i32, String, u64)> {
    let mut found = Vec::new();
    for (pid, command_line) in tenure_node::cluster::process::command_lines() {
        // tenure's deadline guard names the daemon in its arguments and carries its
        // environment, but it is tenure's, not the daemon's.
        if !command_line.contains("dagster")
            || command_line.contains("__guard")
            || command_line.contains("liveness-check")
            || command_line.contains("health-check")
        {
            continue;
        }
        // A zombie has ended; `stat` skips it.
        if tenure_harness::procfs::stat(pid).is_none() {
            continue;
        }
        let process = PathBuf::from(format!("/proc/{pid}"));
        if let Some((node, token)) = tenure_identity(&process) {
            found.push((pid, node, token));
        }
    }
    found
}

/// `TENURE_NODE_ID` and `TENURE_FENCING_TOKEN` from a process's environment.
fn tenure_identity(process: &Path) -> Option<(String, u64)> {
    let environment = fs::read(process.join("environ")).ok()?;
    let mut node = None;
    let mut token = None;
    for variable in environment.split(|byte| *byte == 0) {
        let variable = String::from_utf8_lossy(variable);
        if let Some(value) = variable.strip_prefix("TENURE_NODE_ID=") {
            node = Some(value.to_string());
        } else if let Some(value) = variable.strip_prefix("TENURE_FENCING_TOKEN=") {
            token = value.parse().ok();
        }
    }
    Some((node?, token?))
}

/// The daemon's own process (`dagster-daemon run`) of `node` with `token`: the one whose
/// parent is not itself part of the tree.
fn daemon_main_process(node: &str, token: u64) -> Option<i32> {
    let processes = daemon_processes();
    let members: BTreeSet<i32> = processes
        .iter()
        .filter(|(_, other, other_token)| other == node && *other_token == token)
        .map(|(pid, _, _)| *pid)
        .collect();
    members.iter().copied().find(|pid| {
        tenure_harness::procfs::stat(*pid).is_some_and(|stat| !members.contains(&stat.parent))
    })
}

fn signal_pid(pid: i32, signal: Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

// ----- The checks at the end ------------------------------------------------------------------

fn check_after(watched: &Mutex<Watched>, logs: &[PathBuf], left: usize) -> Result<(), String> {
    let watched = watched.lock().map_err(|_| "the watcher panicked")?;
    let mut problems = Vec::new();
    println!(
        "watcher: {} polls of /proc, {} daemon trees, {} polls with two at once",
        watched.polls,
        watched.daemons.len(),
        watched.overlaps
    );
    if watched.overlaps > 0 {
        problems.push(format!(
            "two daemon trees ran at once in {} polls, first {}",
            watched.overlaps,
            watched.first_overlap.as_deref().unwrap_or("?")
        ));
    }
    let tokens: Vec<u64> = watched.daemons.iter().map(|daemon| daemon.token).collect();
    println!("fencing tokens in order: {tokens:?}");
    if tokens.windows(2).any(|pair| pair[1] <= pair[0]) {
        problems.push(format!(
            "fencing tokens do not strictly increase: {tokens:?}"
        ));
    }
    let mut messages = 0;
    for log in logs {
        let text = fs::read(log).unwrap_or_default();
        messages += String::from_utf8_lossy(&text)
            .lines()
            .filter(|line| line.contains(OVERLAP_MESSAGE))
            .count();
    }
    println!("\"{OVERLAP_MESSAGE}\" in the logs: {messages}");
    if messages > 0 {
        problems.push(format!("Dagster saw two daemons {messages} times"));
    }
    match schedule_ticks() {
        Ok((launched, duplicates, missing)) => {
            println!(
                "schedule ticks launched: {launched}, launched twice: {duplicates}, missing: {missing}"
            );
            if duplicates > 0 || missing > 0 || launched == 0 {
                problems.push(format!(
                    "schedule ticks: {launched} launched, {duplicates} twice, {missing} missing"
                ));
            }
        }
        Err(problem) => problems.push(problem),
    }
    if left > 0 {
        problems.push(format!("{left} processes of the cluster survived its stop"));
    }
    if problems.is_empty() {
        println!("dagster test passed: no overlap, every tick once, tokens increasing");
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// (runs launched by the schedule, scheduled times launched more than once, minutes missing
/// between the first and the last), from Dagster's run tags in PostgreSQL (through `psql`,
/// which reads the connection from the PG* variables the script sets).
fn schedule_ticks() -> Result<(usize, usize, usize), String> {
    let query = "SELECT value FROM run_tags WHERE key = '.dagster/scheduled_execution_time' \
                 ORDER BY value";
    let output = Command::new("psql")
        .args(["-At", "-c", query])
        .stdin(Stdio::null())
        .output()
        .map_err(|problem| format!("cannot run psql: {problem}"))?;
    if !output.status.success() {
        return Err(format!(
            "psql failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let times: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let distinct: BTreeSet<&String> = times.iter().collect();
    let duplicates = times.len() - distinct.len();
    // "2026-12-02T14:30:00+00:00": minutes since the epoch of the day are enough, runs span
    // far less than a day.
    let minutes: Vec<i64> = distinct.iter().filter_map(|time| minute_of(time)).collect();
    let missing = minutes
        .windows(2)
        .map(|pair| (pair[1] - pair[0] - 1).max(0) as usize)
        .sum();
    Ok((times.len(), duplicates, missing))
}

/// Minutes since midnight of the day before, from an ISO time, so that a run across midnight
/// still counts right within two days.
fn minute_of(time: &str) -> Option<i64> {
    let day: i64 = time.get(8..10)?.parse().ok()?;
    let hour: i64 = time.get(11..13)?.parse().ok()?;
    let minute: i64 = time.get(14..16)?.parse().ok()?;
    Some(day * 24 * 60 + hour * 60 + minute)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for one node's daemon: a process whose command line names dagster and whose
    /// environment carries a node and a token, as the real daemon's does.
    fn fake_daemon(node: &str, token: u64, marker: &str) -> std::process::Child {
        Command::new("sh")
            .args(["-c", &format!("sleep 3; : dagster fake {marker}")])
            .env("TENURE_NODE_ID", node)
            .env("TENURE_FENCING_TOKEN", token.to_string())
            .spawn()
            .expect("sh runs")
    }

    /// Runs the watcher for `duration` while `daemons` run, and returns what it saw.
    fn watch_for(duration: Duration) -> (u64, usize) {
        let watched = Arc::new(Mutex::new(Watched::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (watched, stop) = (watched.clone(), stop.clone());
            thread::spawn(move || watch(&watched, &stop))
        };
        thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        watcher.join().expect("the watcher ends");
        let watched = watched.lock().expect("not poisoned");
        (watched.overlaps, watched.daemons.len())
    }

    #[test]
    fn the_watcher_sees_two_daemon_trees_at_once_and_not_one() {
        // One daemon: no overlap, however long it runs.
        let mut one = fake_daemon("test-n1", 7, "one");
        let (overlaps, trees) = watch_for(Duration::from_millis(300));
        one.kill().expect("kill");
        one.wait().expect("reap");
        assert_eq!(overlaps, 0);
        assert!(trees >= 1, "the watcher saw the daemon");
        // Two daemons of different nodes at once: every poll while both run is an overlap.
        let mut first = fake_daemon("test-n1", 8, "two");
        let mut second = fake_daemon("test-n2", 9, "two");
        let (overlaps, trees) = watch_for(Duration::from_millis(300));
        for child in [&mut first, &mut second] {
            child.kill().expect("kill");
            child.wait().expect("reap");
        }
        assert!(overlaps > 0, "two daemon trees at once went unseen");
        assert!(trees >= 2);
    }
}
