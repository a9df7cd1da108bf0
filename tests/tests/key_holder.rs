//! Authentic datagrams a correct member never sends, forged by a test that holds the cluster key
//! (docs/operations.md: Threat model), and a second process started with a member's id: a
//! cluster of real `tenure run` processes must survive them, report them, and keep its ledger
//! free of overlaps.

use std::ffi::OsString;
use std::fs::{self, File};
use std::net::UdpSocket;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tenure_core::{MAX_TERM, MAX_TERM_STEP};
use tenure_harness::{
    free_tcp, free_udp, metric, run_tenure, tenure_binary, Cluster, ClusterSpec, Signal, SLACK,
};
use tenure_node::cluster::process::exit_with_parent;
use tenure_node::members::Members;
use tenure_node::settings::datagram_key;
use tenure_node::wire::{ClusterKey, Sealer};

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
    let attacker = UdpSocket::bind(free_udp("127.0.0.20").expect("a free UDP port"))
        .expect("bind the attacker");
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
    let attacker = UdpSocket::bind(free_udp("127.0.0.21").expect("a free UDP port"))
        .expect("bind the attacker");
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

/// How long a node reports itself not joined after the last refusal of its incarnation
/// (`tenure_node::transport::REFUSED_REPORT_WINDOW`).
const REFUSED_REPORT_WINDOW: Duration = tenure_node::transport::REFUSED_REPORT_WINDOW;

/// Whether node `index` answers `/joined` with 200.
fn joined(cluster: &Cluster, index: usize) -> bool {
    cluster
        .get(index, "/joined")
        .is_ok_and(|response| response.status == 200)
}

fn log_of(cluster: &Cluster, index: usize) -> String {
    fs::read_to_string(&cluster.nodes[index].log).expect("the node's log")
}

#[test]
fn a_forged_incarnation_one_above_a_member_silences_it_only_until_it_moves_above() {
    let mut cluster = Cluster::start(ClusterSpec::new(3, LEDGER_CHILD));
    let timing = cluster.timing;
    let (leader, token) = cluster.wait_for_acting(timing.first_election_bound(), 0);
    let silenced = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    cluster.wait_for(SLACK, "the followers to join", |cluster| {
        (joined(cluster, silenced) && joined(cluster, other)).then_some(())
    });

    // Phase 1: one datagram sealed as `silenced` in its incarnation + 1, to the other follower
    // and to the leader. Both now hold that incarnation and refuse the genuine one as stale.
    let incarnation = stored_incarnation(&cluster, silenced);
    let attacker = UdpSocket::bind(free_udp("127.0.0.22").expect("a free UDP port"))
        .expect("bind the attacker");
    let mut sealer = impersonate(&cluster, silenced, incarnation + 1);
    for target in [leader, other] {
        let datagram = sealer
            .seal(wire_index(target), &heartbeat(token, 1))
            .expect("a heartbeat fits a datagram");
        attacker
            .send_to(&datagram, cluster.nodes[target].udp)
            .expect("send the forged datagram");
    }

    // Phase 2: the silenced node is told, moves above the forged incarnation and says so.
    let status = cluster.wait_for(SLACK, "the silenced node to move", |cluster| {
        let status = cluster.status(silenced)?;
        (status["incarnation_moves"].as_u64() >= Some(1)).then_some(status)
    });
    assert!(
        status["incarnation"].as_u64() > Some(incarnation + 1),
        "{status}"
    );
    assert!(status["refused_by_peer"]["peer"].is_string(), "{status}");
    let log = log_of(&cluster, silenced);
    assert!(
        log.lines().any(|line| line.contains("WARN")
            && line.contains("refuses our datagrams")
            && line.contains(&format!("incarnation {}", incarnation + 1))),
        "{log}"
    );
    assert!(
        stored_incarnation(&cluster, silenced) > incarnation + 1,
        "the move was not made durable"
    );

    // Phase 3: it is accepted again and joined within the report window; with the leader
    // killed, it and the other follower elect a successor.
    cluster.wait_for(
        REFUSED_REPORT_WINDOW + SLACK,
        "the silenced node to join again",
        |cluster| joined(cluster, silenced).then_some(()),
    );
    cluster.kill(leader);
    let (next, _) = cluster.wait_for_acting(timing.failover_bound(), token);
    assert_ne!(next, leader);
    cluster.assert_no_overlap();
}

/// A second `tenure run` with node `index`'s id and peers (a copied configuration) on another
/// address, with a state directory of its own and no child. Killed when dropped.
struct Duplicate {
    process: Child,
}

