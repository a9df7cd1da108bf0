//! tenure-tests: end-to-end tests of the real `tenure` binary, as clusters of processes on
//! 127.0.0.x (see `tests/cluster.rs`), and the support of the chaos runner and the benchmark
//! (`src/bin/chaos.rs`, `src/bin/bench.rs`; docs/benchmarks.md).
//!
//! - this file: finding the binary, [`Cluster`] (start, signal, restart and query nodes, clean
//!   up), the ledger the supervised children write, and the overlap check;
//! - `child`: the supervised child (ledger lines, alive stamps, writes to the fenced store);
//! - `store`: the fenced store, which accepts a write only if its token is at least the
//!   highest it has seen;
//! - `ledger_tail`: reading a growing ledger incrementally;
//! - `analysis`: the chaos runner's checks over ledger, acknowledgements and store log;
//! - `netns` and `proxy`: partitions, through network namespaces or a UDP fault proxy;
//! - `procfs`, `stats`: process inspection, percentiles (Ctrl-C: `tenure_node::cluster::interrupt`).
//!
//! # Finding the binary
//!
//! Cargo builds the binaries of a package only for that package's own integration tests, and
//! `tenure` belongs to `tenure-node`. [`tenure_binary`] therefore looks, in this order, at:
//! 1. `$TENURE_BIN`, if set;
//! 2. `tenure` in the directory above the test executable's `deps/` (where `cargo test
//!    --workspace` and `cargo build -p tenure-node` put it), if it is newer than every source
//!    file of `tenure-node` and `tenure-core`;
//! 3. otherwise it runs `cargo build -p tenure-node --bin tenure` into that same target
//!    directory and profile, once per test process.
//!
//! Run the suite with `cargo test -p tenure-tests` (or as part of `cargo test --workspace`). Set
//! `TENURE_TEST_KEEP=1` to keep each cluster's directory (state, logs, ledger) for inspection.
//!
//! # Rules every test follows
//!
//! Only loopback addresses (each node on its own 127.0.0.x), ports picked free by the kernel,
//! state in a temporary directory; every wait bounded; every process started is killed when
//! the [`Cluster`] drops (and by a parent-death signal if the test process itself dies). Timing
//! is asserted only against bounds derived from the cluster's configuration ([`Timing`]), each
//! with the same generous [`SLACK`] for a loaded machine.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use rustix::time::{clock_gettime, ClockId};
use serde_json::Value;
use tenure_node::cluster::process::{exit_with_parent, is_alive, processes_mentioning, signal};
use tenure_node::http_client::{self, Response};

pub use tenure_node::cluster::process::Signal;

pub mod analysis;
pub mod child;
pub mod ledger_tail;
pub mod netns;
pub mod procfs;
pub mod proxy;
pub mod stats;
pub mod store;

/// Added to every upper bound on a duration: process start-up, scheduling and HTTP polling on
/// a busy 2-core machine. Bounds are otherwise derived from the configuration.
pub const SLACK: Duration = Duration::from_secs(5);

/// `CLOCK_MONOTONIC` in nanoseconds: the clock of the ledger (the same on every process of the
/// machine, so the children's timestamps and the test's compare).
pub fn monotonic_nanos() -> u64 {
    let time = clock_gettime(ClockId::Monotonic);
    u64::try_from(time.tv_sec).unwrap_or(0) * 1_000_000_000
        + u64::try_from(time.tv_nsec).unwrap_or(0)
}

/// The cluster's timing, and the bounds the tests derive from it.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub lease: Duration,
    pub heartbeat: Duration,
    pub stop_grace: Duration,
    pub max_drift: f64,
}

impl Timing {
    /// Short timings that keep the suite fast: lease 1 s, heartbeat 100 ms, stop grace 300 ms.
    pub const FAST: Timing = Timing {
        lease: Duration::from_secs(1),
        heartbeat: Duration::from_millis(100),
        stop_grace: Duration::from_millis(300),
        max_drift: 0.01,
    };

    /// How long the leader holds a lease per renewal: L·(1−ρ)/(1+ρ) (DESIGN: Leader lease).
    pub fn lease_hold(&self) -> Duration {
        self.lease
            .mul_f64((1.0 - self.max_drift) / (1.0 + self.max_drift))
    }

