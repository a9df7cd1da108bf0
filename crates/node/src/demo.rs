//! `tenure demo` and the hidden `tenure bench`: a local 3-node cluster of real `tenure run`
//! processes on 127.0.0.1, each supervising a small demo child that prints its fencing token.
//!
//! The demo shows the first election, kills the leader's tenure with SIGKILL (its deadline guard
//! must stop the orphaned child), measures the crash failover, restarts the killed node, sends
//! SIGTERM to the next leader and measures the graceful handover. The benchmark repeats both
//! measurements for many rounds and prints median and p99.
//!
//! A leader "acts" from the moment its child prints its start line; the demo timestamps each
//! line as it reads it from the node's standard output, so the measured times include
//! everything up to the new child really running.
//!
//! Nothing is left running: the nodes run in their own process groups with a parent-death
//! signal (SIGTERM) tied to the demo, every wait is bounded, Ctrl-C and errors go through the
//! same cleanup, and the cleanup finally looks for any process whose command line mentions the
//! demo's temporary directory (every node, guard and child does) and kills it.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::cli::{BenchArgs, DemoArgs};
use crate::http_client;
use crate::process::{exit_with_parent, is_alive, processes_mentioning, signal, Signal};
use crate::settings::{human, DEFAULT_HEARTBEAT, DEFAULT_LEASE};

/// The start line of a demo child: `[demo child n1] started with TENURE_FENCING_TOKEN=3 ...`.
const CHILD_PREFIX: &str = "[demo child ";
const STARTED: &str = "] started with TENURE_FENCING_TOKEN=";
const STOPPING: &str = "] SIGTERM: stopping";

/// Longest wait for any one step; far above the few seconds each takes.
const STEP_LIMIT: Duration = Duration::from_secs(20);
/// How long a node gets to shut down gracefully at cleanup before SIGKILL.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(5);

/// Runs the demo. Exit status 0 on success, 1 on failure, 130 on Ctrl-C.
pub fn demo(args: DemoArgs) -> ExitCode {
    let interrupted = interrupt_flag();
    let result = run_demo(&args, &interrupted);
    finish(result)
}

/// Runs the benchmark.
pub fn bench(args: BenchArgs) -> ExitCode {
    let interrupted = interrupt_flag();
    let result = run_bench(&args, &interrupted);
    finish(result)
}

/// The demo's child: prints its token at start and every second, and a last line on SIGTERM.
pub fn demo_child() -> ExitCode {
    let node = std::env::var("TENURE_NODE_ID").unwrap_or_else(|_| "?".to_string());
    let token = std::env::var("TENURE_FENCING_TOKEN").unwrap_or_else(|_| "?".to_string());
    say(&format!(
        "{CHILD_PREFIX}{node}{STARTED}{token} (pid {})",
        std::process::id()
    ));
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return ExitCode::FAILURE;
    };
    runtime.block_on(async {
        let Ok(mut terminate) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return ExitCode::FAILURE;
        };
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        loop {
            tokio::select! {
                _ = terminate.recv() => {
                    say(&format!("{CHILD_PREFIX}{node}{STOPPING} (fencing token {token})"));
                    return ExitCode::SUCCESS;
                }
                _ = tick.tick() => {
                    say(&format!("{CHILD_PREFIX}{node}] working with fencing token {token}"));
                }
            }
        }
    })
}

/// Prints a line; a closed standard output (the demo is gone) ends the child quietly.
fn say(line: &str) {
    let mut stdout = io::stdout();
    if writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

/// Why a run stopped early.
enum Failure {
    Interrupted,
    Failed(String),
}

impl From<io::Error> for Failure {
    fn from(error: io::Error) -> Failure {
        Failure::Failed(error.to_string())
    }
}

fn finish(result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Interrupted) => {
            println!("interrupted; everything the demo started has been stopped");
            ExitCode::from(130)
        }
        Err(Failure::Failed(problem)) => {
            eprintln!("tenure demo failed: {problem}");
            ExitCode::FAILURE
        }
    }
}

