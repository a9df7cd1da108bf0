//! Named scenarios of store runs (protocol: Store leases): one fault story each, on a few seeds
//! and under both judges of expiry. Every run must keep every invariant (the oracle checks
//! acting overlap, acting within the lease, lease overlap and fencing after every step); each
//! scenario also asserts what happened: who took over, that the token grew, and that the new
//! holder's child started only after the old one was gone.

use std::time::Duration;

use tenure_sim::{
    run, Core, ExpiryJudge, Failover, FaultKind, Outcome, Schedule, Setup, StoreVariant,
};

const SEEDS: [u64; 3] = [1, 2, 3];
const JUDGES: [ExpiryJudge; 2] = [ExpiryJudge::Contenders, ExpiryJudge::Store];

/// Runs the two-node store run of `faults` on `seed` with `judge`, its trace kept, and fails
/// with the reproduce command on any violation.
fn run_clean(seed: u64, judge: ExpiryJudge, faults: &str) -> (Setup, Outcome) {
    let schedule: Schedule = format!("nodes=2 heal=20000 end=25000; {faults}")
        .parse()
        .expect("a valid schedule");
    let mut setup = Setup::store_from_seed(seed, 2, judge, StoreVariant::Correct, 25_000)
        .with_schedule(schedule);
    setup.keep_trace = true;
    assert_eq!(setup.core, Core::store(judge, StoreVariant::Correct));
    let outcome = run(&setup);
    assert!(outcome.violation.is_none(), "{}", outcome.report(&setup));
    (setup, outcome)
}

fn of_kind(outcome: &Outcome, kind: FaultKind) -> Vec<Failover> {
    outcome
        .failovers
        .iter()
        .copied()
        .filter(|failover| failover.kind == kind)
        .collect()
}

/// The global times (in seconds) of the trace lines of `node` (`n1`, `n2`) that record
/// `observation` (`ActingStarted`, `ActingStopped`, …).
fn times(outcome: &Outcome, node: &str, observation: &str) -> Vec<f64> {
    let prefix = format!("{node} {observation}");
    outcome
        .trace
        .iter()
        .filter_map(|line| {
            let (at, rest) = line.split_once(' ')?;
            rest.starts_with(&prefix)
                .then(|| at.trim_end_matches('s').parse().ok())?
        })
        .collect()
}

/// Asserts the one failover of `kind`: the token grew, the store's record has it, and the
/// other node took over. Returns the failover and the old and new holders' names.
fn assert_took_over(
    setup: &Setup,
    outcome: &Outcome,
    kind: FaultKind,
) -> (Failover, &'static str, &'static str) {
    let failovers = of_kind(outcome, kind);
    let command = setup.reproduce_command();
    assert_eq!(failovers.len(), 1, "{failovers:?}\n{command}");
    let failover = failovers[0];
    assert!(failover.to > failover.from, "{failover:?}\n{command}");
    let record = outcome.store_record.expect("a store run keeps its record");
    assert!(record.token >= failover.to, "{record:?}\n{command}");
    // Node n1 and n2 both start as contenders; the first holder is whoever acquired first.
    let started = |node| times(outcome, node, "ActingStarted");
    let (old, new) = if started("n1").first() < started("n2").first() {
        ("n1", "n2")
    } else {
        ("n2", "n1")
    };
    assert_eq!(started(old).len(), 1, "{old} acted again\n{command}");
    assert_eq!(started(new).len(), 1, "{new} acted twice\n{command}");
    (failover, old, new)
}

/// Asserts that `new`'s child started only after the driver of `old` saw its child gone (where
/// `old`'s driver runs throughout, so that it sees the end when it happens).
fn assert_stopped_before_started(setup: &Setup, outcome: &Outcome, old: &str, new: &str) {
    let command = setup.reproduce_command();
    let old_gone = times(outcome, old, "ActingStopped");
    let new_started = times(outcome, new, "ActingStarted");
    assert!(
        !old_gone.is_empty() && !new_started.is_empty(),
        "{old} never stopped or {new} never started\n{command}"
    );
    assert!(
        old_gone[0] <= new_started[0],
        "{new} started at {} before {old}'s child was gone at {}\n{command}",
        new_started[0],
        old_gone[0]
    );
}

