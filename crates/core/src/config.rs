//! The cluster configuration. A [`Config`] that exists is valid: [`Config::new`] parses
//! [`ConfigParams`] and names the field and the rule of anything it rejects.

use std::collections::BTreeSet;

use crate::config_error::ConfigError;
use crate::id::NodeId;
use crate::time::Duration;
use crate::variant::Variant;

/// The largest cluster tenure accepts. Production uses 3 or 5; beyond 9 voters every election
/// and every renewal only gets slower and nothing gets safer.
pub const MAX_CLUSTER_SIZE: usize = 9;

/// The largest drift bound ρ accepted, as parts per million (10 %). A clock worse than that is
/// broken, not drifting, and leases computed against it would be nearly useless.
pub const MAX_DRIFT_PPM: u32 = 100_000;

/// One million: ρ is held in parts per million so that all lease arithmetic is integer.
pub const PPM: u64 = 1_000_000;

/// How a follower times the first election after a leader is gone (protocol: Election
/// timing). Both are safe: votes, promises and leases guard every term, whatever the timing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ElectionOrder {
    /// `rank × election_step` after the promise ends, the rank counted round the ring after
    /// the last leader: the best-placed live node starts at once. Candidates ask again every
    /// half step; a failed round falls back to random jitter.
    #[default]
    Ranked,
    /// A random jitter in `[0, election_jitter_max]` every time, and a round that fails is
    /// retried only after its timeout, as in Raft.
    Random,
}

/// The default lease L (see [`ConfigParams::default`] for why each default is what it is).
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(2);
/// The default renewal period: eight renewals per lease.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(250);
/// The default drift bound ρ in parts per million: 1 %.
pub const DEFAULT_MAX_DRIFT_PPM: u32 = 10_000;
/// The default drift bound ρ as a fraction, 0.01.
pub const DEFAULT_MAX_DRIFT: f64 = DEFAULT_MAX_DRIFT_PPM as f64 / PPM as f64;
/// The default stop margin.
pub const DEFAULT_STOP_MARGIN: Duration = Duration::from_millis(500);
/// The default election jitter is this fraction of the lease: a quarter.
pub const ELECTION_JITTER_LEASE_DIVISOR: u64 = 4;
/// The default heartbeat is this fraction of the lease ([`ConfigParams::heartbeat_interval_for`]).
pub const HEARTBEAT_LEASE_DIVISOR: u64 = 8;
/// The default upper bound of the election jitter: a quarter of the default lease.
pub const DEFAULT_ELECTION_JITTER_MAX: Duration =
    DEFAULT_LEASE_DURATION.mul_ratio(1, ELECTION_JITTER_LEASE_DIVISOR);

/// The default delay between election ranks: a hundredth of the default lease
/// ([`ConfigParams::election_step_for`]; protocol: Election timing).
pub const DEFAULT_ELECTION_STEP: Duration = Duration::from_millis(20);

/// The default timing, as [`ConfigParams::default`] has it.
pub const DEFAULT_TIMING: TimingParams = TimingParams {
    lease_duration: DEFAULT_LEASE_DURATION,
    heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
    max_drift: DEFAULT_MAX_DRIFT,
    stop_margin: DEFAULT_STOP_MARGIN,
    election_jitter_max: DEFAULT_ELECTION_JITTER_MAX,
};

const _: () = assert!(
    ConfigParams::heartbeat_interval_for(DEFAULT_LEASE_DURATION).as_nanos()
        == DEFAULT_HEARTBEAT_INTERVAL.as_nanos(),
    "the default heartbeat is the one the default lease derives"
);
const _: () = assert!(
    DEFAULT_TIMING.check().is_ok(),
    "the defaults pass the rules of Config::new"
);
const _: () = assert!(
    (MAX_DRIFT_PPM as u64) < PPM,
    "a lease shortened for the largest drift is still a lease"
);
const _: () = assert!(
    MAX_CLUSTER_SIZE >= 1 && MAX_CLUSTER_SIZE <= u32::MAX as usize,
    "node ids of every member fit in a u32"
);

