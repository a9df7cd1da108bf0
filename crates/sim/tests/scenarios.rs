//! Named scenarios: one fault story each, on a few seeds. Every run must keep every invariant,
//! and every failover must fit the bound derived from the configuration (`tenure_sim::RecoveryBounds`),
//! never a figure measured on this machine.

use std::time::Duration;

use tenure_sim::{
    run, Failover, Fault, FaultKind, HealthTiming, Outcome, Schedule, Setup, Target, Variant,
};

/// Seeds per scenario: a few, so that a scenario does not pass by the luck of one draw, and
/// few enough for the default `cargo test`.
const SEEDS: [u64; 5] = [1, 2, 3, 4, 5];

/// Runs `schedule` on seed `seed` and fails with the reproduce command on any violation.
fn run_clean(seed: u64, schedule: &Schedule) -> (Setup, Outcome) {
    let setup = Setup::from_seed(seed, schedule.nodes, Variant::Correct, schedule.end_ms)
        .with_schedule(schedule.clone());
    let outcome = run(&setup);
    assert!(outcome.violation.is_none(), "{}", outcome.report(&setup));
    (setup, outcome)
}

/// Asserts that every failover took at most `bound`, naming the run if not.
fn assert_within(setup: &Setup, failovers: &[Failover], bound: Duration) {
    for failover in failovers {
        assert!(
            failover.duration <= bound,
            "failover after {} at {} took {:?}, beyond the bound of {bound:?}\nreproduce: {}",
            failover.kind.name(),
            failover.fault_at,
            failover.duration,
            setup.reproduce_command()
        );
    }
}

fn of_kind(outcome: &Outcome, kind: FaultKind) -> Vec<Failover> {
    outcome
        .failovers
        .iter()
        .copied()
        .filter(|failover| failover.kind == kind)
        .collect()
}

#[test]
fn leader_crash() {
    // The acting leader crashes at 5 s and stays down past the heal. Its followers wait out
    // their promises (one lease), elect one of them and it acts: one failover, within the
    // bound, and no sooner than the promises allow.
    let schedule = Schedule::quiet(3, 25_000).with(
        5_000,
        Fault::Crash {
            target: Target::Leader,
            down_ms: 30_000,
        },
    );
    for seed in SEEDS {
        let (setup, outcome) = run_clean(seed, &schedule);
        let failovers = of_kind(&outcome, FaultKind::Crash);
        assert_eq!(failovers.len(), 1, "{failovers:?}");
        let bounds = setup.bounds();
        assert_within(&setup, &failovers, bounds.failover);

        // protocol: Crash failover. Nobody may act before the promises made to the dead leader end:
        // a lease after its last heartbeat, on the fastest clock.
        let config = setup.config();
        let fastest = config.lease_duration().mul_ratio(
            tenure_core::PPM,
            tenure_core::PPM + u64::from(config.max_drift_ppm()),
        );
        let earliest = Duration::from(fastest) - Duration::from(config.heartbeat_interval());
        assert!(failovers[0].duration >= earliest, "{failovers:?}");
    }
}

#[test]
fn leader_isolated() {
    // The leader is cut off from everyone for 6 s: the majority elects a successor, the old
    // leader stops acting before its lease ends, and rejoins as a follower once the links
    // mend.
    let schedule = Schedule::quiet(3, 25_000).with(
        5_000,
        Fault::Isolate {
            target: Target::Leader,
            ms: 6_000,
        },
    );
    for seed in SEEDS {
        let (setup, outcome) = run_clean(seed, &schedule);
        let failovers = of_kind(&outcome, FaultKind::Isolate);
        assert_eq!(failovers.len(), 1, "{failovers:?}");
        assert_within(&setup, &failovers, setup.bounds().failover);
    }
}

