//! Clusters of real `tenure run` processes on 127.0.0.x, each supervising the ledger child,
//! put through crashes, freezes, handovers, restarts, forged and replayed datagrams and the
//! HTTP API. Every test ends by checking the ledger: no two children ever ran at once, and the
//! fencing tokens only rose (protocol: acting_safety; protocol: fencing_monotonic).
//!
//! Timing is asserted against bounds derived from the configuration (`Timing`), each with the
//! same `SLACK` for a loaded machine.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use tenure_harness::{
    free_udp, metric, monotonic_nanos, Cluster, ClusterSpec, LedgerEvent, Signal, SLACK,
};
use tenure_node::wire::{ClusterKey, Sealer, MAX_DATAGRAM};

const LEDGER_CHILD: &str = env!("CARGO_BIN_EXE_ledger-child");

fn millis(nanos: u64) -> u64 {
    nanos / 1_000_000
}

fn nanos(duration: Duration) -> u64 {
    duration.as_nanos() as u64
}

#[test]
fn a_cluster_elects_exactly_one_acting_leader_whose_child_gets_the_token() {
    let cluster = Cluster::start(ClusterSpec::new(3, LEDGER_CHILD));
    let timing = cluster.timing;

    // Phase 1: one node acts, within boot quarantine + jitter + election rounds.
    let (leader, token) = cluster.wait_for_acting(timing.first_election_bound(), 0);
    let leader_name = cluster.nodes[leader].name.clone();

    // Phase 2: every node agrees on leader and term, and only the leader acts.
    let statuses = cluster.wait_for(SLACK, "every node to follow the leader", |cluster| {
        let statuses: Vec<_> = (0..3).filter_map(|index| cluster.status(index)).collect();
        let agreed = statuses.len() == 3
            && statuses
                .iter()
                .all(|status| status["leader"] == leader_name.as_str() && status["term"] == token);
        agreed.then_some(statuses)
    });
    for (index, status) in statuses.iter().enumerate() {
        let leads = index == leader;
        assert_eq!(status["acting"], leads, "{status}");
        assert_eq!(status["role"], if leads { "leader" } else { "follower" });
    }

    // Phase 3: exactly one child ran, with the token and ids in its environment.
    let ledger = cluster.ledger();
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!(ledger[0].node, leader_name);
    assert_eq!(ledger[0].leader, leader_name);
    assert_eq!(ledger[0].token, token);
    assert_eq!(ledger[0].event, LedgerEvent::Start);
    cluster.assert_no_overlap();

    // Phase 4: `tenure status` sees it all: exit 0, the leader's row says so. With one node
    // gone it exits 1 and names the one that did not answer.
    let addresses: Vec<String> = (0..3)
        .map(|index| cluster.nodes[index].http.to_string())
        .collect();
    let arguments = |addresses: &[String]| {
        let mut arguments = vec!["status".to_string()];
        for address in addresses {
            arguments.extend(["--http".to_string(), address.clone()]);
        }
        arguments
    };
    let run = |arguments: &[String]| {
        let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
        tenure_harness::run_tenure(&arguments, &[])
    };
    let (status, stdout, _) = run(&arguments(&addresses));
    assert_eq!(status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("ok: {leader_name} acts")),
        "{stdout}"
    );
    assert!(stdout.contains("QUARANTINE  CHILD"), "{stdout}");
    assert!(stdout.contains("running"), "{stdout}");
    let mut with_a_dead_address = addresses.clone();
    // A port nothing listens on: bound, then closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port");
    with_a_dead_address.push(closed.to_string());
    let (status, stdout, _) = run(&arguments(&with_a_dead_address));
    assert_eq!(status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("1 of 4 nodes did not answer"), "{stdout}");
}