/// The raw, unchecked configuration. Start from [`ConfigParams::default`] and override fields.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigParams {
    /// The voters, including this node. Static membership (protocol: Members, terms, votes).
    pub members: Vec<NodeId>,
    /// L: how long a follower's promise lasts after it accepts a heartbeat.
    pub lease_duration: Duration,
    /// How often the leader renews its lease.
    pub heartbeat_interval: Duration,
    /// ρ, the bound on clock-rate drift, as a fraction (0.01 = 1 %).
    pub max_drift: f64,
    /// How long before its lease ends the leader stops acting: the time the supervisor needs to
    /// stop the child for sure (SIGTERM, grace, SIGKILL).
    pub stop_margin: Duration,
    /// After a failed election round, a follower waits a random delay in
    /// `[0, election_jitter_max]` before it tries again, so that nodes whose rounds failed
    /// together do not split the vote forever (protocol: Election timing).
    pub election_jitter_max: Duration,
    /// The first election after a leader is gone starts `rank × election_step` after the
    /// follower's promise ends, where `rank` is the follower's place among the members after
    /// the leader it last heard (protocol: Election timing). A few network round trips, so
    /// that the best-placed node has won before the next one starts. Candidates also re-send
    /// their requests to members that have not granted every half step.
    pub election_step: Duration,
    /// How a follower times the first election after a leader is gone. Production runs
    /// [`ElectionOrder::Ranked`]; the model checker also runs [`ElectionOrder::Random`], where
    /// its adversary picks every delay, because safety must not depend on election timing.
    pub election_order: ElectionOrder,
    /// Which deliberately broken variant of the protocol to run (tests only).
    #[cfg(feature = "broken-variants")]
    pub variant: Variant,
}

/// Defaults, and why:
/// - lease 2 s: crash failover is about one lease, so 2 s beats Kubernetes' 15 s and consul's
///   ~15–90 s by far, while staying well above the scheduling hiccups (GC, CPU starvation,
///   page faults) of a busy VM that would otherwise cost needless failovers;
/// - heartbeat 250 ms: eight renewals per lease, so a leader rides out several lost datagrams
///   before its acting window closes, at four datagrams per second per peer;
/// - ρ = 1 %: quartz clocks drift by tens of ppm, NTP slewing by at most 0.05 %; 1 % is a wide
///   margin that costs only 2 % of the lease;
/// - stop margin 500 ms: the supervisor's SIGTERM grace plus SIGKILL and reaping on a loaded
///   machine, and still 1.46 s of acting per 1.96 s lease;
/// - election step 20 ms: the best-placed follower campaigns the instant its promise ends, and
///   the next one only 20 ms later, which is many LAN round trips and a vote's fsync, so the
///   first has normally won by then; candidates re-send unanswered requests every 10 ms, which
///   also covers a voter whose promise ends a little after the candidate's;
/// - jitter up to 500 ms, only after a failed round: a quarter of the lease; with LAN round
///   trips far below a millisecond, two followers almost never draw within one round trip of
///   each other, so repeated split votes are rare.
impl Default for ConfigParams {
    fn default() -> ConfigParams {
        ConfigParams {
            members: vec![NodeId(0)],
            lease_duration: DEFAULT_TIMING.lease_duration,
            heartbeat_interval: DEFAULT_TIMING.heartbeat_interval,
            max_drift: DEFAULT_TIMING.max_drift,
            stop_margin: DEFAULT_TIMING.stop_margin,
            election_jitter_max: DEFAULT_TIMING.election_jitter_max,
            election_step: DEFAULT_ELECTION_STEP,
            election_order: ElectionOrder::Ranked,
            #[cfg(feature = "broken-variants")]
            variant: Variant::Correct,
        }
    }
}

impl ConfigParams {
    /// The election step for a lease of `lease_duration` when none is given: a hundredth of
    /// the lease (20 ms at the default 2 s), at most 100 ms. Long leases are for slow or
    /// overloaded machines, not slower networks, so the step stops growing where it already
    /// spans many round trips and fsyncs (protocol: Election timing).
    pub fn election_step_for(lease_duration: Duration) -> Duration {
        let hundredth = lease_duration.mul_ratio(1, 100);
        let ceiling = Duration::from_millis(100);
        if hundredth.as_nanos() > ceiling.as_nanos() {
            ceiling
        } else {
            Duration::from_nanos(hundredth.as_nanos().max(1))
        }
    }

