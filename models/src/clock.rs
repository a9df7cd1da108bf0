//! Time in the model: one global clock in integer ticks, and per node a local clock that runs
//! at a fixed rate within ±ρ of the nominal rate (protocol: Time).
//!
//! At global time `g` the local clock of a node with rate `r` reads `g · r` nanoseconds. The
//! nominal rate is 10 nanoseconds per tick and a drifting clock runs at 9 or 11: ρ = 1/10, the
//! largest drift that `Config::new` accepts (production uses 1 %; the model uses the largest ρ
//! so that the effect of drift is as large as the protocol allows).
//!
//! # Why time is exact
//!
//! Every protocol constant below is a multiple of [`GRAIN`] = 990 = lcm(9, 10, 11) local
//! nanoseconds, and so is the lease hold L·(1−ρ)/(1+ρ) = L·9/11 (L is a multiple of 11·990).
//! Every instant a core computes is a local instant at which it handled an input (`g · r`)
//! plus a sum of such constants, so it is a multiple of the node's own rate: the global
//! instant at which that node's clock reaches it is an integer tick. Hence every instant at
//! which any node's timer, promise, quarantine, lease or acting window changes, in global
//! time, is a tick of the grid, and the model advances time from one such instant straight to
//! the next ([`global_instant`] asserts the divisibility, so a constant that broke it would
//! stop the check rather than round silently). Between two consecutive instants nothing that
//! any property or any guard reads can change, because every one of them has the form
//! `now < deadline`: checking at each instant covers the whole half-open interval up to the
//! next one.

use std::fmt;
use std::str::FromStr;

use tenure_core::{Duration, Instant};

/// Local nanoseconds per global tick at the nominal rate.
pub const NOMINAL_RATE: u8 = 10;

/// How far a drifting clock is off the nominal rate, in nanoseconds per tick: ρ = 1/10.
pub const DRIFT_TICKS: u8 = 1;

/// ρ as the fraction `ConfigParams::max_drift` takes.
pub const MAX_DRIFT: f64 = DRIFT_TICKS as f64 / NOMINAL_RATE as f64;

/// lcm(9, 10, 11): every protocol duration is a multiple of it, so that a deadline set by a
/// node at an integer tick is reached by that node's clock at an integer tick.
pub const GRAIN: u64 = 990;

/// Global ticks in one "unit" of the command line: a third of the lease at the nominal rate.
pub const TICKS_PER_UNIT: u32 =
    (timing::LEASE_DURATION.as_nanos() / 3 / NOMINAL_RATE as u64) as u32;

/// The protocol's durations in local nanoseconds, each a multiple of [`GRAIN`].
///
/// - lease L = 33 grains, heartbeat 10 grains: 3 · heartbeat < L;
/// - lease hold = L·(1−ρ)/(1+ρ) = 27 grains exactly, stop margin 9 grains: stop margin +
///   heartbeat < lease hold, and the leader acts for 18 grains after each acknowledged
///   heartbeat;
/// - election jitter ∈ {0, 11 grains}: the model draws only the two ends of the range.
///
/// A slow leader's lease (27 grains at rate 9: 3 grains of nominal time) ends exactly when a
/// fast follower's promise (33 grains at rate 11) ends: ρ = 1/10 makes the drift compensation
/// tight, so an off-by-one comparison or a shortened promise shows as an overlap.
pub mod timing {
    use super::*;

    /// L.
    pub const LEASE_DURATION: Duration = Duration::from_nanos(33 * GRAIN);
    /// The leader's renewal period.
    pub const HEARTBEAT_INTERVAL: Duration = Duration::from_nanos(10 * GRAIN);
    /// How long before its lease ends the leader stops acting.
    pub const STOP_MARGIN: Duration = Duration::from_nanos(9 * GRAIN);
    /// The longest a child takes to exit once told to stop: the guard's SIGTERM-to-SIGKILL
    /// grace plus the kernel's and the guard's own allowance. The core's stop margin must cover
    /// it (protocol: Acting; the binary sets stop margin = stop grace + 150 ms).
    pub const CHILD_EXIT_MAX: Duration = STOP_MARGIN;
    /// The upper end of the election jitter.
    pub const ELECTION_JITTER_MAX: Duration = Duration::from_nanos(11 * GRAIN);
    /// The delay between election ranks; its half, the candidates' resend interval, is a
    /// whole number of grains too.
    pub const ELECTION_STEP: Duration = Duration::from_nanos(4 * GRAIN);

