//! Translating the settings of `tenure run` into the core's [`Config`]: the timing defaults
//! (the core's own, except the stop grace, which only the binary has), the stop margin, and the
//! core's errors worded with the flags an operator sets.
//!
//! # Stop grace and stop margin
//!
//! `--stop-grace` is what the daemon gets between SIGTERM and SIGKILL. The core's stop margin
//! (how long before its lease ends the leader stops acting) must cover the deadline guard's
//! whole stop sequence, so it is `--stop-grace + STOP_RESERVE`: the guard sends SIGTERM at the
//! acting deadline, SIGKILL `--stop-grace` later, and the reserve covers the kernel ending the
//! group after SIGKILL (`KILL_AFTER`) plus the guard's wake-up latency. So the group is dead
//! before the lease can end.

use std::sync::Arc;
use std::time::Duration;

use tenure_core::{Config, ConfigParams, Param, ParamNames, TimingParams};

use super::{error, SettingsError};
use crate::guard::MAX_GUARD_WAIT;
use crate::members::Members;

/// Default lease: crash failover takes about one lease (protocol: Defaults).
pub const DEFAULT_LEASE: Duration = std_duration(tenure_core::DEFAULT_LEASE_DURATION);
/// Default renewal period at the default lease: eight renewals per lease
/// ([`heartbeat_for`] derives it for any lease).
pub const DEFAULT_HEARTBEAT: Duration = std_duration(tenure_core::DEFAULT_HEARTBEAT_INTERVAL);
/// Default drift bound ρ.
pub const DEFAULT_MAX_DRIFT: f64 = tenure_core::DEFAULT_MAX_DRIFT;
/// Default SIGTERM-to-SIGKILL grace of the daemon at the default lease ([`stop_grace_for`]
/// derives it for any lease). The binary's own: the core knows only the stop margin it leads to.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_millis(500);
/// Default restart budget of a daemon that exits on its own.
pub const DEFAULT_MAX_CHILD_RESTARTS: u32 = 3;
/// How long the guard waits for the kernel to end the group after SIGKILL.
pub const KILL_AFTER: Duration = Duration::from_millis(100);
/// The part of the stop margin beyond `--stop-grace`: `KILL_AFTER` plus 50 ms for the guard
/// to wake up at the deadline on a busy machine.
pub const STOP_RESERVE: Duration = Duration::from_millis(150);

const _: () = assert!(
    KILL_AFTER.as_nanos() < STOP_RESERVE.as_nanos(),
    "the reserve covers the kernel's SIGKILL and the guard's wake-up"
);
const _: () = assert!(
    DEFAULT_STOP_GRACE.as_nanos() <= MAX_GUARD_WAIT.as_nanos(),
    "the default stop grace is one the guard accepts"
);
const _: () = assert!(
    stop_grace_for(DEFAULT_LEASE, DEFAULT_HEARTBEAT, DEFAULT_MAX_DRIFT).as_nanos()
        == DEFAULT_STOP_GRACE.as_nanos()
        && heartbeat_for(DEFAULT_LEASE).as_nanos() == DEFAULT_HEARTBEAT.as_nanos(),
    "the default lease derives the default heartbeat and stop grace, as before they were derived"
);
const _: () = assert!(
    timing(
        DEFAULT_LEASE,
        DEFAULT_HEARTBEAT,
        DEFAULT_MAX_DRIFT,
        DEFAULT_STOP_GRACE
    )
    .check()
    .is_ok(),
    "the binary's defaults pass the core's rules"
);

/// The core's configuration for these settings, or an error in the operator's terms: the
/// core's own wording, with the flags for names.
pub(super) fn core_config(
    members: &Members,
    lease: Duration,
    heartbeat: Duration,
    max_drift: f64,
    stop_grace: Duration,
) -> Result<Arc<Config>, SettingsError> {
    if stop_grace > MAX_GUARD_WAIT {
        return Err(error(format!(
            "--stop-grace {} is longer than the maximum of one hour",
            human(stop_grace)
        )));
    }
    let timing = timing(lease, heartbeat, max_drift, stop_grace);
    // The update fills `variant`, which exists only when cargo's feature unification compiles
    // tenure-core with `broken-variants` (a workspace test build); it is then the correct one.
    #[allow(clippy::needless_update)]
    let params = ConfigParams {
        members: members.ids(),
        lease_duration: timing.lease_duration,
        heartbeat_interval: timing.heartbeat_interval,
        max_drift: timing.max_drift,
        stop_margin: timing.stop_margin,
        election_jitter_max: timing.election_jitter_max,
        // protocol: Election timing. The step follows the lease like the jitter.
        election_step: ConfigParams::election_step_for(timing.lease_duration),
        ..ConfigParams::default()
    };
    Config::new(params)
        .map(Arc::new)
        .map_err(|problem| error(problem.display_with(&Flags).to_string()))
}

/// The heartbeat when `--heartbeat` is not given: the core's share of the lease, an eighth.
pub const fn heartbeat_for(lease: Duration) -> Duration {
    std_duration(ConfigParams::heartbeat_interval_for(core_duration(lease)))
}