    /// The heartbeat interval for a lease of `lease_duration` when none is given: an eighth of
    /// the lease (250 ms at the default 2 s), so that one lease setting gives the same eight
    /// renewals per lease from 250 ms to a minute (protocol: Defaults). Never zero.
    #[must_use]
    pub const fn heartbeat_interval_for(lease_duration: Duration) -> Duration {
        let eighth = lease_duration.mul_ratio(1, HEARTBEAT_LEASE_DIVISOR);
        if eighth.as_nanos() == 0 {
            Duration::from_nanos(1)
        } else {
            eighth
        }
    }

    /// The timing parameters, which [`TimingParams::check`] judges.
    #[must_use]
    pub fn timing(&self) -> TimingParams {
        TimingParams {
            lease_duration: self.lease_duration,
            heartbeat_interval: self.heartbeat_interval,
            max_drift: self.max_drift,
            stop_margin: self.stop_margin,
            election_jitter_max: self.election_jitter_max,
        }
    }
}

/// The timing parameters of a [`ConfigParams`]. Their rules are a `const fn`, so that every
/// set of defaults (the core's, the `tenure` binary's) is checked against the very rules of
/// [`Config::new`] at compile time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimingParams {
    pub lease_duration: Duration,
    pub heartbeat_interval: Duration,
    pub max_drift: f64,
    pub stop_margin: Duration,
    pub election_jitter_max: Duration,
}

/// What the timing rules derive from valid parameters.
struct TimingDerived {
    max_drift_ppm: u32,
    lease_hold: Duration,
}

impl TimingParams {
    /// Whether the timing passes the rules of [`Config::new`], or the first rule it breaks,
    /// in the order `Config::new` checks them.
    pub const fn check(&self) -> Result<(), ConfigError> {
        match self.derive() {
            Ok(_) => Ok(()),
            Err(error) => Err(error),
        }
    }

    const fn derive(&self) -> Result<TimingDerived, ConfigError> {
        let lease = self.lease_duration.as_nanos();
        let heartbeat = self.heartbeat_interval.as_nanos();
        if lease == 0 {
            return Err(ConfigError::ZeroLease);
        }
        if heartbeat == 0 {
            return Err(ConfigError::ZeroHeartbeat);
        }
        if heartbeat.saturating_mul(3) >= lease {
            return Err(ConfigError::HeartbeatTooSlow {
                heartbeat_interval: self.heartbeat_interval,
                lease_duration: self.lease_duration,
            });
        }
        // Both comparisons are false for NaN, so NaN is rejected too.
        let max_drift = self.max_drift;
        let in_range = max_drift >= 0.0 && max_drift <= MAX_DRIFT_PPM as f64 / PPM as f64;
        if !in_range {
            return Err(ConfigError::DriftOutOfRange { max_drift });
        }
        let max_drift_ppm = round_ppm(max_drift);
        let lease_hold = lease_hold(self.lease_duration, max_drift_ppm);
        if self.stop_margin.as_nanos().saturating_add(heartbeat) >= lease_hold.as_nanos() {
            return Err(ConfigError::NoActingWindow {
                stop_margin: self.stop_margin,
                lease_hold,
                heartbeat_interval: self.heartbeat_interval,
                lease_duration: self.lease_duration,
                max_drift,
            });
        }
        if self.election_jitter_max.as_nanos() > lease {
            return Err(ConfigError::JitterTooLarge {
                election_jitter_max: self.election_jitter_max,
                lease_duration: self.lease_duration,
            });
        }
        Ok(TimingDerived {
            max_drift_ppm,
            lease_hold,
        })
    }
}

/// A valid configuration, shared by every node of a cluster.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    members: BTreeSet<NodeId>,
    lease_duration: Duration,
    heartbeat_interval: Duration,
    max_drift_ppm: u32,
    stop_margin: Duration,
    election_jitter_max: Duration,
    election_step: Duration,
    election_order: ElectionOrder,
    lease_hold: Duration,
    #[cfg(feature = "broken-variants")]
    variant: Variant,
}