    /// L·(1−ρ)/(1+ρ), as `Config::lease_hold` computes it.
    pub const LEASE_HOLD: Duration = LEASE_DURATION.mul_ratio(
        NOMINAL_RATE as u64 - DRIFT_TICKS as u64,
        NOMINAL_RATE as u64 + DRIFT_TICKS as u64,
    );

    // The rules of `Config::new`, and the model's own: every duration is a whole number of
    // grains, the hold included (no rounding anywhere).
    const _: () = {
        assert!(3 * HEARTBEAT_INTERVAL.as_nanos() < LEASE_DURATION.as_nanos());
        assert!(STOP_MARGIN.as_nanos() + HEARTBEAT_INTERVAL.as_nanos() < LEASE_HOLD.as_nanos());
        assert!(ELECTION_JITTER_MAX.as_nanos() <= LEASE_DURATION.as_nanos());
        assert!(LEASE_DURATION.as_nanos() % GRAIN == 0);
        assert!(LEASE_HOLD.as_nanos() % GRAIN == 0);
        assert!(
            LEASE_HOLD.as_nanos() * (NOMINAL_RATE + DRIFT_TICKS) as u64
                == LEASE_DURATION.as_nanos() * (NOMINAL_RATE - DRIFT_TICKS) as u64
        );
        assert!(HEARTBEAT_INTERVAL.as_nanos() % GRAIN == 0);
        assert!(STOP_MARGIN.as_nanos() % GRAIN == 0);
        assert!(CHILD_EXIT_MAX.as_nanos() <= STOP_MARGIN.as_nanos());
        assert!(ELECTION_JITTER_MAX.as_nanos() % GRAIN == 0);
        assert!(ELECTION_STEP.as_nanos() % (2 * GRAIN) == 0);
        assert!(GRAIN % 9 == 0 && GRAIN % 10 == 0 && GRAIN % 11 == 0);
    };
}

/// How fast a node's clock runs. A node keeps its rate for the whole run, across crashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Drift {
    /// 1 − ρ: 9 nanoseconds per tick.
    Slow,
    /// 10 nanoseconds per tick.
    Nominal,
    /// 1 + ρ: 11 nanoseconds per tick.
    Fast,
}

impl Drift {
    /// Every rate, slowest first.
    pub const ALL: [Drift; 3] = [Drift::Slow, Drift::Nominal, Drift::Fast];

    /// Local nanoseconds per global tick.
    pub fn rate(self) -> u8 {
        match self {
            Drift::Slow => NOMINAL_RATE - DRIFT_TICKS,
            Drift::Nominal => NOMINAL_RATE,
            Drift::Fast => NOMINAL_RATE + DRIFT_TICKS,
        }
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Drift::Slow => "slow",
            Drift::Nominal => "nominal",
            Drift::Fast => "fast",
        }
    }
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The local time of a clock with `rate` nanoseconds per tick at global tick `time`.
pub fn local_time(time: u32, rate: u8) -> Instant {
    Instant::from_nanos(u64::from(time) * u64::from(rate))
}

/// The first global tick at which a clock with `rate` reads `local` or later.
///
/// Every deadline a core sets is a multiple of its rate (see the module docs); the assertion
/// makes the model stop rather than round if that ever stops being true.
pub fn global_instant(local: Instant, rate: u8) -> u64 {
    let nanos = local.as_nanos();
    let rate = u64::from(rate);
    assert!(
        nanos % rate == 0,
        "local instant {nanos} is not on the grid of a clock at rate {rate}"
    );
    nanos / rate
}