/// A flag set by SIGINT or SIGTERM. Installing the handler replaces the default action (exit),
/// so that Ctrl-C runs the cleanup instead of orphaning the cluster.
fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let (ready_sender, ready) = mpsc::channel();
    let setter = flag.clone();
    thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            let _ = ready_sender.send(());
            return;
        };
        runtime.block_on(async {
            use tokio::signal::unix::{signal, SignalKind};
            let terminate = signal(SignalKind::terminate());
            let interrupt = signal(SignalKind::interrupt());
            let _ = ready_sender.send(());
            let (Ok(mut terminate), Ok(mut interrupt)) = (terminate, interrupt) else {
                return;
            };
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            setter.store(true, Ordering::SeqCst);
        });
    });
    // Wait until the handlers are installed, so an early Ctrl-C is not lost.
    let _ = ready.recv_timeout(Duration::from_secs(5));
    flag
}

fn run_demo(args: &DemoArgs, interrupted: &Arc<AtomicBool>) -> Result<(), Failure> {
    println!(
        "tenure demo: a 3-node cluster on 127.0.0.1 with the default timing (lease {}, \
         heartbeat {}).",
        human(DEFAULT_LEASE),
        human(DEFAULT_HEARTBEAT)
    );
    println!(
        "Each node supervises a demo child that prints its fencing token (TENURE_FENCING_TOKEN)."
    );
    let mut cluster = Cluster::start(
        DEFAULT_LEASE,
        DEFAULT_HEARTBEAT,
        true,
        args.verbose,
        interrupted,
    )?;
    println!(
        "State, keys and logs: {}",
        cluster.directory.path().display()
    );
    println!("Node n1 runs:\n  {}\n", cluster.describe_command(0));
    let mut timeline = Timeline::default();
    timeline.add(
        cluster.origin,
        "3 nodes started; each sits out one lease first (boot quarantine)",
    );
    cluster.note("3 nodes started; every node sits out one lease before it may vote");

    // Phase 1: the first election.
    let first = cluster.wait_for_start(0, STEP_LIMIT)?;
    let line = format!(
        "{} leads and acts with fencing token {} ({} after start)",
        cluster.name(first.node),
        first.token,
        seconds(first.at - cluster.origin)
    );
    cluster.note(&line);
    timeline.add(first.at, &line);
    cluster.pump_for(Duration::from_secs(2))?;

    // Phase 2: crash failover. SIGKILL gives tenure no chance to clean up: its deadline guard
    // sees the control pipe close and stops the child; the others wait out their promise.
    let killed_at = cluster.kill(first.node, Signal::KILL);
    let line = format!(
        "SIGKILL {}'s tenure (its guard must now stop the orphaned child)",
        cluster.name(first.node)
    );
    cluster.note(&line);
    timeline.add(killed_at, &line);
    let second = cluster.wait_for_start(first.token, STEP_LIMIT)?;
    if let Some(stopped_at) = cluster.stopped_at(first.node, first.token) {
        timeline.add(
            stopped_at,
            &format!(
                "{}'s child got SIGTERM from its guard, {} after the kill",
                cluster.name(first.node),
                millis(stopped_at.saturating_duration_since(killed_at))
            ),
        );
    }
    let failover = second.at - killed_at;
    let line = format!(
        "{} acts with fencing token {}: crash failover took {}",
        cluster.name(second.node),
        second.token,
        seconds(failover)
    );
    cluster.note(&line);
    timeline.add(second.at, &line);

    // Phase 3: bring the killed node back; it rejoins as a follower after its quarantine.
    cluster.restart(first.node)?;
    let restarted_at = Instant::now();
    cluster.note(&format!("restarted {}", cluster.name(first.node)));
    timeline.add(
        restarted_at,
        &format!("restarted {}", cluster.name(first.node)),
    );
    cluster.wait_until_follower(first.node, second.node, STEP_LIMIT)?;
    cluster.note(&format!(
        "{} follows {} again",
        cluster.name(first.node),
        cluster.name(second.node)
    ));
    cluster.pump_for(Duration::from_millis(500))?;

    // Phase 4: graceful handover. SIGTERM makes the leader stop its child first, then send
    // Resign and TimeoutNow to a successor.
    let terminated_at = cluster.kill(second.node, Signal::TERM);
    let line = format!(
        "SIGTERM {}'s tenure: graceful handover",
        cluster.name(second.node)
    );
    cluster.note(&line);
    timeline.add(terminated_at, &line);
    let third = cluster.wait_for_start(second.token, STEP_LIMIT)?;
    let handover = third.at - terminated_at;
    let line = format!(
        "{} acts with fencing token {}: handover took {}",
        cluster.name(third.node),
        third.token,
        seconds(handover)
    );
    cluster.note(&line);
    timeline.add(third.at, &line);
    let status = cluster.wait_for_exit(second.node, STEP_LIMIT)?;
    let line = format!(
        "{}'s tenure exited with {status}",
        cluster.name(second.node)
    );
    cluster.note(&line);
    timeline.add(Instant::now(), &line);
    cluster.pump_for(Duration::from_millis(1500))?;

    println!("\nTimeline");
    print!("{}", timeline.render(cluster.origin));
    println!(
        "\nCrash failover (SIGKILL of the leader's tenure until the next child runs): {}",
        seconds(failover)
    );
    println!(
        "  = the followers' promise (up to one lease, {}) + election jitter (up to {}) + \
         pre-vote, vote and first heartbeat",
        human(DEFAULT_LEASE),
        human(DEFAULT_LEASE / 4)
    );
    println!(
        "Graceful handover (SIGTERM until the next child runs): {}",
        seconds(handover)
    );
    println!(
        "  = the child's stop time + Resign/TimeoutNow + the successor's election (its jitter \
         is up to {}) and first heartbeat",
        human(DEFAULT_LEASE / 4)
    );
    println!(
        "Fencing tokens rose {} -> {} -> {}.",
        first.token, second.token, third.token
    );

    let left = cluster.shutdown();
    println!("\nCleaned up: every node, guard and child is stopped ({left} left running).");
    Ok(())
}

