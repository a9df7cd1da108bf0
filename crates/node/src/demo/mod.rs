//! `tenure demo`: a local 3-node cluster of real `tenure run` processes on 127.0.0.1 (the
//! [`ProcessCluster`] the tests use too), each supervising a small shell child that prints its
//! fencing token (`child`).
//!
//! The demo shows the first election, kills the leader's tenure with SIGKILL (its deadline guard
//! must stop the orphaned child), measures the crash failover, restarts the killed node, sends
//! SIGTERM to the next leader and measures the graceful handover.
//!
//! A leader "acts" from the moment its child prints its start line; the cluster timestamps each
//! line as it reads it from the node's standard output, so the measured times include
//! everything up to the new child really running.
//!
//! Nothing is left running: the cluster stops every process it started, also on Ctrl-C and on
//! errors (see `crate::cluster`).

mod child;
mod timeline;
mod watch;

use std::io;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use self::child::ChildStart;
use self::timeline::{millis, seconds, Timeline};
use crate::cli::DemoArgs;
use crate::cluster::{
    interrupt_flag, Addresses, ClusterSpec, Output, OutputLine, ProcessCluster, Signal, Stop,
};
use crate::settings::{human, DEFAULT_HEARTBEAT, DEFAULT_LEASE};

/// Longest wait for any one step; far above the few seconds each takes.
const STEP_LIMIT: Duration = Duration::from_secs(20);
/// How long a node gets to shut down gracefully at cleanup before SIGKILL.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(5);
/// The demo's cluster size.
const SIZE: usize = 3;

