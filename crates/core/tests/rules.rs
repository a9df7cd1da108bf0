//! One test per rule of docs/protocol.md, each citing the heading of its rule: feed one input,
//! assert the exact outputs.

use std::sync::Arc;

use tenure_core::{
    CommandError, Config, ConfigParams, DropReason, Duration, Envelope, Event, FencingToken,
    Instant, Message, Node, NodeId, Output, PersistentState, Received, RoleKind, Term, Variant,
    MAX_ELECTION_RESENDS, MAX_TERM, MAX_TERM_STEP, NO_HEARTBEAT,
};

const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);
const N3: NodeId = NodeId(3);
const LEASE: Duration = Duration::from_secs(2);

fn config(members: &[u32], variant: Variant) -> Arc<Config> {
    Arc::new(
        Config::new(ConfigParams {
            members: members.iter().copied().map(NodeId).collect(),
            variant,
            ..ConfigParams::default()
        })
        .expect("valid config"),
    )
}

fn three() -> Arc<Config> {
    config(&[1, 2, 3], Variant::Correct)
}

fn at(millis: u64) -> Instant {
    Instant::from_nanos(millis * 1_000_000)
}

fn drain(node: &mut Node) -> Vec<Output> {
    std::iter::from_fn(|| node.poll_output()).collect()
}

fn send(from: NodeId, to: NodeId, message: Message) -> Output {
    Output::Send(Envelope { from, to, message })
}

fn deliver(node: &mut Node, now: Instant, from: NodeId, message: Message) -> Received {
    node.handle_message(
        now,
        Envelope {
            from,
            to: node.id(),
            message,
        },
    )
}

/// A node with persisted state `term`, booted at 0 and out of quarantine at `LEASE`.
fn follower(config: Arc<Config>, id: NodeId, term: u64) -> Node {
    let persisted = PersistentState {
        term: Term(term),
        voted_for: None,
    };
    let mut node = Node::new(config, id, Some(persisted), Instant::ZERO).expect("member");
    drain(&mut node);
    node
}

/// Node 1 of three, leader of term 1 at t = 2 s, its first heartbeat sent but not acked.
fn elected_leader() -> Node {
    let mut node = Node::new(three(), N1, None, Instant::ZERO).expect("member");
    let boot = at(2_000);
    node.handle_timeout(boot, 0);
    assert_eq!(node.role(), RoleKind::PreCandidate);
    deliver(
        &mut node,
        boot,
        N2,
        Message::PreVoteReply {
            term: Term(1),
            granted: true,
        },
    );
    assert_eq!(node.role(), RoleKind::Candidate);
    deliver(
        &mut node,
        boot,
        N2,
        Message::VoteReply {
            term: Term(1),
            granted: true,
        },
    );
    assert_eq!(node.role(), RoleKind::Leader);
    drain(&mut node);
    node
}

#[test]
fn boot_quarantine_blocks_votes_and_campaigns_for_one_lease() {
    // protocol: Boot quarantine. A node that starts (or restarts) grants no vote for L after
    // boot, not even to itself.
    let mut node = Node::new(three(), N1, None, at(100)).expect("member");
    assert_eq!(node.quarantine_until(), Some(at(2_100)));
    assert_eq!(node.poll_timeout(), Some(at(2_100)));

    let received = deliver(
        &mut node,
        at(500),
        N2,
        Message::RequestVote { term: Term(1) },
    );
    assert_eq!(received, Received::Dropped(DropReason::Quarantined));
    assert!(drain(&mut node).is_empty(), "no reply, no persist");
    assert_eq!(node.term(), Term(0), "the request's term is not adopted");

    deliver(&mut node, at(500), N2, Message::PreVote { term: Term(1) });
    assert_eq!(
        drain(&mut node),
        vec![send(
            N1,
            N2,
            Message::PreVoteReply {
                term: Term(1),
                granted: false
            }
        )]
    );

    node.handle_timeout(at(2_099), 0);
    assert_eq!(
        node.role(),
        RoleKind::Follower,
        "no campaign during quarantine"
    );
    assert!(drain(&mut node).is_empty());
}

#[test]
fn a_single_node_cluster_elects_itself_at_once_on_first_boot() {
    // protocol: Boot quarantine. The one exception: the very first boot of a single-node
    // cluster elects itself at once.
    let config = config(&[1], Variant::Correct);
    let hold = config.lease_hold();
    let mut node = Node::new(config, N1, None, at(7)).expect("member");
    assert_eq!(node.poll_timeout(), Some(at(7)));
    node.handle_timeout(at(7), u64::MAX);

    assert_eq!(node.role(), RoleKind::Leader);
    let leadership = node.leadership(at(7)).expect("leads with a lease");
    assert_eq!(leadership.fencing_token, FencingToken(1));
    assert_eq!(leadership.lease_until, at(7) + hold);
    assert_eq!(
        leadership.acting_until,
        at(7) + hold - Duration::from_millis(500)
    );
    assert_eq!(
        drain(&mut node),
        vec![
            Output::Persist(PersistentState {
                term: Term(1),
                voted_for: Some(N1)
            }),
            Output::Event(Event::LeaseAcquired { term: Term(1) }),
            Output::Event(Event::RoleChanged {
                role: RoleKind::Leader,
                term: Term(1),
                leader: Some(N1)
            }),
        ]
    );
}

#[test]
fn a_restarted_single_node_waits_out_its_quarantine() {
    // protocol: Boot quarantine. Quarantine holds for a single-node cluster too, except on its
    // very first boot: after a crash its own old child may still be stopping.
    let persisted = PersistentState {
        term: Term(4),
        voted_for: Some(N1),
    };
    let mut node =
        Node::new(config(&[1], Variant::Correct), N1, Some(persisted), at(10)).expect("member");
    assert_eq!(node.poll_timeout(), Some(at(10) + LEASE));
    node.handle_timeout(at(10), 0);
    assert!(node.leadership(at(10)).is_none());
    node.handle_timeout(at(10) + LEASE, 0);
    assert_eq!(
        node.leadership(at(10) + LEASE)
            .expect("leader")
            .fencing_token,
        FencingToken(5)
    );
}