fn run_bench(args: &BenchArgs, interrupted: &Arc<AtomicBool>) -> Result<(), Failure> {
    let rounds = args.rounds.max(1);
    println!(
        "tenure bench: {rounds} rounds each of crash failover and graceful handover, 3 nodes \
         on 127.0.0.1, lease {}, heartbeat {}",
        human(args.lease),
        human(args.heartbeat)
    );
    let mut cluster = Cluster::start(args.lease, args.heartbeat, false, false, interrupted)?;
    let mut current = cluster.wait_for_start(0, STEP_LIMIT)?;
    let mut crash = Vec::new();
    for round in 1..=rounds {
        let killed_at = cluster.kill(current.node, Signal::KILL);
        let next = cluster.wait_for_start(current.token, STEP_LIMIT)?;
        let took = next.at - killed_at;
        println!("crash failover {round:>3}: {}", millis(took));
        crash.push(took);
        cluster.restart(current.node)?;
        cluster.wait_until_follower(current.node, next.node, STEP_LIMIT)?;
        current = next;
    }
    let mut graceful = Vec::new();
    for round in 1..=rounds {
        let terminated_at = cluster.kill(current.node, Signal::TERM);
        let next = cluster.wait_for_start(current.token, STEP_LIMIT)?;
        let took = next.at - terminated_at;
        println!("graceful handover {round:>3}: {}", millis(took));
        graceful.push(took);
        cluster.wait_for_exit(current.node, STEP_LIMIT)?;
        cluster.restart(current.node)?;
        cluster.wait_until_follower(current.node, next.node, STEP_LIMIT)?;
        current = next;
    }
    println!();
    println!("{}", summary("crash failover", &mut crash));
    println!("{}", summary("graceful handover", &mut graceful));
    let left = cluster.shutdown();
    println!("({left} processes left running after cleanup)");
    Ok(())
}

