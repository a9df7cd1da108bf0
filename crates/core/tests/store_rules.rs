//! One test per rule of the store lease (protocol: Store leases), each citing the
//! heading of its rule: feed one input, assert the exact outputs.

use proptest::prelude::*;
use tenure_core::{
    CommandError, DropReason, Duration, Event, ExpiryJudge, FencingToken, Instant, NodeId, Output,
    Received, Record, ReferenceStore, RoleKind, StoreLease, StoreLeaseConfig, StoreLeaseParams,
    StoreOp, StoreOutcome, StoreReply, StoreRequest, StoreVariant, Term,
};

const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);
const LEASE: Duration = Duration::from_secs(2);
const STOP_MARGIN: Duration = Duration::from_millis(500);
/// L/8.
const INTERVAL: Duration = Duration::from_millis(250);

fn config(judge: ExpiryJudge, variant: StoreVariant) -> StoreLeaseConfig {
    let mut params = StoreLeaseParams::for_lease(LEASE, STOP_MARGIN, judge);
    params.variant = variant;
    StoreLeaseConfig::new(params).expect("valid store-lease config")
}

fn correct(judge: ExpiryJudge) -> StoreLeaseConfig {
    config(judge, StoreVariant::Correct)
}

fn at(millis: u64) -> Instant {
    Instant::from_nanos(millis * 1_000_000)
}

/// `L·(1−ρ)/(1+ρ)` at the default ρ of 1 %.
fn hold() -> Duration {
    LEASE.mul_ratio(990_000, 1_010_000)
}

fn drain(core: &mut StoreLease) -> Vec<Output<StoreRequest>> {
    std::iter::from_fn(|| core.poll_output()).collect()
}

fn requests(core: &mut StoreLease) -> Vec<StoreOp> {
    drain(core)
        .into_iter()
        .filter_map(|output| match output {
            Output::Send(request) => Some(request.op),
            _ => None,
        })
        .collect()
}

/// The core's next timer, which must lie after `now` (the instant it last handled): a core
/// whose timer stays put would spin the loops below for ever.
fn next_timer(core: &StoreLease, now: Instant) -> Instant {
    let next = core.poll_timeout().expect("a timer");
    assert!(next > now, "the next timer, {next}, is not after {now}");
    next
}

fn answer(core: &mut StoreLease, now: Instant, outcome: StoreOutcome) -> Received {
    let request = core.outstanding().expect("a request in flight");
    core.handle_reply(
        now,
        StoreReply {
            id: request.id,
            outcome,
        },
    )
}

fn vacant(version: u64, token: u64) -> Record {
    Record {
        holder: None,
        version,
        token: FencingToken(token),
    }
}

fn held_by(holder: NodeId, version: u64, token: u64) -> Record {
    Record {
        holder: Some(holder),
        version,
        token: FencingToken(token),
    }
}

/// A node that booted at 0, read a vacant record and sent its acquisition at `sent`.
fn acquiring(judge: ExpiryJudge, variant: StoreVariant, sent: u64) -> StoreLease {
    let mut core = StoreLease::new(config(judge, variant), N1, at(0));
    core.handle_timeout(at(0));
    assert_eq!(requests(&mut core), [StoreOp::Read]);
    core.handle_timeout(at(sent));
    // The read is still in flight until answered; answer it at `sent`.
    answer(&mut core, at(sent), StoreOutcome::Applied(vacant(0, 0)));
    assert_eq!(requests(&mut core), [StoreOp::Acquire { version: 0 }]);
    core
}

/// A holder of token 1 whose acquisition was sent (and answered) at `sent`.
fn holder(sent: u64) -> StoreLease {
    let mut core = acquiring(ExpiryJudge::Contenders, StoreVariant::Correct, sent);
    answer(
        &mut core,
        at(sent),
        StoreOutcome::Applied(held_by(N1, 1, 1)),
    );
    drain(&mut core);
    core
}

/// The holder of `holder(0)` with its first renewal, of token 1, sent at 250 and unanswered.
fn renewing() -> StoreLease {
    let mut core = holder(0);
    core.handle_timeout(at(250));
    assert_eq!(
        requests(&mut core),
        [StoreOp::Renew {
            token: FencingToken(1)
        }]
    );
    core
}