/// The stop grace when `--stop-grace` is not given: a quarter of the lease, but at most half
/// of what the held lease leaves after the SIGKILL reserve and one heartbeat, and at most the
/// guard's longest wait. So one `--lease` gives a consistent timing from 250 ms to a minute:
/// the acting window (lease held − stop grace − reserve) stays above the heartbeat by at least
/// the same again, and at the default 2 s lease this is the 500 ms the default has always been
/// (docs/operations.md: Tuning). Zero when the lease cannot even cover the reserve; the core
/// then refuses the configuration with its own error.
pub const fn stop_grace_for(lease: Duration, heartbeat: Duration, max_drift: f64) -> Duration {
    let hold = tenure_core::lease_hold_for(core_duration(lease), max_drift).as_nanos() as u128;
    let budget = hold
        .saturating_sub(STOP_RESERVE.as_nanos())
        .saturating_sub(heartbeat.as_nanos());
    let mut grace = lease.as_nanos() / STOP_GRACE_LEASE_DIVISOR;
    if grace > budget / 2 {
        grace = budget / 2;
    }
    if grace > MAX_GUARD_WAIT.as_nanos() {
        grace = MAX_GUARD_WAIT.as_nanos();
    }
    // At most an hour, so it fits in a u64 of nanoseconds.
    Duration::from_nanos(grace as u64)
}

/// The derived stop grace is at most this fraction of the lease.
const STOP_GRACE_LEASE_DIVISOR: u128 = 4;

/// A duration as an operator writes it (`2s`, `250ms`, `1s 960ms 396us 39ns`).
pub fn human(duration: Duration) -> String {
    // Sub-millisecond detail is noise in these messages.
    let millis = Duration::from_millis(duration.as_millis() as u64);
    let shown = if millis.is_zero() { duration } else { millis };
    humantime::format_duration(shown).to_string()
}

/// The core's timing for these settings: the stop margin is the stop grace plus
/// [`STOP_RESERVE`], and the election jitter is the core's share of the lease. A `const fn`, so
/// that the defaults are checked against the core's rules at compile time.
const fn timing(
    lease: Duration,
    heartbeat: Duration,
    max_drift: f64,
    stop_grace: Duration,
) -> TimingParams {
    let lease_duration = core_duration(lease);
    TimingParams {
        lease_duration,
        heartbeat_interval: core_duration(heartbeat),
        max_drift,
        stop_margin: core_duration(stop_grace.saturating_add(STOP_RESERVE)),
        election_jitter_max: lease_duration
            .mul_ratio(1, tenure_core::ELECTION_JITTER_LEASE_DIVISOR),
    }
}

/// A std duration as the core's, saturating as `From` does (which is not a `const fn`).
const fn core_duration(duration: Duration) -> tenure_core::Duration {
    let nanos = duration.as_nanos();
    if nanos > u64::MAX as u128 {
        tenure_core::Duration::from_nanos(u64::MAX)
    } else {
        tenure_core::Duration::from_nanos(nanos as u64)
    }
}

const fn std_duration(duration: tenure_core::Duration) -> Duration {
    Duration::from_nanos(duration.as_nanos())
}

/// The core's parameters as `tenure run` sets them: its flags, and its durations.
struct Flags;

impl ParamNames for Flags {
    fn name(&self, param: Param) -> String {
        match param {
            Param::Members => "the members (--id and --peer)",
            Param::LeaseDuration => "--lease",
            Param::HeartbeatInterval => "--heartbeat",
            Param::MaxDrift => "--max-drift",
            Param::StopMargin => "--stop-grace",
            Param::ElectionJitterMax => "the election jitter (a quarter of --lease)",
            Param::ElectionStep => "the election step (a hundredth of --lease, at most 100ms)",
        }
        .to_string()
    }

    fn duration(&self, duration: tenure_core::Duration) -> String {
        human(duration.into())
    }

    /// The stop margin is set through `--stop-grace`, so that is the value shown.
    fn setting(&self, param: Param, value: tenure_core::Duration) -> String {
        let value = Duration::from(value);
        match param {
            Param::StopMargin => format!(
                "{} {}",
                self.name(param),
                human(value.saturating_sub(STOP_RESERVE))
            ),
            _ => format!("{} {}", self.name(param), human(value)),
        }
    }

