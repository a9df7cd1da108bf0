//! [`ProcessCluster`]: N `tenure run` processes on loopback, with their ports, state
//! directories, key and logs in one temporary directory.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::output;
use super::ports::{free_tcp, free_udp};
use super::process::{
    exit_with_parent, is_alive, monotonic_nanos, processes_mentioning, signal, Signal,
};
use super::query::HttpRoute;
use super::spec::{Addresses, ClusterSpec, Stop, StoreBackend};

/// How long the guards and children of stopped nodes get to go by themselves before whatever
/// is left of the cluster is killed outright: well above any stop grace in use.
const LEFTOVER_WAIT: Duration = Duration::from_secs(5);
/// How long processes killed outright get to disappear.
const KILLED_WAIT: Duration = Duration::from_secs(2);
/// How often the waits for processes look again.
const REAP_POLL: Duration = Duration::from_millis(10);

/// One node of a [`ProcessCluster`].
#[derive(Debug)]
pub struct ClusterNode {
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

/// A local cluster of `tenure run` processes. Dropping it stops every process it started.
///
/// Every process of the cluster (each tenure, and through their command lines each guard and
/// child) mentions the cluster's directory, its [`marker`](ProcessCluster::marker): the
/// cleanup finds and kills whatever is left by it.
pub struct ProcessCluster {
    pub nodes: Vec<ClusterNode>,
    /// The cluster key, hex, readable by this user only.
    pub key_file: PathBuf,
    /// The admin token of `POST /step-down`, when the spec asked for one.
    pub admin_token: Option<String>,
    /// How requests reach the nodes' HTTP APIs; `None` sends them from the calling thread.
    pub http_route: Option<Box<dyn HttpRoute>>,
    spec: ClusterSpec,
    child: Vec<OsString>,
    /// `None` once kept ([`ProcessCluster::keep_directory`]).
    directory: Option<tempfile::TempDir>,
    root: PathBuf,
    marker: String,
    stopped: bool,
}

impl ProcessCluster {
    /// Creates the directory, the key, the state directories and the ports, but starts no
    /// node and sets no child.
    pub fn prepare(spec: ClusterSpec) -> io::Result<ProcessCluster> {
        let directory = tempfile::Builder::new()
            .prefix(&spec.directory_prefix)
            .tempdir()?;
        let root = directory.path().to_path_buf();
        let key_file = root.join("cluster.key");
        write_private(&key_file, &random_hex(32)?)?;
        let admin_token = if spec.admin_token {
            Some(random_hex(16)?)
        } else {
            None
        };
        if let Some(token) = &admin_token {
            write_private(&root.join("admin.token"), token)?;
        }
        let nodes = (0..spec.size)
            .map(|index| ClusterNode::prepare(&root, index, spec.addresses))
            .collect::<io::Result<Vec<ClusterNode>>>()?;
        Ok(ProcessCluster {
            nodes,
            key_file,
            admin_token,
            http_route: None,
            marker: root.display().to_string(),
            spec,
            child: Vec::new(),
            directory: Some(directory),
            root,
            stopped: false,
        })
    }

    /// The command every node supervises from its next start on (empty: none, an
    /// observer-only node).
    pub fn set_child(&mut self, command: Vec<OsString>) {
        self.child = command;
    }

    /// The cluster's directory: state, key, logs, and whatever its user puts there.
    pub fn directory(&self) -> &Path {
        &self.root
    }

    /// Keeps the directory after the cluster is dropped, and returns where it is.
    pub fn keep_directory(&mut self) -> Option<PathBuf> {
        self.directory.take().map(tempfile::TempDir::keep)
    }

    /// The directory marker every process of this cluster mentions in its command line.
    pub fn marker(&self) -> &str {
        &self.marker
    }

