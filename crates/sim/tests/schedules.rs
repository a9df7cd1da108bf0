//! Randomized schedules from proptest, with shrinking: every schedule must keep every
//! invariant. A failure shrinks the schedule to the fewest, shortest faults that still break
//! it and prints the seed, that schedule and the one command that reproduces it.
//!
//! `PROPTEST_CASES=500 cargo test -p tenure-sim --release --test schedules` runs more cases.

use std::fmt;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use tenure_sim::schedule::CrashPoint;
use tenure_sim::{run, Fault, Schedule, Setup, Target, Timed, Variant};

/// Simulated length of a case: faults in the first 14 s, then the heal and the liveness check.
const END_MS: u32 = 30_000;

/// One generated case: a seed (clocks, drift, loss draws) and a schedule.
#[derive(Clone)]
struct Case {
    seed: u64,
    variant: Variant,
    schedule: Schedule,
}

impl Case {
    fn setup(&self) -> Setup {
        Setup::from_seed(self.seed, self.schedule.nodes, self.variant, END_MS)
            .with_schedule(self.schedule.clone())
    }
}

/// The form proptest prints for the minimal failing input: the seed, the shrunk schedule and
/// the command that reproduces it.
impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {}, schedule `{}`\nreproduce: {}",
            self.seed,
            self.schedule,
            self.setup().reproduce_command()
        )
    }
}

fn target(nodes: u8) -> impl Strategy<Value = Target> {
    prop_oneof![
        Just(Target::Leader),
        (0..nodes).prop_map(Target::Node),
        (0..nodes - 1).prop_map(Target::Follower),
    ]
}

fn fault(nodes: u8) -> impl Strategy<Value = Fault> {
    let all = (1u16 << nodes) - 1;
    prop_oneof![
        (target(nodes), 100..8_000u32)
            .prop_map(|(target, down_ms)| Fault::Crash { target, down_ms }),
        (target(nodes), 300..8_000u32).prop_map(|(target, ms)| Fault::Isolate { target, ms }),
        (1..all, 300..8_000u32).prop_map(|(mask, ms)| Fault::Split {
            mask: mask as u8,
            ms
        }),
        (any::<bool>(), 300..8_000u32)
            .prop_map(|(with_leader, ms)| Fault::Minority { with_leader, ms }),
        (target(nodes), target(nodes), 300..8_000u32).prop_map(|(from, to, ms)| Fault::OneWay {
            from,
            to,
            ms
        }),
        (target(nodes), 300..8_000u32).prop_map(|(target, ms)| Fault::Asymmetric { target, ms }),
        (target(nodes), 300..8_000u32)
            .prop_map(|(target, ms)| Fault::MuteHeartbeats { target, ms }),
        (target(nodes), target(nodes), 50..1_500u32, 2..10u16).prop_map(
            |(a, b, period_ms, flaps)| Fault::Flapping {
                a,
                b,
                period_ms,
                flaps
            }
        ),
        (50..600u16, 500..10_000u32).prop_map(|(permille, ms)| Fault::Loss { permille, ms }),
        (100..3_000u32, 500..10_000u32).prop_map(|(max_ms, ms)| Fault::Latency { max_ms, ms }),
        (100..1_000u16, 0..10_000u32, 500..20_000u32).prop_map(|(permille, delay_max_ms, ms)| {
            Fault::Duplication {
                permille,
                delay_max_ms,
                ms,
            }
        }),
        (target(nodes), 100..6_000u32).prop_map(|(target, ms)| Fault::Pause { target, ms }),
        target(nodes).prop_map(|slow| Fault::Drift { slow }),
        target(nodes).prop_map(|target| Fault::Resign { target }),
        (target(nodes), 100..5_000u32)
            .prop_map(|(target, down_ms)| Fault::Shutdown { target, down_ms }),
        (1_000..5_000u32, 100..2_000u32)
            .prop_map(|(gap_ms, down_ms)| Fault::RollingRestart { gap_ms, down_ms }),
        (0..3_000u32).prop_map(|down_ms| Fault::ClusterRestart { down_ms }),
        (
            target(nodes),
            proptest::option::of(target(nodes)),
            50..1_000u16,
            300..8_000u32
        )
            .prop_map(|(from, to, permille, ms)| Fault::Hold {
                from,
                to,
                permille,
                ms
            }),
        (target(nodes), 0..CrashPoint::ALL.len(), 100..5_000u32).prop_map(
            |(target, point, down_ms)| Fault::CrashPoint {
                target,
                point: CrashPoint::ALL[point],
                down_ms
            }
        ),
    ]
}

fn case(nodes: u8, variant: Variant) -> impl Strategy<Value = Case> {
    let heal_ms = Schedule::quiet(nodes, END_MS).heal_ms;
    let timed =
        (1_000..heal_ms - 1_000, fault(nodes)).prop_map(|(at_ms, fault)| Timed { at_ms, fault });
    (any::<u64>(), prop::collection::vec(timed, 0..10)).prop_map(move |(seed, faults)| {
        let mut schedule = Schedule::quiet(nodes, END_MS);
        for timed in faults {
            schedule = schedule.with(timed.at_ms, timed.fault);
        }
        Case {
            seed,
            variant,
            schedule,
        }
    })
}

/// Runs a case; a violation fails it with the full report.
fn check(case: &Case) -> Result<(), TestCaseError> {
    let setup = case.setup();
    let outcome = run(&setup);
    match &outcome.violation {
        None => Ok(()),
        Some(violation) => Err(TestCaseError::fail(format!(
            "{violation}\n{}",
            outcome.report(&setup)
        ))),
    }
}

fn config(default_cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default_cases);
    Config {
        cases,
        max_shrink_iters: 256,
        // The seed and schedule printed on failure are the regression record.
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config(24))]

    #[test]
    fn random_schedules_keep_every_invariant_with_three_nodes(case in case(3, Variant::Correct)) {
        check(&case)?;
    }
}

proptest! {
    #![proptest_config(config(8))]

    #[test]
    fn random_schedules_keep_every_invariant_with_five_nodes(case in case(5, Variant::Correct)) {
        check(&case)?;
    }
}

#[test]
fn a_failure_shrinks_to_a_schedule_that_still_fails() {
    // Against a variant that grants votes while promised, random schedules fail quickly.
    // Shrinking must end at a short schedule that still fails when run again from its seed
    // and schedule alone, as the printed reproduce command does.
    let config = Config {
        cases: 64,
        max_shrink_iters: 256,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let result = runner.run(&case(3, Variant::NoPromise), |case| check(&case));
    let Err(TestError::Fail(reason, minimal)) = result else {
        panic!("no_promise survived 64 random schedules: {result:?}");
    };
    assert!(
        reason.message().contains("reproduce: cargo run"),
        "{reason}"
    );
    // Up to ten random faults shrink to a handful (two, at this commit).
    assert!(minimal.schedule.faults.len() <= 4, "{minimal:?}");
    let replayed = run(&minimal.setup());
    assert!(replayed.violation.is_some(), "{minimal:?}");
}