#[test]
fn pre_vote_changes_no_state() {
    // protocol: Roles and messages. A pre-vote is a probe that changes no state.
    let mut node = follower(three(), N1, 3);
    let observe = |node: &Node| {
        (
            node.persistent_state(),
            node.role(),
            node.leader(),
            node.promise_until(),
        )
    };
    let before = observe(&node);
    deliver(&mut node, at(2_500), N2, Message::PreVote { term: Term(4) });
    assert_eq!(
        drain(&mut node),
        vec![send(
            N1,
            N2,
            Message::PreVoteReply {
                term: Term(4),
                granted: true
            }
        )]
    );
    assert_eq!(observe(&node), before);

    // A proposed term that is not above ours is refused.
    deliver(&mut node, at(2_500), N2, Message::PreVote { term: Term(3) });
    assert_eq!(
        drain(&mut node),
        vec![send(
            N1,
            N2,
            Message::PreVoteReply {
                term: Term(3),
                granted: false
            }
        )]
    );
}

#[test]
fn a_vote_is_persisted_before_the_reply_leaves() {
    // protocol: Persist before send. `term` and `voted_for` are written durably before any
    // message that depends on them leaves the node.
    let mut node = follower(three(), N1, 3);
    let received = deliver(
        &mut node,
        at(2_500),
        N2,
        Message::RequestVote { term: Term(5) },
    );
    assert_eq!(received, Received::Accepted);
    assert_eq!(
        drain(&mut node),
        vec![
            Output::Persist(PersistentState {
                term: Term(5),
                voted_for: Some(N2)
            }),
            send(
                N1,
                N2,
                Message::VoteReply {
                    term: Term(5),
                    granted: true
                }
            ),
            Output::Event(Event::RoleChanged {
                role: RoleKind::Follower,
                term: Term(5),
                leader: None
            }),
        ]
    );
}

#[test]
fn one_vote_per_term() {
    // protocol: single_vote. A node votes at most once a term.
    let mut node = follower(three(), N1, 3);
    deliver(
        &mut node,
        at(2_500),
        N2,
        Message::RequestVote { term: Term(5) },
    );
    drain(&mut node);
    deliver(
        &mut node,
        at(2_501),
        N3,
        Message::RequestVote { term: Term(5) },
    );
    assert_eq!(
        drain(&mut node),
        vec![send(
            N1,
            N3,
            Message::VoteReply {
                term: Term(5),
                granted: false
            }
        )]
    );
    // The same candidate asking again gets the same answer (its reply may have been lost).
    deliver(
        &mut node,
        at(2_502),
        N2,
        Message::RequestVote { term: Term(5) },
    );
    assert_eq!(
        drain(&mut node),
        vec![send(
            N1,
            N2,
            Message::VoteReply {
                term: Term(5),
                granted: true
            }
        )]
    );
}

#[test]
fn accepting_a_heartbeat_promises_for_one_lease_and_acks() {
    // protocol: Promises. A follower that accepts a heartbeat at local time t grants no vote
    // or pre-vote and starts no election until t + L.
    let mut node = follower(three(), N1, 3);
    deliver(
        &mut node,
        at(2_500),
        N2,
        Message::Heartbeat {
            term: Term(3),
            seq: 9,
        },
    );
    assert_eq!(node.promise_until(), Some(at(4_500)));
    assert_eq!(node.leader(), Some(N2));
    assert_eq!(
        node.poll_timeout(),
        Some(at(4_500)),
        "no election before the promise ends"
    );
    assert_eq!(
        drain(&mut node),
        vec![
            send(
                N1,
                N2,
                Message::HeartbeatAck {
                    term: Term(3),
                    seq: 9
                }
            ),
            Output::Event(Event::RoleChanged {
                role: RoleKind::Follower,
                term: Term(3),
                leader: Some(N2)
            }),
        ]
    );
}

#[test]
fn a_promised_follower_ignores_higher_term_votes_without_adopting_the_term() {
    // protocol: Promises. A promised follower ignores vote requests of higher terms without
    // adopting the term.
    let mut node = follower(three(), N1, 3);
    deliver(
        &mut node,
        at(2_500),
        N2,
        Message::Heartbeat {
            term: Term(3),
            seq: 1,
        },
    );
    drain(&mut node);
    let received = deliver(
        &mut node,
        at(4_499),
        N3,
        Message::RequestVote { term: Term(9) },
    );
    assert_eq!(received, Received::Dropped(DropReason::Promised));
    assert!(drain(&mut node).is_empty());
    assert_eq!(node.term(), Term(3));

    deliver(&mut node, at(4_499), N3, Message::PreVote { term: Term(4) });
    assert_eq!(
        drain(&mut node),
        vec![send(
            N1,
            N3,
            Message::PreVoteReply {
                term: Term(4),
                granted: false
            }
        )]
    );

    // At t + L the promise has ended: the same request is granted.
    deliver(
        &mut node,
        at(4_500),
        N3,
        Message::RequestVote { term: Term(9) },
    );
    assert_eq!(node.voted_for(), Some(N3));
}

#[test]
fn a_stale_heartbeat_is_answered_with_our_term_and_acknowledges_nothing() {
    // protocol: Stale replies acknowledge nothing. Raft §5.1: a stale leader learns the newer
    // term from the reply and is deposed; the reply names no heartbeat, since it promises
    // nothing.
    let mut node = follower(three(), N1, 6);
    let received = deliver(
        &mut node,
        at(2_500),
        N2,
        Message::Heartbeat {
            term: Term(5),
            seq: 3,
        },
    );
    assert_eq!(received, Received::Dropped(DropReason::StaleTerm));
    assert_eq!(node.promise_until(), None, "no promise to a stale leader");
    assert_eq!(
        drain(&mut node),
        vec![send(
            N1,
            N2,
            Message::HeartbeatAck {
                term: Term(6),
                seq: NO_HEARTBEAT,
            }
        )]
    );
}

#[test]
fn a_reply_to_a_stale_heartbeat_never_extends_a_lease_in_the_current_term() {
    // protocol: Stale replies acknowledge nothing. The schedule that let two leaders act:
    // N1 leads term 1 and its heartbeat seq 3 is held in the network; N1 leads again in term
    // 3; the old heartbeat reaches N2, now at term 3, whose reply must not count as an ack of
    // N1's term-3 heartbeat seq 3, because N2 promised nothing in term 3.
    let (received, leadership) = release_a_held_heartbeat_into_a_later_term(three());
    assert!(
        matches!(received, Received::Dropped(_)),
        "the reply was accepted: {received:?}"
    );
    assert_eq!(
        leadership, None,
        "a lease extended on a promise nobody made"
    );
}

