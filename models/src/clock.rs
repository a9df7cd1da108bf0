//! Time in the model: one global clock, and per node a local clock that runs at a fixed rate
//! within ±ρ of the nominal rate, in integer ticks (DESIGN: Time).
//!
//! Global time advances in whole units. At global time `g` the local clock of a node with rate
//! `r` reads `g · r` ticks, and the core sees one tick as one nanosecond. The nominal rate is 10
//! ticks per unit and a drifting clock runs at 9 or 11: ρ = 1/10, the largest drift that
//! `Config::new` accepts. The model uses that large ρ (production uses 1 %) so that the effect
//! of drift shows within a few units of time, which keeps the state space small.

use std::fmt;
use std::str::FromStr;

use tenure_core::{Duration, Instant};

/// Local ticks per unit of global time at the nominal rate.
pub const NOMINAL_RATE: u8 = 10;

/// How far a drifting clock is off the nominal rate, in ticks per unit: ρ = 1/10.
pub const DRIFT_TICKS: u8 = 1;

/// ρ as the fraction `ConfigParams::max_drift` takes.
pub const MAX_DRIFT: f64 = DRIFT_TICKS as f64 / NOMINAL_RATE as f64;

/// The protocol's durations in local ticks (one unit of global time is 10 nominal ticks).
///
/// - lease L = 30 ticks (3 units), heartbeat 9 ticks: 3 · heartbeat < L, and a leader at any
///   rate renews once per unit;
/// - lease hold = ⌊L·(1−ρ)/(1+ρ)⌋ = 24 ticks, stop margin 9 ticks: the leader acts for 15
///   ticks after each acknowledged heartbeat, more than the 11 ticks a unit lasts on the
///   fastest clock (stop margin + heartbeat < lease hold);
/// - election jitter ∈ {0, 10 ticks}: the model draws only the two ends of the range.
pub mod timing {
    use super::*;

    /// L.
    pub const LEASE_DURATION: Duration = Duration::from_nanos(3 * NOMINAL_RATE as u64);
    /// The leader's renewal period.
    pub const HEARTBEAT_INTERVAL: Duration = Duration::from_nanos(NOMINAL_RATE as u64 - 1);
    /// How long before its lease ends the leader stops acting.
    pub const STOP_MARGIN: Duration = Duration::from_nanos(NOMINAL_RATE as u64 - 1);
    /// The upper end of the election jitter.
    pub const ELECTION_JITTER_MAX: Duration = Duration::from_nanos(NOMINAL_RATE as u64);

    /// L·(1−ρ)/(1+ρ), as `Config::lease_hold` computes it.
    pub const LEASE_HOLD: Duration = LEASE_DURATION.mul_ratio(
        NOMINAL_RATE as u64 - DRIFT_TICKS as u64,
        NOMINAL_RATE as u64 + DRIFT_TICKS as u64,
    );

    // The rules of `Config::new`, and the model's own: the acting window outlasts a unit on
    // the fastest clock, so a leader that renews every unit acts without a gap.
    const _: () = {
        assert!(3 * HEARTBEAT_INTERVAL.as_nanos() < LEASE_DURATION.as_nanos());
        assert!(STOP_MARGIN.as_nanos() + HEARTBEAT_INTERVAL.as_nanos() < LEASE_HOLD.as_nanos());
        assert!(ELECTION_JITTER_MAX.as_nanos() <= LEASE_DURATION.as_nanos());
        assert!(HEARTBEAT_INTERVAL.as_nanos() <= (NOMINAL_RATE - DRIFT_TICKS) as u64);
        assert!(
            LEASE_HOLD.as_nanos() - STOP_MARGIN.as_nanos() > (NOMINAL_RATE + DRIFT_TICKS) as u64
        );
    };
}

/// How fast a node's clock runs. A node keeps its rate for the whole run, across crashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Drift {
    /// 1 − ρ: 9 ticks per unit.
    Slow,
    /// 10 ticks per unit.
    Nominal,
    /// 1 + ρ: 11 ticks per unit.
    Fast,
}

impl Drift {
    /// Every rate, slowest first.
    pub const ALL: [Drift; 3] = [Drift::Slow, Drift::Nominal, Drift::Fast];

    /// Local ticks per unit of global time.
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

/// The local time of a clock with `rate` ticks per unit at global time `time`.
pub fn local_time(time: u8, rate: u8) -> Instant {
    Instant::from_nanos(u64::from(time) * u64::from(rate))
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
    fn the_lease_hold_is_the_configs() {
        let model = crate::TenureModel::new(crate::ModelSpec::default_check()).expect("valid");
        assert_eq!(model.config().lease_hold(), timing::LEASE_HOLD);
        assert_eq!(timing::LEASE_HOLD, Duration::from_nanos(24));
    }

    #[test]
    fn clocks_drift_by_rho() {
        assert_eq!(local_time(10, Drift::Slow.rate()), Instant::from_nanos(90));
        assert_eq!(local_time(10, Drift::Fast.rate()), Instant::from_nanos(110));
        assert!((MAX_DRIFT - 0.1).abs() < 1e-12);
    }
}