#[test]
fn minority_partition() {
    // Five nodes. First two followers are cut off: the leader keeps its majority and keeps
    // acting, no failover. Then the leader and one follower are cut off: the majority side
    // elects a successor within the bound.
    let schedule = Schedule::quiet(5, 30_000)
        .with(
            4_000,
            Fault::Minority {
                with_leader: false,
                ms: 5_000,
            },
        )
        .with(
            10_000,
            Fault::Minority {
                with_leader: true,
                ms: 5_000,
            },
        );
    for seed in SEEDS {
        let (setup, outcome) = run_clean(seed, &schedule);
        let failovers = of_kind(&outcome, FaultKind::Minority);
        assert_eq!(
            failovers.len(),
            1,
            "only the second partition deposes the leader: {failovers:?}"
        );
        assert!(failovers[0].fault_at.as_secs_f64() >= 10.0, "{failovers:?}");
        assert_within(&setup, &failovers, setup.bounds().failover);
    }
}

#[test]
fn flapping_link() {
    // The link between the leader and one follower goes down and up every 300 ms, twenty
    // times. The other follower's acknowledgements keep the lease, so the leader never stops
    // acting, and the flapping follower never campaigns (its promise is renewed in time).
    let schedule = Schedule::quiet(3, 25_000).with(
        4_000,
        Fault::Flapping {
            a: Target::Leader,
            b: Target::Follower(0),
            period_ms: 300,
            flaps: 20,
        },
    );
    for seed in SEEDS {
        let (_, outcome) = run_clean(seed, &schedule);
        assert_eq!(
            outcome.children_started, 1,
            "the first leader acted throughout"
        );
    }
}

#[test]
fn leader_paused_past_its_lease() {
    // The leader's process freezes for 5 s (more than two leases) while its clock runs on.
    // Its deadline guard stops the child, a successor takes over within the bound, and when
    // the old leader wakes it finds its lease long gone and its leadership lapses without
    // acting again: the oracle would flag any overlap.
    let schedule = Schedule::quiet(3, 25_000).with(
        5_000,
        Fault::Pause {
            target: Target::Leader,
            ms: 5_000,
        },
    );
    for seed in SEEDS {
        let (setup, outcome) = run_clean(seed, &schedule);
        let failovers = of_kind(&outcome, FaultKind::Pause);
        assert_eq!(failovers.len(), 1, "{failovers:?}");
        assert_within(&setup, &failovers, setup.bounds().failover);
    }
}

#[test]
fn rolling_restart() {
    // Every node in turn shuts down gracefully for a second, one every 6 s. When a leader's
    // turn comes it hands over before it goes: graceful handovers within their bound.
    // Restarted nodes rejoin through their boot quarantine.
    let schedule = Schedule::quiet(3, 40_000).with(
        4_000,
        Fault::RollingRestart {
            gap_ms: 6_000,
            down_ms: 1_000,
        },
    );
    for seed in SEEDS {
        let (setup, outcome) = run_clean(seed, &schedule);
        let failovers = of_kind(&outcome, FaultKind::RollingRestart);
        // Leadership moves on the leader's turn, and again if its successor's turn comes
        // later: one handover at least, each within the bound.
        assert!(!failovers.is_empty(), "the leader's turn came");
        assert_within(&setup, &failovers, setup.bounds().handover);
    }
}

#[test]
fn five_nodes_lose_two() {
    // Five nodes; the leader and a follower crash together and stay down. The remaining three
    // are still a majority: they elect a successor within the bound.
    let schedule = Schedule::quiet(5, 25_000)
        .with(
            5_000,
            Fault::Crash {
                target: Target::Leader,
                down_ms: 30_000,
            },
        )
        .with(
            5_000,
            Fault::Crash {
                target: Target::Follower(0),
                down_ms: 30_000,
            },
        );
    for seed in SEEDS {
        let (setup, outcome) = run_clean(seed, &schedule);
        let failovers = of_kind(&outcome, FaultKind::Crash);
        assert!(!failovers.is_empty(), "a successor acted");
        assert_within(&setup, &failovers, setup.bounds().failover);
    }
}

#[test]
fn graceful_handover() {
    // The leader is asked to resign: it stops its child, waits until it is gone, then sends
    // Resign and TimeoutNow; the successor acts within a few round trips of the child's exit,
    // far sooner than a crash failover.
    let schedule = Schedule::quiet(3, 25_000).with(
        5_000,
        Fault::Resign {
            target: Target::Leader,
        },
    );
    for seed in SEEDS {
        let (setup, outcome) = run_clean(seed, &schedule);
        let failovers = of_kind(&outcome, FaultKind::Resign);
        assert_eq!(failovers.len(), 1, "{failovers:?}");
        let bounds = setup.bounds();
        assert_within(&setup, &failovers, bounds.handover);
        assert!(bounds.handover < bounds.failover);
    }
}