/// Runs the schedule above with `config` and returns how the term-3 leader received N2's reply
/// to the held term-1 heartbeat, and its leadership right after.
fn release_a_held_heartbeat_into_a_later_term(
    config: Arc<Config>,
) -> (Received, Option<tenure_core::Leadership>) {
    // Term 3: N1 is elected (its state restored as a follower of term 2 that campaigns) and
    // sends heartbeats 1 to 3, none acked yet. Its term-1 heartbeat 3 is still in the network.
    let persisted = PersistentState {
        term: Term(2),
        voted_for: None,
    };
    let mut leader =
        Node::new(Arc::clone(&config), N1, Some(persisted), at(10_000)).expect("member");
    leader.handle_timeout(at(12_000), 0);
    deliver(
        &mut leader,
        at(12_000),
        N3,
        Message::PreVoteReply {
            term: Term(3),
            granted: true,
        },
    );
    deliver(
        &mut leader,
        at(12_000),
        N3,
        Message::VoteReply {
            term: Term(3),
            granted: true,
        },
    );
    assert_eq!(leader.role(), RoleKind::Leader);
    assert_eq!(leader.term(), Term(3));
    leader.handle_timeout(at(12_250), 0);
    leader.handle_timeout(at(12_500), 0);
    drain(&mut leader);
    assert_eq!(leader.leadership(at(12_500)), None, "no ack yet: no lease");

    // N2 is at term 3 and promised nothing in it; the held term-1 heartbeat seq 3 arrives.
    let mut voter = follower(config, N2, 3);
    deliver(
        &mut voter,
        at(12_500),
        N1,
        Message::Heartbeat {
            term: Term(1),
            seq: 3,
        },
    );
    let reply = drain(&mut voter);
    let [Output::Send(envelope)] = reply.as_slice() else {
        panic!("one reply expected, got {reply:?}");
    };
    assert_eq!(voter.promise_until(), None, "no promise in term 3");

    // Its reply reaches the leader of term 3.
    let received = leader.handle_message(at(12_501), *envelope);
    (received, leader.leadership(at(12_501)))
}

#[test]
fn a_leader_ignores_an_ack_that_names_no_heartbeat() {
    // protocol: Stale replies acknowledge nothing.
    let mut leader = elected_leader();
    let received = deliver(
        &mut leader,
        at(2_001),
        N2,
        Message::HeartbeatAck {
            term: Term(1),
            seq: NO_HEARTBEAT,
        },
    );
    assert_eq!(received, Received::Dropped(DropReason::OutOfRange));
    assert_eq!(leader.leadership(at(2_001)), None);
    assert_eq!(leader.role(), RoleKind::Leader);
}

/// `node`'s first election round, started at its first deadline, failed at the round's end,
/// where it drew its next delay from `entropy`.
fn fail_first_round(node: &mut Node, entropy: u64) -> Instant {
    let start = node.poll_timeout().expect("an election deadline");
    node.handle_timeout(start, 0);
    assert_eq!(node.role(), RoleKind::PreCandidate);
    let round_until = start + Duration::from_millis(500);
    node.handle_timeout(round_until, entropy);
    drain(node);
    round_until
}

#[test]
fn election_jitter_after_a_failed_round_comes_from_the_entropy_argument() {
    // protocol: Election timing. Randomized backoff whose randomness comes in as an argument.
    let max = ConfigParams::default().election_jitter_max;
    let mut low = follower(three(), N1, 3);
    let failed = fail_first_round(&mut low, 0);
    assert_eq!(
        low.role(),
        RoleKind::PreCandidate,
        "zero jitter campaigns at once"
    );
    assert!(failed > at(2_000));

    let mut high = follower(three(), N1, 3);
    let failed = fail_first_round(&mut high, u64::MAX);
    assert_eq!(high.poll_timeout(), Some(failed + max));
    high.handle_timeout(failed + max, 0);
    assert_eq!(high.role(), RoleKind::PreCandidate);
}

#[test]
fn the_first_election_after_a_leader_goes_by_rank_after_that_leader() {
    // protocol: Election timing. No random wait: the member after the leader in id order,
    // round the ring, starts the instant its promise ends, the next one a step later.
    let five = config(&[1, 2, 3, 4, 5], Variant::Correct);
    let step = ConfigParams::default().election_step;
    for (leader, order) in [(1, [2, 3, 4, 5]), (3, [4, 5, 1, 2]), (5, [1, 2, 3, 4])] {
        for (rank, id) in order.into_iter().enumerate() {
            let mut node = follower(five.clone(), NodeId(id), 3);
            let heard = at(2_100);
            deliver(
                &mut node,
                heard,
                NodeId(leader),
                Message::Heartbeat {
                    term: Term(3),
                    seq: 1,
                },
            );
            let promise_end = heard + LEASE;
            node.handle_timeout(promise_end, u64::MAX);
            if rank > 0 {
                let start = promise_end + Duration::from_nanos(step.as_nanos() * rank as u64);
                assert_eq!(
                    node.poll_timeout(),
                    Some(start),
                    "n{id} after leader n{leader}: rank {rank}, whatever the entropy"
                );
                node.handle_timeout(start, u64::MAX);
            }
            assert_eq!(node.role(), RoleKind::PreCandidate, "n{id} at rank {rank}");
        }
    }
}

#[test]
fn a_cold_start_goes_by_rank_in_id_order() {
    // protocol: Election timing. No leader heard yet: the lowest id first.
    let step = ConfigParams::default().election_step;
    for (rank, id) in [N1, N2, N3].into_iter().enumerate() {
        let mut node = follower(three(), id, 0);
        node.handle_timeout(at(2_000), u64::MAX);
        if rank == 0 {
            assert_eq!(node.role(), RoleKind::PreCandidate, "{id} starts at once");
        } else {
            let start = at(2_000) + Duration::from_nanos(step.as_nanos() * rank as u64);
            assert_eq!(node.poll_timeout(), Some(start), "{id}");
        }
    }
}

#[test]
fn a_lapsed_leader_backs_off_at_random_instead_of_by_rank() {
    // protocol: Election timing. A leader that could not renew may be the node that cannot
    // reach the others; were it to campaign by rank, it could win again and again.
    let mut leader = elected_leader();
    let window_end = leader.poll_timeout().expect("a heartbeat deadline");
    let mut now = window_end;
    for _ in 0..100 {
        if leader.role() != RoleKind::Leader {
            break;
        }
        now = leader.poll_timeout().expect("a deadline");
        leader.handle_timeout(now, u64::MAX);
    }
    assert_eq!(leader.role(), RoleKind::Follower);
    drain(&mut leader);
    let promise_end = leader
        .promise_until()
        .expect("it keeps its own promise from its last heartbeat");
    leader.handle_timeout(promise_end.max(now), u64::MAX);
    assert_eq!(
        leader.poll_timeout(),
        Some(promise_end.max(now) + ConfigParams::default().election_jitter_max),
        "the full jitter drawn from the entropy, not a rank"
    );
}