impl Config {
    /// Parses `params`, or names the field and the rule it breaks.
    pub fn new(params: ConfigParams) -> Result<Config, ConfigError> {
        if params.members.is_empty() {
            return Err(ConfigError::NoMembers);
        }
        if params.members.len() > MAX_CLUSTER_SIZE {
            return Err(ConfigError::TooManyMembers {
                count: params.members.len(),
            });
        }
        let mut members = BTreeSet::new();
        for &id in &params.members {
            if !members.insert(id) {
                return Err(ConfigError::DuplicateMember { id });
            }
        }
        let TimingDerived {
            max_drift_ppm,
            lease_hold,
        } = params.timing().derive()?;
        let last_rank = params.members.len() as u64 - 1;
        if params.election_step == Duration::ZERO
            || params.election_step.as_nanos().saturating_mul(last_rank)
                > params.election_jitter_max.as_nanos()
        {
            return Err(ConfigError::ElectionStepOutOfRange {
                election_step: params.election_step,
                members: params.members.len(),
                election_jitter_max: params.election_jitter_max,
            });
        }
        Ok(Config {
            members,
            lease_duration: params.lease_duration,
            heartbeat_interval: params.heartbeat_interval,
            max_drift_ppm,
            stop_margin: params.stop_margin,
            election_jitter_max: params.election_jitter_max,
            election_step: params.election_step,
            election_order: params.election_order,
            lease_hold,
            #[cfg(feature = "broken-variants")]
            variant: params.variant,
        })
    }

    /// The voters, in ascending id order.
    #[must_use]
    pub fn members(&self) -> &BTreeSet<NodeId> {
        &self.members
    }

    /// floor(N/2)+1.
    #[must_use]
    pub fn majority(&self) -> usize {
        self.members.len() / 2 + 1
    }

    /// L.
    #[must_use]
    pub fn lease_duration(&self) -> Duration {
        self.lease_duration
    }

    /// The leader's renewal period.
    #[must_use]
    pub fn heartbeat_interval(&self) -> Duration {
        self.heartbeat_interval
    }

    /// ρ in parts per million.
    #[must_use]
    pub fn max_drift_ppm(&self) -> u32 {
        self.max_drift_ppm
    }

    /// How long before the lease ends the leader stops acting.
    #[must_use]
    pub fn stop_margin(&self) -> Duration {
        self.stop_margin
    }

    /// The upper bound of the random election delay after a failed round.
    #[must_use]
    pub fn election_jitter_max(&self) -> Duration {
        self.election_jitter_max
    }

    /// The delay between one election rank and the next (protocol: Election timing).
    pub fn election_step(&self) -> Duration {
        self.election_step
    }

    /// How the first election after a leader is timed.
    pub fn election_order(&self) -> ElectionOrder {
        self.election_order
    }

    /// How often a pre-candidate or candidate re-sends its request to the members that have
    /// not granted it: half a step, so that a voter whose promise ends just after the
    /// candidate's own, or who handles a `Resign` just after the vote request, is asked again
    /// before the next rank starts (protocol: Election timing).
    pub fn election_resend_interval(&self) -> Duration {
        Duration::from_nanos((self.election_step.as_nanos() / 2).max(1))
    }

    /// How long, on its own clock, the leader holds a lease after sending the heartbeat that a
    /// majority acknowledged: L·(1−ρ)/(1+ρ) (protocol: Leases).
    #[must_use]
    pub fn lease_hold(&self) -> Duration {
        self.lease_hold
    }

    /// How long a pre-vote or vote round waits for a majority before it gives up and retries
    /// after a fresh jitter: two heartbeat intervals, far more than a round trip yet short
    /// enough that a lost reply costs little failover time.
    #[must_use]
    pub fn election_round_timeout(&self) -> Duration {
        self.heartbeat_interval + self.heartbeat_interval
    }

    /// Which broken variant this configuration runs.
    #[cfg(feature = "broken-variants")]
    #[must_use]
    pub fn variant(&self) -> Variant {
        self.variant
    }

    /// Whether the configuration runs `variant`. Without the `broken-variants` feature this is
    /// a constant `false` and the broken branches compile away.
    #[inline]
    pub(crate) fn breaks(&self, variant: Variant) -> bool {
        #[cfg(feature = "broken-variants")]
        {
            self.variant == variant
        }
        #[cfg(not(feature = "broken-variants"))]
        {
            let _ = variant;
            false
        }
    }
}