#[test]
fn sigkill_of_the_leader_kills_its_child_and_another_node_acts_within_the_bound() {
    let mut cluster = Cluster::start(ClusterSpec::new(3, LEDGER_CHILD));
    let timing = cluster.timing;
    let (leader, token) = cluster.wait_for_acting(timing.first_election_bound(), 0);

    // Phase 1: SIGKILL the leader's tenure. Its guard sees the control pipe close and stops
    // the child at once: the ledger shows the stop well within the stop grace.
    let killed_at = cluster.kill(leader);
    let stop = cluster.wait_for(SLACK, "the orphaned child to stop", |cluster| {
        cluster
            .ledger()
            .into_iter()
            .find(|entry| entry.token == token && entry.event == LedgerEvent::Stop)
    });
    assert!(
        stop.at <= killed_at + nanos(timing.stop_margin() + SLACK),
        "the child stopped {} ms after tenure died",
        millis(stop.at - killed_at)
    );

    // Phase 2: another node acts within promise + jitter + rounds.
    let next = cluster.wait_for_ledger_start(timing.failover_bound(), token);
    let failover = next.at.saturating_sub(killed_at);
    assert!(
        failover <= nanos(timing.failover_bound()),
        "failover took {} ms",
        millis(failover)
    );
    assert_ne!(next.node, cluster.nodes[leader].name);
    // It cannot be faster than the promise of the followers that acked the dead leader,
    // shortened by drift: they wait out their promise before voting (protocol: Promises).
    assert!(
        next.at > stop.at,
        "the new child started before the old one stopped"
    );
    cluster.wait_for_acting(SLACK, token);
    cluster.assert_no_overlap();
}

#[test]
fn a_frozen_leader_loses_its_child_before_its_lease_ends_and_another_node_takes_over() {
    let cluster = Cluster::start(ClusterSpec::new(3, LEDGER_CHILD));
    let timing = cluster.timing;
    let (leader, token) = cluster.wait_for_acting(timing.first_election_bound(), 0);

    // Phase 1: freeze the leader's tenure. No more renewals, no more extensions of the guard's
    // deadline: the guard must stop the child before the lease could end. The lease cannot
    // run past the last heartbeat before the freeze plus the lease hold.
    let frozen_at = cluster.signal(leader, Signal::STOP);
    let stop = cluster.wait_for(
        timing.lease + SLACK,
        "the guard to stop the child",
        |cluster| {
            cluster
                .ledger()
                .into_iter()
                .find(|entry| entry.token == token && entry.event == LedgerEvent::Stop)
        },
    );
    assert!(
        stop.at < frozen_at + nanos(timing.lease_hold()),
        "the child stopped {} ms after the freeze, past the lease hold of {} ms",
        millis(stop.at - frozen_at),
        timing.lease_hold().as_millis()
    );

    // Phase 2: another node takes over while the old leader is still frozen.
    let next = cluster.wait_for_ledger_start(timing.failover_bound(), token);
    assert!(next.at > stop.at);
    assert!(next.at - frozen_at <= nanos(timing.failover_bound()));

    // Phase 3: thaw it after more than a lease. It finds its lease long gone, starts no child
    // and follows the new leader.
    thread::sleep(timing.lease / 2);
    cluster.signal(leader, Signal::CONT);
    let old_name = cluster.nodes[leader].name.clone();
    cluster.wait_for(
        SLACK,
        "the thawed node to follow the new leader",
        |cluster| {
            let status = cluster.status(leader)?;
            (status["leader"] == next.node.as_str() && status["acting"] == false).then_some(())
        },
    );
    thread::sleep(timing.lease);
    let restarted = cluster
        .ledger()
        .iter()
        .filter(|entry| entry.node == old_name && entry.event == LedgerEvent::Start)
        .count();
    assert_eq!(restarted, 1, "the thawed node started a child again");
    assert_eq!(cluster.acting().len(), 1);
    cluster.assert_no_overlap();
}