#[test]
fn a_pre_candidate_asks_for_term_plus_one_then_campaigns_with_a_persisted_self_vote() {
    // protocol: Roles and messages. PreVote{term+1}, then RequestVote{term} with a persisted
    // self-vote.
    let mut node = follower(three(), N1, 3);
    node.handle_timeout(at(2_000), 0);
    assert_eq!(
        drain(&mut node),
        vec![
            send(N1, N2, Message::PreVote { term: Term(4) }),
            send(N1, N3, Message::PreVote { term: Term(4) }),
            Output::Event(Event::RoleChanged {
                role: RoleKind::PreCandidate,
                term: Term(3),
                leader: None
            }),
        ]
    );
    deliver(
        &mut node,
        at(2_001),
        N3,
        Message::PreVoteReply {
            term: Term(4),
            granted: true,
        },
    );
    assert_eq!(
        drain(&mut node),
        vec![
            Output::Persist(PersistentState {
                term: Term(4),
                voted_for: Some(N1)
            }),
            send(N1, N2, Message::RequestVote { term: Term(4) }),
            send(N1, N3, Message::RequestVote { term: Term(4) }),
            Output::Event(Event::RoleChanged {
                role: RoleKind::Candidate,
                term: Term(4),
                leader: None
            }),
        ]
    );
}

#[test]
fn a_failed_round_retries_after_fresh_jitter() {
    // protocol: Election timing. A lost reply or a split vote must not stall the cluster: the
    // round times out after two heartbeat intervals, and the next try waits a random jitter.
    let mut node = follower(three(), N1, 3);
    node.handle_timeout(at(2_000), 0);
    assert_eq!(node.role(), RoleKind::PreCandidate);
    let round_until = at(2_500);
    node.handle_timeout(round_until, u64::MAX);
    assert_eq!(node.role(), RoleKind::Follower);
    assert_eq!(
        node.poll_timeout(),
        Some(round_until + Duration::from_millis(500))
    );
}

#[test]
fn candidates_ask_again_every_half_step_whoever_has_not_granted() {
    // protocol: Election timing. A voter still promised for a moment, or one that handles the
    // old leader's Resign just after our request, grants when asked again.
    let half_step = Duration::from_millis(10);
    let mut node = follower(three(), N1, 3);
    node.handle_timeout(at(2_000), 0);
    drain(&mut node);
    assert_eq!(node.poll_timeout(), Some(at(2_000) + half_step));
    node.handle_timeout(at(2_000) + half_step, 0);
    assert_eq!(
        drain(&mut node),
        vec![
            send(N1, N2, Message::PreVote { term: Term(4) }),
            send(N1, N3, Message::PreVote { term: Term(4) }),
        ]
    );
    // N3 refused (promised) the first time; a grant from N2 alone is a majority of three, so
    // use a refusal by N2 and a late grant by N3 instead.
    deliver(
        &mut node,
        at(2_011),
        N2,
        Message::PreVoteReply {
            term: Term(4),
            granted: false,
        },
    );
    assert_eq!(node.role(), RoleKind::PreCandidate);
    deliver(
        &mut node,
        at(2_012),
        N3,
        Message::PreVoteReply {
            term: Term(4),
            granted: true,
        },
    );
    assert_eq!(node.role(), RoleKind::Candidate);
    drain(&mut node);
    let resend = at(2_012) + half_step;
    assert_eq!(node.poll_timeout(), Some(resend));
    deliver(
        &mut node,
        at(2_013),
        N3,
        Message::VoteReply {
            term: Term(4),
            granted: false,
        },
    );
    // Only N2 has not granted (N3 refused, which is no grant either): both are asked again.
    node.handle_timeout(resend, 0);
    assert_eq!(
        drain(&mut node),
        vec![
            send(N1, N2, Message::RequestVote { term: Term(4) }),
            send(N1, N3, Message::RequestVote { term: Term(4) }),
        ]
    );
    deliver(
        &mut node,
        resend,
        N2,
        Message::VoteReply {
            term: Term(4),
            granted: true,
        },
    );
    assert_eq!(node.role(), RoleKind::Leader);
}

#[test]
fn resends_are_bounded_per_round() {
    // protocol: Election timing. At most MAX_ELECTION_RESENDS per round; then the round waits
    // for its end.
    let half_step = Duration::from_millis(10);
    let mut node = follower(three(), N1, 3);
    node.handle_timeout(at(2_000), 0);
    drain(&mut node);
    let mut now = at(2_000);
    for resend in 1..=MAX_ELECTION_RESENDS {
        now = now + half_step;
        assert_eq!(node.poll_timeout(), Some(now), "resend {resend}");
        node.handle_timeout(now, 0);
        assert_eq!(drain(&mut node).len(), 2, "both peers asked again");
    }
    assert_eq!(
        node.poll_timeout(),
        Some(at(2_500)),
        "then only the round's end"
    );
}

#[test]
fn a_vote_request_that_overtook_the_resign_is_granted_when_asked_again() {
    // protocol: Graceful handover. The successor's RequestVote reaches the third node before
    // the old leader's Resign: refused (promised). Asked again after the Resign, it grants in
    // the same term: no term is burned.
    let mut third = follower(three(), N3, 3);
    deliver(
        &mut third,
        at(2_100),
        N1,
        Message::Heartbeat {
            term: Term(3),
            seq: 1,
        },
    );
    drain(&mut third);
    let request = Message::RequestVote { term: Term(4) };
    assert_eq!(
        deliver(&mut third, at(2_200), N2, request),
        Received::Dropped(DropReason::Promised)
    );
    deliver(&mut third, at(2_201), N1, Message::Resign { term: Term(3) });
    drain(&mut third);
    assert_eq!(
        deliver(&mut third, at(2_210), N2, request),
        Received::Accepted
    );
    assert_eq!(
        drain(&mut third),
        vec![
            Output::Persist(PersistentState {
                term: Term(4),
                voted_for: Some(N2)
            }),
            send(
                N3,
                N2,
                Message::VoteReply {
                    term: Term(4),
                    granted: true
                }
            ),
            Output::Event(Event::RoleChanged {
                role: RoleKind::Follower,
                term: Term(4),
                leader: None
            }),
        ]
    );
}