/// ρ in parts per million, rounded half away from zero as `f64::round` does (which is not a
/// `const fn`). `max_drift` is in [0, 0.1], so the product is in [0, 100 000] and exact after
/// rounding; `product - floor` is exact too (Sterbenz).
const fn round_ppm(max_drift: f64) -> u32 {
    let product = max_drift * PPM as f64;
    let floor = product as u32;
    if product - floor as f64 >= 0.5 {
        floor + 1
    } else {
        floor
    }
}

/// How long the leader holds a lease of `lease_duration` per renewal under the drift bound
/// `max_drift` (a fraction, clamped to [0, 0.1]): L·(1−ρ)/(1+ρ), as [`Config::lease_hold`]
/// computes it once the configuration is valid (protocol: Leases). For callers that derive
/// other timing from the lease before they build a `Config`.
#[must_use]
pub const fn lease_hold_for(lease_duration: Duration, max_drift: f64) -> Duration {
    let max_drift_ppm = if max_drift >= 0.0 && max_drift <= MAX_DRIFT_PPM as f64 / PPM as f64 {
        round_ppm(max_drift)
    } else if max_drift > 0.0 {
        MAX_DRIFT_PPM
    } else {
        0
    };
    lease_hold(lease_duration, max_drift_ppm)
}

/// L·(1−ρ)/(1+ρ), rounded down so the leader never claims more than the rule allows.
const fn lease_hold(lease_duration: Duration, max_drift_ppm: u32) -> Duration {
    let drift = max_drift_ppm as u64;
    lease_duration.mul_ratio(PPM - drift, PPM + drift)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config_error::{Param, ParamNames};

    fn params() -> ConfigParams {
        ConfigParams {
            members: vec![NodeId(1), NodeId(2), NodeId(3)],
            ..ConfigParams::default()
        }
    }

    #[test]
    fn the_heartbeat_follows_the_lease_by_an_eighth() {
        let heartbeat = ConfigParams::heartbeat_interval_for;
        assert_eq!(
            heartbeat(DEFAULT_LEASE_DURATION),
            DEFAULT_HEARTBEAT_INTERVAL
        );
        assert_eq!(
            heartbeat(Duration::from_secs(60)),
            Duration::from_millis(7_500)
        );
        assert_eq!(
            heartbeat(Duration::from_millis(250)),
            Duration::from_nanos(31_250_000)
        );
        assert_eq!(heartbeat(Duration::from_nanos(3)), Duration::from_nanos(1));
        assert_eq!(
            lease_hold_for(DEFAULT_LEASE_DURATION, DEFAULT_MAX_DRIFT),
            lease_hold(DEFAULT_LEASE_DURATION, DEFAULT_MAX_DRIFT_PPM)
        );
        assert_eq!(
            lease_hold_for(DEFAULT_LEASE_DURATION, 1.0),
            lease_hold(DEFAULT_LEASE_DURATION, MAX_DRIFT_PPM)
        );
    }

    #[test]
    fn defaults_are_valid_and_hold_the_lease_for_l_times_one_minus_rho_over_one_plus_rho() {
        let config = Config::new(params()).expect("defaults are valid");
        assert_eq!(config.majority(), 2);
        assert_eq!(config.max_drift_ppm(), 10_000);
        assert_eq!(config.lease_hold(), Duration::from_nanos(1_960_396_039));
    }

    #[test]
    fn each_rule_names_its_field() {
        let cases: Vec<(ConfigParams, &str)> = vec![
            (
                ConfigParams {
                    members: vec![],
                    ..params()
                },
                "members: the cluster needs",
            ),
            (
                ConfigParams {
                    members: (0..10).map(NodeId).collect(),
                    ..params()
                },
                "maximum of 9",
            ),
            (
                ConfigParams {
                    members: vec![NodeId(1), NodeId(1)],
                    ..params()
                },
                "listed twice",
            ),
            (
                ConfigParams {
                    heartbeat_interval: Duration::from_millis(700),
                    ..params()
                },
                "heartbeat_interval 700ms must be less than a third of lease_duration 2s",
            ),
            (
                ConfigParams {
                    max_drift: -0.01,
                    ..params()
                },
                "max_drift -0.01 is outside",
            ),
            (
                ConfigParams {
                    max_drift: 0.2,
                    ..params()
                },
                "max_drift 0.2 is outside",
            ),
            (
                ConfigParams {
                    max_drift: f64::NAN,
                    ..params()
                },
                "max_drift NaN is outside",
            ),
            (
                ConfigParams {
                    stop_margin: Duration::from_millis(1_800),
                    ..params()
                },
                "stop_margin 1800ms leaves the leader no time to act",
            ),
            (
                ConfigParams {
                    lease_duration: Duration::ZERO,
                    ..params()
                },
                "lease_duration must be longer than zero",
            ),
            (
                ConfigParams {
                    election_jitter_max: Duration::from_secs(3),
                    ..params()
                },
                "election_jitter_max 3s is longer than lease_duration 2s",
            ),
        ];
        for (params, expected) in cases {
            let error = Config::new(params.clone()).expect_err("must be rejected");
            let message = error.to_string();
            assert!(
                message.contains(expected),
                "{params:?}: {message:?} lacks {expected:?}"
            );
        }
    }

    #[test]
    fn the_timing_rules_are_the_same_at_compile_time_and_at_run_time() {
        // TimingParams::check is what the defaults are checked with in `const _` assertions; it
        // must refuse exactly what Config::new refuses, with the same error.
        let cases = [
            params(),
            ConfigParams {
                lease_duration: Duration::ZERO,
                ..params()
            },
            ConfigParams {
                heartbeat_interval: Duration::from_millis(667),
                ..params()
            },
            ConfigParams {
                max_drift: 0.100_000_1,
                ..params()
            },
            ConfigParams {
                stop_margin: Duration::from_millis(1_711),
                ..params()
            },
            ConfigParams {
                election_jitter_max: Duration::from_nanos(2_000_000_001),
                ..params()
            },
        ];
        for params in cases {
            assert_eq!(
                params.timing().check(),
                Config::new(params.clone()).map(drop),
                "{params:?}"
            );
        }
        assert_eq!(DEFAULT_TIMING, ConfigParams::default().timing());
    }

    #[test]
    fn drift_rounds_to_ppm_as_f64_round_does() {
        // round_ppm replaces f64::round (not a const fn) in the const rules.
        for ppm in 0..=MAX_DRIFT_PPM {
            for offset in [0.0, 0.25, 0.499_999, 0.5, 0.500_001, 0.75] {
                let drift = (f64::from(ppm) + offset) / PPM as f64;
                if drift > 0.1 {
                    continue;
                }
                let expected = (drift * PPM as f64).round() as u32;
                assert_eq!(round_ppm(drift), expected, "{drift}");
            }
        }
    }

    #[test]
    fn a_reader_words_the_errors_in_its_own_names() {
        struct Flags;
        impl ParamNames for Flags {
            fn name(&self, param: Param) -> String {
                format!("--{}", param.field_name().replace('_', "-"))
            }
            fn setting(&self, param: Param, value: Duration) -> String {
                match param {
                    Param::StopMargin => format!("--grace {}", value.saturating_sub(MARGIN)),
                    _ => format!("{} {value}", self.name(param)),
                }
            }
            fn derivation(&self, _param: Param, value: Duration) -> String {
                format!("{} (--grace + {MARGIN})", self.duration(value))
            }
        }
        const MARGIN: Duration = Duration::from_millis(100);
        let error = Config::new(ConfigParams {
            stop_margin: Duration::from_millis(1_800),
            ..params()
        })
        .expect_err("no acting window");
        assert_eq!(error.param(), Param::StopMargin);
        assert_eq!(
            error.display_with(&Flags).to_string(),
            "--grace 1700ms leaves the leader no time to act: the leader stops acting 1800ms \
             (--grace + 100ms) before its lease ends, and that plus --heartbeat-interval 250ms \
             must be less than the lease held per renewal, 1960396039ns (--lease-duration 2s \
             shortened for --max-drift 0.01). Lower --stop-margin or --heartbeat-interval, or \
             raise --lease-duration"
        );
    }

    #[test]
    fn drift_bounds_are_inclusive() {
        assert!(Config::new(ConfigParams {
            max_drift: 0.0,
            ..params()
        })
        .is_ok());
        let at_max = Config::new(ConfigParams {
            max_drift: 0.1,
            ..params()
        })
        .expect("0.1 is ok");
        assert_eq!(at_max.max_drift_ppm(), MAX_DRIFT_PPM);
    }
}