#[test]
fn an_acquisition_counts_from_its_send_time_not_its_reply() {
    // protocol: The store-lease acting rule
    let mut core = acquiring(ExpiryJudge::Contenders, StoreVariant::Correct, 100);

    // The reply comes 400 ms late: the tenure still runs from the send time.
    let received = answer(&mut core, at(500), StoreOutcome::Applied(held_by(N1, 1, 1)));
    assert_eq!(received, Received::Accepted);
    let leadership = core.leadership(at(500)).expect("holds the tenure");
    assert_eq!(leadership.fencing_token, FencingToken(1));
    assert_eq!(leadership.lease_until, at(100) + hold());
    assert_eq!(leadership.acting_until, at(100) + hold() - STOP_MARGIN);
    assert_eq!(
        drain(&mut core)[..2],
        [
            Output::Event(Event::RoleChanged {
                role: RoleKind::Leader,
                term: Term(1),
                leader: Some(N1),
            }),
            Output::Event(Event::LeaseAcquired { term: Term(1) }),
        ]
    );
}

#[test]
fn the_broken_deadline_from_reply_counts_from_the_reply() {
    // protocol: Checking the checkers
    let mut core = acquiring(
        ExpiryJudge::Contenders,
        StoreVariant::DeadlineFromReply,
        100,
    );
    answer(&mut core, at(500), StoreOutcome::Applied(held_by(N1, 1, 1)));
    let leadership = core.leadership(at(500)).expect("holds the tenure");
    assert_eq!(leadership.lease_until, at(500) + hold());
}

#[test]
fn a_renewal_extends_from_its_send_time_and_a_failed_one_extends_nothing() {
    // protocol: The store-lease acting rule
    let mut core = holder(0);

    // Phase 1: the renewal is due one renew interval after the acquisition was sent.
    core.handle_timeout(at(249));
    assert_eq!(requests(&mut core), []);
    core.handle_timeout(at(250));
    assert_eq!(
        requests(&mut core),
        [StoreOp::Renew {
            token: FencingToken(1)
        }]
    );

    // Phase 2: applied, answered late: the lease runs from 250.
    answer(&mut core, at(400), StoreOutcome::Applied(held_by(N1, 2, 1)));
    assert_eq!(
        core.leadership(at(400)).expect("holds").lease_until,
        at(250) + hold()
    );

    // Phase 3: the next renewal fails; nothing moves, and it is retried after L/32.
    core.handle_timeout(at(500));
    assert_eq!(requests(&mut core).len(), 1);
    answer(&mut core, at(510), StoreOutcome::Failed);
    assert_eq!(
        core.leadership(at(510)).expect("holds").lease_until,
        at(250) + hold()
    );
    assert_eq!(
        core.poll_timeout(),
        Some(at(510) + INTERVAL.mul_ratio(1, 4))
    );

    // Phase 4: a renewal that is never answered is given up after the request timeout, and
    // extends nothing either.
    core.handle_timeout(at(573));
    assert_eq!(requests(&mut core).len(), 1);
    core.handle_timeout(at(573) + INTERVAL);
    assert_eq!(
        core.leadership(at(900)).expect("holds").lease_until,
        at(250) + hold()
    );
}

#[test]
fn the_broken_extend_on_ambiguous_extends_on_a_failure() {
    // protocol: Checking the checkers
    let mut core = acquiring(ExpiryJudge::Contenders, StoreVariant::ExtendOnAmbiguous, 0);
    answer(&mut core, at(0), StoreOutcome::Applied(held_by(N1, 1, 1)));
    core.handle_timeout(at(250));
    answer(&mut core, at(260), StoreOutcome::Failed);
    assert_eq!(
        core.leadership(at(260)).expect("holds").lease_until,
        at(250) + hold()
    );
}