#[test]
fn a_quiet_cluster_elects_once_and_keeps_its_leader() {
    // No faults at all: one election after the boot quarantine, then the same leader acts
    // for the whole run.
    for seed in SEEDS {
        let (_, outcome) = run_clean(seed, &Schedule::quiet(3, 25_000));
        assert_eq!(outcome.children_started, 1);
    }
}

#[test]
fn a_top_ranked_node_that_cannot_keep_a_lease_does_not_starve_the_cluster() {
    // protocol: Election timing. n1 comes first in id order, so it starts the cold-start
    // election alone and wins its pre-votes and votes; but none of its heartbeats arrives for
    // 20 s, so it never holds a lease and never acts. Ranking must not hand it the cluster
    // again and again: another node acts within the liveness bound of the start, long before
    // the fault ends. Clocks drift by 0.1 % here, not the seeds' 1–10 %: at 10 % two nodes'
    // boot quarantines end up to 200 ms apart, ten election steps, and n1 would not reliably
    // be the first to campaign.
    let fault_ms = 9_000;
    let schedule = Schedule::quiet(3, 25_000).with(
        0,
        Fault::MuteHeartbeats {
            target: Target::Node(0),
            ms: fault_ms,
        },
    );
    for seed in SEEDS {
        let mut setup = Setup::from_seed(seed, 3, Variant::Correct, schedule.end_ms)
            .with_schedule(schedule.clone())
            .with_max_drift(0.001);
        setup.keep_trace = true;
        let outcome = run(&setup);
        assert!(outcome.violation.is_none(), "{}", outcome.report(&setup));
        let elected = |node: &str| {
            outcome.trace.iter().any(|line| {
                line.contains(&format!(" {node} "))
                    && line.contains("role: Leader")
                    && !line.contains("world")
            })
        };
        assert!(
            elected("n1"),
            "n1 never led, so the scenario tested nothing\nreproduce: {}",
            setup.reproduce_command()
        );
        let first_acting = outcome
            .trace
            .iter()
            .find(|line| line.contains("ActingStarted"))
            .unwrap_or_else(|| panic!("nobody acted\nreproduce: {}", setup.reproduce_command()));
        assert!(
            !first_acting.contains(" n1 "),
            "the muted n1 acted: {first_acting}"
        );
        let at_ms = acting_at_ms(first_acting);
        let bound = setup.bounds().liveness.as_millis() as u64;
        assert!(
            at_ms <= bound && at_ms < u64::from(fault_ms),
            "first acting at {at_ms} ms, beyond the liveness bound of {bound} ms\n\
             reproduce: {}",
            setup.reproduce_command()
        );
    }
}

/// The global time, in milliseconds, at the start of a trace line ("12.345678901s …").
fn acting_at_ms(line: &str) -> u64 {
    let seconds: f64 = line
        .split_whitespace()
        .next()
        .and_then(|time| time.trim_end_matches('s').parse().ok())
        .unwrap_or_else(|| panic!("a trace line starts with its time: {line}"));
    (seconds * 1_000.0) as u64
}

#[test]
fn a_hung_daemon_is_stopped_and_handed_over() {
    // protocol: Health-gated acting. The acting leader's daemon hangs at 6 s: it runs on but
    // fails every health check, by the check's timeout. After three failures in a row the
    // leader stops it and hands over: the successor acts within the detection bound plus a
    // handover, never beside the hung daemon (acting_safety), and not before the third
    // failure (one failure is not enough).
    let schedule = Schedule::quiet(3, 25_000).with(
        6_000,
        Fault::Hang {
            target: Target::Leader,
        },
    );
    let health = HealthTiming::default();
    for seed in SEEDS {
        let (setup, outcome) = run_clean(seed, &schedule);
        let failovers = of_kind(&outcome, FaultKind::Hang);
        assert_eq!(failovers.len(), 1, "{failovers:?}");
        let bound = setup.bounds().unhealthy_handover(&health, &setup.timing);
        assert_within(&setup, &failovers, bound);
        assert!(
            failovers[0].duration >= health.detection_min(),
            "handed over after {:?}, before {} failed checks could have come\nreproduce: {}",
            failovers[0].duration,
            health.failures,
            setup.reproduce_command()
        );
        assert_eq!(outcome.children_started, 2, "the successor keeps acting");
    }
}

