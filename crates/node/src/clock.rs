//! The node's only clock: `CLOCK_BOOTTIME`, read as nanoseconds.
//!
//! protocol: Time. Each node reads only its own monotonic clock, and clocks are never compared
//! across nodes. On Linux there are two candidates, and the choice matters for safety:
//!
//! - `CLOCK_MONOTONIC` stops while the machine is suspended. A leader that is suspended for a
//!   minute and resumed would see only a few milliseconds pass and believe its lease still valid,
//!   while the rest of the cluster has long elected a successor: two acting leaders.
//! - `CLOCK_BOOTTIME` is `CLOCK_MONOTONIC` plus the time spent suspended. It keeps counting
//!   through suspend, so a resumed leader sees its lease expired at once.
//!
//! Both are immune to wall-clock steps (NTP, an operator running `date`), which `CLOCK_REALTIME`
//! is not. Nanoseconds since boot fit in a `u64` for about 584 years of uptime.

use rustix::time::{clock_gettime, ClockId, Timespec};

/// Reads `CLOCK_BOOTTIME`. Copyable and stateless: every copy reads the same system-wide clock,
/// so a deadline read in one process (tenure) is meaningful in another (its deadline guard).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BootClock;

impl BootClock {
    /// A handle on the boot clock.
    pub fn new() -> BootClock {
        BootClock
    }

    /// Nanoseconds since boot, including time spent suspended. Never decreases.
    pub fn now_nanos(&self) -> u64 {
        timespec_to_nanos(clock_gettime(ClockId::Boottime))
    }
}

/// Converts a clock reading to nanoseconds. The kernel never returns a negative or
/// out-of-range reading for `CLOCK_BOOTTIME`; should one appear anyway, clamping it into range
/// keeps the result well defined instead of wrapping to a huge or tiny instant.
fn timespec_to_nanos(time: Timespec) -> u64 {
    let seconds = u64::try_from(time.tv_sec).unwrap_or(0);
    let nanoseconds = u64::try_from(time.tv_nsec).unwrap_or(0).min(999_999_999);
    seconds
        .saturating_mul(1_000_000_000)
        .saturating_add(nanoseconds)
}

/// The driver's clock in the binary: the core's `Instant` is `CLOCK_BOOTTIME` in nanoseconds,
/// the same instants the deadline guard reads.
impl tenure_driver::Clock for BootClock {
    fn now(&self) -> tenure_core::Instant {
        tenure_core::Instant::from_nanos(self.now_nanos())
    }

    /// Sleeps in steps of at most `MAX_SLEEP_STEP`. tokio's timers run on `CLOCK_MONOTONIC`,
    /// which stands still while the machine is suspended; one long sleep would therefore end
    /// late by the whole suspension. Looking at `CLOCK_BOOTTIME` again after every step bounds
    /// that lateness. Cancel-safe: the future holds no state but the deadline.
    async fn sleep_until(&self, deadline: tenure_core::Instant) {
        loop {
            let now = self.now_nanos();
            if now >= deadline.as_nanos() {
                return;
            }
            let remaining = std::time::Duration::from_nanos(deadline.as_nanos() - now);
            tokio::time::sleep(remaining.min(MAX_SLEEP_STEP)).await;
        }
    }
}

/// The longest single timer sleep of the driver (see `sleep_until`); the same cap as the
/// deadline guard's `MAX_POLL_WAIT`.
pub const MAX_SLEEP_STEP: std::time::Duration = std::time::Duration::from_millis(100);

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn timespec(tv_sec: i64, tv_nsec: i64) -> Timespec {
        Timespec {
            tv_sec,
            tv_nsec: tv_nsec as _,
        }
    }

    #[test]
    fn converts_readings_to_nanoseconds() {
        assert_eq!(timespec_to_nanos(timespec(0, 0)), 0);
        assert_eq!(timespec_to_nanos(timespec(0, 1)), 1);
        assert_eq!(timespec_to_nanos(timespec(1, 0)), 1_000_000_000);
        assert_eq!(timespec_to_nanos(timespec(3, 999_999_999)), 3_999_999_999);
    }

    #[test]
    fn clamps_impossible_readings_instead_of_wrapping() {
        // Negative fields would wrap to enormous instants if cast with `as`.
        assert_eq!(timespec_to_nanos(timespec(-1, 0)), 0);
        assert_eq!(timespec_to_nanos(timespec(2, -5)), 2_000_000_000);
        // A nanosecond field past one second is clamped, not carried into the seconds.
        assert_eq!(timespec_to_nanos(timespec(0, 5_000_000_000)), 999_999_999);
        // Beyond u64 range the reading saturates.
        assert_eq!(timespec_to_nanos(timespec(i64::MAX, 999_999_999)), u64::MAX);
    }

    #[test]
    fn never_goes_backwards() {
        let clock = BootClock::new();
        let mut previous = clock.now_nanos();
        for _ in 0..10_000 {
            let now = clock.now_nanos();
            assert!(
                now >= previous,
                "boot clock went back from {previous} to {now}"
            );
            previous = now;
        }
    }

    #[test]
    fn advances_at_least_as_far_as_a_sleep() {
        // A sleep of d guarantees at least d of real time passed; BOOTTIME must show it all.
        let clock = BootClock::new();
        let sleep = Duration::from_millis(20);
        let before = clock.now_nanos();
        std::thread::sleep(sleep);
        let after = clock.now_nanos();
        assert!(after - before >= sleep.as_nanos() as u64);
    }

    #[test]
    fn counts_at_least_what_monotonic_counts() {
        // BOOTTIME = MONOTONIC + time suspended, so a BOOTTIME reading taken after a
        // MONOTONIC one is never smaller.
        let monotonic = timespec_to_nanos(clock_gettime(ClockId::Monotonic));
        let boottime = BootClock::new().now_nanos();
        assert!(
            boottime >= monotonic,
            "boottime {boottime} < monotonic {monotonic}"
        );
    }
}