#[test]
fn a_conflict_on_renewal_ends_acting_at_once() {
    // protocol: The store-lease acting rule
    let mut core = holder(0);
    core.handle_timeout(at(250));
    drain(&mut core);
    answer(
        &mut core,
        at(260),
        StoreOutcome::Conflict(held_by(N2, 5, 2)),
    );
    assert_eq!(core.leadership(at(260)), None);
    assert_eq!(
        drain(&mut core)[0],
        Output::Event(Event::RoleChanged {
            role: RoleKind::Follower,
            term: Term(1),
            leader: None,
        })
    );
}

#[test]
fn a_closed_window_is_not_reopened_by_a_late_renewal() {
    // protocol: Lapse
    let mut core = holder(0);
    core.handle_timeout(at(250));
    drain(&mut core);
    let window_until = at(0) + hold() - STOP_MARGIN;
    assert_eq!(core.poll_timeout(), Some(at(250) + INTERVAL));

    // The renewal hangs; the retries hang too, until the window closes.
    let mut now = at(250);
    while now < window_until {
        now = next_timer(&core, now).min(window_until);
        core.handle_timeout(now);
        drain(&mut core);
    }
    assert_eq!(
        core.leadership(window_until),
        None,
        "lapsed at the window's end"
    );

    // A renewal applied now is answered: the node stays a contender.
    let _ = answer(&mut core, now, StoreOutcome::Applied(held_by(N1, 9, 1)));
    assert_eq!(core.leadership(now), None);
}

/// The same when the reply is the first input after the window closed: a paused driver
/// handles a waiting reply before its due timer.
#[test]
fn a_renewal_answered_after_the_window_closed_reopens_nothing() {
    // protocol: Lapse
    let mut core = renewing();
    let window_until = at(0) + hold() - STOP_MARGIN;
    assert!(core
        .leadership(window_until - Duration::from_nanos(1))
        .is_some());
    let received = answer(
        &mut core,
        window_until,
        StoreOutcome::Applied(held_by(N1, 2, 1)),
    );
    assert_eq!(received, Received::Accepted);
    assert_eq!(core.leadership(window_until), None);
    assert_eq!(
        drain(&mut core)[0],
        Output::Event(Event::RoleChanged {
            role: RoleKind::Follower,
            term: Term(1),
            leader: None,
        })
    );
}

#[test]
fn a_contender_takes_a_version_over_only_a_lease_after_it_first_saw_it() {
    // protocol: Who judges expiry
    let mut core = StoreLease::new(correct(ExpiryJudge::Contenders), N2, at(0));
    core.handle_timeout(at(0));
    drain(&mut core);
    answer(&mut core, at(10), StoreOutcome::Applied(held_by(N1, 7, 3)));

    // Phase 1: the same version, read again and again, is timed from its first sighting.
    let mut now = at(10);
    while now < at(10) + LEASE {
        now = next_timer(&core, now);
        core.handle_timeout(now);
        let sent = requests(&mut core);
        if now < at(10) + LEASE {
            assert_eq!(sent, [StoreOp::Read], "at {now}");
            answer(&mut core, now, StoreOutcome::Applied(held_by(N1, 7, 3)));
        } else {
            assert_eq!(sent, [StoreOp::Acquire { version: 7 }], "at {now}");
        }
    }
    assert_eq!(
        now,
        at(10) + LEASE,
        "the acquisition leaves exactly a lease later"
    );

    // Phase 2: it lost to a renewal: the new version is timed afresh.
    answer(&mut core, now, StoreOutcome::Conflict(held_by(N1, 8, 3)));
    assert_eq!(core.leadership(now), None);
    let first_sighting = now;
    now = now + INTERVAL;
    core.handle_timeout(now);
    assert_eq!(requests(&mut core), [StoreOp::Read]);
    answer(&mut core, now, StoreOutcome::Applied(held_by(N1, 8, 3)));
    assert!(core.poll_timeout() < Some(first_sighting + LEASE));
    loop {
        now = next_timer(&core, now);
        assert!(
            now <= first_sighting + LEASE,
            "no acquisition of version 8 a lease after its first sighting"
        );
        core.handle_timeout(now);
        if requests(&mut core) == [StoreOp::Acquire { version: 8 }] {
            break;
        }
        answer(&mut core, now, StoreOutcome::Applied(held_by(N1, 8, 3)));
    }
    assert_eq!(now, first_sighting + LEASE);
    answer(&mut core, now, StoreOutcome::Applied(held_by(N2, 9, 4)));
    assert_eq!(
        core.leadership(now).expect("took over").fencing_token,
        FencingToken(4)
    );
}