#[test]
fn the_leader_holds_its_lease_from_the_majority_acked_heartbeat_shortened_for_drift() {
    // protocol: Leases. lease_until = s + L·(1−ρ)/(1+ρ), s the send time of the heartbeat a
    // majority (the leader counted) acked.
    let mut node = elected_leader();
    let hold = node.config().lease_hold();
    assert!(
        node.leadership(at(2_000)).is_none(),
        "no lease before a majority acked"
    );

    let received = deliver(
        &mut node,
        at(2_003),
        N3,
        Message::HeartbeatAck {
            term: Term(1),
            seq: 1,
        },
    );
    assert_eq!(received, Received::Accepted);
    let leadership = node.leadership(at(2_003)).expect("a lease");
    assert_eq!(
        leadership.lease_until,
        at(2_000) + hold,
        "from the send time, not the ack time"
    );
    assert_eq!(
        leadership.acting_until,
        at(2_000) + hold - Duration::from_millis(500)
    );
    assert_eq!(
        leadership.fencing_token,
        FencingToken(1),
        "the fencing token is the term"
    );
    assert_eq!(
        drain(&mut node),
        vec![Output::Event(Event::LeaseAcquired { term: Term(1) })]
    );
}

#[test]
fn a_minority_of_acks_confers_no_lease() {
    // protocol: Leases. A majority of five is three, the leader counted.
    let config = config(&[1, 2, 3, 4, 5], Variant::Correct);
    let mut node = Node::new(config, N1, None, Instant::ZERO).expect("member");
    node.handle_timeout(at(2_000), 0);
    for peer in [N2, N3] {
        deliver(
            &mut node,
            at(2_000),
            peer,
            Message::PreVoteReply {
                term: Term(1),
                granted: true,
            },
        );
    }
    for peer in [N2, N3] {
        deliver(
            &mut node,
            at(2_000),
            peer,
            Message::VoteReply {
                term: Term(1),
                granted: true,
            },
        );
    }
    assert_eq!(node.role(), RoleKind::Leader);
    deliver(
        &mut node,
        at(2_001),
        N2,
        Message::HeartbeatAck {
            term: Term(1),
            seq: 1,
        },
    );
    assert!(
        node.leadership(at(2_001)).is_none(),
        "two of five is no majority"
    );
    deliver(
        &mut node,
        at(2_002),
        NodeId(5),
        Message::HeartbeatAck {
            term: Term(1),
            seq: 1,
        },
    );
    assert!(node.leadership(at(2_002)).is_some(), "three of five is");
}

#[test]
fn the_leader_renews_on_every_heartbeat_interval() {
    // protocol: Leases. Heartbeat{term, seq} / HeartbeatAck{term, seq}: the leader renews its
    // lease every heartbeat interval.
    let mut node = elected_leader();
    assert_eq!(node.poll_timeout(), Some(at(2_250)));
    node.handle_timeout(at(2_250), 0);
    assert_eq!(
        drain(&mut node),
        vec![
            send(
                N1,
                N2,
                Message::Heartbeat {
                    term: Term(1),
                    seq: 2
                }
            ),
            send(
                N1,
                N3,
                Message::Heartbeat {
                    term: Term(1),
                    seq: 2
                }
            ),
        ]
    );
    deliver(
        &mut node,
        at(2_260),
        N2,
        Message::HeartbeatAck {
            term: Term(1),
            seq: 2,
        },
    );
    let hold = node.config().lease_hold();
    assert_eq!(
        node.leadership(at(2_260)).expect("lease").lease_until,
        at(2_250) + hold
    );
}

#[test]
fn a_leader_that_cannot_renew_stops_acting_then_lapses_keeping_its_promise() {
    // protocol: Acting; protocol: Lapse. If renewals stop, the leader stops acting first and
    // loses the lease afterwards. When its acting window closes its leadership lapses, and it
    // keeps its own promise.
    let mut node = elected_leader();
    deliver(
        &mut node,
        at(2_001),
        N2,
        Message::HeartbeatAck {
            term: Term(1),
            seq: 1,
        },
    );
    drain(&mut node);
    let leadership = node.leadership(at(2_001)).expect("lease");
    let acting_until = leadership.acting_until;
    assert!(node.is_acting(acting_until - Duration::from_nanos(1)));
    assert!(
        !node.is_acting(acting_until),
        "acting ends at lease_until − stop_margin"
    );

    // Heartbeats go out but no ack returns; the window closes and the leadership lapses.
    let mut now = at(2_001);
    while node.role() == RoleKind::Leader {
        now = node.poll_timeout().expect("a timer");
        node.handle_timeout(now, 0);
    }
    assert_eq!(
        now, acting_until,
        "lapses exactly when the acting window closes"
    );
    assert!(node.leadership(now).is_none());
    // Its own promise runs from its last heartbeat: it grants no vote before that ends.
    let promise = node.promise_until().expect("the leader's own promise");
    assert!(promise > leadership.lease_until);
    let received = deliver(&mut node, now, N2, Message::RequestVote { term: Term(2) });
    assert_eq!(received, Received::Dropped(DropReason::Promised));
}

#[test]
fn a_higher_term_ack_deposes_the_leader() {
    // protocol: Roles and messages; Raft §5.1. A higher term in an ack deposes the leader at
    // once.
    let mut node = elected_leader();
    deliver(
        &mut node,
        at(2_001),
        N2,
        Message::HeartbeatAck {
            term: Term(1),
            seq: 1,
        },
    );
    drain(&mut node);
    deliver(
        &mut node,
        at(2_002),
        N3,
        Message::HeartbeatAck {
            term: Term(7),
            seq: 1,
        },
    );
    assert_eq!(node.role(), RoleKind::Follower);
    assert!(node.leadership(at(2_002)).is_none());
    assert_eq!(
        drain(&mut node),
        vec![
            Output::Persist(PersistentState {
                term: Term(7),
                voted_for: None
            }),
            Output::Event(Event::RoleChanged {
                role: RoleKind::Follower,
                term: Term(7),
                leader: None
            }),
        ]
    );
}