    /// How long before its lease ends the leader stops acting: stop grace plus the 150 ms
    /// SIGKILL reserve (`tenure_node::settings::STOP_RESERVE`).
    pub fn stop_margin(&self) -> Duration {
        self.stop_grace + tenure_node::settings::STOP_RESERVE
    }

    /// The election jitter bound: a quarter lease.
    pub fn jitter(&self) -> Duration {
        self.lease / 4
    }

    /// Two election rounds (pre-vote, then vote), each bounded by two heartbeats.
    pub fn rounds(&self) -> Duration {
        self.heartbeat * 8
    }

    /// Crash failover: the followers' promise (≤ L) + jitter + election rounds (DESIGN:
    /// Failover), plus `SLACK`.
    pub fn failover_bound(&self) -> Duration {
        self.lease + self.jitter() + self.rounds() + SLACK
    }

    /// The first election of a fresh cluster: boot quarantine (L) + jitter + rounds + `SLACK`.
    pub fn first_election_bound(&self) -> Duration {
        self.failover_bound()
    }

    /// Graceful handover: the child's stop (at most stop grace + reserve) + jitter (the
    /// successor may have to campaign on its own) + rounds + `SLACK`.
    pub fn handover_bound(&self) -> Duration {
        self.stop_margin() + self.jitter() + self.rounds() + SLACK
    }

    /// Command-line flags for this timing.
    pub fn flags(&self) -> Vec<String> {
        vec![
            "--lease".into(),
            format!("{}ms", self.lease.as_millis()),
            "--heartbeat".into(),
            format!("{}ms", self.heartbeat.as_millis()),
            "--stop-grace".into(),
            format!("{}ms", self.stop_grace.as_millis()),
            "--max-drift".into(),
            self.max_drift.to_string(),
        ]
    }
}

/// The `tenure` binary under test; see the crate docs.
pub fn tenure_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(locate_or_build).clone()
}

fn locate_or_build() -> PathBuf {
    if let Some(path) = std::env::var_os("TENURE_BIN") {
        return PathBuf::from(path);
    }
    let executable = std::env::current_exe().expect("the test knows its own path");
    // target/<profile>/deps/<test> → target/<profile>; a binary of this package (the chaos
    // runner, the benchmark) runs from target/<profile> itself.
    let mut profile_dir = executable
        .parent()
        .expect("an executable lies in a directory")
        .to_path_buf();
    if profile_dir.file_name().is_some_and(|name| name == "deps") {
        profile_dir = profile_dir
            .parent()
            .expect("deps lies in target/<profile>")
            .to_path_buf();
    }
    let candidate = profile_dir.join("tenure");
    if is_fresh(&candidate) {
        return candidate;
    }
    let target_dir = profile_dir
        .parent()
        .expect("a profile directory lies in a target directory");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut build = Command::new(cargo);
    build
        .args(["build", "-p", "tenure-node", "--bin", "tenure"])
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(workspace_root());
    if profile_dir
        .file_name()
        .is_some_and(|name| name == "release")
    {
        build.arg("--release");
    }
    let status = build
        .status()
        .expect("cargo runs to build the tenure binary");
    assert!(status.success(), "building the tenure binary failed");
    assert!(candidate.exists(), "{} was not built", candidate.display());
    candidate
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests package lies in the workspace")
        .to_path_buf()
}

/// Whether `binary` exists and is newer than every source file it is built from.
fn is_fresh(binary: &Path) -> bool {
    let Ok(built) = fs::metadata(binary).and_then(|metadata| metadata.modified()) else {
        return false;
    };
    let root = workspace_root();
    let newest = ["crates/node", "crates/core"]
        .iter()
        .map(|crate_dir| newest_source(&root.join(crate_dir)))
        .max()
        .flatten();
    newest.is_none_or(|newest| newest <= built)
}

