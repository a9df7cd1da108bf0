//! tenure-node: everything between the sans-IO election core and the operating system, and the
//! `tenure` binary built on it.
//!
//! - `clock`: the node's only clock, `CLOCK_BOOTTIME`.
//! - `state_file` and `storage`: the durable term, vote and boot counter, written atomically.
//! - `wire`, `notice` and `transport`: authenticated, replay-protected UDP datagrams carrying
//!   the election messages (encoded by the core's codec) and the transport's own notice.
//! - `guard` and `supervisor`: the deadline guard that bounds the supervised child's lifetime,
//!   and the acting sink that runs the child under it; `health_check`: the child's health
//!   checks (protocol: Health-gated acting).
//! - `observer`, `http`, `http_server` and `metrics`: logs, the HTTP API (with its connection
//!   limits) and Prometheus metrics.
//! - `cli`, `settings`, `small_file`, `members` and `run`: `tenure run`; `status_command`,
//!   `demo`: the other subcommands; `http_client`: the small HTTP client they share.
//! - `backend`: the coordination-store backends of `tenure run --backend` (PostgreSQL, etcd),
//!   which run the store-lease core's requests against the real servers.
//! - `cluster`: a local cluster of `tenure run` processes, which `tenure demo` runs and the test
//!   harness (tenure-harness) builds on; `split_mix`: the seeded generator of the election
//!   jitter, which the harness draws its faults from too.

pub mod admin_command;
pub mod backend;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod demo;
pub mod guard;
pub mod health_check;
pub mod http;
pub mod http_client;
pub mod http_server;
pub mod logging;
pub mod members;
pub mod metrics;
pub mod notice;
pub mod observer;
pub mod run;
pub mod settings;
pub mod small_file;
pub mod split_mix;
pub mod state_file;
pub mod status_command;
pub mod storage;
pub mod store_run;
pub mod supervisor;
pub mod transport;
pub mod wire;