    /// The `tenure run` arguments of node `index`.
    pub fn arguments(&self, index: usize) -> Vec<OsString> {
        let mut arguments = match &self.spec.backend {
            Some(backend) => self.store_arguments(index, backend),
            None => self.quorum_arguments(index),
        };
        if self.admin_token.is_some() {
            arguments.push("--admin-token-file".into());
            arguments.push(self.root.join("admin.token").into());
        }
        arguments.extend(self.spec.run_flags.iter().cloned());
        if !self.child.is_empty() {
            arguments.push("--".into());
            arguments.extend(self.child.iter().cloned());
        }
        arguments
    }

    /// A store-backed node's own arguments: its name, its HTTP API and the store.
    fn store_arguments(&self, index: usize, backend: &StoreBackend) -> Vec<OsString> {
        let node = &self.nodes[index];
        vec![
            "run".into(),
            "--id".into(),
            node.name.clone().into(),
            "--http".into(),
            node.http.to_string().into(),
            "--backend".into(),
            backend.url.clone().into(),
            "--election".into(),
            backend.election.clone().into(),
        ]
    }

    /// A quorum node's own arguments: its name, addresses, state directory, key and peers.
    fn quorum_arguments(&self, index: usize) -> Vec<OsString> {
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
        ];
        if self.nodes.len() > 1 {
            arguments.push("--cluster-key-file".into());
            arguments.push(self.key_file.clone().into());
        }
        for (other, peer) in self.nodes.iter().enumerate() {
            if other != index {
                arguments.push("--peer".into());
                arguments.push(format!("{}={}", peer.name, peer.advertised).into());
            }
        }
        arguments
    }

    /// Node `index`'s command line as a shell would take it, with the binary called `tenure`.
    pub fn describe_command(&self, index: usize) -> String {
        let mut words = vec!["tenure".to_string()];
        words.extend(
            self.arguments(index)
                .iter()
                .map(|argument| shell_quote(&argument.to_string_lossy())),
        );
        words.join(" ")
    }

