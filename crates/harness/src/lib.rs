//! tenure-harness: the test tooling around the real `tenure` binary, shared by the end-to-end
//! tests (`tests/`), the chaos runner (`src/bin/chaos/`) and the benchmark (`src/bin/bench/`);
//! docs/benchmarks.md says what the two tools show.
//!
//! The process cluster itself (ports, state directories, key, start, signal, reap, stop, the
//! nodes' `/status`, Ctrl-C) is `tenure_node::cluster`, which `tenure demo` runs too; this
//! crate adds what only tests need, and tenure-node never depends on it:
//!
//! - `cluster`: [`Cluster`], the process cluster with every node supervising the ledger child,
//!   and the waits and checks of the tests;
//! - `binary`: finding (or building) the binary under test, running it to completion;
//! - `timing`: the cluster's [`Timing`] and the bounds derived from it, with one [`SLACK`];
//! - `child`: the supervised child (ledger lines, alive stamps, writes to the fenced store);
//! - `ledger` and `ledger_tail`: the ledger the children write, read whole or incrementally,
//!   and the overlap check;
//! - `store`: the fenced store, which accepts a write only if its token is at least the
//!   highest it has seen;
//! - `stores`: the PostgreSQL and etcd that store-backed clusters compete in;
//! - `analysis`: the chaos runner's checks over ledger, acknowledgements and store log;
//! - `netns` and `proxy`: partitions, through network namespaces or a UDP fault proxy;
//! - `tcp_relay`: a TCP relay to a store that a test can cut for one node;
//! - `procfs`, `prometheus`, `stats`: process inspection, `/metrics`, percentiles.
//!
//! # Rules every user follows
//!
//! Only loopback addresses (each node on its own 127.0.0.x) or namespaces the run creates,
//! ports picked free by the kernel, state in a temporary directory; every wait bounded; every
//! process started is killed when the [`Cluster`] drops (and by a parent-death signal if the
//! starting process itself dies). Timing is asserted only against bounds derived from the
//! cluster's configuration ([`Timing`]), each with the same generous [`SLACK`] for a loaded
//! machine. Set `TENURE_TEST_KEEP=1` to keep each test cluster's directory (state, logs,
//! ledger) for inspection.

pub mod analysis;
pub mod binary;
pub mod child;
pub mod cluster;
pub mod ledger;
pub mod ledger_tail;
pub mod netns;
pub mod procfs;
pub mod prometheus;
pub mod proxy;
pub mod stats;
pub mod store;
pub mod stores;
pub mod tcp_relay;
pub mod timing;

pub use binary::{run_tenure, tenure_binary};
pub use cluster::{Cluster, ClusterSpec, Healthy};
pub use ledger::{
    check_no_overlap, intervals, parse_ledger_line, read_ledger, Interval, LedgerEntry, LedgerEvent,
};
pub use prometheus::metric;
pub use tenure_node::cluster::{
    free_tcp, free_udp, interrupt_flag, monotonic_nanos, Signal, StoreBackend,
};
pub use tenure_node::split_mix::SplitMix64;
pub use timing::{Timing, SLACK};
