//! Time as the core sees it: a local, monotonic instant and a duration, both in nanoseconds.
//!
//! The core never reads a clock. The driver maps its clock (CLOCK_BOOTTIME in the node, a
//! drifting simulated clock in the simulation and the model) onto [`Instant`] and passes it into
//! every `handle_*` call. Instants of different nodes are never compared (protocol: Time).

use std::fmt;
use std::ops::{Add, Sub};

/// A point on one node's local monotonic clock, in nanoseconds since an arbitrary origin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

/// A span of local time in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(u64);

impl Instant {
    /// The origin of the clock.
    pub const ZERO: Instant = Instant(0);

    /// An instant `nanos` nanoseconds after the origin.
    pub const fn from_nanos(nanos: u64) -> Instant {
        Instant(nanos)
    }

    /// Nanoseconds since the origin.
    #[must_use]
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// The time from `earlier` to `self`, or zero if `earlier` is later.
    #[must_use]
    pub const fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
}

impl Duration {
    /// No time at all.
    pub const ZERO: Duration = Duration(0);

    /// A duration of `nanos` nanoseconds.
    pub const fn from_nanos(nanos: u64) -> Duration {
        Duration(nanos)
    }

    /// A duration of `micros` microseconds (saturating).
    pub const fn from_micros(micros: u64) -> Duration {
        Duration(micros.saturating_mul(1_000))
    }

    /// A duration of `millis` milliseconds (saturating).
    pub const fn from_millis(millis: u64) -> Duration {
        Duration(millis.saturating_mul(1_000_000))
    }

    /// A duration of `secs` seconds (saturating).
    pub const fn from_secs(secs: u64) -> Duration {
        Duration(secs.saturating_mul(1_000_000_000))
    }

    /// The length in nanoseconds.
    #[must_use]
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// The length in whole milliseconds, rounded down.
    #[must_use]
    pub const fn as_millis(self) -> u64 {
        self.0 / 1_000_000
    }

    /// `self · numerator / denominator`, rounded down, computed without overflow.
    ///
    /// # Panics
    /// If `denominator` is zero (a programmer error).
    #[must_use]
    pub const fn mul_ratio(self, numerator: u64, denominator: u64) -> Duration {
        assert!(denominator != 0, "mul_ratio: zero denominator");
        let wide = (self.0 as u128) * (numerator as u128) / (denominator as u128);
        if wide > u64::MAX as u128 {
            Duration(u64::MAX)
        } else {
            Duration(wide as u64)
        }
    }

    /// `self - other`, or zero if `other` is longer.
    #[must_use]
    pub const fn saturating_sub(self, other: Duration) -> Duration {
        Duration(self.0.saturating_sub(other.0))
    }
}

/// Instants saturate at the end of time rather than wrapping: a deadline that far away is as
/// good as never, and wrapping would turn it into the past.
impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_add(rhs.0))
    }
}

/// Subtraction saturates at the origin for the same reason.
impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_sub(rhs.0))
    }
}

impl Add for Duration {
    type Output = Duration;
    fn add(self, rhs: Duration) -> Duration {
        Duration(self.0.saturating_add(rhs.0))
    }
}

impl From<std::time::Duration> for Duration {
    fn from(value: std::time::Duration) -> Duration {
        Duration(u64::try_from(value.as_nanos()).unwrap_or(u64::MAX))
    }
}

impl From<Duration> for std::time::Duration {
    fn from(value: Duration) -> std::time::Duration {
        std::time::Duration::from_nanos(value.0)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0;
        if nanos % 1_000_000_000 == 0 {
            write!(f, "{}s", nanos / 1_000_000_000)
        } else if nanos % 1_000_000 == 0 {
            write!(f, "{}ms", nanos / 1_000_000)
        } else if nanos % 1_000 == 0 {
            write!(f, "{}us", nanos / 1_000)
        } else {
            write!(f, "{}ns", nanos)
        }
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t={}", Duration(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        assert_eq!(
            Instant::from_nanos(u64::MAX - 1) + Duration::from_nanos(5),
            Instant(u64::MAX)
        );
        assert_eq!(
            Instant::from_nanos(3) - Duration::from_nanos(5),
            Instant::ZERO
        );
        assert_eq!(
            Instant::from_nanos(3).saturating_duration_since(Instant(9)),
            Duration::ZERO
        );
    }

    #[test]
    fn mul_ratio_rounds_down_without_overflow() {
        let lease = Duration::from_secs(2);
        // protocol: Leases. L·(1−ρ)/(1+ρ) with ρ = 1% in parts per million.
        assert_eq!(
            lease.mul_ratio(990_000, 1_010_000),
            Duration::from_nanos(1_960_396_039)
        );
        assert_eq!(Duration(u64::MAX).mul_ratio(3, 2), Duration(u64::MAX));
    }

    #[test]
    fn display_picks_the_largest_exact_unit() {
        assert_eq!(Duration::from_secs(2).to_string(), "2s");
        assert_eq!(Duration::from_millis(250).to_string(), "250ms");
        assert_eq!(Duration::from_nanos(1_500).to_string(), "1500ns");
    }
}