#[test]
fn where_the_store_judges_expiry_a_held_record_is_never_taken() {
    // protocol: Who judges expiry
    let mut core = StoreLease::new(correct(ExpiryJudge::Store), N2, at(0));
    let mut now = at(0);
    for _ in 0..100 {
        core.handle_timeout(now);
        assert_eq!(requests(&mut core), [StoreOp::Read], "at {now}");
        answer(&mut core, now, StoreOutcome::Applied(held_by(N1, 7, 3)));
        now = core.poll_timeout().expect("a timer");
    }
    assert!(
        now >= at(0) + LEASE.mul_ratio(10, 1),
        "100 polls took {now}"
    );

    // Vacant: taken at once.
    core.handle_timeout(now);
    drain(&mut core);
    answer(&mut core, now, StoreOutcome::Applied(vacant(8, 3)));
    assert_eq!(requests(&mut core), [StoreOp::Acquire { version: 8 }]);
}

#[test]
fn a_resigning_holder_stops_acting_keeps_renewing_and_releases_when_the_child_is_gone() {
    // protocol: Graceful handover
    let mut core = holder(0);

    // Phase 1: acting ends at once, the lease stays, renewals go on.
    assert_eq!(core.handle_resign(at(100)), Ok(()));
    assert_eq!(
        drain(&mut core),
        [Output::Event(Event::ResignRequested { term: Term(1) })]
    );
    let leadership = core.leadership(at(100)).expect("still holds");
    assert!(!leadership.is_acting(at(100)));
    core.handle_timeout(at(250));
    assert_eq!(
        requests(&mut core),
        [StoreOp::Renew {
            token: FencingToken(1)
        }]
    );

    // Phase 2: the child is gone: the in-flight renewal is abandoned and the release leaves.
    assert_eq!(core.handle_acting_stopped(at(300)), Ok(()));
    assert_eq!(
        requests(&mut core),
        [StoreOp::Release {
            token: FencingToken(1)
        }]
    );
    assert_eq!(core.leadership(at(300)), None);
    answer(&mut core, at(310), StoreOutcome::Applied(vacant(3, 1)));

    // Phase 3: the releaser does not take the vacant record back for two poll intervals.
    let mut now = at(310);
    while now < at(300) + INTERVAL.mul_ratio(2, 1) {
        now = next_timer(&core, now);
        core.handle_timeout(now);
        for op in requests(&mut core) {
            if now < at(300) + INTERVAL.mul_ratio(2, 1) {
                assert_eq!(op, StoreOp::Read, "at {now}");
            }
        }
        if core.outstanding().is_some_and(|r| r.op == StoreOp::Read) {
            answer(&mut core, now, StoreOutcome::Applied(vacant(3, 1)));
        }
    }
    assert_eq!(
        core.handle_acting_stopped(now),
        Err(CommandError::NotResigning)
    );
}

#[test]
fn only_a_holder_resigns() {
    // protocol: Misuse changes nothing
    let mut core = StoreLease::new(correct(ExpiryJudge::Contenders), N1, at(0));
    let before = core.clone();
    assert_eq!(core.handle_resign(at(1)), Err(CommandError::NotLeader));
    assert_eq!(
        core.handle_acting_stopped(at(1)),
        Err(CommandError::NotResigning)
    );
    assert_eq!(core, before);
}

#[test]
fn a_reply_to_another_request_is_dropped() {
    // protocol: Bad input is dropped
    let mut core = StoreLease::new(correct(ExpiryJudge::Contenders), N1, at(0));
    core.handle_timeout(at(0));
    drain(&mut core);
    let id = core.outstanding().expect("a read").id;
    let stray = StoreReply {
        id: id + 1,
        outcome: StoreOutcome::Applied(vacant(0, 0)),
    };
    assert_eq!(
        core.handle_reply(at(1), stray),
        Received::Dropped(DropReason::Unexpected)
    );
    assert_eq!(core.outstanding().map(|r| r.id), Some(id));
}