    fn derivation(&self, param: Param, value: tenure_core::Duration) -> String {
        match param {
            Param::StopMargin => format!(
                "--stop-grace + {} (the SIGKILL reserve) = {}",
                human(STOP_RESERVE),
                self.duration(value)
            ),
            _ => self.duration(value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_core_words_its_errors_with_the_flags() {
        let members = Members::new("n1", ["n2", "n3"]).unwrap();
        let refused = |lease, heartbeat, max_drift, stop_grace| {
            core_config(&members, lease, heartbeat, max_drift, stop_grace)
                .unwrap_err()
                .0
        };
        let second = Duration::from_secs(1);
        assert_eq!(
            refused(DEFAULT_LEASE, second, DEFAULT_MAX_DRIFT, DEFAULT_STOP_GRACE),
            "--heartbeat 1s must be less than a third of --lease 2s, so that a lease survives \
             lost heartbeats: lower --heartbeat or raise --lease"
        );
        assert_eq!(
            refused(DEFAULT_LEASE, DEFAULT_HEARTBEAT, 0.5, DEFAULT_STOP_GRACE),
            "--max-drift 0.5 is outside [0, 0.1]; it is the bound on clock-rate drift as a \
             fraction (0.01 = 1%)"
        );
        assert_eq!(
            refused(
                DEFAULT_LEASE,
                DEFAULT_HEARTBEAT,
                DEFAULT_MAX_DRIFT,
                Duration::from_millis(1_900)
            ),
            "--stop-grace 1s 900ms leaves the leader no time to act: the leader stops acting \
             --stop-grace + 150ms (the SIGKILL reserve) = 2s 50ms before its lease ends, and \
             that plus --heartbeat 250ms must be less than the lease held per renewal, 1s 960ms \
             (--lease 2s shortened for --max-drift 0.01). Lower --stop-grace or --heartbeat, \
             or raise --lease"
        );
        assert_eq!(
            refused(
                Duration::ZERO,
                DEFAULT_HEARTBEAT,
                DEFAULT_MAX_DRIFT,
                DEFAULT_STOP_GRACE
            ),
            "--lease must be longer than zero"
        );
        assert_eq!(
            refused(
                DEFAULT_LEASE,
                DEFAULT_HEARTBEAT,
                DEFAULT_MAX_DRIFT,
                MAX_GUARD_WAIT * 2
            ),
            "--stop-grace 2h is longer than the maximum of one hour"
        );
    }

    #[test]
    fn one_lease_derives_a_valid_timing_from_250_ms_to_a_minute() {
        let members = Members::new("n1", ["n2", "n3"]).unwrap();
        let shortest = Duration::from_millis(250);
        let longest = Duration::from_secs(60);
        // Every 10 ms across the range, then the bounds themselves, at the default drift and at
        // the largest the core accepts.
        let steps = (longest - shortest).as_millis() / 10;
        let leases = (0..=steps as u32)
            .map(|step| shortest + Duration::from_millis(10) * step)
            .chain([longest]);
        for lease in leases {
            for max_drift in [0.0, DEFAULT_MAX_DRIFT, 0.1] {
                let heartbeat = heartbeat_for(lease);
                let stop_grace = stop_grace_for(lease, heartbeat, max_drift);
                let config = core_config(&members, lease, heartbeat, max_drift, stop_grace)
                    .unwrap_or_else(|problem| {
                        panic!(
                            "--lease {} --max-drift {max_drift}: {}",
                            human(lease),
                            problem.0
                        )
                    });
                assert_eq!(heartbeat, lease / 8, "--lease {}", human(lease));
                assert!(stop_grace <= lease / 4, "--lease {}", human(lease));
                assert!(!stop_grace.is_zero(), "--lease {}", human(lease));
                // The acting window exceeds the heartbeat, with the margin the derivation keeps.
                let hold = Duration::from(config.lease_hold());
                let acting_window = hold - stop_grace - STOP_RESERVE;
                assert!(acting_window > heartbeat, "--lease {}", human(lease));
            }
        }

        // The default lease derives exactly the defaults, and the long end its quarter.
        assert_eq!(heartbeat_for(DEFAULT_LEASE), Duration::from_millis(250));
        assert_eq!(
            stop_grace_for(DEFAULT_LEASE, DEFAULT_HEARTBEAT, DEFAULT_MAX_DRIFT),
            Duration::from_millis(500)
        );
        assert_eq!(
            stop_grace_for(longest, heartbeat_for(longest), DEFAULT_MAX_DRIFT),
            Duration::from_secs(15)
        );
        // A lease too short for the SIGKILL reserve derives no grace, and the core refuses it.
        let tiny = Duration::from_millis(100);
        assert_eq!(
            stop_grace_for(tiny, heartbeat_for(tiny), DEFAULT_MAX_DRIFT),
            Duration::ZERO
        );
    }

    #[test]
    fn the_defaults_are_the_cores_but_for_the_stop_margin() {
        let members = Members::new("n1", ["n2", "n3"]).unwrap();
        let config = core_config(
            &members,
            DEFAULT_LEASE,
            DEFAULT_HEARTBEAT,
            DEFAULT_MAX_DRIFT,
            DEFAULT_STOP_GRACE,
        )
        .expect("the defaults are valid");
        let core = ConfigParams::default();
        assert_eq!(config.lease_duration(), core.lease_duration);
        assert_eq!(config.heartbeat_interval(), core.heartbeat_interval);
        assert_eq!(config.max_drift_ppm(), tenure_core::DEFAULT_MAX_DRIFT_PPM);
        assert_eq!(config.election_jitter_max(), core.election_jitter_max);
        assert_eq!(
            config.stop_margin(),
            (DEFAULT_STOP_GRACE + STOP_RESERVE).into()
        );
    }
}