#[test]
fn sigterm_hands_over_and_a_rolling_restart_keeps_the_gaps_to_a_handover() {
    let mut cluster = Cluster::start(ClusterSpec::new(3, LEDGER_CHILD));
    let timing = cluster.timing;
    let (leader, token) = cluster.wait_for_acting(timing.first_election_bound(), 0);

    // Phase 1: SIGTERM the leader: it stops its child, hands over and exits 0.
    let terminated_at = cluster.signal(leader, Signal::TERM);
    let status = cluster.wait_for_exit(leader, timing.handover_bound());
    assert_eq!(status.code(), Some(0), "{status:?}");
    let next = cluster.wait_for_ledger_start(timing.handover_bound(), token);
    assert!(
        next.at - terminated_at <= nanos(timing.handover_bound()),
        "handover took {} ms",
        millis(next.at - terminated_at)
    );
    cluster.assert_no_overlap();

    // Phase 2: a rolling restart of every node, one at a time, each waiting until the restarted
    // node has left its boot quarantine and follows the leader (as docs/operations.md says).
    cluster.spawn(leader);
    let mut current = next.token;
    let wait_until_follower = |cluster: &Cluster, index: usize| {
        cluster.wait_for(
            timing.lease + SLACK,
            "the restarted node to rejoin",
            |cluster| (cluster.get(index, "/joined").ok()?.status == 200).then_some(()),
        );
    };
    wait_until_follower(&cluster, leader);
    for index in 0..3 {
        cluster.signal(index, Signal::TERM);
        assert_eq!(
            cluster.wait_for_exit(index, timing.handover_bound()).code(),
            Some(0)
        );
        cluster.spawn(index);
        let (_, token) = cluster.wait_for_acting(timing.failover_bound(), 0);
        current = current.max(token);
        wait_until_follower(&cluster, index);
    }

    // Phase 3: between any two children, the gap was at most a handover.
    let intervals = tenure_harness::intervals(&cluster.ledger());
    for pair in intervals.windows(2) {
        let gap = pair[1].start - pair[0].stop.expect("every child but the last stopped");
        assert!(
            gap <= nanos(timing.handover_bound()),
            "a gap of {} ms between tokens {} and {}",
            millis(gap),
            pair[0].token,
            pair[1].token
        );
    }
    assert!(current > token);
    cluster.assert_no_overlap();
}

#[test]
fn a_restart_keeps_the_term_and_the_next_token_is_higher() {
    let mut cluster = Cluster::start(ClusterSpec::new(1, LEDGER_CHILD));
    let timing = cluster.timing;

    // Phase 1: a fresh single node elects itself at once, with token 1.
    let (_, first) = cluster.wait_for_acting(timing.first_election_bound(), 0);
    assert_eq!(first, 1);
    cluster.signal(0, Signal::TERM);
    assert_eq!(
        cluster.wait_for_exit(0, timing.handover_bound()).code(),
        Some(0)
    );
    let state = std::fs::read_to_string(cluster.nodes[0].state_dir.join("state")).unwrap();
    assert!(state.contains("term 1\n"), "{state}");

    // Phase 2: restarted, it remembers term 1 and sits out one lease (boot quarantine): its
    // old child might still be stopping.
    cluster.spawn(0);
    let status = cluster.wait_for(SLACK, "the restarted node to answer", |cluster| {
        cluster.status(0)
    });
    assert_eq!(status["term"], 1, "{status}");
    if status["role"] == "follower" {
        assert!(status["quarantine_remaining_ms"].is_u64(), "{status}");
        let joined = cluster.get(0, "/joined").unwrap();
        assert!(joined.status == 503 || cluster.status(0).unwrap()["role"] == "leader");
    }

    // Phase 3: then it leads again, in a higher term.
    let (_, second) = cluster.wait_for_acting(timing.first_election_bound(), first);
    assert_eq!(second, 2);
    cluster.assert_no_overlap();
}