/// `name: n=20 min … median … p99 … max …` (nearest-rank percentiles).
fn summary(name: &str, samples: &mut [Duration]) -> String {
    samples.sort();
    let rank = |fraction: f64| {
        let index = ((fraction * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
        samples[index - 1]
    };
    format!(
        "{name}: n={} min {} median {} p99 {} max {}",
        samples.len(),
        millis(samples[0]),
        millis(rank(0.5)),
        millis(rank(0.99)),
        millis(samples[samples.len() - 1])
    )
}

/// A child start seen on a node's standard output.
#[derive(Clone, Copy, Debug)]
struct ChildStart {
    node: usize,
    token: u64,
    at: Instant,
}

enum Event {
    Started(ChildStart),
    Stopping {
        node: usize,
        token: u64,
        at: Instant,
    },
    Line {
        node: usize,
        text: String,
    },
}

struct Node {
    name: String,
    udp: String,
    http: String,
    state_dir: PathBuf,
    log: PathBuf,
    process: Option<Child>,
}

/// The local cluster. Dropping it stops everything it started.
struct Cluster {
    directory: tempfile::TempDir,
    marker: String,
    executable: PathBuf,
    key_file: PathBuf,
    lease: Duration,
    heartbeat: Duration,
    nodes: Vec<Node>,
    events: Receiver<Event>,
    sender: Sender<Event>,
    origin: Instant,
    echo_children: bool,
    echo_logs: bool,
    interrupted: Arc<AtomicBool>,
    starts: Vec<ChildStart>,
    stops: Vec<(usize, u64, Instant)>,
    shut_down: bool,
}

impl Cluster {
    fn start(
        lease: Duration,
        heartbeat: Duration,
        echo_children: bool,
        echo_logs: bool,
        interrupted: &Arc<AtomicBool>,
    ) -> Result<Cluster, Failure> {
        let directory = tempfile::Builder::new().prefix("tenure-demo-").tempdir()?;
        let marker = directory.path().display().to_string();
        let key_file = directory.path().join("cluster.key");
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)
            .map_err(|error| Failure::Failed(format!("no randomness for the key: {error}")))?;
        let hex: String = key.iter().map(|byte| format!("{byte:02x}")).collect();
        // Private to this user, as tenure run asks of a key file (it warns otherwise).
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key_file)?
            .write_all(format!("{hex}\n").as_bytes())?;
        let executable = std::env::current_exe()?;
        let mut nodes = Vec::new();
        for number in 1..=3 {
            let name = format!("n{number}");
            let state_dir = directory.path().join(&name);
            std::fs::create_dir(&state_dir)?;
            nodes.push(Node {
                udp: format!("127.0.0.1:{}", free_udp_port()?),
                http: format!("127.0.0.1:{}", free_tcp_port()?),
                log: directory.path().join(format!("{name}.log")),
                name,
                state_dir,
                process: None,
            });
        }
        let (sender, events) = mpsc::channel();
        let mut cluster = Cluster {
            directory,
            marker,
            executable,
            key_file,
            lease,
            heartbeat,
            nodes,
            events,
            sender,
            origin: Instant::now(),
            echo_children,
            echo_logs,
            interrupted: interrupted.clone(),
            starts: Vec::new(),
            stops: Vec::new(),
            shut_down: false,
        };
        for index in 0..cluster.nodes.len() {
            cluster.restart(index)?;
        }
        cluster.origin = Instant::now();
        Ok(cluster)
    }

    fn name(&self, node: usize) -> &str {
        &self.nodes[node].name
    }

    fn arguments(&self, node: usize) -> Vec<OsString> {
        let this = &self.nodes[node];
        let mut arguments: Vec<OsString> = vec![
            "run".into(),
            "--id".into(),
            this.name.clone().into(),
            "--listen".into(),
            this.udp.clone().into(),
            "--http".into(),
            this.http.clone().into(),
            "--state-dir".into(),
            this.state_dir.clone().into(),
            "--cluster-key-file".into(),
            self.key_file.clone().into(),
            "--lease".into(),
            human(self.lease).into(),
            "--heartbeat".into(),
            human(self.heartbeat).into(),
        ];
        for (index, other) in self.nodes.iter().enumerate() {
            if index != node {
                arguments.push("--peer".into());
                arguments.push(format!("{}={}", other.name, other.udp).into());
            }
        }
        arguments.extend([
            "--".into(),
            self.executable.clone().into(),
            "__demo-child".into(),
            self.marker.clone().into(),
        ]);
        arguments
    }

    fn describe_command(&self, node: usize) -> String {
        let arguments: Vec<String> = self
            .arguments(node)
            .iter()
            .map(|argument| argument.to_string_lossy().into_owned())
            .collect();
        format!("tenure {}", arguments.join(" "))
            .replace(&self.executable.display().to_string(), "tenure")
    }

    /// Starts (or starts again) node `node`'s tenure, with its output read by two threads.
    fn restart(&mut self, node: usize) -> Result<(), Failure> {
        let mut command = Command::new(&self.executable);
        command
            .args(self.arguments(node))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: a Ctrl-C in the terminal reaches only the demo, which
            // then stops the nodes in order.
            .process_group(0);
        for (variable, _) in std::env::vars_os() {
            if variable.to_string_lossy().starts_with("TENURE_") {
                command.env_remove(variable);
            }
        }
        exit_with_parent(&mut command, Signal::TERM);
        let mut process = command.spawn()?;
        if let Some(stdout) = process.stdout.take() {
            let sender = self.sender.clone();
            thread::spawn(move || read_child_lines(node, stdout, &sender));
        }
        if let Some(stderr) = process.stderr.take() {
            let log = File::options()
                .create(true)
                .append(true)
                .open(&self.nodes[node].log)?;
            let sender = self.echo_logs.then(|| self.sender.clone());
            thread::spawn(move || copy_log(node, stderr, log, sender.as_ref()));
        }
        self.nodes[node].process = Some(process);
        Ok(())
    }

    /// Sends `signal` to node `node`'s tenure (not its group: the guard and the child are in
    /// groups of their own) and returns when.
    fn kill(&mut self, node: usize, kind: Signal) -> Instant {
        if let Some(process) = &self.nodes[node].process {
            signal(process.id() as i32, kind);
        }
        Instant::now()
    }

    fn note(&self, text: &str) {
        println!("[{:>7}] {text}", seconds(self.origin.elapsed()));
    }

    /// Handles the events arriving until `until`, printing what should be printed.
    fn pump_until(&mut self, until: Instant) -> Result<(), Failure> {
        loop {
            if self.interrupted.load(Ordering::SeqCst) {
                return Err(Failure::Interrupted);
            }
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            let slice = (until - now).min(Duration::from_millis(50));
            match self.events.recv_timeout(slice) {
                Ok(event) => self.handle(event),
                Err(RecvTimeoutError::Timeout) => {}
                // The cluster holds a sender itself, so the channel never disconnects.
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
        }
    }

    fn pump_for(&mut self, duration: Duration) -> Result<(), Failure> {
        self.pump_until(Instant::now() + duration)
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Started(start) => {
                if self.echo_children {
                    self.note(&format!(
                        "{} | child started with TENURE_FENCING_TOKEN={}",
                        self.name(start.node),
                        start.token
                    ));
                }
                self.starts.push(start);
            }
            Event::Stopping { node, token, at } => {
                if self.echo_children {
                    self.note(&format!(
                        "{} | child got SIGTERM, stopping (fencing token {token})",
                        self.name(node)
                    ));
                }
                self.stops.push((node, token, at));
            }
            Event::Line { node, text } => {
                if self.echo_children {
                    self.note(&format!("{} | {text}", self.name(node)));
                }
            }
        }
    }

    /// Waits for a child to start with a token above `above`.
    fn wait_for_start(&mut self, above: u64, limit: Duration) -> Result<ChildStart, Failure> {
        let give_up = Instant::now() + limit;
        loop {
            if let Some(start) = self.starts.iter().find(|start| start.token > above) {
                return Ok(*start);
            }
            if Instant::now() >= give_up {
                return Err(Failure::Failed(format!(
                    "no child started with a fencing token above {above} within {}; see the \
                     node logs in {}",
                    human(limit),
                    self.directory.path().display()
                )));
            }
            self.pump_until((Instant::now() + Duration::from_millis(20)).min(give_up))?;
        }
    }

    fn stopped_at(&self, node: usize, token: u64) -> Option<Instant> {
        self.stops
            .iter()
            .find(|(stopped, stopped_token, _)| *stopped == node && *stopped_token == token)
            .map(|(_, _, at)| *at)
    }

    /// Waits until `node` has left its boot quarantine and follows `leader`, so that it can
    /// vote in the next election.
    fn wait_until_follower(
        &mut self,
        node: usize,
        leader: usize,
        limit: Duration,
    ) -> Result<(), Failure> {
        let give_up = Instant::now() + limit;
        let leader_name = self.nodes[leader].name.clone();
        loop {
            let ready = http_client::get(
                &self.nodes[node].http,
                "/status",
                Duration::from_millis(500),
            )
            .and_then(|answer| answer.json())
            .is_ok_and(|status| {
                status["leader"].as_str() == Some(leader_name.as_str())
                    && status["quarantine_remaining_ms"].is_null()
            });
            if ready {
                return Ok(());
            }
            if Instant::now() >= give_up {
                return Err(Failure::Failed(format!(
                    "{} did not rejoin as a follower of {leader_name} within {}",
                    self.name(node),
                    human(limit)
                )));
            }
            self.pump_for(Duration::from_millis(50))?;
        }
    }

    /// Waits for `node`'s tenure to exit and describes its exit status.
    fn wait_for_exit(&mut self, node: usize, limit: Duration) -> Result<String, Failure> {
        let give_up = Instant::now() + limit;
        loop {
            if let Some(process) = &mut self.nodes[node].process {
                if let Some(status) = process.try_wait()? {
                    self.nodes[node].process = None;
                    return Ok(match (status.code(), status.signal()) {
                        (Some(code), _) => format!("status {code}"),
                        (None, Some(signal)) => format!("signal {signal}"),
                        _ => status.to_string(),
                    });
                }
            } else {
                return Ok("(already reaped)".to_string());
            }
            if Instant::now() >= give_up {
                return Err(Failure::Failed(format!(
                    "{} did not exit within {}",
                    self.name(node),
                    human(limit)
                )));
            }
            self.pump_for(Duration::from_millis(20))?;
        }
    }

    /// Stops everything: SIGTERM to every node, SIGKILL to what remains after
    /// `SHUTDOWN_LIMIT`, then any process still mentioning the demo directory. Returns how many
    /// processes were still running at the very end (0 unless something is stuck in the
    /// kernel).
    fn shutdown(&mut self) -> usize {
        self.shut_down = true;
        for node in &self.nodes {
            if let Some(process) = &node.process {
                signal(process.id() as i32, Signal::TERM);
            }
        }
        let give_up = Instant::now() + SHUTDOWN_LIMIT;
        for node in &mut self.nodes {
            if let Some(process) = &mut node.process {
                while Instant::now() < give_up && matches!(process.try_wait(), Ok(None)) {
                    thread::sleep(Duration::from_millis(10));
                }
                let _ = process.kill();
                let _ = process.wait();
            }
            node.process = None;
        }
        // Guards and children of killed nodes stop within the stop grace; anything that
        // outlives that is killed outright.
        let give_up = Instant::now() + Duration::from_secs(3);
        while Instant::now() < give_up && !processes_mentioning(&self.marker).is_empty() {
            thread::sleep(Duration::from_millis(20));
        }
        for pid in processes_mentioning(&self.marker) {
            signal(pid, Signal::KILL);
        }
        let give_up = Instant::now() + Duration::from_secs(2);
        while Instant::now() < give_up
            && processes_mentioning(&self.marker)
                .iter()
                .any(|pid| is_alive(*pid))
        {
            thread::sleep(Duration::from_millis(20));
        }
        processes_mentioning(&self.marker).len()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.shut_down {
            self.shutdown();
        }
    }
}