#[test]
fn a_cluster_wide_outage_makes_leadership_go_round_ever_more_slowly() {
    // protocol: Campaign holds. Every daemon's checks fail for 60 s (a database they share is
    // down). Each leader gives up after three failures and holds its own campaigns, one lease
    // after its first loss, doubling with each further loss in a row, so leadership goes
    // round the members ever more slowly instead of spinning. Once the database is back, a
    // leader acts and keeps acting.
    let (outage_from, outage_ms) = (5_000u64, 60_000u32);
    let outage_to = outage_from + u64::from(outage_ms);
    let schedule = Schedule::quiet(3, 100_000).with(5_000, Fault::Outage { ms: outage_ms });
    for seed in SEEDS {
        let mut setup = Setup::from_seed(seed, 3, Variant::Correct, schedule.end_ms)
            .with_schedule(schedule.clone());
        setup.keep_trace = true;
        let outcome = run(&setup);
        assert!(outcome.violation.is_none(), "{}", outcome.report(&setup));

        // Phase 1: each node's holds count its losses in a row and double, up to the cap.
        let mut losses_seen = [0u32; 3];
        for line in outcome
            .trace
            .iter()
            .filter(|line| line.contains("CampaignHeld {"))
        {
            let node = (1..=3)
                .find(|node| line.contains(&format!(" n{node} ")))
                .expect("a node's line");
            let losses: u32 = field(line, "losses: ");
            let hold_ms = field::<u64>(line, "hold: ") / 1_000_000;
            assert_eq!(losses, losses_seen[node - 1] + 1, "{line}");
            assert_eq!(hold_ms, 2_000 << (losses - 1).min(5), "{line}");
            losses_seen[node - 1] = losses;
        }
        assert!(
            losses_seen.iter().all(|losses| *losses >= 4),
            "every node lost at least four times in a row: {losses_seen:?}\nreproduce: {}",
            setup.reproduce_command()
        );

        // Phase 2: no spin. In the outage's first third leadership moves every few seconds
        // (grace plus three checks, then a handover); in its last third, with holds of 16 and
        // 32 leases, far less often.
        let starts: Vec<u64> = outcome
            .trace
            .iter()
            .filter(|line| line.contains("ActingStarted"))
            .map(|line| acting_at_ms(line))
            .collect();
        let third = u64::from(outage_ms) / 3;
        let within = |from: u64| {
            starts
                .iter()
                .filter(|at| (from..from + third).contains(*at))
                .count()
        };
        let (first, last) = (within(outage_from), within(outage_to - third));
        assert!(
            first >= 6 && last * 2 <= first,
            "{first} leaderships in the outage's first 20 s, {last} in its last\nreproduce: {}",
            setup.reproduce_command()
        );

        // Phase 3: after the outage the checks pass again: at most one more leadership (when
        // nobody acted as it ended), which lasts to the end; the liveness oracle checks that
        // a leader acts after the heal.
        let after = starts.iter().filter(|at| **at >= outage_to).count();
        assert!(
            after <= 1,
            "{after} leaderships after the outage\nreproduce: {}",
            setup.reproduce_command()
        );
    }
}

/// The number after `key` in a trace line (`losses: 3`, `hold: Duration(2000000000)`).
fn field<T: std::str::FromStr>(line: &str, key: &str) -> T {
    let start = line
        .find(key)
        .unwrap_or_else(|| panic!("{key:?} in {line}"))
        + key.len();
    let digits: String = line[start..]
        .trim_start_matches(|c: char| !c.is_ascii_digit())
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("a number after {key:?} in {line}"))
}