/// Runs the demo. Exit status 0 on success, 1 on failure, 130 on Ctrl-C.
pub fn demo(args: DemoArgs) -> ExitCode {
    let interrupted = interrupt_flag();
    let result = Demo::start(&args, interrupted).and_then(Demo::run);
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

/// Why the demo stopped early.
enum Failure {
    Interrupted,
    Failed(String),
}

impl From<io::Error> for Failure {
    fn from(error: io::Error) -> Failure {
        Failure::Failed(error.to_string())
    }
}

/// The running demo: the cluster, the lines its nodes print, and what the demo saw of them.
/// Dropping it stops the cluster.
struct Demo {
    cluster: ProcessCluster,
    lines: Receiver<OutputLine>,
    interrupted: Arc<AtomicBool>,
    origin: Instant,
    starts: Vec<ChildStart>,
    stops: Vec<(usize, u64, Instant)>,
    timeline: Timeline,
}

/// The measurements the summary prints.
struct Measured {
    tokens: [u64; 3],
    failover: Duration,
    handover: Duration,
}

impl Demo {
    /// Starts the cluster: every node's output comes to the demo line by line.
    fn start(args: &DemoArgs, interrupted: Arc<AtomicBool>) -> Result<Demo, Failure> {
        let (sender, lines) = mpsc::channel();
        let spec = ClusterSpec {
            size: SIZE,
            executable: std::env::current_exe()?,
            addresses: Addresses::Shared,
            run_flags: vec![
                "--lease".into(),
                human(DEFAULT_LEASE).into(),
                "--heartbeat".into(),
                human(DEFAULT_HEARTBEAT).into(),
            ],
            admin_token: false,
            directory_prefix: "tenure-demo-".to_string(),
            output: Output::Lines {
                sender,
                log_lines: args.verbose,
            },
            parent_death_signal: Signal::TERM,
            stop: Stop::Terminate {
                grace: SHUTDOWN_LIMIT,
            },
            backend: None,
        };
        let mut cluster = ProcessCluster::prepare(spec)?;
        let marker = cluster.marker().to_string();
        cluster.set_child(child::command(&marker));
        for index in 0..SIZE {
            cluster.start_node(index)?;
        }
        Ok(Demo {
            cluster,
            lines,
            interrupted,
            origin: Instant::now(),
            starts: Vec::new(),
            stops: Vec::new(),
            timeline: Timeline::default(),
        })
    }

    /// The demo's phases, then the summary and the cleanup.
    fn run(mut self) -> Result<(), Failure> {
        self.introduce();
        let first = self.first_election()?;
        let (second, failover) = self.crash_failover(first)?;
        self.rejoin(first.node, second.node)?;
        let (third, handover) = self.graceful_handover(second)?;
        self.summarise(&Measured {
            tokens: [first.token, second.token, third.token],
            failover,
            handover,
        });
        let left = self.cluster.stop_all();
        println!("\nCleaned up: every node, guard and child is stopped ({left} left running).");
        Ok(())
    }

    fn introduce(&mut self) {
        println!(
            "tenure demo: a 3-node cluster on 127.0.0.1 with the default timing (lease {}, \
             heartbeat {}).",
            human(DEFAULT_LEASE),
            human(DEFAULT_HEARTBEAT)
        );
        println!(
            "Each node supervises a demo child that prints its fencing token \
             (TENURE_FENCING_TOKEN)."
        );
        println!(
            "State, keys and logs: {}",
            self.cluster.directory().display()
        );
        println!("Node n1 runs:\n  {}\n", self.cluster.describe_command(0));
        self.timeline.add(
            self.origin,
            "3 nodes started; each sits out one lease first (boot quarantine)",
        );
        self.note("3 nodes started; every node sits out one lease before it may vote");
    }

    /// Phase 1: the first election.
    fn first_election(&mut self) -> Result<ChildStart, Failure> {
        let first = self.wait_for_start(0)?;
        self.record(
            first.at,
            &format!(
                "{} leads and acts with fencing token {} ({} after start)",
                self.name(first.node),
                first.token,
                seconds(first.at - self.origin)
            ),
        );
        self.pump_for(Duration::from_secs(2))?;
        Ok(first)
    }

    /// Phase 2: crash failover. SIGKILL gives tenure no chance to clean up: its deadline guard
    /// sees the control pipe close and stops the child; the others wait out their promise.
    /// Returns the next start and how long after the kill it came.
    fn crash_failover(&mut self, first: ChildStart) -> Result<(ChildStart, Duration), Failure> {
        let killed_at = Instant::now();
        self.cluster.signal(first.node, Signal::KILL);
        self.record(
            killed_at,
            &format!(
                "SIGKILL {}'s tenure (its guard must now stop the orphaned child)",
                self.name(first.node)
            ),
        );
        let second = self.wait_for_start(first.token)?;
        if let Some(stopped_at) = self.stopped_at(first.node, first.token) {
            self.timeline.add(
                stopped_at,
                &format!(
                    "{}'s child got SIGTERM from its guard, {} after the kill",
                    self.name(first.node),
                    millis(stopped_at.saturating_duration_since(killed_at))
                ),
            );
        }
        self.record(
            second.at,
            &format!(
                "{} acts with fencing token {}: crash failover took {}",
                self.name(second.node),
                second.token,
                seconds(second.at - killed_at)
            ),
        );
        Ok((second, second.at - killed_at))
    }

    /// Phase 3: bring the killed node back; it rejoins as a follower after its quarantine.
    fn rejoin(&mut self, killed: usize, leader: usize) -> Result<(), Failure> {
        self.cluster.try_wait_for_exit(killed, STEP_LIMIT);
        self.cluster.start_node(killed)?;
        self.record(Instant::now(), &format!("restarted {}", self.name(killed)));
        self.wait_until_follower(killed, leader)?;
        self.note(&format!(
            "{} follows {} again",
            self.name(killed),
            self.name(leader)
        ));
        self.pump_for(Duration::from_millis(500))
    }

    /// Phase 4: graceful handover. SIGTERM makes the leader stop its child first, then send
    /// Resign and TimeoutNow to a successor. Returns the next start and how long after the
    /// SIGTERM it came.
    fn graceful_handover(&mut self, second: ChildStart) -> Result<(ChildStart, Duration), Failure> {
        let terminated_at = Instant::now();
        self.cluster.signal(second.node, Signal::TERM);
        self.record(
            terminated_at,
            &format!(
                "SIGTERM {}'s tenure: graceful handover",
                self.name(second.node)
            ),
        );
        let third = self.wait_for_start(second.token)?;
        self.record(
            third.at,
            &format!(
                "{} acts with fencing token {}: handover took {}",
                self.name(third.node),
                third.token,
                seconds(third.at - terminated_at)
            ),
        );
        let status = self.wait_for_exit(second.node)?;
        let line = format!("{}'s tenure exited with {status}", self.name(second.node));
        self.record(Instant::now(), &line);
        self.pump_for(Duration::from_millis(1500))?;
        Ok((third, third.at - terminated_at))
    }

    fn summarise(&mut self, measured: &Measured) {
        println!("\nTimeline");
        print!("{}", self.timeline.render(self.origin));
        println!(
            "\nCrash failover (SIGKILL of the leader's tenure until the next child runs): {}",
            seconds(measured.failover)
        );
        println!(
            "  = the rest of the followers' promise (up to one lease, {}) + the first-ranked \
             follower's pre-vote, vote and first heartbeat (no random wait)",
            human(DEFAULT_LEASE)
        );
        println!(
            "Graceful handover (SIGTERM until the next child runs): {}",
            seconds(measured.handover)
        );
        println!(
            "  = the child's stop time + TimeoutNow/Resign + the successor's vote (it \
             campaigns at once) and first heartbeat"
        );
        let [first, second, third] = measured.tokens;
        println!("Fencing tokens rose {first} -> {second} -> {third}.");
    }

    fn name(&self, node: usize) -> String {
        self.cluster.nodes[node].name.clone()
    }

    /// Prints `text` now and keeps it for the timeline at `at`.
    fn record(&mut self, at: Instant, text: &str) {
        self.note(text);
        self.timeline.add(at, text);
    }

    fn note(&self, text: &str) {
        println!("[{:>7}] {text}", seconds(self.origin.elapsed()));
    }
}