impl Duplicate {
    fn start(cluster: &Cluster, index: usize) -> Duplicate {
        let udp = free_udp("127.0.0.30").expect("a free UDP port");
        let http = free_tcp("127.0.0.30").expect("a free TCP port");
        let state_dir = cluster.directory().join("duplicate");
        fs::create_dir_all(&state_dir).expect("create the duplicate's state directory");
        let mut arguments = cluster.arguments(index);
        if let Some(separator) = arguments.iter().position(|argument| argument == "--") {
            arguments.truncate(separator);
        }
        let replace = |arguments: &mut Vec<OsString>, flag: &str, value: OsString| {
            let position = arguments
                .iter()
                .position(|argument| argument == flag)
                .expect("the flag is given");
            arguments[position + 1] = value;
        };
        replace(&mut arguments, "--listen", udp.to_string().into());
        replace(&mut arguments, "--http", http.to_string().into());
        replace(&mut arguments, "--state-dir", state_dir.into());
        let log = File::create(cluster.directory().join("duplicate.log"))
            .expect("create the duplicate's log");
        let mut command = Command::new(tenure_binary());
        command
            .args(arguments)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("duplicate the log file"))
            .stderr(log)
            .process_group(0);
        exit_with_parent(&mut command, Signal::KILL);
        Duplicate {
            process: command.spawn().expect("start the duplicate"),
        }
    }

    fn kill(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Drop for Duplicate {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn two_processes_with_one_id_are_named_and_the_real_one_is_accepted_again_once_alone() {
    let mut cluster = Cluster::start(ClusterSpec::new(3, LEDGER_CHILD));
    let timing = cluster.timing;
    let (leader, token) = cluster.wait_for_acting(timing.first_election_bound(), 0);
    let real = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    let name = cluster.nodes[real].name.clone();
    cluster.wait_for(SLACK, "the followers to join", |cluster| {
        (joined(cluster, real) && joined(cluster, other)).then_some(())
    });

    // Phase 1: a second process with the follower's id. Its fresh state gives it a higher
    // incarnation, so the peers take its datagrams and refuse the real node's.
    let mut duplicate = Duplicate::start(&cluster, real);
    let expected = format!("two processes claim id {name}");
    cluster.wait_for(
        timing.lease * 3 + SLACK,
        "a peer to name the two processes",
        |cluster| {
            [leader, other]
                .iter()
                .any(|peer| log_of(cluster, *peer).contains(&expected))
                .then_some(())
        },
    );
    let named_by = [leader, other]
        .into_iter()
        .find(|peer| log_of(&cluster, *peer).contains(&expected))
        .expect("a peer named them");
    let line = log_of(&cluster, named_by)
        .lines()
        .find(|line| line.contains(&expected))
        .map(str::to_string)
        .expect("the line");
    assert!(line.contains("ERROR"), "{line}");
    assert!(
        line.contains("127.0.0.30"),
        "the duplicate's address: {line}"
    );
    assert!(
        line.contains(&cluster.nodes[real].udp.to_string()),
        "the real node's address: {line}"
    );
    let text = cluster.get(named_by, "/metrics").expect("metrics").body;
    assert!(
        metric(&text, "tenure_duplicate_ids_total") >= Some(1.0),
        "{text}"
    );
    cluster.wait_for(SLACK, "the real node to report the refusal", |cluster| {
        let status = cluster.status(real)?;
        (status["incarnation_moves"].as_u64() >= Some(1)).then_some(())
    });
    assert!(log_of(&cluster, real).contains("refuses our datagrams"));
    let http = cluster.nodes[real].http.to_string();
    cluster.wait_for(SLACK, "`tenure status` to report the refusal", |_| {
        let (status, stdout, _) = run_tenure(&["status", "--http", &http], &[]);
        (status.code() == Some(1) && stdout.contains("WARNING: peer")).then_some(())
    });

    // Phase 2: the duplicate goes; within the report window the real node is accepted and
    // joined again, and with the leader killed, it and the other node elect a successor.
    duplicate.kill();
    cluster.wait_for(
        REFUSED_REPORT_WINDOW + timing.lease + SLACK,
        "the real node to join again",
        |cluster| joined(cluster, real).then_some(()),
    );
    cluster.kill(leader);
    let (next, _) = cluster.wait_for_acting(timing.failover_bound(), token);
    assert_ne!(next, leader);
    cluster.assert_no_overlap();
}