/// Reads a node's standard output (its children's lines) and turns it into events.
fn read_child_lines(node: usize, stdout: impl io::Read, sender: &Sender<Event>) {
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else {
            return;
        };
        let at = Instant::now();
        let event = match parse_child_line(&line) {
            Some((token, true)) => Event::Started(ChildStart { node, token, at }),
            Some((token, false)) => Event::Stopping { node, token, at },
            None => Event::Line {
                node,
                text: line
                    .strip_prefix(CHILD_PREFIX)
                    .map_or(line.clone(), |rest| {
                        rest.split_once("] ")
                            .map_or(rest.to_string(), |(_, text)| text.to_string())
                    }),
            },
        };
        if sender.send(event).is_err() {
            return;
        }
    }
}

/// `Some((token, true))` for a start line, `Some((token, false))` for a stop line.
fn parse_child_line(line: &str) -> Option<(u64, bool)> {
    let rest = line.strip_prefix(CHILD_PREFIX)?;
    if let Some((_, after)) = rest.split_once(STARTED) {
        let token = after.split_whitespace().next()?.parse().ok()?;
        return Some((token, true));
    }
    if let Some((_, after)) = rest.split_once(STOPPING) {
        let token = after
            .trim_start_matches(" (fencing token ")
            .trim_end_matches(')')
            .parse()
            .ok()?;
        return Some((token, false));
    }
    None
}