#[test]
fn forged_and_replayed_datagrams_are_dropped_counted_and_change_nothing() {
    // n3 is reached through a recording proxy, so the test can replay genuine datagrams.
    let mut cluster = Cluster::prepare(ClusterSpec::new(3, LEDGER_CHILD));
    let proxy = UdpSocket::bind(free_udp("127.0.0.9").expect("a free UDP port")).unwrap();
    proxy
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let target = cluster.nodes[2].udp;
    cluster.nodes[2].advertised = proxy.local_addr().unwrap();
    let recorded: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let forwarder = {
        let (recorded, stop) = (recorded.clone(), stop.clone());
        thread::spawn(move || {
            let mut buffer = [0u8; 2048];
            while !stop.load(Ordering::SeqCst) {
                if let Ok((length, _)) = proxy.recv_from(&mut buffer) {
                    let _ = proxy.send_to(&buffer[..length], target);
                    recorded.lock().unwrap().push(buffer[..length].to_vec());
                }
            }
        })
    };
    for index in 0..3 {
        cluster.spawn(index);
    }
    let timing = cluster.timing;
    let (leader, token) = cluster.wait_for_acting(timing.first_election_bound(), 0);
    cluster.wait_for(SLACK, "n3 to follow the leader", |cluster| {
        let status = cluster.status(2)?;
        (status["term"] == token && status["leader"].is_string()).then_some(())
    });
    thread::sleep(timing.heartbeat * 5);
    let before = cluster.status(2).unwrap();

    // Phase 1: replay every genuine datagram n3 received, garbage, an oversized datagram,
    // datagrams with a flipped bit, one sealed with another key claiming a huge term, and one
    // from a member index that does not exist.
    let genuine: Vec<Vec<u8>> = recorded.lock().unwrap().clone();
    assert!(
        genuine.len() >= 5,
        "too few datagrams recorded: {}",
        genuine.len()
    );
    let attacker = UdpSocket::bind(free_udp("127.0.0.10").expect("a free UDP port")).unwrap();
    for datagram in &genuine {
        attacker.send_to(datagram, target).unwrap();
    }
    let mut flipped = genuine[genuine.len() - 1].clone();
    flipped[30] ^= 0x01;
    attacker.send_to(&flipped, target).unwrap();
    attacker.send_to(b"definitely not tenure", target).unwrap();
    attacker
        .send_to(&vec![b'T'; MAX_DATAGRAM + 100], target)
        .unwrap();
    let wrong_key = ClusterKey::from_hex(&"66".repeat(32)).unwrap();
    // A RequestVote (kind 3) for term 1000 "from n1" (index 0) to n3 (index 2).
    let mut request_vote = vec![3u8];
    request_vote.extend_from_slice(&1000u64.to_be_bytes());
    let forged = Sealer::new(&wrong_key, 0, u64::MAX - 1)
        .seal(2, &request_vote)
        .unwrap();
    attacker.send_to(&forged, target).unwrap();
    let from_nowhere = Sealer::new(&wrong_key, 7, 1)
        .seal(2, &request_vote)
        .unwrap();
    attacker.send_to(&from_nowhere, target).unwrap();

    // Phase 2: everything is counted as dropped, by reason.
    let metrics = cluster.wait_for(SLACK, "the drops to be counted", |cluster| {
        let text = cluster.get(2, "/metrics").ok()?.body;
        let replayed = metric(&text, "tenure_datagrams_dropped_total{reason=\"replayed\"}")?;
        let stale = metric(
            &text,
            "tenure_datagrams_dropped_total{reason=\"stale_incarnation\"}",
        )?;
        (replayed + stale >= genuine.len() as f64).then_some(text)
    });
    for (reason, at_least) in [
        ("unauthenticated", 2.0),
        ("malformed", 1.0),
        ("oversized", 1.0),
        ("unknown_peer", 1.0),
    ] {
        let count = metric(
            &metrics,
            &format!("tenure_datagrams_dropped_total{{reason=\"{reason}\"}}"),
        );
        assert!(count >= Some(at_least), "{reason}: {count:?}\n{metrics}");
    }

    // Phase 3: nothing changed: same term, same leader, the same child still acts.
    thread::sleep(timing.heartbeat * 5);
    let after = cluster.status(2).unwrap();
    assert_eq!(after["term"], before["term"]);
    assert_eq!(after["leader"], before["leader"]);
    assert_eq!(cluster.acting(), vec![(leader, token)]);
    assert_eq!(cluster.ledger().len(), 1);
    stop.store(true, Ordering::SeqCst);
    forwarder.join().unwrap();
    cluster.assert_no_overlap();
}

