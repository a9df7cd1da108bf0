//! What a [`ProcessCluster`](super::ProcessCluster) starts: how many nodes, on which loopback
//! addresses, with which flags, where their output goes and how they are stopped.

use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use super::process::Signal;

/// How to build a cluster. The command each node supervises is set on the prepared cluster
/// ([`ProcessCluster::set_child`](super::ProcessCluster::set_child)), because it may name files
/// in the cluster's directory.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// How many nodes: `n1`, `n2`, …
    pub size: usize,
    /// The `tenure` binary the nodes run.
    pub executable: PathBuf,
    pub addresses: Addresses,
    /// `tenure run` flags for every node after its own (`--id`, `--listen`, `--http`,
    /// `--state-dir`, the key, the admin token and `--peer`): timing, log level and so on.
    pub run_flags: Vec<OsString>,
    /// Protect `POST /step-down` with an admin token (a file in the cluster's directory).
    pub admin_token: bool,
    /// The prefix of the cluster's temporary directory, which every process of the cluster
    /// mentions in its command line (see [`ProcessCluster::marker`](super::ProcessCluster::marker)).
    pub directory_prefix: String,
    pub output: Output,
    /// The signal a node gets when the thread that started it ends (Linux's parent-death
    /// signal), so that a starter killed outright leaves no cluster behind.
    pub parent_death_signal: Signal,
    /// How [`ProcessCluster::stop_all`](super::ProcessCluster::stop_all), and dropping the
    /// cluster, stop the nodes.
    pub stop: Stop,
    /// Hold the election in this coordination store instead of the quorum (protocol: Store
    /// leases): the nodes then get `--backend` and `--election`, and no peers, listen address,
    /// key or state directory.
    pub backend: Option<StoreBackend>,
}

/// A coordination store the nodes of a cluster compete in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreBackend {
    /// `--backend`: `postgres://…` or `etcd://…`.
    pub url: String,
    /// `--election`.
    pub election: String,
}

/// The loopback addresses of the nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addresses {
    /// Every node on 127.0.0.1, each with ports of its own.
    Shared,
    /// Node `i` (from 0) on 127.0.0.`i+1`, so a node's address alone tells which it is.
    OnePerNode,
}

impl Addresses {
    /// The address of node `index`.
    pub fn ip(self, index: usize) -> Ipv4Addr {
        match self {
            Addresses::Shared => Ipv4Addr::LOCALHOST,
            // 127.0.0.0/8 is loopback as a whole; a cluster has far fewer than 254 nodes.
            Addresses::OnePerNode => {
                Ipv4Addr::new(127, 0, 0, u8::try_from(index + 1).unwrap_or(u8::MAX))
            }
        }
    }
}

/// Where the nodes' standard output and standard error (tenure's log, and the supervised
/// child's own output, which tenure passes through unchanged) go.
#[derive(Clone, Debug)]
pub enum Output {
    /// Both appended to the node's log file.
    LogFile,
    /// Standard output line by line to `sender`, each line timed as it is read; standard error
    /// to the node's log file and, with `log_lines`, to `sender` as well.
    Lines {
        sender: Sender<OutputLine>,
        log_lines: bool,
    },
}

/// A line a node wrote, with the moment it was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputLine {
    pub node: usize,
    pub at: Instant,
    pub stream: Stream,
    pub text: String,
}

/// Which of a node's outputs a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output: the supervised child's lines (tenure itself logs to standard error).
    Stdout,
    /// Standard error: tenure's log.
    Log,
}

/// How to stop the nodes at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM, which makes a leader stop its child and hand over; SIGKILL after `grace`.
    Terminate { grace: Duration },
    /// SIGKILL at once; the deadline guards then stop the children.
    Kill,
}
