//! Authentic datagrams a correct member never sends, forged by a test that holds the cluster key
//! (docs/operations.md, "Threat model"): a cluster of real `tenure run` processes must survive
//! them, report them, and keep its ledger free of overlaps.

use std::fs;
use std::net::UdpSocket;
use std::time::Duration;

use tenure_core::{MAX_TERM, MAX_TERM_STEP};
use tenure_node::members::Members;
use tenure_node::settings::datagram_key;
use tenure_node::wire::{ClusterKey, Sealer};
use tenure_tests::{free_udp, metric, Cluster, ClusterSpec, SLACK};

const LEDGER_CHILD: &str = env!("CARGO_BIN_EXE_ledger-child");

/// The wire kind byte of a Heartbeat (codec: kind 5, term u64, seq u64).
const KIND_HEARTBEAT: u8 = 5;

/// The incarnation node `index` stored at its last boot, from its state file.
fn stored_incarnation(cluster: &Cluster, index: usize) -> u64 {
    let text = fs::read_to_string(cluster.nodes[index].state_dir.join("state"))
        .expect("the node wrote its state file");
    text.lines()
        .find_map(|line| line.strip_prefix("incarnation "))
        .and_then(|value| value.trim().parse().ok())
        .expect("the state file names the incarnation")
}

/// A sealer that speaks as node `sender` of `cluster`, under the cluster's datagram key.
fn impersonate(cluster: &Cluster, sender: usize, incarnation: u64) -> Sealer {
    let text = fs::read_to_string(&cluster.key_file).expect("read the cluster key");
    let key = ClusterKey::from_hex(&text).expect("the test cluster's key is valid");
    let names: Vec<&str> = cluster
        .nodes
        .iter()
        .map(|node| node.name.as_str())
        .collect();
    let peers = names.iter().copied().filter(|name| *name != names[sender]);
    let members = Members::new(names[sender], peers).expect("the test cluster's members");
    let key = datagram_key(&key, &members, cluster.timing.lease);
    Sealer::new(&key, wire_index(sender), incarnation)
}

/// The test clusters name their nodes n1, n2, ... in index order, which is also the sorted
/// member order the wire indexes count in.
fn wire_index(index: usize) -> u16 {
    u16::try_from(index).expect("a small cluster")
}

fn heartbeat(term: u64, seq: u64) -> Vec<u8> {
    let mut payload = vec![KIND_HEARTBEAT];
    payload.extend_from_slice(&term.to_be_bytes());
    payload.extend_from_slice(&seq.to_be_bytes());
    payload
}

#[test]
fn one_datagram_with_term_max_term_is_refused_reported_and_the_cluster_still_elects() {
    let mut cluster = Cluster::start(ClusterSpec::new(3, LEDGER_CHILD));
    let timing = cluster.timing;
    let (leader, token) = cluster.wait_for_acting(timing.first_election_bound(), 0);

    // Phase 1: one authentic Heartbeat with term 2^62 (MAX_TERM) to every node, sealed as the
    // leader (as a follower of it, to the leader itself) in an incarnation above the real one,
    // so the replay window accepts it. Before the bound on term jumps, every node adopted and
    // persisted the term, and no node could ever campaign again.
    let attacker = UdpSocket::bind(free_udp("127.0.0.20")).expect("bind the attacker");
    for target in 0..cluster.nodes.len() {
        let sender = if target == leader {
            (leader + 1) % cluster.nodes.len()
        } else {
            leader
        };
        let incarnation = stored_incarnation(&cluster, sender) + 1;
        let datagram = impersonate(&cluster, sender, incarnation)
            .seal(wire_index(target), &heartbeat(MAX_TERM.0, 1))
            .expect("a heartbeat fits a datagram");
        attacker
            .send_to(&datagram, cluster.nodes[target].udp)
            .expect("send the forged heartbeat");
    }

    // Phase 2: every node refused it, and says so in /status, /metrics and its log.
    for index in 0..cluster.nodes.len() {
        let status = cluster.wait_for(SLACK, "the refused term jump in /status", |cluster| {
            let status = cluster.status(index)?;
            (status["term_jumps_refused"].as_u64() >= Some(1)).then_some(status)
        });
        assert_eq!(status["last_refused_term"], MAX_TERM.0, "{status}");
        assert!(status["last_refused_term_from"].is_string(), "{status}");
        assert!(
            status["term"].as_u64() < Some(MAX_TERM_STEP),
            "the node adopted the jump: {status}"
        );
        let text = cluster.get(index, "/metrics").expect("metrics").body;
        let refused = metric(
            &text,
            "tenure_messages_dropped_total{reason=\"term_too_far\"}",
        );
        assert!(refused >= Some(1.0), "{text}");
        assert_eq!(
            metric(&text, "tenure_last_refused_term"),
            Some(MAX_TERM.0 as f64)
        );
        let log = fs::read_to_string(&cluster.nodes[index].log).expect("the node's log");
        let expected = format!("sent term {}", MAX_TERM.0);
        let warnings = log
            .lines()
            .filter(|line| line.contains("WARN") && line.contains("refused a term jump"))
            .collect::<Vec<_>>();
        assert!(
            warnings.iter().any(|line| line.contains(&expected)),
            "{} logged no warning naming the term:\n{log}",
            cluster.nodes[index].name
        );
    }

    // Phase 3: kill the leader: the other two elect a successor in a sane term, which acts.
    cluster.kill(leader);
    let (next, next_token) = cluster.wait_for_acting(timing.failover_bound() + SLACK, token);
    assert_ne!(next, leader);
    assert!(
        next_token < token + 1_000,
        "the successor acts with token {next_token}, far above {token}"
    );
    cluster.assert_no_overlap();
}

#[test]
fn refused_term_jumps_are_warned_about_at_most_once_per_peer_per_minute() {
    let cluster = Cluster::start(ClusterSpec::new(3, LEDGER_CHILD));
    let timing = cluster.timing;
    let (leader, _) = cluster.wait_for_acting(timing.first_election_bound(), 0);
    let target = (leader + 1) % cluster.nodes.len();

    // Phase 1: a flood of 200 term jumps from one impersonated peer.
    let attacker = UdpSocket::bind(free_udp("127.0.0.21")).expect("bind the attacker");
    let sender = (leader + 2) % cluster.nodes.len();
    let mut sealer = impersonate(&cluster, sender, stored_incarnation(&cluster, sender) + 1);
    const FLOOD: u64 = 200;
    for seq in 1..=FLOOD {
        let datagram = sealer
            .seal(wire_index(target), &heartbeat(MAX_TERM.0 - seq, seq))
            .expect("a heartbeat fits a datagram");
        attacker
            .send_to(&datagram, cluster.nodes[target].udp)
            .expect("send the forged heartbeat");
        std::thread::sleep(Duration::from_micros(200));
    }

    // Phase 2: most of them are counted, one line is logged.
    let status = cluster.wait_for(SLACK, "the flood to be counted", |cluster| {
        let status = cluster.status(target)?;
        (status["term_jumps_refused"].as_u64() >= Some(FLOOD / 2)).then_some(status)
    });
    let log = fs::read_to_string(&cluster.nodes[target].log).expect("the node's log");
    let warnings = log
        .lines()
        .filter(|line| line.contains("refused a term jump"))
        .count();
    assert_eq!(warnings, 1, "{status}\n{log}");
}