#[test]
fn graceful_handover_is_two_phase() {
    // protocol: Graceful handover. Stop acting first; only once the driver reports the child
    // gone are Resign and TimeoutNow sent.
    let mut node = elected_leader();
    deliver(
        &mut node,
        at(2_001),
        N2,
        Message::HeartbeatAck {
            term: Term(1),
            seq: 1,
        },
    );
    deliver(
        &mut node,
        at(2_002),
        N3,
        Message::HeartbeatAck {
            term: Term(1),
            seq: 1,
        },
    );
    drain(&mut node);

    node.handle_resign(at(2_010), None).expect("leader");
    assert!(
        !node.is_acting(at(2_010)),
        "phase one: acting stops at once"
    );
    assert!(node
        .leadership(at(2_010))
        .expect("still leads")
        .holds_lease(at(2_010)));
    assert_eq!(
        drain(&mut node),
        vec![Output::Event(Event::ResignRequested { term: Term(1) })]
    );

    node.handle_acting_stopped(at(2_300)).expect("resigning");
    assert_eq!(
        drain(&mut node),
        vec![
            // N2 and N3 acked the same heartbeat: the tie goes to the next member after N1.
            // TimeoutNow leaves first, so the successor still knows its leader when it arrives.
            send(N1, N2, Message::TimeoutNow { term: Term(1) }),
            send(N1, N2, Message::Resign { term: Term(1) }),
            send(N1, N3, Message::Resign { term: Term(1) }),
            Output::Event(Event::RoleChanged {
                role: RoleKind::Follower,
                term: Term(1),
                leader: None
            }),
        ]
    );
    assert_eq!(node.promise_until(), None, "free to vote for its successor");
    deliver(
        &mut node,
        at(2_301),
        N2,
        Message::RequestVote { term: Term(2) },
    );
    assert_eq!(node.voted_for(), Some(N2));
}

#[test]
fn handovers_go_round_the_ring_when_peers_are_equally_up_to_date() {
    // protocol: Graceful handover. With ties going to the lowest id, a daemon that failed on
    // every node made leadership bounce between n1 and n2 while n3 never got a turn.
    let resign_from = |id: NodeId| {
        let persisted = PersistentState {
            term: Term(1),
            voted_for: None,
        };
        let mut node = Node::new(three(), id, Some(persisted), Instant::ZERO).expect("member");
        // Each campaigns at its cold-start rank; the rest of the story happens at 2.1 s.
        node.handle_timeout(at(2_000), 0);
        let start = node.poll_timeout().expect("an election deadline");
        node.handle_timeout(start, 0);
        assert_eq!(node.role(), RoleKind::PreCandidate);
        let peers: Vec<NodeId> = [N1, N2, N3]
            .into_iter()
            .filter(|peer| *peer != id)
            .collect();
        deliver(
            &mut node,
            at(2_100),
            peers[0],
            Message::PreVoteReply {
                term: Term(2),
                granted: true,
            },
        );
        deliver(
            &mut node,
            at(2_100),
            peers[0],
            Message::VoteReply {
                term: Term(2),
                granted: true,
            },
        );
        for peer in &peers {
            deliver(
                &mut node,
                at(2_101),
                *peer,
                Message::HeartbeatAck {
                    term: Term(2),
                    seq: 1,
                },
            );
        }
        node.handle_resign(at(2_110), None).expect("leader");
        drain(&mut node);
        node.handle_acting_stopped(at(2_120)).expect("resigning");
        drain(&mut node)
            .into_iter()
            .find_map(|output| match output {
                Output::Send(Envelope {
                    to,
                    message: Message::TimeoutNow { .. },
                    ..
                }) => Some(to),
                _ => None,
            })
            .expect("a TimeoutNow")
    };
    assert_eq!(resign_from(N1), N2);
    assert_eq!(resign_from(N2), N3);
    assert_eq!(resign_from(N3), N1, "round the ring");
}

#[test]
fn a_hold_over_a_drawn_election_delay_wakes_the_node_when_it_ends_not_before() {
    // protocol: Campaign holds. A delay drawn before the hold must not leave a deadline in the
    // past for as long as the hold lasts: the driver would spin on it.
    let mut node = follower(three(), N2, 3);
    node.handle_timeout(at(2_000), 0);
    assert_eq!(
        node.poll_timeout(),
        Some(at(2_020)),
        "rank 1 at a cold start"
    );
    node.handle_campaign_hold(at(2_005), at(5_000));
    assert_eq!(node.poll_timeout(), Some(at(5_000)));
    node.handle_timeout(at(2_020), 0);
    assert_eq!(node.role(), RoleKind::Follower, "held");
    assert_eq!(
        node.poll_timeout(),
        Some(at(5_000)),
        "no deadline in the past"
    );
    node.handle_timeout(at(5_000), 0);
    assert_eq!(
        node.role(),
        RoleKind::PreCandidate,
        "the delay had passed: at once"
    );
}

#[test]
fn a_released_hold_lets_the_node_campaign_at_once() {
    // protocol: Campaign holds. An operator resumes a paused node: the hold ends now.
    let mut node = follower(three(), N1, 3);
    node.handle_campaign_hold(at(2_000), at(60_000));
    node.handle_timeout(at(2_500), 0);
    assert_eq!(node.role(), RoleKind::Follower, "held");
    node.handle_campaign_release(at(2_600));
    assert_eq!(node.campaign_hold_until(), None);
    assert!(
        node.poll_timeout().is_some_and(|due| due <= at(2_600)),
        "due at once"
    );
    node.handle_timeout(at(2_600), 0);
    assert_eq!(node.role(), RoleKind::PreCandidate);
}

#[test]
fn a_held_node_votes_but_neither_campaigns_nor_obeys_timeout_now() {
    // protocol: Campaign holds. The driver holds a node whose daemon keeps failing.
    let mut node = follower(three(), N1, 3);
    node.handle_campaign_hold(at(2_000), at(6_000));
    assert_eq!(node.campaign_hold_until(), Some(at(6_000)));
    assert_eq!(node.poll_timeout(), Some(at(6_000)));

    // It still votes: a held node counts towards every quorum.
    deliver(&mut node, at(3_000), N2, Message::PreVote { term: Term(4) });
    assert_eq!(
        drain(&mut node),
        vec![send(
            N1,
            N2,
            Message::PreVoteReply {
                term: Term(4),
                granted: true
            }
        )]
    );

    // A shorter hold does not shorten a longer one.
    node.handle_campaign_hold(at(3_000), at(4_000));
    assert_eq!(node.campaign_hold_until(), Some(at(6_000)));

    // No election before the hold ends, though promise and quarantine are long gone.
    node.handle_timeout(at(5_999), 0);
    assert_eq!(node.role(), RoleKind::Follower);
    assert!(drain(&mut node).is_empty());

    // A TimeoutNow from a resigning leader is refused; the Resign beside it frees the others.
    let mut held = follower(three(), N1, 3);
    deliver(
        &mut held,
        at(2_100),
        N2,
        Message::Heartbeat {
            term: Term(3),
            seq: 1,
        },
    );
    drain(&mut held);
    held.handle_campaign_hold(at(2_200), at(9_000));
    let received = deliver(
        &mut held,
        at(2_300),
        N2,
        Message::TimeoutNow { term: Term(3) },
    );
    assert_eq!(received, Received::Dropped(DropReason::CampaignHeld));
    assert_eq!(held.role(), RoleKind::Follower);
    assert_eq!(held.term(), Term(3), "no campaign");

    // The hold ends on its own.
    node.handle_timeout(at(6_000), 0);
    assert_eq!(node.campaign_hold_until(), None);
    assert_eq!(
        node.role(),
        RoleKind::PreCandidate,
        "it campaigns once the hold ends"
    );
}