fn newest_source(directory: &Path) -> Option<SystemTime> {
    let mut newest = None;
    let entries = fs::read_dir(directory).ok()?;
    for entry in entries.flatten() {
        let path = entry.path();
        let modified = if path.is_dir() {
            if path.file_name().is_some_and(|name| name == "tests") {
                continue;
            }
            newest_source(&path)
        } else if path
            .extension()
            .is_some_and(|extension| extension == "rs" || extension == "toml")
        {
            entry
                .metadata()
                .and_then(|metadata| metadata.modified())
                .ok()
        } else {
            None
        };
        newest = newest.max(modified);
    }
    newest
}

/// How to build a cluster.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    pub size: usize,
    pub timing: Timing,
    /// The ledger child (`env!("CARGO_BIN_EXE_ledger-child")`); `None` for observer-only nodes.
    pub ledger_child: Option<PathBuf>,
    /// Arguments for the ledger child before the ledger path: a mode switch when the child is
    /// a binary that runs [`child::run`] in a hidden mode (the chaos runner, the benchmark).
    pub child_leading_arguments: Vec<String>,
    /// Extra arguments for the ledger child, after the ledger path.
    pub child_arguments: Vec<String>,
    /// `--log-level` of every node.
    pub log_level: String,
    /// The prefix of the cluster's temporary directory, which every process of the cluster
    /// mentions in its command line.
    pub directory_prefix: String,
    /// Extra `tenure run` flags for every node.
    pub extra_flags: Vec<String>,
    /// Protect `POST /step-down` with an admin token.
    pub admin_token: bool,
}

impl ClusterSpec {
    /// `size` nodes with the fast timing, each supervising `ledger_child`.
    pub fn new(size: usize, ledger_child: &str) -> ClusterSpec {
        ClusterSpec {
            size,
            timing: Timing::FAST,
            ledger_child: Some(PathBuf::from(ledger_child)),
            child_leading_arguments: Vec::new(),
            child_arguments: Vec::new(),
            log_level: "debug".to_string(),
            directory_prefix: "tenure-test-".to_string(),
            extra_flags: Vec::new(),
            admin_token: false,
        }
    }
}

/// One node of a [`Cluster`].
#[derive(Debug)]
pub struct Node {
    pub name: String,
    /// Where the node listens for datagrams.
    pub udp: SocketAddr,
    /// Where the other nodes send this node's datagrams (normally `udp`; a test may put a
    /// proxy in between).
    pub advertised: SocketAddr,
    pub http: SocketAddr,
    pub state_dir: PathBuf,
    pub log: PathBuf,
    /// A command that runs tenure for this node, such as `ip netns exec NAME` to start it in a
    /// network namespace; empty to run tenure directly.
    pub launcher: Vec<OsString>,
    process: Option<Child>,
}

/// A cluster of `tenure run` processes. Dropping it kills every process it started.
pub struct Cluster {
    pub directory: tempfile::TempDir,
    pub nodes: Vec<Node>,
    pub key_file: PathBuf,
    pub ledger: PathBuf,
    pub timing: Timing,
    pub admin_token: Option<String>,
    /// When set, HTTP requests to the nodes are made from this network namespace (a path such
    /// as `/run/netns/NAME`), for nodes that run in namespaces of their own (see `netns`).
    pub http_namespace: Option<PathBuf>,
    spec: ClusterSpec,
    marker: String,
    shut_down: bool,
}

impl Cluster {
    /// Creates the directories, key and ports, but starts no node.
    pub fn prepare(spec: ClusterSpec) -> Cluster {
        let directory = tempfile::Builder::new()
            .prefix(&spec.directory_prefix)
            .tempdir()
            .expect("a temporary directory");
        let marker = directory.path().display().to_string();
        let key_file = directory.path().join("cluster.key");
        fs::write(&key_file, format!("{}\n", "5c".repeat(32))).expect("write the key");
        // Private, as tenure asks of a key file (it warns about one other users can read).
        fs::set_permissions(&key_file, fs::Permissions::from_mode(0o600)).expect("chmod the key");
        let admin_token = spec.admin_token.then(|| "s3cret-token".to_string());
        if let Some(token) = &admin_token {
            let token_file = directory.path().join("admin.token");
            fs::write(&token_file, format!("{token}\n")).expect("write the admin token");
            fs::set_permissions(&token_file, fs::Permissions::from_mode(0o600))
                .expect("chmod the admin token");
        }
        let nodes = (0..spec.size)
            .map(|index| {
                let name = format!("n{}", index + 1);
                let ip = format!("127.0.0.{}", index + 1);
                let state_dir = directory.path().join(&name);
                fs::create_dir(&state_dir).expect("create a state directory");
                let udp = free_udp(&ip);
                Node {
                    log: directory.path().join(format!("{name}.log")),
                    name,
                    udp,
                    advertised: udp,
                    http: free_tcp(&ip),
                    state_dir,
                    launcher: Vec::new(),
                    process: None,
                }
            })
            .collect();
        Cluster {
            ledger: directory.path().join("ledger"),
            directory,
            nodes,
            key_file,
            timing: spec.timing,
            admin_token,
            http_namespace: None,
            spec,
            marker,
            shut_down: false,
        }
    }