/// The least time a contender must wait after the holder's latest applied renewal: a lease
/// on the fastest clock (protocol: Who judges expiry), less the renew interval and one hop
/// by which that renewal may precede the fault.
fn earliest_takeover(setup: &Setup) -> Duration {
    let config = setup.store_config().expect("a store run");
    let drift = u64::from(config.params().max_drift_ppm);
    let fastest = config
        .lease_duration()
        .mul_ratio(tenure_core::PPM, tenure_core::PPM + drift);
    let hop = setup.timing.max_latency + 2 * setup.timing.tick;
    Duration::from(fastest) - Duration::from(config.params().renew_interval) - hop
}

#[test]
fn holder_partitioned_from_the_store() {
    // The holder is cut off from the store for 8 s. Its renewals time out and extend nothing,
    // its child stops at its acting deadline, and only a lease after its latest applied
    // renewal does the other node take the record, under a larger token.
    for judge in JUDGES {
        for seed in SEEDS {
            let (setup, outcome) = run_clean(seed, judge, "5000 isolate(leader, 8000)");
            let (failover, old, new) = assert_took_over(&setup, &outcome, FaultKind::Isolate);
            assert_stopped_before_started(&setup, &outcome, old, new);
            assert!(
                failover.duration >= earliest_takeover(&setup),
                "{failover:?}\n{}",
                setup.reproduce_command()
            );
            assert!(
                failover.duration <= setup.bounds().failover,
                "{failover:?}\n{}",
                setup.reproduce_command()
            );
        }
    }
}

#[test]
fn paused_holder_whose_child_runs_on() {
    // The holder's process freezes for 5 s while its child runs on: the child's deadline guard
    // stops it at the acting deadline, the other node takes over after a lease, and when the
    // old holder wakes it sees the new record and never acts again. Its driver sees its child
    // gone only when it wakes, after the takeover: that the child was gone before the new one
    // started is the oracle's acting_safety check, which follows the guard in real time.
    for judge in JUDGES {
        for seed in SEEDS {
            let (setup, outcome) = run_clean(seed, judge, "5000 pause(leader, 5000)");
            let (failover, ..) = assert_took_over(&setup, &outcome, FaultKind::Pause);
            assert!(
                failover.duration >= earliest_takeover(&setup),
                "{failover:?}\n{}",
                setup.reproduce_command()
            );
            assert_eq!(outcome.children_started, 2, "{}", setup.reproduce_command());
        }
    }
}

#[test]
fn handover_on_resignation() {
    // The holder resigns: it stops its child, then releases the record, and the other node
    // takes it at its next read, well before a lease would have run out.
    for judge in JUDGES {
        for seed in SEEDS {
            let (setup, outcome) = run_clean(seed, judge, "5000 resign(leader)");
            let (failover, old, new) = assert_took_over(&setup, &outcome, FaultKind::Resign);
            assert_stopped_before_started(&setup, &outcome, old, new);
            assert!(
                failover.duration <= setup.bounds().handover,
                "{failover:?}\n{}",
                setup.reproduce_command()
            );
        }
    }
}

#[test]
fn short_store_restart_keeps_the_holder() {
    // The store is down for 600 ms, less than the acting window: the holder's renewals fail
    // meanwhile, the record survives the restart, and the holder's next renewal applies. Nobody
    // else acts, and the token stays.
    for judge in JUDGES {
        for seed in SEEDS {
            let (setup, outcome) = run_clean(seed, judge, "5000 store_restart(600)");
            let command = setup.reproduce_command();
            assert_eq!(outcome.failovers, Vec::new(), "{command}");
            assert_eq!(outcome.children_started, 1, "{command}");
            let record = outcome.store_record.expect("a store run keeps its record");
            assert_eq!(record.token.0, 1, "{record:?}\n{command}");
            assert!(record.holder.is_some(), "{record:?}\n{command}");
        }
    }
}

#[test]
fn long_store_restart_ends_the_tenure_and_a_node_takes_it_again() {
    // The store is down for 4 s, longer than a lease: the holder's tenure lapses and its child
    // stops. The record survives the restart; a node takes it again under a larger token, with
    // the contenders judging once a lease has passed since they first saw it after the
    // restart, with the store judging as soon as the store's own clock expired it.
    for judge in JUDGES {
        for seed in SEEDS {
            let (setup, outcome) = run_clean(seed, judge, "5000 store_restart(4000)");
            let command = setup.reproduce_command();
            let record = outcome.store_record.expect("a store run keeps its record");
            assert!(record.token.0 >= 2, "{record:?}\n{command}");
            assert!(outcome.children_started >= 2, "{command}");
            assert!(
                !of_kind(&outcome, FaultKind::StoreRestart).is_empty(),
                "{:?}\n{command}",
                outcome.failovers
            );
        }
    }
}