#[test]
fn resign_drops_the_promise_and_timeout_now_starts_a_campaign_at_once() {
    // protocol: Graceful handover, on the followers' side.
    let mut voter = follower(three(), N3, 1);
    deliver(
        &mut voter,
        at(2_500),
        N1,
        Message::Heartbeat {
            term: Term(1),
            seq: 1,
        },
    );
    deliver(&mut voter, at(2_600), N1, Message::Resign { term: Term(1) });
    assert_eq!(voter.promise_until(), None);
    deliver(
        &mut voter,
        at(2_601),
        N2,
        Message::RequestVote { term: Term(2) },
    );
    assert_eq!(voter.voted_for(), Some(N2));

    let mut successor = follower(three(), N2, 1);
    deliver(
        &mut successor,
        at(2_500),
        N1,
        Message::Heartbeat {
            term: Term(1),
            seq: 1,
        },
    );
    drain(&mut successor);
    deliver(
        &mut successor,
        at(2_600),
        N1,
        Message::TimeoutNow { term: Term(1) },
    );
    assert_eq!(successor.role(), RoleKind::Candidate, "no pre-vote round");
    assert_eq!(successor.term(), Term(2));

    // Should the Resign overtake the TimeoutNow, the successor still campaigns at once.
    let mut overtaken = follower(three(), N2, 1);
    deliver(
        &mut overtaken,
        at(2_500),
        N1,
        Message::Heartbeat {
            term: Term(1),
            seq: 1,
        },
    );
    deliver(
        &mut overtaken,
        at(2_600),
        N1,
        Message::Resign { term: Term(1) },
    );
    deliver(
        &mut overtaken,
        at(2_600),
        N1,
        Message::TimeoutNow { term: Term(1) },
    );
    assert_eq!(overtaken.role(), RoleKind::Candidate);

    // But a TimeoutNow never releases a promise made to another leader.
    let mut loyal = follower(three(), N3, 1);
    deliver(
        &mut loyal,
        at(2_500),
        N1,
        Message::Heartbeat {
            term: Term(1),
            seq: 1,
        },
    );
    let received = deliver(
        &mut loyal,
        at(2_600),
        N2,
        Message::TimeoutNow { term: Term(1) },
    );
    assert_eq!(received, Received::Dropped(DropReason::Unexpected));
    assert_eq!(loyal.promise_until(), Some(at(4_500)));

    // A Resign from someone who is not our leader changes nothing.
    let mut other = follower(three(), N3, 1);
    deliver(
        &mut other,
        at(2_500),
        N1,
        Message::Heartbeat {
            term: Term(1),
            seq: 1,
        },
    );
    let received = deliver(&mut other, at(2_600), N2, Message::Resign { term: Term(1) });
    assert_eq!(received, Received::Dropped(DropReason::Unexpected));
    assert_eq!(other.promise_until(), Some(at(4_500)));
}

#[test]
fn bad_network_input_is_dropped_and_reported_never_obeyed() {
    // protocol: Bad input is dropped. A malformed, stale, forged or replayed message from the
    // network is dropped and counted, never obeyed and never a panic.
    let mut node = elected_leader();
    let before = node.clone();
    let cases = [
        (
            Envelope {
                from: NodeId(9),
                to: N1,
                message: Message::RequestVote { term: Term(5) },
            },
            DropReason::UnknownPeer,
        ),
        (
            Envelope {
                from: N1,
                to: N1,
                message: Message::HeartbeatAck {
                    term: Term(1),
                    seq: 1,
                },
            },
            DropReason::UnknownPeer,
        ),
        (
            Envelope {
                from: N2,
                to: N3,
                message: Message::HeartbeatAck {
                    term: Term(1),
                    seq: 1,
                },
            },
            DropReason::Misaddressed,
        ),
        (
            Envelope {
                from: N2,
                to: N1,
                message: Message::Heartbeat {
                    term: Term(u64::MAX),
                    seq: 1,
                },
            },
            DropReason::OutOfRange,
        ),
        (
            Envelope {
                from: N2,
                to: N1,
                message: Message::HeartbeatAck {
                    term: Term(1),
                    seq: 99,
                },
            },
            DropReason::OutOfRange,
        ),
        (
            Envelope {
                from: N2,
                to: N1,
                message: Message::PreVote { term: Term(0) },
            },
            DropReason::OutOfRange,
        ),
        (
            Envelope {
                from: N2,
                to: N1,
                message: Message::Heartbeat {
                    term: Term(1),
                    seq: 4,
                },
            },
            DropReason::ConflictingLeader,
        ),
    ];
    for (envelope, reason) in cases {
        assert_eq!(
            node.handle_message(at(2_000), envelope),
            Received::Dropped(reason)
        );
        assert!(drain(&mut node).is_empty(), "{envelope:?} produced output");
        assert_eq!(node, before, "{envelope:?} changed the state");
    }
}

#[test]
fn one_message_moves_a_term_by_at_most_the_step_bound() {
    // protocol: Term jumps are bounded. One authenticated datagram with term MAX_TERM used to
    // wedge every node it reached: adopted and persisted, it left no term to elect in.
    let mut node = follower(three(), N1, 6);
    let before = node.clone();
    for term in [MAX_TERM.0, 6 + MAX_TERM_STEP + 1] {
        for message in [
            Message::Heartbeat {
                term: Term(term),
                seq: 1,
            },
            Message::RequestVote { term: Term(term) },
            Message::PreVote { term: Term(term) },
            Message::HeartbeatAck {
                term: Term(term),
                seq: 1,
            },
        ] {
            assert_eq!(
                deliver(&mut node, at(2_500), N2, message),
                Received::Dropped(DropReason::TermTooFar),
                "{message:?}"
            );
            assert!(drain(&mut node).is_empty(), "{message:?} produced output");
            assert_eq!(node, before, "{message:?} changed the state");
        }
    }

    // A jump of exactly the bound is a (very long) legitimate absence: adopted.
    let far = Term(6 + MAX_TERM_STEP);
    let received = deliver(
        &mut node,
        at(2_500),
        N2,
        Message::Heartbeat { term: far, seq: 1 },
    );
    assert_eq!(received, Received::Accepted);
    assert_eq!(node.term(), far);

    // And the node still campaigns in the next term once the leader falls silent (at its
    // rank after n2: second, one step after its promise ends).
    node.handle_timeout(at(4_500), 0);
    node.handle_timeout(at(4_520), 0);
    assert_eq!(node.role(), RoleKind::PreCandidate);
    deliver(
        &mut node,
        at(4_520),
        N3,
        Message::PreVoteReply {
            term: Term(far.0 + 1),
            granted: true,
        },
    );
    assert_eq!(node.role(), RoleKind::Candidate);
    assert_eq!(node.term(), Term(far.0 + 1));
}