    /// Prepares and starts every node.
    pub fn start(spec: ClusterSpec) -> Cluster {
        let mut cluster = Cluster::prepare(spec);
        for index in 0..cluster.nodes.len() {
            cluster.spawn(index);
        }
        cluster
    }

    /// Replaces the ledger child's arguments after the ledger path, for nodes started from now
    /// on (for arguments that name files in the cluster's own directory).
    pub fn set_child_arguments(&mut self, arguments: &[String]) {
        self.spec.child_arguments = arguments.to_vec();
    }

    /// The `tenure run` arguments of node `index`.
    pub fn arguments(&self, index: usize) -> Vec<OsString> {
        let node = &self.nodes[index];
        let mut arguments: Vec<OsString> = vec![
            "run".into(),
            "--id".into(),
            node.name.clone().into(),
            "--listen".into(),
            node.udp.to_string().into(),
            "--http".into(),
            node.http.to_string().into(),
            "--state-dir".into(),
            node.state_dir.clone().into(),
            "--log-level".into(),
            self.spec.log_level.clone().into(),
        ];
        if self.nodes.len() > 1 {
            arguments.push("--cluster-key-file".into());
            arguments.push(self.key_file.clone().into());
        }
        if self.admin_token.is_some() {
            arguments.push("--admin-token-file".into());
            arguments.push(self.directory.path().join("admin.token").into());
        }
        arguments.extend(self.timing.flags().into_iter().map(OsString::from));
        for (other, peer) in self.nodes.iter().enumerate() {
            if other != index {
                arguments.push("--peer".into());
                arguments.push(format!("{}={}", peer.name, peer.advertised).into());
            }
        }
        arguments.extend(self.spec.extra_flags.iter().map(OsString::from));
        if let Some(child) = &self.spec.ledger_child {
            arguments.push("--".into());
            arguments.push(child.clone().into());
            arguments.extend(self.spec.child_leading_arguments.iter().map(OsString::from));
            arguments.push(self.ledger.clone().into());
            arguments.extend(self.spec.child_arguments.iter().map(OsString::from));
        }
        arguments
    }