#[test]
fn a_reply_that_contradicts_its_request_never_makes_the_node_act() {
    // protocol: Store leases
    // An "applied" acquisition that names another holder.
    let mut core = acquiring(ExpiryJudge::Contenders, StoreVariant::Correct, 0);
    let received = answer(&mut core, at(1), StoreOutcome::Applied(held_by(N2, 1, 1)));
    assert_eq!(received, Received::Dropped(DropReason::OutOfRange));
    assert_eq!(core.leadership(at(1)), None);

    // An acquisition whose token does not grow past one already seen.
    let mut core = StoreLease::new(correct(ExpiryJudge::Contenders), N1, at(0));
    core.handle_timeout(at(0));
    drain(&mut core);
    answer(&mut core, at(0), StoreOutcome::Applied(vacant(4, 9)));
    assert_eq!(requests(&mut core), [StoreOp::Acquire { version: 4 }]);
    let received = answer(&mut core, at(1), StoreOutcome::Applied(held_by(N1, 5, 9)));
    assert_eq!(received, Received::Dropped(DropReason::OutOfRange));
    assert_eq!(core.leadership(at(1)), None);
}

/// Every record an "applied" renewal could come back with, against the one a correct store
/// returns: the renewal extends the tenure only if the record names this node, under the
/// tenure's token, at a new version (where contenders judge expiry); any other is taken as
/// unknown and extends nothing.
#[test]
fn a_renewal_reply_that_contradicts_its_request_extends_nothing() {
    // protocol: Store leases
    for holder_of_record in [None, Some(N1), Some(N2)] {
        for version in 0..4 {
            for token in 0..3 {
                let record = Record {
                    holder: holder_of_record,
                    version,
                    token: FencingToken(token),
                };
                // The holder's acquisition left version 1 and token 1.
                let consistent = holder_of_record == Some(N1) && token == 1 && version != 1;
                let mut core = renewing();
                let received = answer(&mut core, at(260), StoreOutcome::Applied(record));
                let lease_until = core.leadership(at(260)).map(|l| l.lease_until);
                if consistent {
                    assert_eq!(received, Received::Accepted, "{record:?}");
                    assert_eq!(lease_until, Some(at(250) + hold()), "{record:?}");
                } else {
                    assert_eq!(
                        received,
                        Received::Dropped(DropReason::OutOfRange),
                        "{record:?}"
                    );
                    assert_eq!(lease_until, Some(at(0) + hold()), "{record:?}");
                }
            }
        }
    }
}

#[test]
fn a_campaign_hold_delays_the_acquisition_but_not_the_reads() {
    // protocol: Campaign holds
    let mut core = StoreLease::new(correct(ExpiryJudge::Contenders), N1, at(0));
    core.handle_campaign_hold(at(0), at(1_000));
    let mut now = at(0);
    while now < at(1_000) {
        core.handle_timeout(now);
        assert_eq!(requests(&mut core), [StoreOp::Read], "at {now}");
        answer(&mut core, now, StoreOutcome::Applied(vacant(0, 0)));
        now = next_timer(&core, now);
    }
    core.handle_timeout(now);
    assert_eq!(requests(&mut core), [StoreOp::Acquire { version: 0 }]);
}

#[test]
fn the_configuration_refuses_a_window_too_short_to_renew_in() {
    // protocol: Store-lease timing
    let params = StoreLeaseParams::for_lease(
        Duration::from_millis(800),
        Duration::from_millis(700),
        ExpiryJudge::Contenders,
    );
    let error = StoreLeaseConfig::new(params).expect_err("no acting window");
    assert!(error.to_string().contains("acting window"), "{error}");
}