#[test]
fn the_http_api_reports_the_cluster_and_step_down_needs_the_admin_token() {
    let spec = ClusterSpec {
        admin_token: true,
        ..ClusterSpec::new(3, LEDGER_CHILD)
    };
    let cluster = Cluster::start(spec);
    let timing = cluster.timing;
    let (leader, token) = cluster.wait_for_acting(timing.first_election_bound(), 0);
    let leader_name = cluster.nodes[leader].name.clone();
    let follower = (leader + 1) % 3;
    cluster.wait_for(SLACK, "every node to know the leader", |cluster| {
        (0..3)
            .all(|index| {
                cluster
                    .get(index, "/")
                    .ok()
                    .and_then(|answer| answer.json().ok())
                    .is_some_and(|body| body["name"] == leader_name.as_str())
            })
            .then_some(())
    });

    // Phase 1: /health and /joined everywhere; /ready only on the acting leader.
    for index in 0..3 {
        assert_eq!(cluster.get(index, "/health").unwrap().status, 200);
        assert_eq!(cluster.get(index, "/joined").unwrap().status, 200);
        let ready = cluster.get(index, "/ready").unwrap();
        assert_eq!(
            ready.status,
            if index == leader { 200 } else { 503 },
            "{}",
            ready.body
        );
    }

    // Phase 2: /status carries the documented fields.
    let status = cluster.status(leader).unwrap();
    assert_eq!(status["id"], leader_name.as_str());
    assert_eq!(status["role"], "leader");
    assert_eq!(status["term"], token);
    assert_eq!(status["leader"], leader_name.as_str());
    assert_eq!(status["acting"], true);
    assert_eq!(status["fencing_token"], token);
    let remaining = status["lease_remaining_ms"].as_u64().unwrap();
    assert!(
        remaining <= timing.lease_hold().as_millis() as u64,
        "{status}"
    );
    let peers = status["peers"].as_array().unwrap();
    assert_eq!(peers.len(), 2);
    assert!(
        peers.iter().all(|peer| peer["last_heard_ms"].is_u64()),
        "{status}"
    );
    let follower_status = cluster.status(follower).unwrap();
    assert_eq!(follower_status["role"], "follower");
    assert!(follower_status["fencing_token"].is_null());
    assert!(follower_status["lease_remaining_ms"].is_null());

    // Phase 3: /metrics in the Prometheus text format.
    let metrics = cluster.get(leader, "/metrics").unwrap();
    assert!(metrics
        .content_type
        .as_deref()
        .unwrap_or_default()
        .starts_with("text/plain; version=0.0.4"));
    let text = &metrics.body;
    assert_eq!(metric(text, "tenure_role{role=\"leader\"}"), Some(1.0));
    assert_eq!(metric(text, "tenure_term"), Some(token as f64));
    assert_eq!(metric(text, "tenure_acting"), Some(1.0));
    assert_eq!(metric(text, "tenure_child_restarts_total"), Some(0.0));
    assert!(metric(text, "tenure_lease_remaining_seconds") > Some(0.0));
    assert!(metric(text, "tenure_elections_total") >= Some(1.0));
    assert!(metric(text, "tenure_messages_sent_total{kind=\"heartbeat\"}") > Some(0.0));
    assert!(metric(text, "tenure_datagrams_dropped_total{reason=\"replayed\"}").is_some());

    // Phase 4: step-down refuses a missing or wrong token, and a follower.
    let refused = cluster.request(leader, "POST", "/step-down", &[]).unwrap();
    assert_eq!(refused.status, 401, "{}", refused.body);
    let wrong = [("Authorization", "Bearer not-the-token")];
    let refused = cluster
        .request(leader, "POST", "/step-down", &wrong)
        .unwrap();
    assert_eq!(refused.status, 403, "{}", refused.body);
    let bearer = format!(
        "Bearer {}",
        cluster
            .admin_token
            .as_deref()
            .expect("the spec asked for one")
    );
    let right = [("Authorization", bearer.as_str())];
    let not_leader = cluster
        .request(follower, "POST", "/step-down", &right)
        .unwrap();
    assert_eq!(not_leader.status, 409, "{}", not_leader.body);
    assert_eq!(cluster.get(leader, "/step-down").unwrap().status, 405);
    assert_eq!(cluster.get(leader, "/nope").unwrap().status, 404);
    assert_eq!(
        cluster.acting(),
        vec![(leader, token)],
        "a refused request changed nothing"
    );

    // Phase 5: with the token, the leader stops its child and hands over.
    let asked_at = monotonic_nanos();
    let accepted = cluster
        .request(leader, "POST", "/step-down", &right)
        .unwrap();
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    let next = cluster.wait_for_ledger_start(timing.handover_bound(), token);
    assert_ne!(next.node, leader_name);
    assert!(next.at - asked_at <= nanos(timing.handover_bound()));
    let (successor, successor_token) = cluster.wait_for_acting(SLACK, token);

    // Phase 6: `tenure pause` with the token file makes the new leader hand over and stay out
    // of elections while it still votes; `tenure resume` lets it campaign again.
    let token_file = cluster.key_file.with_file_name("admin.token");
    let token_file = token_file.to_str().expect("a UTF-8 path");
    let http = cluster.nodes[successor].http.to_string();
    let admin = |command: &str| {
        let arguments = [command, "--http", &http, "--admin-token-file", token_file];
        tenure_harness::run_tenure(&arguments, &[])
    };
    let (status, stdout, stderr) = admin("pause");
    assert_eq!(status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("\"handing_over\":true"), "{stdout}");
    let (third, _) = cluster.wait_for_acting(timing.handover_bound() + SLACK, successor_token);
    assert_ne!(third, successor, "a paused node does not lead");
    let paused = cluster.status(successor).expect("the paused node answers");
    assert_eq!(paused["paused"], true, "{paused}");
    assert_eq!(paused["role"], "follower", "{paused}");
    let (status, _, _) = admin("resume");
    assert_eq!(status.code(), Some(0));
    let resumed = cluster.status(successor).expect("the resumed node answers");
    assert_eq!(resumed["paused"], false, "{resumed}");
    let (status, _, stderr) = tenure_harness::run_tenure(&["pause", "--http", &http], &[]);
    assert_eq!(status.code(), Some(1), "no token: refused");
    assert!(stderr.contains("401"), "{stderr}");
    cluster.assert_no_overlap();
}