    /// Starts node `index`'s tenure (again). Fails if it is running.
    pub fn start_node(&mut self, index: usize) -> io::Result<()> {
        if self.is_running(index) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} is already running", self.nodes[index].name),
            ));
        }
        let arguments = self.arguments(index);
        let node = &self.nodes[index];
        let mut command = match node.launcher.split_first() {
            Some((program, launcher_arguments)) => {
                let mut command = Command::new(program);
                command.args(launcher_arguments).arg(&self.spec.executable);
                command
            }
            None => Command::new(&self.spec.executable),
        };
        // Its own process group: a Ctrl-C in the terminal reaches only the starter, which then
        // stops the nodes in order.
        command
            .args(arguments)
            .stdin(Stdio::null())
            .process_group(0);
        for (variable, _) in std::env::vars_os() {
            if variable.to_string_lossy().starts_with("TENURE_") {
                command.env_remove(variable);
            }
        }
        output::connect(&mut command, &self.spec.output, &node.log)?;
        exit_with_parent(&mut command, self.spec.parent_death_signal);
        let mut process = command.spawn()?;
        output::follow(index, &mut process, &self.spec.output, &node.log)?;
        self.nodes[index].process = Some(process);
        self.stopped = false;
        Ok(())
    }

    /// Whether node `index`'s tenure was started and has not been reaped.
    pub fn is_running(&self, index: usize) -> bool {
        self.nodes[index].process.is_some()
    }

    /// The process ID of node `index`'s tenure, while it runs.
    pub fn process_id(&self, index: usize) -> Option<i32> {
        let process = self.nodes[index].process.as_ref()?;
        i32::try_from(process.id()).ok()
    }

    /// Sends `kind` to node `index`'s tenure (only tenure: its guard and child are in process
    /// groups of their own), if it runs. Returns the `CLOCK_MONOTONIC` time it was sent.
    pub fn signal(&self, index: usize, kind: Signal) -> u64 {
        let at = monotonic_nanos();
        if let Some(pid) = self.process_id(index) {
            signal(pid, kind);
        }
        at
    }

    /// Waits up to `limit` for node `index`'s tenure to exit, and reaps it; `None` if it did
    /// not exit (it is left running) or was not running. `Duration::ZERO` looks once.
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
            thread::sleep(REAP_POLL);
        }
    }

    /// Stops every node as the spec's [`Stop`] says, then waits for the guards and children of
    /// the cluster to go and kills whatever is left. Returns how many processes of the cluster
    /// were still running at the very end (0 unless something is stuck in the kernel). The
    /// directory stays until the cluster is dropped, so logs and files can still be read.
    pub fn stop_all(&mut self) -> usize {
        self.stopped = true;
        match self.spec.stop {
            Stop::Terminate { grace } => self.terminate_all(grace),
            Stop::Kill => {
                for node in &mut self.nodes {
                    if let Some(mut process) = node.process.take() {
                        let _ = process.kill();
                        let _ = process.wait();
                    }
                }
            }
        }
        self.kill_leftovers()
    }

    /// SIGTERM to every node, SIGKILL to those still running after `grace`.
    fn terminate_all(&mut self, grace: Duration) {
        for index in 0..self.nodes.len() {
            self.signal(index, Signal::TERM);
        }
        let give_up = Instant::now() + grace;
        for node in &mut self.nodes {
            if let Some(mut process) = node.process.take() {
                while Instant::now() < give_up && matches!(process.try_wait(), Ok(None)) {
                    thread::sleep(REAP_POLL);
                }
                let _ = process.kill();
                let _ = process.wait();
            }
        }
    }

    /// Guards and children of stopped nodes stop within their stop grace; anything of the
    /// cluster that outlives `LEFTOVER_WAIT` is killed outright.
    fn kill_leftovers(&self) -> usize {
        let give_up = Instant::now() + LEFTOVER_WAIT;
        while Instant::now() < give_up && !processes_mentioning(&self.marker).is_empty() {
            thread::sleep(REAP_POLL * 2);
        }
        for pid in processes_mentioning(&self.marker) {
            signal(pid, Signal::KILL);
        }
        let give_up = Instant::now() + KILLED_WAIT;
        while Instant::now() < give_up
            && processes_mentioning(&self.marker)
                .iter()
                .any(|pid| is_alive(*pid))
        {
            thread::sleep(REAP_POLL * 2);
        }
        processes_mentioning(&self.marker).len()
    }
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        if !self.stopped {
            self.stop_all();
        }
    }
}

impl ClusterNode {
    /// Node `index`: its name, state directory, log and free ports.
    fn prepare(root: &Path, index: usize, addresses: Addresses) -> io::Result<ClusterNode> {
        let name = format!("n{}", index + 1);
        let ip = addresses.ip(index).to_string();
        let state_dir = root.join(&name);
        fs::create_dir(&state_dir)?;
        let udp = free_udp(&ip)?;
        Ok(ClusterNode {
            log: root.join(format!("{name}.log")),
            name,
            udp,
            advertised: udp,
            http: free_tcp(&ip)?,
            state_dir,
            launcher: Vec::new(),
            process: None,
        })
    }
}

/// `bytes` random bytes from the operating system, in hex.
fn random_hex(bytes: usize) -> io::Result<String> {
    let mut random = vec![0u8; bytes];
    getrandom::fill(&mut random)
        .map_err(|error| io::Error::other(format!("no randomness: {error}")))?;
    Ok(random.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// Writes `text` and a newline to a new file only this user can read, as tenure asks of a
/// key or token file (it warns about one that others can read).
fn write_private(path: &Path, text: &str) -> io::Result<()> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?
        .write_all(format!("{text}\n").as_bytes())
}

/// `word` as one shell word: unchanged when it holds only characters no shell treats
/// specially, else in single quotes.
fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "-_./=:,+@%".contains(character));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_the_words_a_shell_would_split_or_expand() {
        assert_eq!(shell_quote("--peer"), "--peer");
        assert_eq!(shell_quote("n2=127.0.0.1:7101"), "n2=127.0.0.1:7101");
        assert_eq!(shell_quote("echo $X; exit"), "'echo $X; exit'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
