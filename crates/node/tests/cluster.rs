//! The local process cluster that `tenure demo` runs (`tenure_node::cluster`), with the real
//! binary: it starts nodes that elect a leader, hands their children's lines over as they are
//! read, answers for the nodes' API, and stopping it leaves no process of the cluster behind.
//! Timing is bounded generously; the election's own bounds are the end-to-end tests' business.

use std::ffi::OsString;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tenure_node::cluster::process::processes_mentioning;
use tenure_node::cluster::{Addresses, ClusterSpec, Output, ProcessCluster, Signal, Stop, Stream};

/// Far above a first election at a 1 s lease (quarantine, jitter, two rounds) on a busy machine.
const LIMIT: Duration = Duration::from_secs(20);

#[test]
fn a_cluster_elects_one_leader_reports_its_child_and_leaves_nothing_behind() {
    let (sender, lines) = mpsc::channel();
    let spec = ClusterSpec {
        size: 3,
        executable: env!("CARGO_BIN_EXE_tenure").into(),
        addresses: Addresses::OnePerNode,
        run_flags: [
            "--lease",
            "1s",
            "--heartbeat",
            "100ms",
            "--stop-grace",
            "300ms",
        ]
        .iter()
        .map(OsString::from)
        .collect(),
        admin_token: true,
        directory_prefix: "tenure-cluster-test-".to_string(),
        output: Output::Lines {
            sender,
            log_lines: false,
        },
        parent_death_signal: Signal::KILL,
        stop: Stop::Terminate {
            grace: Duration::from_secs(5),
        },
        backend: None,
    };
    let mut cluster = ProcessCluster::prepare(spec).unwrap();
    let marker = cluster.marker().to_string();
    let script = "echo started $TENURE_FENCING_TOKEN; while :; do sleep 1; done";
    cluster.set_child(
        ["sh", "-c", script, "tenure-cluster-test-child", &marker]
            .iter()
            .map(OsString::from)
            .collect(),
    );

    // Phase 1: the directory holds a private key and admin token, and the nodes their own
    // addresses.
    for file in [&cluster.key_file, &cluster.directory().join("admin.token")] {
        let mode = fs::metadata(file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", file.display());
    }
    assert!(cluster
        .admin_token
        .as_ref()
        .is_some_and(|token| token.len() == 32));
    assert_eq!(cluster.nodes[2].udp.ip().to_string(), "127.0.0.3");
    assert!(cluster.describe_command(0).ends_with(&format!(
        "-- sh -c '{script}' tenure-cluster-test-child {marker}"
    )));

    // Phase 2: one node acts, and its child's first line arrives from that node.
    for index in 0..3 {
        cluster.start_node(index).unwrap();
    }
    let give_up = Instant::now() + LIMIT;
    let (leader, token) = loop {
        if let [acting] = cluster.acting()[..] {
            break acting;
        }
        assert!(Instant::now() < give_up, "no single node acted");
        std::thread::sleep(Duration::from_millis(50));
    };
    let give_up = Instant::now() + LIMIT;
    let line = loop {
        let remaining = give_up.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(remaining)
            .expect("the child printed its line");
        if line.stream == Stream::Stdout && line.text.starts_with("started") {
            break line;
        }
    };
    assert_eq!(
        (line.node, line.text.as_str()),
        (leader, &*format!("started {token}"))
    );

    // Phase 3: a running node is not started twice, and the others follow the leader.
    let refused = cluster.start_node(leader).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::AlreadyExists);
    for index in (0..3).filter(|index| *index != leader) {
        let give_up = Instant::now() + LIMIT;
        while !cluster.follows(index, leader) {
            assert!(Instant::now() < give_up, "n{} does not follow", index + 1);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    // Phase 4: stopping leaves nothing running; the directory goes with the cluster.
    assert_eq!(cluster.stop_all(), 0);
    assert!((0..3).all(|index| !cluster.is_running(index)));
    assert!(processes_mentioning(&marker).is_empty());
    let directory = cluster.directory().to_path_buf();
    assert!(directory.join("n1.log").exists());
    drop(cluster);
    assert!(!directory.exists());
}