#[test]
fn a_child_that_keeps_exiting_is_restarted_then_leadership_moves_on() {
    let spec = ClusterSpec {
        child_arguments: vec!["--exit-after-ms".into(), "200".into()],
        extra_flags: vec!["--max-child-restarts".into(), "2".into()],
        ..ClusterSpec::new(3, LEDGER_CHILD)
    };
    let cluster = Cluster::start(spec);
    let timing = cluster.timing;
    let first = cluster.wait_for_ledger_start(timing.first_election_bound(), 0);

    // Phase 1: the child is started three times under the first token (two restarts), then
    // the node resigns and another node leads with a higher token.
    let next = cluster.wait_for_ledger_start(timing.handover_bound() + SLACK, first.token);
    let starts = cluster
        .ledger()
        .iter()
        .filter(|entry| entry.token == first.token && entry.event == LedgerEvent::Start)
        .count();
    assert_eq!(starts, 3, "{:?}", cluster.ledger());
    assert_ne!(next.node, first.node);

    // Phase 2: the first node counted its restarts.
    let first_index = cluster
        .nodes
        .iter()
        .position(|node| node.name == first.node)
        .unwrap();
    let text = cluster.get(first_index, "/metrics").unwrap().body;
    assert!(
        metric(&text, "tenure_child_restarts_total") >= Some(2.0),
        "{text}"
    );
    cluster.assert_no_overlap();
}

#[test]
fn an_observer_only_node_reports_its_leadership_without_a_child() {
    let spec = ClusterSpec {
        ledger_child: None,
        ..ClusterSpec::new(1, LEDGER_CHILD)
    };
    let cluster = Cluster::start(spec);
    cluster.wait_for(
        cluster.timing.first_election_bound(),
        "the node to lead",
        |cluster| {
            let body = cluster.get(0, "/").ok()?.json().ok()?;
            (body["name"] == "n1").then_some(())
        },
    );
    assert_eq!(cluster.get(0, "/ready").unwrap().status, 200);
    let status = cluster.status(0).unwrap();
    assert_eq!(status["supervises_child"], false);
    assert!(cluster.ledger().is_empty());
}