/// Which clock rates the nodes may have. Each choice is one initial state of the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DriftSpec {
    /// Every assignment of {slow, fast} to the nodes, up to a permutation of node ids: both ends
    /// of ±ρ, which is where drift bugs live.
    Extremes,
    /// Every assignment of {slow, nominal, fast}, up to a permutation of node ids.
    All,
    /// Exactly these rates, one per node.
    Fixed(Vec<Drift>),
}

impl DriftSpec {
    /// The rate assignments, each sorted slowest first. Sorting is the symmetry reduction over
    /// node ids that the model can afford: see `docs/verification.md`.
    pub fn assignments(&self, nodes: usize) -> Vec<Vec<Drift>> {
        let choices: &[Drift] = match self {
            DriftSpec::Extremes => &[Drift::Slow, Drift::Fast],
            DriftSpec::All => &Drift::ALL,
            DriftSpec::Fixed(drifts) => return vec![drifts.clone()],
        };
        let mut assignments = vec![Vec::new()];
        for _ in 0..nodes {
            let mut longer = Vec::new();
            for assignment in &assignments {
                for &drift in choices {
                    // Non-decreasing only: one representative per multiset of rates.
                    if assignment.last().is_none_or(|last| *last <= drift) {
                        let mut next: Vec<Drift> = assignment.clone();
                        next.push(drift);
                        longer.push(next);
                    }
                }
            }
            assignments = longer;
        }
        assignments
    }
}

impl FromStr for DriftSpec {
    type Err = String;
    fn from_str(text: &str) -> Result<DriftSpec, String> {
        match text {
            "extremes" => Ok(DriftSpec::Extremes),
            "all" => Ok(DriftSpec::All),
            list => list
                .split(',')
                .map(|name| {
                    Drift::ALL
                        .into_iter()
                        .find(|drift| drift.name() == name.trim())
                        .ok_or_else(|| {
                            format!(
                                "unknown drift {name:?}: expected `extremes`, `all`, or a \
                                 comma-separated list of slow, nominal, fast (one per node)"
                            )
                        })
                })
                .collect::<Result<Vec<Drift>, String>>()
                .map(DriftSpec::Fixed),
        }
    }
}

impl fmt::Display for DriftSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriftSpec::Extremes => f.write_str("extremes"),
            DriftSpec::All => f.write_str("all"),
            DriftSpec::Fixed(drifts) => {
                let names: Vec<&str> = drifts.iter().map(|drift| drift.name()).collect();
                f.write_str(&names.join(","))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_are_one_per_multiset_of_rates() {
        assert_eq!(DriftSpec::Extremes.assignments(3).len(), 4);
        assert_eq!(DriftSpec::All.assignments(3).len(), 10);
        assert_eq!(DriftSpec::All.assignments(5).len(), 21);
        let fixed: DriftSpec = "fast,slow,nominal".parse().expect("valid");
        assert_eq!(
            fixed.assignments(3),
            vec![vec![Drift::Fast, Drift::Slow, Drift::Nominal]]
        );
        assert!("quick".parse::<DriftSpec>().is_err());
    }

    #[test]
    fn the_lease_hold_is_the_configs_and_exact() {
        let model = crate::TenureModel::new(crate::ModelSpec::default_check()).expect("valid");
        assert_eq!(model.config().lease_hold(), timing::LEASE_HOLD);
        assert_eq!(timing::LEASE_HOLD, Duration::from_nanos(27 * GRAIN));
    }

    #[test]
    fn every_deadline_lands_on_a_tick() {
        // A slow leader's lease from a heartbeat at tick 7 and a fast follower's promise from
        // the same tick end at the same global tick: the compensation is exactly tight.
        let slow = Drift::Slow.rate();
        let fast = Drift::Fast.rate();
        let lease_end = local_time(7, slow) + timing::LEASE_HOLD;
        let promise_end = local_time(7, fast) + timing::LEASE_DURATION;
        assert_eq!(
            global_instant(lease_end, slow),
            global_instant(promise_end, fast)
        );
        assert_eq!(local_time(10, slow), Instant::from_nanos(90));
        assert!((MAX_DRIFT - 0.1).abs() < 1e-12);
    }
}