#[test]
#[should_panic(expected = "now went back from t=200ms to t=199ms")]
fn a_clock_that_goes_back_is_a_programmer_error_of_the_driver() {
    // protocol: Time. `now` never goes backwards between inputs. A driver that breaks that
    // could stretch a lease or a promise, so the core crashes rather than handle the input.
    let mut node = Node::new(three(), N1, None, at(100)).expect("member");
    node.handle_timeout(at(200), 0);
    node.handle_timeout(at(200), 0);
    deliver(&mut node, at(199), N2, Message::PreVote { term: Term(1) });
}

#[test]
fn command_misuse_returns_an_error_and_changes_nothing() {
    // protocol: Misuse changes nothing. Misuse by the caller returns an error and leaves the
    // state unchanged.
    let mut node = follower(three(), N1, 2);
    let before = node.clone();
    assert_eq!(
        node.handle_resign(at(2_000), None),
        Err(CommandError::NotLeader)
    );
    assert_eq!(
        node.handle_acting_stopped(at(2_000)),
        Err(CommandError::NotResigning)
    );
    assert_eq!(node, before);

    let mut leader = elected_leader();
    let before = leader.clone();
    assert_eq!(
        leader.handle_resign(at(2_000), Some(N1)),
        Err(CommandError::InvalidSuccessor { successor: N1 })
    );
    assert_eq!(
        leader.handle_acting_stopped(at(2_000)),
        Err(CommandError::NotResigning)
    );
    assert_eq!(leader, before);
}

#[test]
fn a_restart_keeps_term_and_vote_and_rejects_foreign_state() {
    // protocol: Persist before send; protocol: single_vote. The persisted term and vote
    // survive a restart.
    let persisted = PersistentState {
        term: Term(8),
        voted_for: Some(N2),
    };
    let node = Node::new(three(), N1, Some(persisted), Instant::ZERO).expect("member");
    assert_eq!(node.persistent_state(), persisted);
    let foreign = PersistentState {
        term: Term(8),
        voted_for: Some(NodeId(42)),
    };
    assert!(Node::new(three(), N1, Some(foreign), Instant::ZERO).is_err());
    assert!(Node::new(three(), NodeId(4), None, Instant::ZERO).is_err());
}

mod variants {
    //! Each broken variant changes exactly the rule it names.

    use super::*;

    #[test]
    fn no_drift_compensation_holds_the_lease_for_the_full_l() {
        // protocol: Checking the checkers. It breaks "Leases".
        let mut node =
            Node::new(config(&[1], Variant::NoDriftCompensation), N1, None, at(0)).expect("member");
        node.handle_timeout(at(0), 0);
        assert_eq!(
            node.leadership(at(0)).expect("leader").lease_until,
            at(0) + LEASE
        );
    }

    #[test]
    fn act_past_lease_acts_beyond_the_lease() {
        // protocol: Checking the checkers. It breaks "Acting".
        let mut node =
            Node::new(config(&[1], Variant::ActPastLease), N1, None, at(0)).expect("member");
        node.handle_timeout(at(0), 0);
        let leadership = node.leadership(at(0)).expect("leader");
        assert!(leadership.acting_until > leadership.lease_until);
    }

    #[test]
    fn no_promise_votes_while_promised() {
        // protocol: Checking the checkers. It breaks "Promises".
        let mut node = follower(config(&[1, 2, 3], Variant::NoPromise), N1, 3);
        deliver(
            &mut node,
            at(2_500),
            N2,
            Message::Heartbeat {
                term: Term(3),
                seq: 1,
            },
        );
        deliver(
            &mut node,
            at(2_501),
            N3,
            Message::RequestVote { term: Term(4) },
        );
        assert_eq!(node.voted_for(), Some(N3));
    }

    #[test]
    fn no_boot_quarantine_votes_right_after_a_restart() {
        // protocol: Checking the checkers. It breaks "Boot quarantine".
        let persisted = PersistentState {
            term: Term(3),
            voted_for: None,
        };
        let config = config(&[1, 2, 3], Variant::NoBootQuarantine);
        let mut node = Node::new(config, N1, Some(persisted), at(0)).expect("member");
        assert_eq!(node.quarantine_until(), None);
        deliver(&mut node, at(1), N3, Message::RequestVote { term: Term(4) });
        assert_eq!(node.voted_for(), Some(N3));
    }

    #[test]
    fn forget_vote_on_restart_forgets_the_vote() {
        // protocol: Checking the checkers. It breaks "Persist before send".
        let persisted = PersistentState {
            term: Term(3),
            voted_for: Some(N2),
        };
        let config = config(&[1, 2, 3], Variant::ForgetVoteOnRestart);
        let node = Node::new(config, N1, Some(persisted), at(0)).expect("member");
        assert_eq!(node.voted_for(), None);
    }

    #[test]
    fn stale_ack_extends_a_lease_on_a_reply_to_a_stale_heartbeat() {
        // protocol: Checking the checkers. It breaks "Stale replies acknowledge nothing".
        // The bug the fix removed, kept as a variant so the checkers can show they catch it.
        let config = config(&[1, 2, 3], Variant::StaleAck);
        let (received, leadership) = release_a_held_heartbeat_into_a_later_term(config);
        assert_eq!(received, Received::Accepted);
        assert!(
            leadership.is_some(),
            "the broken core takes the reply for an ack"
        );
    }

    #[test]
    fn variant_names_round_trip() {
        // protocol: Checking the checkers. The variants are selected by these names.
        for variant in Variant::ALL {
            assert_eq!(variant.name().parse::<Variant>(), Ok(variant));
        }
        let error = "nope".parse::<Variant>().expect_err("unknown");
        assert!(error.to_string().contains("no_drift_compensation"));
    }
}