/// Copies a node's log lines to its log file, and to the demo's output when verbose.
fn copy_log(node: usize, stderr: impl io::Read, mut log: File, echo: Option<&Sender<Event>>) {
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else {
            return;
        };
        let _ = writeln!(log, "{line}");
        if let Some(sender) = echo {
            let _ = sender.send(Event::Line {
                node,
                text: format!("log: {line}"),
            });
        }
    }
}

fn free_udp_port() -> io::Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn free_tcp_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn seconds(duration: Duration) -> String {
    format!("{:.2}s", duration.as_secs_f64())
}

fn millis(duration: Duration) -> String {
    format!("{} ms", duration.as_millis())
}

/// Moments worth a line in the final summary.
#[derive(Default)]
struct Timeline {
    entries: Vec<(Instant, String)>,
}

impl Timeline {
    fn add(&mut self, at: Instant, text: &str) {
        self.entries.push((at, text.to_string()));
    }

    fn render(&mut self, origin: Instant) -> String {
        self.entries.sort_by_key(|(at, _)| *at);
        self.entries
            .iter()
            .map(|(at, text)| {
                format!(
                    "  {:>7}  {text}\n",
                    seconds(at.saturating_duration_since(origin))
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_childs_lines() {
        assert_eq!(
            parse_child_line("[demo child n1] started with TENURE_FENCING_TOKEN=3 (pid 9)"),
            Some((3, true))
        );
        assert_eq!(
            parse_child_line("[demo child n2] SIGTERM: stopping (fencing token 14)"),
            Some((14, false))
        );
        assert_eq!(
            parse_child_line("[demo child n2] working with fencing token 4"),
            None
        );
        assert_eq!(parse_child_line("anything else"), None);
    }

    #[test]
    fn summarises_with_nearest_rank_percentiles() {
        let mut samples: Vec<Duration> = (1..=20).map(Duration::from_millis).collect();
        assert_eq!(
            summary("x", &mut samples),
            "x: n=20 min 1 ms median 10 ms p99 20 ms max 20 ms"
        );
    }
}
