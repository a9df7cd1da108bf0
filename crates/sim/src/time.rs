//! Time in the simulation: global simulated time, which only the world and the oracle see, and
//! each host's local clock, which drifts against it within ±ρ (protocol: Time).

use std::fmt;

use tenure_core::{Instant, PPM};

/// Global simulated time: nanoseconds since the simulation started. The oracle records every
/// acting interval and lease in it; no node ever reads it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(pub u64);

impl SimTime {
    /// The time `duration` after the start.
    pub fn from_duration(duration: std::time::Duration) -> SimTime {
        SimTime(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX))
    }

    /// The time `millis` milliseconds after the start.
    pub const fn from_millis(millis: u64) -> SimTime {
        SimTime(millis * 1_000_000)
    }

    /// Nanoseconds since the start.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Seconds since the start.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// The span from `earlier` to `self`, or zero.
    pub fn since(self, earlier: SimTime) -> std::time::Duration {
        std::time::Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// `self` plus `duration`, saturating.
    pub fn after(self, duration: std::time::Duration) -> SimTime {
        SimTime(self.0.saturating_add(SimTime::from_duration(duration).0))
    }

    /// The global time inside the turmoil host that is running now.
    ///
    /// # Panics
    /// Outside a turmoil host: a programmer error, since only host software reads it.
    pub fn in_host() -> SimTime {
        SimTime::from_duration(
            turmoil::sim_elapsed().expect("host software runs inside a turmoil host"),
        )
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}s", self.as_secs_f64())
    }
}

/// A host's monotonic clock: piecewise linear in global time, starting at an arbitrary offset
/// and running at a rate within `[1 − ρ, 1 + ρ]` that may change (the drift fault pins it at
/// either end). It belongs to the machine, not the process, so it lives outside the turmoil
/// host and keeps running through crashes, restarts and pauses.
///
/// Conversions round so that the driver never wakes early: [`DriftClock::global_at`] rounds up
/// and [`DriftClock::local_at`] rounds down, hence `local_at(global_at(t)) >= t`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriftClock {
    /// Ordered by `global` (and so by `local`); the first starts at global zero.
    segments: Vec<Segment>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Segment {
    global: u64,
    local: u64,
    /// Local nanoseconds per million global nanoseconds.
    rate_ppm: u64,
}

impl DriftClock {
    /// A clock that reads `offset` at global zero and runs at `rate_ppm` (PPM is real time).
    pub fn new(offset: u64, rate_ppm: u64) -> DriftClock {
        assert!(rate_ppm > 0, "a clock must advance");
        DriftClock {
            segments: vec![Segment {
                global: 0,
                local: offset,
                rate_ppm,
            }],
        }
    }

    /// The local reading at global time `at`.
    pub fn local_at(&self, at: SimTime) -> Instant {
        let segment = self
            .segments
            .iter()
            .rev()
            .find(|segment| segment.global <= at.0)
            .unwrap_or(&self.segments[0]);
        let elapsed = u128::from(at.0.saturating_sub(segment.global));
        let local = elapsed * u128::from(segment.rate_ppm) / u128::from(PPM);
        Instant::from_nanos(segment.local.saturating_add(saturate(local)))
    }

    /// The earliest global time at which the clock reads at least `local`.
    pub fn global_at(&self, local: Instant) -> SimTime {
        let local = local.as_nanos();
        let Some(segment) = self
            .segments
            .iter()
            .rev()
            .find(|segment| segment.local <= local)
        else {
            return SimTime(0);
        };
        let ahead = u128::from(local - segment.local);
        let rate = u128::from(segment.rate_ppm);
        let global = (ahead * u128::from(PPM)).div_ceil(rate);
        SimTime(segment.global.saturating_add(saturate(global)))
    }

    /// From global time `at` on, runs at `rate_ppm`.
    pub fn set_rate(&mut self, at: SimTime, rate_ppm: u64) {
        assert!(rate_ppm > 0, "a clock must advance");
        let last = *self.segments.last().expect("a clock has a first segment");
        assert!(at.0 >= last.global, "rate changes come in time order");
        let local = self.local_at(at).as_nanos();
        if at.0 == last.global {
            self.segments.pop();
        }
        self.segments.push(Segment {
            global: at.0,
            local,
            rate_ppm,
        });
    }

    /// The current rate in parts per million of real time.
    pub fn rate_ppm(&self) -> u64 {
        self.segments
            .last()
            .expect("a clock has a first segment")
            .rate_ppm
    }
}

fn saturate(value: u128) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fast_clock_runs_ahead_and_converts_back_without_waking_early() {
        let clock = DriftClock::new(5_000, 1_010_000);
        assert_eq!(
            clock.local_at(SimTime(1_000_000)),
            Instant::from_nanos(1_015_000)
        );
        for local in [5_001, 1_015_000, 1_015_001, 987_654_321] {
            let global = clock.global_at(Instant::from_nanos(local));
            assert!(clock.local_at(global).as_nanos() >= local);
            assert!(clock.local_at(SimTime(global.0 - 1)).as_nanos() < local);
        }
        assert_eq!(clock.global_at(Instant::from_nanos(5_000)), SimTime(0));
        assert_eq!(
            clock.global_at(Instant::from_nanos(4_000)),
            SimTime(0),
            "before the offset"
        );
    }

    #[test]
    fn a_rate_change_keeps_the_clock_continuous_and_monotonic() {
        let mut clock = DriftClock::new(0, 990_000);
        clock.set_rate(SimTime(1_000_000_000), 1_010_000);
        assert_eq!(
            clock.local_at(SimTime(1_000_000_000)).as_nanos(),
            990_000_000
        );
        assert_eq!(
            clock.local_at(SimTime(2_000_000_000)).as_nanos(),
            2_000_000_000
        );
        assert_eq!(
            clock.global_at(Instant::from_nanos(500_000_000)),
            SimTime(505_050_506)
        );
        assert_eq!(
            clock.global_at(Instant::from_nanos(2_000_000_000)),
            SimTime(2_000_000_000)
        );
    }
}
