//! [`Cluster`]: the local process cluster of tenure-node (`tenure_node::cluster`), with every
//! node supervising the ledger child, and what tests ask of it: waits that fail the test with
//! every node's log, the ledger, and whether the cluster is at rest ([`Cluster::healthy`]).

use std::ffi::OsString;
use std::fs;
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use tenure_node::cluster::{
    Addresses, ClusterSpec as ProcessSpec, Output, ProcessCluster, Signal, Stop, StoreBackend,
};

use crate::binary::tenure_binary;
use crate::ledger::{check_no_overlap, read_ledger, LedgerEntry, LedgerEvent};
use crate::ledger_tail::LedgerTail;
use crate::timing::{Timing, SLACK};

/// How to build a cluster.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    pub size: usize,
    pub timing: Timing,
    /// The ledger child (`env!("CARGO_BIN_EXE_ledger-child")`); `None` for observer-only nodes.
    pub ledger_child: Option<PathBuf>,
    /// Arguments for the ledger child before the ledger path: a mode switch when the child is
    /// a binary that runs [`crate::child::run`] in a hidden mode (the chaos runner, the
    /// benchmark).
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
    /// Protect `POST /step-down` with an admin token ([`ProcessCluster::admin_token`]).
    pub admin_token: bool,
    /// Hold the election in a coordination store instead of the quorum (protocol: Store
    /// leases).
    pub backend: Option<StoreBackend>,
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
            backend: None,
        }
    }

    /// `size` nodes that hold their election in `backend`, each supervising `ledger_child`.
    pub fn with_backend(size: usize, ledger_child: &str, backend: StoreBackend) -> ClusterSpec {
        ClusterSpec {
            backend: Some(backend),
            ..ClusterSpec::new(size, ledger_child)
        }
    }

    /// The process cluster this asks for: node `i` on 127.0.0.`i+1`, output to the nodes' log
    /// files, SIGKILL when the test process dies and at the end.
    fn processes(&self) -> ProcessSpec {
        let mut run_flags: Vec<OsString> =
            vec!["--log-level".into(), self.log_level.clone().into()];
        run_flags.extend(self.timing.flags().into_iter().map(OsString::from));
        run_flags.extend(self.extra_flags.iter().map(OsString::from));
        ProcessSpec {
            size: self.size,
            executable: tenure_binary(),
            addresses: Addresses::OnePerNode,
            run_flags,
            admin_token: self.admin_token,
            directory_prefix: self.directory_prefix.clone(),
            output: Output::LogFile,
            parent_death_signal: Signal::KILL,
            stop: Stop::Kill,
            backend: self.backend.clone(),
        }
    }
}

/// A cluster of `tenure run` processes supervising the ledger child. It is a
/// [`ProcessCluster`] (nodes, key, HTTP queries, signals) with the ledger and the timing;
/// dropping it kills every process it started. Setting up the cluster is not what a test
/// checks, so its failures panic.
pub struct Cluster {
    processes: ProcessCluster,
    /// The ledger every child of the cluster appends to.
    pub ledger: PathBuf,
    pub timing: Timing,
    spec: ClusterSpec,
}

impl Deref for Cluster {
    type Target = ProcessCluster;

    fn deref(&self) -> &ProcessCluster {
        &self.processes
    }
}

impl DerefMut for Cluster {
    fn deref_mut(&mut self) -> &mut ProcessCluster {
        &mut self.processes
    }
}

impl Cluster {
    /// Creates the directories, key and ports, but starts no node.
    pub fn prepare(spec: ClusterSpec) -> Cluster {
        let processes = ProcessCluster::prepare(spec.processes()).expect("prepare the cluster");
        let mut cluster = Cluster {
            ledger: processes.directory().join("ledger"),
            processes,
            timing: spec.timing,
            spec,
        };
        cluster.update_child();
        cluster
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
        self.update_child();
    }

    fn update_child(&mut self) {
        let Some(child) = &self.spec.ledger_child else {
            self.processes.set_child(Vec::new());
            return;
        };
        let mut command: Vec<OsString> = vec![child.clone().into()];
        command.extend(self.spec.child_leading_arguments.iter().map(OsString::from));
        command.push(self.ledger.clone().into());
        command.extend(self.spec.child_arguments.iter().map(OsString::from));
        self.processes.set_child(command);
    }

    /// Starts node `index` (again), its output appended to its log file.
    pub fn spawn(&mut self, index: usize) {
        if let Err(error) = self.processes.start_node(index) {
            self.fail(&format!("cannot start {}: {error}", self.nodes[index].name));
        }
    }

    /// The process ID of node `index`'s tenure, which must be running.
    pub fn pid(&self, index: usize) -> i32 {
        self.process_id(index)
            .unwrap_or_else(|| self.fail(&format!("{} is not running", self.nodes[index].name)))
    }

    /// Waits for node `index`'s tenure to exit; fails the test if it does not within `limit`.
    pub fn wait_for_exit(&mut self, index: usize, limit: Duration) -> ExitStatus {
        match self.try_wait_for_exit(index, limit) {
            Some(status) => status,
            None => self.fail(&format!(
                "{} did not exit within {limit:?} (or was not running)",
                self.nodes[index].name
            )),
        }
    }

    /// Kills node `index`'s tenure with SIGKILL and reaps it. Returns when it was sent.
    pub fn kill(&mut self, index: usize) -> u64 {
        let at = self.signal(index, Signal::KILL);
        self.wait_for_exit(index, SLACK);
        at
    }

    /// Kills every node's tenure with SIGKILL and waits until every process of the cluster is
    /// gone: the guards stop the children (SIGTERM first, so they record their stop), and
    /// anything still there after a generous wait is killed outright. The directory stays, so
    /// the ledger can still be read. Dropping the cluster does it if not done before.
    pub fn shutdown(&mut self) {
        self.processes.stop_all();
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
    pub fn healthy(&self, ledger: &mut LedgerTail) -> Option<Healthy> {
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

impl Drop for Cluster {
    fn drop(&mut self) {
        // The process cluster stops its nodes when it drops, right after this.
        if std::env::var_os("TENURE_TEST_KEEP").is_some() {
            if let Some(kept) = self.processes.keep_directory() {
                eprintln!("kept {}", kept.display());
            }
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
