//! A local cluster of real `tenure run` processes on loopback, written once: `tenure demo` runs
//! it, and tenure-harness (the end-to-end tests, the chaos runner and the benchmark) builds its
//! test tooling on it.
//!
//! - `process_cluster`: [`ProcessCluster`], N nodes with free ports, state directories, a
//!   random cluster key and logs in one temporary directory; start, signal, reap, stop;
//! - `spec`: [`ClusterSpec`], what to start, where output goes, how to stop;
//! - `output`: a node's output to its log file, or timed line by line to the starter;
//! - `query`: the nodes' HTTP API (`/status`, who acts, who follows whom);
//! - `ports`, `process`, `interrupt`: free ports, process helpers (parent-death signal,
//!   finding leftovers, the shared monotonic clock), Ctrl-C.
//!
//! Nothing is left running: every node runs in its own process group with a parent-death
//! signal tied to its starter, every wait is bounded, and the cleanup finally kills any process
//! whose command line mentions the cluster's directory (every node, guard and child does).
//! Only loopback addresses are used.

pub mod interrupt;
mod output;
pub mod ports;
pub mod process;
mod process_cluster;
mod query;
mod spec;

pub use interrupt::interrupt_flag;
pub use ports::{free_tcp, free_udp};
pub use process::{monotonic_nanos, Signal};
pub use process_cluster::{ClusterNode, ProcessCluster};
pub use query::HttpRoute;
pub use spec::{Addresses, ClusterSpec, Output, OutputLine, Stop, StoreBackend, Stream};
