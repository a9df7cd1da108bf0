//! A daemon that fails on every node: leadership goes round all members, and backs off
//! (protocol: Campaign holds; Graceful handover).
//!
//! Before campaign holds, a child that exited at once made leadership bounce between the two
//! lowest ids forever (19 terms and 79 child starts in 14 s), and the third node never got a
//! turn.

use std::collections::BTreeSet;
use std::thread;
use std::time::Duration;

use tenure_harness::{Cluster, ClusterSpec, LedgerEvent};

const LEDGER_CHILD: &str = env!("CARGO_BIN_EXE_ledger-child");

/// How long the cluster runs with the failing daemon.
const RUN: Duration = Duration::from_secs(16);

#[test]
fn a_daemon_that_fails_everywhere_gives_every_node_a_turn_with_backoff() {
    let mut spec = ClusterSpec::new(3, LEDGER_CHILD);
    // The child exits 50 ms after it starts, and is never restarted in place: every start is
    // one leadership lost.
    spec.child_arguments = vec!["--exit-after-ms".into(), "50".into()];
    spec.extra_flags = vec!["--max-child-restarts".into(), "0".into()];
    let mut cluster = Cluster::start(spec);
    let timing = cluster.timing;

    // Phase 1: a first leader acts (and loses its child at once).
    cluster.wait_for_ledger_start(timing.first_election_bound(), 0);
    thread::sleep(RUN);
    let starts: Vec<_> = cluster
        .ledger()
        .into_iter()
        .filter(|entry| entry.event == LedgerEvent::Start)
        .collect();

    // Phase 2: every member got a turn.
    let nodes: BTreeSet<&str> = starts.iter().map(|entry| entry.node.as_str()).collect();
    assert_eq!(
        nodes.len(),
        3,
        "only {nodes:?} ever ran the daemon: {starts:#?}\n{}",
        cluster.logs()
    );

    // Phase 3: the leaderships back off. A node that lost its k-th leadership in a row holds
    // its campaigns for 2^(k−1) leases, so within the run each node can lose at most k times
    // where 1 + 2 + … + 2^(k−2) leases fit in it; without holds this was one leadership every
    // few hundred milliseconds.
    let leases = (RUN.as_millis() / timing.lease.as_millis()) as u32 + 2;
    let mut per_node = 1;
    while (1u32 << per_node) - 1 <= leases {
        per_node += 1;
    }
    let bound = 3 * per_node as usize;
    assert!(
        starts.len() <= bound,
        "{} child starts in {RUN:?}, more than the backoff allows ({bound}): {starts:#?}",
        starts.len()
    );

    // Phase 4: the holds are logged, and no two children ever ran at once.
    let logs = cluster.logs();
    assert!(
        logs.contains("will not campaign for"),
        "no campaign hold was logged:\n{logs}"
    );
    cluster.assert_no_overlap();
    cluster.shutdown();
}