/// Hostile replies: any id, any outcome, any record, at any time. The core never panics, its
/// next timer after a timeout is never in the past, acting lies within the lease, and
/// successive tenures carry growing tokens.
#[test]
fn hostile_replies_never_panic_nor_make_a_stale_holder() {
    // protocol: Bad input is dropped
    let step = (
        (0u64..400, any::<bool>(), 0u64..4, 0u8..3),
        (proptest::option::of(1u32..3), 0u64..6, 0u64..6),
    );
    let steps = proptest::collection::vec(step, 1..80);
    proptest::test_runner::TestRunner::default()
        .run(&steps, |steps| {
            let mut core = StoreLease::new(correct(ExpiryJudge::Contenders), N1, at(0));
            let mut now = at(0);
            let mut acting_tokens = Vec::new();
            for ((advance, timer, id_offset, outcome), (holder, version, token)) in steps {
                now = now + Duration::from_millis(advance);
                if timer {
                    core.handle_timeout(now);
                } else {
                    let id = core
                        .outstanding()
                        .map_or(id_offset, |r| r.id + id_offset % 2);
                    let record = Record {
                        holder: holder.map(NodeId),
                        version,
                        token: FencingToken(token),
                    };
                    let outcome = match outcome {
                        0 => StoreOutcome::Applied(record),
                        1 => StoreOutcome::Conflict(record),
                        _ => StoreOutcome::Failed,
                    };
                    let _ = core.handle_reply(now, StoreReply { id, outcome });
                }
                drain(&mut core);
                // A timer that is due is handled at once; after that the next one is later.
                if core.poll_timeout().expect("a timer") <= now {
                    core.handle_timeout(now);
                    drain(&mut core);
                }
                prop_assert!(core.poll_timeout().expect("a timer") > now);
                if let Some(leadership) = core.leadership(now) {
                    prop_assert!(leadership.acting_until <= leadership.lease_until);
                    if acting_tokens.last() != Some(&leadership.fencing_token) {
                        acting_tokens.push(leadership.fencing_token);
                    }
                }
            }
            prop_assert!(acting_tokens.windows(2).all(|pair| pair[0] < pair[1]));
            Ok(())
        })
        .expect("no hostile reply breaks the core");
}

#[test]
fn the_reference_store_is_a_compare_and_set_on_one_record() {
    // protocol: Store leases
    let mut store = ReferenceStore::new(ExpiryJudge::Contenders, LEASE);
    let request = |from, op| StoreRequest { id: 1, from, op };
    let now = at(0);
    assert_eq!(
        store.apply(now, request(N1, StoreOp::Acquire { version: 0 })),
        StoreOutcome::Applied(held_by(N1, 1, 1))
    );
    assert_eq!(
        store.apply(now, request(N2, StoreOp::Acquire { version: 0 })),
        StoreOutcome::Conflict(held_by(N1, 1, 1))
    );
    assert_eq!(
        store.apply(
            now,
            request(
                N2,
                StoreOp::Renew {
                    token: FencingToken(1)
                }
            )
        ),
        StoreOutcome::Conflict(held_by(N1, 1, 1))
    );
    assert_eq!(
        store.apply(now, request(N2, StoreOp::Acquire { version: 1 })),
        StoreOutcome::Applied(held_by(N2, 2, 2))
    );
    assert_eq!(
        store.apply(
            now,
            request(
                N1,
                StoreOp::Renew {
                    token: FencingToken(1)
                }
            )
        ),
        StoreOutcome::Conflict(held_by(N2, 2, 2))
    );
    assert_eq!(
        store.apply(
            now,
            request(
                N2,
                StoreOp::Release {
                    token: FencingToken(2)
                }
            )
        ),
        StoreOutcome::Applied(vacant(3, 2))
    );

    // Where the store judges expiry, it empties the record a TTL after the latest renewal.
    let mut store = ReferenceStore::new(ExpiryJudge::Store, LEASE);
    store.apply(now, request(N1, StoreOp::Acquire { version: 0 }));
    store.apply(
        at(1_000),
        request(
            N1,
            StoreOp::Renew {
                token: FencingToken(1),
            },
        ),
    );
    assert_eq!(store.record(at(2_999)).holder, Some(N1));
    assert_eq!(store.record(at(3_000)).holder, None);
    assert_eq!(
        store.apply(at(3_000), request(N2, StoreOp::Acquire { version: 2 })),
        StoreOutcome::Conflict(vacant(3, 1))
    );
    assert_eq!(
        store.apply(at(3_000), request(N2, StoreOp::Acquire { version: 3 })),
        StoreOutcome::Applied(held_by(N2, 4, 2))
    );
}
