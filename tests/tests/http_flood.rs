//! A node whose HTTP API is flooded with idle connections keeps its place in the election
//! (hardening item 5).
//!
//! Before the fix, 300 idle connections to a follower running under `ulimit -n 256` took
//! every descriptor: its HTTP API stopped answering, and at the next election it could not
//! create its state file (EMFILE) and exited. The API now takes at most a share of the
//! descriptors, closes connections that send no request, and the election never notices.

use std::fs;
use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use tenure_harness::{Cluster, ClusterSpec, SLACK};
use tenure_node::http_server::{ConnectionLimits, HEADER_READ_TIMEOUT};

const LEDGER_CHILD: &str = env!("CARGO_BIN_EXE_ledger-child");

/// The descriptor limit every node runs under, as in the probe.
const DESCRIPTOR_LIMIT: u64 = 256;

/// Idle connections opened to one node: more than it has descriptors.
const FLOOD: usize = 300;

/// Whether the server has closed `stream` (EOF or reset); `false` while it is still open.
fn closed_by_server(mut stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(problem) => problem.kind() != ErrorKind::WouldBlock,
    }
}

#[test]
fn a_flood_of_idle_http_connections_stops_neither_the_node_nor_the_election() {
    let mut cluster = Cluster::prepare(ClusterSpec::new(3, LEDGER_CHILD));
    for node in &mut cluster.nodes {
        node.launcher = vec![
            "sh".into(),
            "-c".into(),
            format!("ulimit -n {DESCRIPTOR_LIMIT} && exec \"$0\" \"$@\"").into(),
        ];
    }
    for index in 0..cluster.nodes.len() {
        cluster.spawn(index);
    }

    // Phase 1: a leader acts, and every node runs under the lowered limit.
    let (leader, token) = cluster.wait_for_acting(cluster.timing.first_election_bound(), 0);
    for index in 0..cluster.nodes.len() {
        let limits = fs::read_to_string(format!("/proc/{}/limits", cluster.pid(index))).unwrap();
        let line = limits
            .lines()
            .find(|line| line.starts_with("Max open files"))
            .unwrap_or_default();
        assert!(
            line.split_whitespace().nth(3) == Some(&DESCRIPTOR_LIMIT.to_string()),
            "{line}"
        );
    }

    // Phase 2: flood a follower's HTTP API with connections that never send a request, until
    // FLOOD are open or the node's listen backlog is full too (then connecting times out).
    let flooded = (leader + 1) % cluster.nodes.len();
    let address = cluster.nodes[flooded].http;
    let share = ConnectionLimits::for_descriptor_limit(DESCRIPTOR_LIMIT).max_connections;
    let mut flood = Vec::new();
    while flood.len() < FLOOD {
        match TcpStream::connect_timeout(&address, Duration::from_millis(500)) {
            Ok(stream) => {
                stream.set_nonblocking(true).unwrap();
                flood.push(stream);
            }
            Err(_) => break,
        }
    }
    assert!(
        flood.len() > share,
        "only {} connections opened to a node that accepts {share}",
        flood.len()
    );
    let flooded_name = cluster.nodes[flooded].name.clone();
    cluster.wait_for(SLACK, "the flooded node to reach its limit", |cluster| {
        fs::read_to_string(&cluster.nodes[flooded].log)
            .unwrap_or_default()
            .contains("reached its connection limit")
            .then_some(())
    });

    // Phase 3: force an election while the flood holds: the leader steps down in favour of
    // the flooded node. Every node stores the new term (the flooded one its own vote) before
    // it answers, so the flooded node must create its state file now.
    let successor = format!("/step-down?successor={flooded_name}");
    let answer = cluster.request(leader, "POST", &successor, &[]).unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    let started = cluster.wait_for_ledger_start(cluster.timing.handover_bound(), token);
    for index in 0..cluster.nodes.len() {
        if let Some(status) = cluster.try_wait_for_exit(index, Duration::from_millis(100)) {
            cluster.fail(&format!("n{} exited during the flood: {status}", index + 1));
        }
    }
    let state = fs::read_to_string(cluster.nodes[flooded].state_dir.join("state")).unwrap();
    let stored_term: u64 = state
        .lines()
        .find_map(|line| line.strip_prefix("term ")?.parse().ok())
        .expect("a term line");
    assert!(
        stored_term >= started.token,
        "the flooded node stored term {stored_term}, not the new term {}:\n{state}",
        started.token
    );
    let log = fs::read_to_string(&cluster.nodes[flooded].log).unwrap();
    assert!(!log.contains("Too many open files"), "{}", cluster.logs());

    // Phase 4: the flooded node closes the idle connections it accepted once they have sent
    // no headers for the header read timeout: a full share of its connections comes back.
    let give_up = Instant::now() + HEADER_READ_TIMEOUT + SLACK;
    let mut closed = 0;
    while closed < share {
        closed = flood
            .iter()
            .filter(|stream| closed_by_server(stream))
            .count();
        if Instant::now() >= give_up {
            cluster.fail(&format!(
                "only {closed} of the {share} idle connections the node accepted were closed \
                 within {:?}",
                HEADER_READ_TIMEOUT + SLACK
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    // Phase 5: once the flood ends, the node's API answers again and the cluster agrees on
    // the new leader.
    drop(flood);
    let status = cluster.wait_for(HEADER_READ_TIMEOUT + SLACK, "the flooded node's API", |c| {
        c.status(flooded)
    });
    assert_eq!(status["term"].as_u64(), Some(started.token), "{status}");
    assert_eq!(
        status["leader"].as_str(),
        Some(started.node.as_str()),
        "{status}"
    );
    cluster.assert_no_overlap();
}
