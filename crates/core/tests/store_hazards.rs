//! Hazards of the store-lease core (protocol: Store leases), found by an adversarial review:
//! each test states a property the core or its docs promise and a schedule a real store or
//! network can produce that broke it before the fix it pins (a lost write at a store failover,
//! a hold that begins while an acquisition is in flight, contradictory conflicts, renewals the
//! contenders cannot see, a release whose outcome is unknown).

use tenure_core::{
    Duration, ExpiryJudge, FencingToken, Instant, NodeId, Output, Record, StoreLease,
    StoreLeaseConfig, StoreLeaseParams, StoreOp, StoreOutcome, StoreReply, StoreRequest,
};

const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);
const LEASE: Duration = Duration::from_secs(2);
const STOP_MARGIN: Duration = Duration::from_millis(500);

fn config(judge: ExpiryJudge) -> StoreLeaseConfig {
    StoreLeaseConfig::new(StoreLeaseParams::for_lease(LEASE, STOP_MARGIN, judge))
        .expect("valid store-lease config")
}

fn at(millis: u64) -> Instant {
    Instant::from_nanos(millis * 1_000_000)
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

fn sends(core: &mut StoreLease) -> Vec<StoreRequest> {
    std::iter::from_fn(|| core.poll_output())
        .filter_map(|output| match output {
            Output::Send(request) => Some(request),
            _ => None,
        })
        .collect()
}

fn answer(core: &mut StoreLease, now: Instant, outcome: StoreOutcome) {
    let request = core.outstanding().expect("a request in flight");
    core.handle_reply(
        now,
        StoreReply {
            id: request.id,
            outcome,
        },
    );
}

/// At most this many timer firings in one [`drive`]: a core whose timers stop moving fails the
/// test instead of hanging it.
const MAX_TIMEOUTS: usize = 10_000;

/// At most this many requests answered at one instant: a core that asks again at once after
/// every reply would hammer the store (and, with an immediate transport, never yield).
const MAX_REQUESTS_AT_ONE_INSTANT: usize = 8;

/// Drives `core` on its own timers up to `until`. Every request is answered at once with
/// `script(now, op)`, or never (`None`: it times out). Returns `(now, is_acting)` after every
/// input, so a test can see when the node acted. Panics if the core sends more than
/// [`MAX_REQUESTS_AT_ONE_INSTANT`] requests at one instant, or its timers fire more than
/// [`MAX_TIMEOUTS`] times.
fn drive(
    core: &mut StoreLease,
    until: Instant,
    mut script: impl FnMut(Instant, StoreOp) -> Option<StoreOutcome>,
) -> Vec<(Instant, bool)> {
    let mut trace = Vec::new();
    for _ in 0..MAX_TIMEOUTS {
        let now = core.poll_timeout().expect("a timer");
        if now > until {
            return trace;
        }
        core.handle_timeout(now);
        trace.push((now, acting(core, now)));
        for answered in 0.. {
            let requests = sends(core);
            let Some(request) = requests.last() else {
                break;
            };
            assert!(
                answered < MAX_REQUESTS_AT_ONE_INSTANT,
                "{answered} requests answered at {now} and the core asks again at once: {:?}",
                request.op
            );
            let Some(outcome) = script(now, request.op) else {
                break;
            };
            core.handle_reply(
                now,
                StoreReply {
                    id: request.id,
                    outcome,
                },
            );
            trace.push((now, acting(core, now)));
        }
    }
    panic!("the core's timers fired {MAX_TIMEOUTS} times before {until}");
}

fn acting(core: &StoreLease, now: Instant) -> bool {
    core.leadership(now).is_some_and(|l| l.is_acting(now))
}

/// A write that PostgreSQL made visible and then lost at a failover (a commit whose
/// synchronous-replication wait was cancelled is committed and visible on the old primary; the
/// promoted standby never got it). Had the holder's next renewal written the same version
/// number again, a contender would have kept its first sighting across two different writes
/// and taken over early. Versions therefore never repeat: the PostgreSQL adapter writes a fresh
/// random version with every write (protocol: When the store fails over), and the contender
/// times the new one afresh.
#[test]
fn a_write_lost_at_a_failover_is_harmless_because_versions_never_repeat() {
    // protocol: Who judges expiry; protocol: When the store fails over
    // The holder, N1: acquires at 0 (version 1). Its renewal at 250 commits version 2 on the
    // old primary but is never acknowledged. The failover runs until 1000: renewals fail.
    // The new primary has version 1; N1's renewal sent at 1000 applies there and writes a
    // fresh version, 77. Then N1 is cut off from the store.
    let mut holder = StoreLease::new(config(ExpiryJudge::Contenders), N1, at(0));
    let mut renewed_at = None;
    let holder_trace = drive(&mut holder, at(4_000), |now, op| match op {
        StoreOp::Read => Some(StoreOutcome::Applied(vacant(0, 0))),
        StoreOp::Acquire { .. } => Some(StoreOutcome::Applied(held_by(N1, 1, 1))),
        StoreOp::Renew { .. } if now < at(500) => None,
        StoreOp::Renew { .. } if now < at(1_000) => Some(StoreOutcome::Failed),
        StoreOp::Renew { .. } if renewed_at.is_none() => {
            renewed_at = Some(now);
            Some(StoreOutcome::Applied(held_by(N1, 77, 1)))
        }
        _ => None,
    });
    let renewed_at = renewed_at.expect("the renewal after the failover applied");
    // The child runs until acting_until + stop_margin = lease_until on N1's clock.
    let holder_child_gone = renewed_at + LEASE.mul_ratio(990_000, 1_010_000);
    assert!(holder_trace
        .iter()
        .any(|&(now, acting)| acting && now >= renewed_at));

    // The contender, N2: its read at 500 sees the old primary's (soon lost) version 2; reads
    // fail during the failover; from 1000 on it reads the new primary's version 77.
    let mut contender = StoreLease::new(config(ExpiryJudge::Contenders), N2, at(0));
    let contender_trace = drive(&mut contender, at(4_000), |now, op| match op {
        StoreOp::Read if now < at(500) => Some(StoreOutcome::Applied(held_by(N1, 1, 1))),
        StoreOp::Read if now < at(750) => Some(StoreOutcome::Applied(held_by(N1, 2, 1))),
        StoreOp::Read if now < at(1_000) => Some(StoreOutcome::Failed),
        StoreOp::Read => Some(StoreOutcome::Applied(held_by(N1, 77, 1))),
        // N1 is cut off: no renewal landed, so the compare-and-set on version 77 applies.
        StoreOp::Acquire { version: 77 } => Some(StoreOutcome::Applied(held_by(N2, 78, 2))),
        _ => None,
    });
    let contender_acts = contender_trace
        .iter()
        .find(|&&(_, acting)| acting)
        .map(|&(now, _)| now)
        .expect("the contender took over");

    // No drift here: both clocks are real time.
    assert!(
        contender_acts >= holder_child_gone,
        "N2 acts from {contender_acts} while N1's child (renewed at {renewed_at}) lives until \
         {holder_child_gone}"
    );
}

/// An acquisition already in flight when a campaign hold
/// begins (`tenure pause`, or the driver's hold after a lost child) still makes the node the
/// holder, and it acts. The driver's Pause asked `handle_resign`, got `NotLeader` (so it
/// reported "not leading"), and never resigns again while paused: the paused node runs the
/// daemon for as long as it stays paused.
#[test]
fn an_acquisition_in_flight_when_a_campaign_hold_begins_does_not_make_the_node_act() {
    // protocol: Campaign holds
    let mut core = StoreLease::new(config(ExpiryJudge::Contenders), N1, at(0));
    core.handle_timeout(at(0));
    sends(&mut core);
    answer(&mut core, at(0), StoreOutcome::Applied(vacant(0, 0)));
    assert_eq!(
        sends(&mut core).iter().map(|r| r.op).collect::<Vec<_>>(),
        [StoreOp::Acquire { version: 0 }]
    );

    // The driver pauses the node: a hold for a lease, and a resignation that fails.
    core.handle_campaign_hold(at(10), at(10) + LEASE);
    assert!(core.handle_resign(at(10)).is_err());

    answer(&mut core, at(20), StoreOutcome::Applied(held_by(N1, 1, 1)));
    assert!(
        !acting(&core, at(20)),
        "a held (paused) node acts: {:?}",
        core.leadership(at(20))
    );
}

/// A conflict that contradicts its acquisition (the record it returns
/// still has the version and vacancy the compare-and-set asked for) is retried within the same
/// input, with no delay: a store or adapter that answers so (say, an UPDATE that matched no
/// row on first use, reported as a conflict on the default record) is hammered in a tight
/// loop, and in the driver with an immediate transport the loop never yields to a timer. A
/// contradicting `Applied` is taken as a failure; a contradicting `Conflict` is not.
#[test]
fn a_conflict_that_contradicts_its_acquisition_is_not_retried_at_once() {
    // protocol: Store leases (a reply that contradicts its request)
    for judge in [ExpiryJudge::Contenders, ExpiryJudge::Store] {
        let mut core = StoreLease::new(config(judge), N1, at(0));
        core.handle_timeout(at(0));
        sends(&mut core);
        answer(&mut core, at(0), StoreOutcome::Applied(vacant(0, 0)));
        let mut requests_at_once = 0;
        for _ in 0..100 {
            let sent = sends(&mut core);
            if sent.is_empty() {
                break;
            }
            requests_at_once += sent.len();
            answer(&mut core, at(1), StoreOutcome::Conflict(vacant(0, 0)));
        }
        assert!(
            requests_at_once <= 1,
            "{judge:?}: {requests_at_once} acquisitions sent at one instant"
        );
    }
}

/// `applied` claims that "a broken or hostile store never makes
/// us act", but an applied renewal whose record did not change the version is taken as a
/// success. Contenders time the version, so such a renewal extends the holder's tenure while
/// every contender keeps counting from an older write: with `ExpiryJudge::Contenders` an
/// adapter that forgets to bump the version (or an etcd-style renewal that only keeps a lease
/// alive) breaks acting_safety silently.
#[test]
fn an_applied_renewal_that_left_the_version_unchanged_extends_nothing() {
    // protocol: Who judges expiry; protocol: Store leases (a reply that contradicts its request)
    let mut core = StoreLease::new(config(ExpiryJudge::Contenders), N1, at(0));
    core.handle_timeout(at(0));
    sends(&mut core);
    answer(&mut core, at(0), StoreOutcome::Applied(vacant(0, 0)));
    sends(&mut core);
    answer(&mut core, at(0), StoreOutcome::Applied(held_by(N1, 1, 1)));
    sends(&mut core);
    let before = core.leadership(at(0)).expect("holds").lease_until;

    core.handle_timeout(at(250));
    assert!(matches!(
        sends(&mut core)[..],
        [StoreRequest {
            op: StoreOp::Renew { .. },
            ..
        }]
    ));
    // "Applied", but the version is the acquisition's: no contender can tell it happened.
    answer(&mut core, at(260), StoreOutcome::Applied(held_by(N1, 1, 1)));
    assert_eq!(
        core.leadership(at(260)).expect("holds").lease_until,
        before,
        "a renewal the contenders cannot see extended the tenure"
    );
}

/// A release whose outcome is unknown is never retried: the record keeps
/// naming the former holder, and every contender (the releaser too) waits a whole lease, as
/// after a crash. docs/backends.md promises for SIGTERM/step-down "the other node takes it at
/// its next read".
#[test]
fn a_failed_release_is_retried_while_the_record_still_names_the_releaser() {
    // protocol: Graceful handover
    let mut core = StoreLease::new(config(ExpiryJudge::Contenders), N1, at(0));
    core.handle_timeout(at(0));
    sends(&mut core);
    answer(&mut core, at(0), StoreOutcome::Applied(vacant(0, 0)));
    sends(&mut core);
    answer(&mut core, at(0), StoreOutcome::Applied(held_by(N1, 1, 1)));
    sends(&mut core);
    core.handle_resign(at(100)).expect("holds");
    core.handle_acting_stopped(at(200)).expect("resigning");
    assert!(matches!(
        sends(&mut core)[..],
        [StoreRequest {
            op: StoreOp::Release { .. },
            ..
        }]
    ));
    answer(&mut core, at(210), StoreOutcome::Failed);

    // The store still shows the record held by N1 (the release never landed).
    let mut releases = 0;
    let _ = drive(&mut core, at(210) + LEASE, |_, op| match op {
        StoreOp::Read => Some(StoreOutcome::Applied(held_by(N1, 1, 1))),
        StoreOp::Release { .. } => {
            releases += 1;
            Some(StoreOutcome::Applied(vacant(2, 1)))
        }
        _ => None,
    });
    assert!(
        releases >= 1,
        "the release was never retried: the handover costs a whole lease"
    );
}