    /// Starts node `index` (again), its output appended to its log file.
    pub fn spawn(&mut self, index: usize) {
        let arguments = self.arguments(index);
        let node = &mut self.nodes[index];
        assert!(node.process.is_none(), "{} is already running", node.name);
        let log = File::options()
            .create(true)
            .append(true)
            .open(&node.log)
            .expect("open the node's log");
        let mut command = match node.launcher.split_first() {
            Some((program, launcher_arguments)) => {
                let mut command = Command::new(program);
                command.args(launcher_arguments).arg(tenure_binary());
                command
            }
            None => Command::new(tenure_binary()),
        };
        command
            .args(arguments)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("duplicate the log file"))
            .stderr(log)
            .process_group(0);
        for (variable, _) in std::env::vars_os() {
            if variable.to_string_lossy().starts_with("TENURE_") {
                command.env_remove(variable);
            }
        }
        // If the test process dies, its nodes die too (their guards then stop the children).
        exit_with_parent(&mut command, Signal::KILL);
        node.process = Some(command.spawn().expect("start tenure"));
    }

    /// The directory marker every process of this cluster mentions in its command line.
    pub fn marker(&self) -> &str {
        &self.marker
    }

    /// Whether node `index`'s tenure was started and has not been reaped.
    pub fn is_running(&self, index: usize) -> bool {
        self.nodes[index].process.is_some()
    }

    /// Waits up to `limit` for node `index`'s tenure to exit; `None` if it did not (it is
    /// left running) or was not running. Unlike [`Cluster::wait_for_exit`], never fails.
    pub fn try_wait_for_exit(&mut self, index: usize, limit: Duration) -> Option<ExitStatus> {
        let give_up = Instant::now() + limit;
        loop {
            let process = self.nodes[index].process.as_mut()?;
            if let Ok(Some(status)) = process.try_wait() {
                self.nodes[index].process = None;
                return Some(status);
            }
            if Instant::now() >= give_up {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The process ID of node `index`'s tenure.
    pub fn pid(&self, index: usize) -> i32 {
        let process = self.nodes[index]
            .process
            .as_ref()
            .expect("the node is running");
        process.id() as i32
    }

    /// Sends `kind` to node `index`'s tenure (only tenure: its guard and child are in process
    /// groups of their own). Returns the `CLOCK_MONOTONIC` time it was sent.
    pub fn signal(&self, index: usize, kind: Signal) -> u64 {
        let at = monotonic_nanos();
        signal(self.pid(index), kind);
        at
    }

    /// Waits for node `index`'s tenure to exit.
    pub fn wait_for_exit(&mut self, index: usize, limit: Duration) -> ExitStatus {
        let give_up = Instant::now() + limit;
        let name = self.nodes[index].name.clone();
        loop {
            let process = self.nodes[index]
                .process
                .as_mut()
                .expect("the node was started");
            if let Some(status) = process.try_wait().expect("wait for our own child") {
                self.nodes[index].process = None;
                return status;
            }
            if Instant::now() >= give_up {
                self.fail(&format!("{name} did not exit within {limit:?}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills node `index`'s tenure with SIGKILL and reaps it. Returns when it was sent.
    pub fn kill(&mut self, index: usize) -> u64 {
        let at = self.signal(index, Signal::KILL);
        self.wait_for_exit(index, SLACK);
        at
    }

    /// A request to node `index`'s HTTP API.
    pub fn request(
        &self,
        index: usize,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> io::Result<Response> {
        let address = self.nodes[index].http.to_string();
        let send = || http_client::request(&address, method, path, headers, Duration::from_secs(2));
        match &self.http_namespace {
            Some(namespace) => netns::in_namespace(namespace, send),
            None => send(),
        }
    }

    /// `GET path` on node `index`.
    pub fn get(&self, index: usize, path: &str) -> io::Result<Response> {
        self.request(index, "GET", path, &[])
    }

    /// Node `index`'s `/status`, if it answers.
    pub fn status(&self, index: usize) -> Option<Value> {
        self.get(index, "/status").ok()?.json().ok()
    }

    /// Polls `check` every 20 ms until it returns `Some`, or fails the test after `limit`.
    pub fn wait_for<T>(
        &self,
        limit: Duration,
        what: &str,
        mut check: impl FnMut(&Cluster) -> Option<T>,
    ) -> T {
        let give_up = Instant::now() + limit;
        loop {
            if let Some(value) = check(self) {
                return value;
            }
            if Instant::now() >= give_up {
                self.fail(&format!("timed out after {limit:?} waiting for {what}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The nodes that report acting, with their fencing tokens.
    pub fn acting(&self) -> Vec<(usize, u64)> {
        (0..self.nodes.len())
            .filter(|index| self.nodes[*index].process.is_some())
            .filter_map(|index| {
                let status = self.status(index)?;
                (status["acting"].as_bool() == Some(true))
                    .then(|| (index, status["fencing_token"].as_u64().unwrap_or(0)))
            })
            .collect()
    }

    /// Whether the cluster is at rest: every node runs and answers `/status`; exactly one acts;
    /// every node follows it, in its term, out of boot quarantine; the leader has heard from
    /// every other node within the last three heartbeats; and exactly one child runs according
    /// to `ledger` (read incrementally, see `ledger_tail`): the leader's, with its token. The
    /// chaos runner injects its next fault, and the benchmark its next round, only from such
    /// a state.
    ///
    /// Following the leader is not enough: right after a partition heals, a node receives the
    /// leader's heartbeats and follows it while its own datagrams still wait in the kernel for
    /// address resolution (ARP retries once a second on Linux). The leader's lease then rests
    /// on the other nodes alone, and a fault of one of them costs a failover.
    pub fn healthy(&self, ledger: &mut ledger_tail::LedgerTail) -> Option<Healthy> {
        ledger.poll();
        let mut statuses = Vec::new();
        for index in 0..self.nodes.len() {
            if !self.is_running(index) {
                return None;
            }
            statuses.push(self.status(index)?);
        }
        let acting: Vec<(usize, u64)> = statuses
            .iter()
            .enumerate()
            .filter(|(_, status)| status["acting"] == true)
            .map(|(index, status)| (index, status["fencing_token"].as_u64().unwrap_or(0)))
            .collect();
        let [(leader, token)] = acting[..] else {
            return None;
        };
        let leader_name = self.nodes[leader].name.as_str();
        let agreed = statuses.iter().all(|status| {
            status["leader"] == leader_name
                && status["term"] == token
                && status["quarantine_remaining_ms"].is_null()
        });
        let recent = u64::try_from((self.timing.heartbeat * 3).as_millis()).unwrap_or(u64::MAX);
        let hears_everyone = statuses[leader]["peers"].as_array().is_some_and(|peers| {
            peers.len() + 1 == self.nodes.len()
                && peers.iter().all(|peer| {
                    peer["last_heard_ms"]
                        .as_u64()
                        .is_some_and(|ms| ms <= recent)
                })
        });
        let running = ledger.running();
        let [child] = running[..] else {
            return None;
        };
        let healthy = agreed && hears_everyone && child.token == token && child.node == leader_name;
        healthy.then_some(Healthy {
            leader,
            token,
            child_pid: child.pid,
        })
    }

    /// Waits until exactly one node acts with a token above `above`, and the ledger shows its
    /// child started. Returns the node and token.
    pub fn wait_for_acting(&self, limit: Duration, above: u64) -> (usize, u64) {
        self.wait_for(
            limit,
            &format!("a node acting with a token above {above}"),
            |cluster| {
                let acting = cluster.acting();
                match acting[..] {
                    [(index, token)] if token > above => {
                        let started = cluster
                            .ledger()
                            .iter()
                            .any(|entry| entry.token == token && entry.event == LedgerEvent::Start);
                        started.then_some((index, token))
                    }
                    _ => None,
                }
            },
        )
    }

    /// The ledger so far.
    pub fn ledger(&self) -> Vec<LedgerEntry> {
        read_ledger(&self.ledger)
    }

    /// Waits for the ledger to show a child start with a token above `above`.
    pub fn wait_for_ledger_start(&self, limit: Duration, above: u64) -> LedgerEntry {
        self.wait_for(
            limit,
            &format!("a child start with a token above {above}"),
            |cluster| {
                cluster
                    .ledger()
                    .into_iter()
                    .find(|entry| entry.event == LedgerEvent::Start && entry.token > above)
            },
        )
    }

    /// Asserts the ledger's intervals never overlap and their tokens never go back.
    pub fn assert_no_overlap(&self) {
        if let Err(problem) = check_no_overlap(&self.ledger()) {
            self.fail(&problem);
        }
    }

    /// Fails the test with `message` and every node's log.
    pub fn fail(&self, message: &str) -> ! {
        panic!("{message}\n{}", self.logs());
    }

    /// The ledger and the last lines of every node's log, for a failure message.
    pub fn logs(&self) -> String {
        let mut text = String::new();
        text.push_str(&format!(
            "--- ledger\n{}",
            fs::read_to_string(&self.ledger).unwrap_or_default()
        ));
        for node in &self.nodes {
            let log = fs::read_to_string(&node.log).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(80)..];
            text.push_str(&format!(
                "--- {} ({})\n{}\n",
                node.name,
                node.log.display(),
                tail.join("\n")
            ));
        }
        text
    }
}

impl Cluster {
    /// Kills every node's tenure with SIGKILL and waits until every process of the cluster is
    /// gone: the guards stop the children (SIGTERM first, so they record their stop), and
    /// anything still there after a generous wait is killed outright. The directory stays, so
    /// the ledger can still be read. Called by `drop` if not before.
    pub fn shutdown(&mut self) {
        self.shut_down = true;
        for node in &mut self.nodes {
            if let Some(mut process) = node.process.take() {
                let _ = process.kill();
                let _ = process.wait();
            }
        }
        // The guards see their pipes close and stop the children within the stop grace;
        // anything still there after a generous wait is killed outright.
        let give_up = Instant::now() + SLACK;
        while Instant::now() < give_up && !processes_mentioning(&self.marker).is_empty() {
            std::thread::sleep(Duration::from_millis(20));
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
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.shut_down {
            self.shutdown();
        }
        if std::env::var_os("TENURE_TEST_KEEP").is_some() {
            let kept = std::mem::replace(
                &mut self.directory,
                tempfile::tempdir().expect("a temporary directory"),
            );
            eprintln!("kept {}", kept.keep().display());
        }
    }
}

/// A cluster at rest (see [`Cluster::healthy`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Healthy {
    /// The acting node.
    pub leader: usize,
    /// Its fencing token.
    pub token: u64,
    /// Its child's process ID.
    pub child_pid: u32,
}

/// What a ledger line records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LedgerEvent {
    Start,
    Stop,
    /// A periodic stamp of a child that is still running (`ledger-child --alive-ms`).
    Alive,
}

/// One line of the ledger the children write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEntry {
    pub node: String,
    pub token: u64,
    pub event: LedgerEvent,
    /// `CLOCK_MONOTONIC` nanoseconds.
    pub at: u64,
    pub pid: u32,
    pub leader: String,
}

/// Reads the ledger; a missing file is an empty ledger.
pub fn read_ledger(path: &Path) -> Vec<LedgerEntry> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines().filter_map(parse_ledger_line).collect()
}

/// One ledger line, or `None` if it is not one (a torn or foreign line).
pub fn parse_ledger_line(line: &str) -> Option<LedgerEntry> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [node, token, event, at, pid, leader] = fields[..] else {
        return None;
    };
    Some(LedgerEntry {
        node: node.to_string(),
        token: token.parse().ok()?,
        event: match event {
            "start" => LedgerEvent::Start,
            "stop" => LedgerEvent::Stop,
            "alive" => LedgerEvent::Alive,
            _ => return None,
        },
        at: at.parse().ok()?,
        pid: pid.parse().ok()?,
        leader: leader.to_string(),
    })
}

/// One child's life from the ledger.
#[derive(Clone, Debug)]
pub struct Interval {
    pub node: String,
    pub token: u64,
    pub pid: u32,
    pub start: u64,
    pub stop: Option<u64>,
    /// The last alive stamp, for children that write them.
    pub last_alive: Option<u64>,
}

/// The children's lives, ordered by start.
pub fn intervals(entries: &[LedgerEntry]) -> Vec<Interval> {
    let mut by_pid: BTreeMap<u32, Interval> = BTreeMap::new();
    for entry in entries {
        let interval = by_pid.entry(entry.pid).or_insert_with(|| Interval {
            node: entry.node.clone(),
            token: entry.token,
            pid: entry.pid,
            start: entry.at,
            stop: None,
            last_alive: None,
        });
        match entry.event {
            LedgerEvent::Start => interval.start = entry.at,
            LedgerEvent::Stop => interval.stop = Some(entry.at),
            LedgerEvent::Alive => {
                interval.last_alive = interval.last_alive.max(Some(entry.at));
            }
        }
    }
    let mut intervals: Vec<Interval> = by_pid.into_values().collect();
    intervals.sort_by_key(|interval| interval.start);
    intervals
}

/// `acting_safety` and `fencing_monotonic` (DESIGN: Invariants) as seen by the children: each
/// child stopped before the next one started, and tokens never went back (a repeated token
/// is allowed only for a restart on the same node).
pub fn check_no_overlap(entries: &[LedgerEntry]) -> Result<(), String> {
    let intervals = intervals(entries);
    for pair in intervals.windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        let Some(stop) = before.stop else {
            return Err(format!(
                "child {} of {} (token {}) never recorded a stop, yet child {} of {} (token {}) \
                 started",
                before.pid, before.node, before.token, after.pid, after.node, after.token
            ));
        };
        if stop >= after.start {
            return Err(format!(
                "overlap: child {} of {} (token {}) stopped {} ms after child {} of {} \
                 (token {}) started",
                before.pid,
                before.node,
                before.token,
                (stop - after.start) / 1_000_000,
                after.pid,
                after.node,
                after.token
            ));
        }
        let monotonic = after.token > before.token
            || (after.token == before.token && after.node == before.node);
        if !monotonic {
            return Err(format!(
                "fencing tokens went from {} ({}) to {} ({})",
                before.token, before.node, after.token, after.node
            ));
        }
    }
    Ok(())
}

/// The value of a metric sample line `name{labels} value` in Prometheus text.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// A free UDP port on `ip`, as an address.
pub fn free_udp(ip: &str) -> SocketAddr {
    UdpSocket::bind((ip, 0))
        .and_then(|socket| socket.local_addr())
        .expect("a free UDP port on loopback")
}

/// A free TCP port on `ip`, as an address.
pub fn free_tcp(ip: &str) -> SocketAddr {
    TcpListener::bind((ip, 0))
        .and_then(|listener| listener.local_addr())
        .expect("a free TCP port on loopback")
}

/// Runs `tenure` with `arguments` to completion (bounded), returning status, stdout and
/// stderr.
pub fn run_tenure(
    arguments: &[&str],
    environment: &[(&str, &str)],
) -> (ExitStatus, String, String) {
    let mut command = Command::new(tenure_binary());
    command.args(arguments).stdin(Stdio::null());
    for (variable, _) in std::env::vars_os() {
        if variable.to_string_lossy().starts_with("TENURE_") {
            command.env_remove(variable);
        }
    }
    command.envs(environment.iter().copied());
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tenure");
    let give_up = Instant::now() + SLACK * 2;
    loop {
        if child.try_wait().expect("wait for our own child").is_some() {
            break;
        }
        if Instant::now() >= give_up {
            let _ = child.kill();
            panic!("tenure {arguments:?} did not finish within {:?}", SLACK * 2);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let output = child.wait_with_output().expect("collect tenure's output");
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(node: &str, token: u64, event: LedgerEvent, at: u64, pid: u32) -> LedgerEntry {
        LedgerEntry {
            node: node.to_string(),
            token,
            event,
            at,
            pid,
            leader: node.to_string(),
        }
    }

    #[test]
    fn the_overlap_check_catches_overlaps_open_intervals_and_tokens_going_back() {
        use LedgerEvent::{Start, Stop};
        let good = vec![
            entry("n1", 1, Start, 10, 100),
            entry("n1", 1, Stop, 20, 100),
            entry("n1", 1, Start, 25, 101),
            entry("n1", 1, Stop, 30, 101),
            entry("n2", 2, Start, 40, 102),
        ];
        assert_eq!(check_no_overlap(&good), Ok(()));
        let overlap = vec![
            entry("n1", 1, Start, 10, 100),
            entry("n2", 2, Start, 15, 101),
            entry("n1", 1, Stop, 20, 100),
        ];
        assert!(check_no_overlap(&overlap).unwrap_err().contains("overlap"));
        let open = vec![
            entry("n1", 1, Start, 10, 100),
            entry("n2", 2, Start, 15, 101),
        ];
        assert!(check_no_overlap(&open)
            .unwrap_err()
            .contains("never recorded a stop"));
        let back = vec![
            entry("n1", 2, Start, 10, 100),
            entry("n1", 2, Stop, 12, 100),
            entry("n2", 2, Start, 15, 101),
        ];
        assert!(check_no_overlap(&back).unwrap_err().contains("tokens went"));
    }

    #[test]
    fn reads_metric_samples() {
        let text = "# HELP x y\nx_total{a=\"b\"} 3\nplain 0.250\n";
        assert_eq!(metric(text, "x_total{a=\"b\"}"), Some(3.0));
        assert_eq!(metric(text, "plain"), Some(0.25));
        assert_eq!(metric(text, "missing"), None);
    }
}
