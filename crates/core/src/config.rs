//! The cluster configuration. A [`Config`] that exists is valid: [`Config::new`] parses
//! [`ConfigParams`] and names the field and the rule of anything it rejects.

use std::collections::BTreeSet;
use std::fmt;

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

/// The raw, unchecked configuration. Start from [`ConfigParams::default`] and override fields.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigParams {
    /// The voters, including this node. Static membership (DESIGN: The protocol).
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
    /// Elections start after a random delay in `[0, election_jitter_max]`, so that followers
    /// whose promises end together do not split the vote forever.
    pub election_jitter_max: Duration,
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
/// - jitter up to 500 ms: a quarter of the lease; with LAN round trips far below a millisecond,
///   two followers almost never draw within one round trip of each other, so split votes are
///   rare, and the worst case still adds only a quarter lease to failover.
impl Default for ConfigParams {
    fn default() -> ConfigParams {
        ConfigParams {
            members: vec![NodeId(0)],
            lease_duration: Duration::from_secs(2),
            heartbeat_interval: Duration::from_millis(250),
            max_drift: 0.01,
            stop_margin: Duration::from_millis(500),
            election_jitter_max: Duration::from_millis(500),
            #[cfg(feature = "broken-variants")]
            variant: Variant::Correct,
        }
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
    lease_hold: Duration,
    #[cfg(feature = "broken-variants")]
    variant: Variant,
}

/// Why [`Config::new`] refused.
#[derive(Clone, Debug, PartialEq)]
pub enum ConfigError {
    /// `members` is empty.
    NoMembers,
    /// `members` has more than [`MAX_CLUSTER_SIZE`] entries.
    TooManyMembers { count: usize },
    /// `members` names a node twice.
    DuplicateMember { id: NodeId },
    /// `lease_duration` is zero.
    ZeroLease,
    /// `heartbeat_interval` is zero.
    ZeroHeartbeat,
    /// `heartbeat_interval` is not below a third of `lease_duration`.
    HeartbeatTooSlow {
        heartbeat_interval: Duration,
        lease_duration: Duration,
    },
    /// `max_drift` is outside [0, 0.1] or not a number.
    DriftOutOfRange { max_drift: f64 },
    /// `stop_margin` leaves no acting window.
    NoActingWindow {
        stop_margin: Duration,
        lease_hold: Duration,
        heartbeat_interval: Duration,
    },
    /// `election_jitter_max` is longer than the lease.
    JitterTooLarge {
        election_jitter_max: Duration,
        lease_duration: Duration,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NoMembers => {
                write!(f, "members: the cluster needs at least one member")
            }
            ConfigError::TooManyMembers { count } => write!(
                f,
                "members: {count} members is more than the maximum of {MAX_CLUSTER_SIZE}; \
                 use 3 or 5"
            ),
            ConfigError::DuplicateMember { id } => {
                write!(
                    f,
                    "members: {id} is listed twice; every member needs a distinct id"
                )
            }
            ConfigError::ZeroLease => write!(f, "lease_duration: must be greater than zero"),
            ConfigError::ZeroHeartbeat => {
                write!(f, "heartbeat_interval: must be greater than zero")
            }
            ConfigError::HeartbeatTooSlow {
                heartbeat_interval,
                lease_duration,
            } => write!(
                f,
                "heartbeat_interval: {heartbeat_interval} must be less than a third of \
                 lease_duration ({lease_duration}), so that a lease survives a lost heartbeat"
            ),
            ConfigError::DriftOutOfRange { max_drift } => write!(
                f,
                "max_drift: {max_drift} is outside [0, 0.1]; it is the bound on clock-rate \
                 drift as a fraction (0.01 = 1%)"
            ),
            ConfigError::NoActingWindow {
                stop_margin,
                lease_hold,
                heartbeat_interval,
            } => write!(
                f,
                "stop_margin: {stop_margin} leaves no acting window; the leader holds each \
                 renewal for {lease_hold} (lease shortened for drift), and stop_margin plus \
                 heartbeat_interval ({heartbeat_interval}) must be less than that"
            ),
            ConfigError::JitterTooLarge {
                election_jitter_max,
                lease_duration,
            } => write!(
                f,
                "election_jitter_max: {election_jitter_max} is longer than lease_duration \
                 ({lease_duration}); failover would be dominated by jitter"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

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
        if params.lease_duration == Duration::ZERO {
            return Err(ConfigError::ZeroLease);
        }
        if params.heartbeat_interval == Duration::ZERO {
            return Err(ConfigError::ZeroHeartbeat);
        }
        if params.heartbeat_interval.as_nanos().saturating_mul(3)
            >= params.lease_duration.as_nanos()
        {
            return Err(ConfigError::HeartbeatTooSlow {
                heartbeat_interval: params.heartbeat_interval,
                lease_duration: params.lease_duration,
            });
        }
        // `contains` is false for NaN, so NaN is rejected too.
        if !(0.0..=0.1).contains(&params.max_drift) {
            return Err(ConfigError::DriftOutOfRange {
                max_drift: params.max_drift,
            });
        }
        // In range, so the product is within [0, 100_000] and the cast is exact after rounding.
        let max_drift_ppm = (params.max_drift * PPM as f64).round() as u32;
        let lease_hold = lease_hold(params.lease_duration, max_drift_ppm);
        if params.stop_margin + params.heartbeat_interval >= lease_hold {
            return Err(ConfigError::NoActingWindow {
                stop_margin: params.stop_margin,
                lease_hold,
                heartbeat_interval: params.heartbeat_interval,
            });
        }
        if params.election_jitter_max > params.lease_duration {
            return Err(ConfigError::JitterTooLarge {
                election_jitter_max: params.election_jitter_max,
                lease_duration: params.lease_duration,
            });
        }
        Ok(Config {
            members,
            lease_duration: params.lease_duration,
            heartbeat_interval: params.heartbeat_interval,
            max_drift_ppm,
            stop_margin: params.stop_margin,
            election_jitter_max: params.election_jitter_max,
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

    /// The upper bound of the random election delay.
    #[must_use]
    pub fn election_jitter_max(&self) -> Duration {
        self.election_jitter_max
    }

    /// How long, on its own clock, the leader holds a lease after sending the heartbeat that a
    /// majority acknowledged: L·(1−ρ)/(1+ρ) (DESIGN: Leader lease).
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

/// L·(1−ρ)/(1+ρ), rounded down so the leader never claims more than the rule allows.
fn lease_hold(lease_duration: Duration, max_drift_ppm: u32) -> Duration {
    let drift = u64::from(max_drift_ppm);
    lease_duration.mul_ratio(PPM - drift, PPM + drift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> ConfigParams {
        ConfigParams {
            members: vec![NodeId(1), NodeId(2), NodeId(3)],
            ..ConfigParams::default()
        }
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
                "heartbeat_interval: 700ms must be less than a third",
            ),
            (
                ConfigParams {
                    max_drift: -0.01,
                    ..params()
                },
                "max_drift: -0.01 is outside",
            ),
            (
                ConfigParams {
                    max_drift: 0.2,
                    ..params()
                },
                "max_drift: 0.2",
            ),
            (
                ConfigParams {
                    max_drift: f64::NAN,
                    ..params()
                },
                "max_drift: NaN",
            ),
            (
                ConfigParams {
                    stop_margin: Duration::from_millis(1_800),
                    ..params()
                },
                "stop_margin: 1800ms leaves no acting window",
            ),
            (
                ConfigParams {
                    lease_duration: Duration::ZERO,
                    ..params()
                },
                "lease_duration: must",
            ),
            (
                ConfigParams {
                    election_jitter_max: Duration::from_secs(3),
                    ..params()
                },
                "election_jitter_max: 3s",
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
