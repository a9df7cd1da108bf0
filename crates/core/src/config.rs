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
            lease_duration: Duration::from_secs(2),
            heartbeat_interval: Duration::from_millis(250),
            max_drift: 0.01,
            stop_margin: Duration::from_millis(500),
            election_jitter_max: Duration::from_millis(500),
            election_step: Duration::from_millis(20),
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
    /// `election_step` is zero, or the last rank's delay exceeds `election_jitter_max`.
    ElectionStepOutOfRange {
        election_step: Duration,
        members: usize,
        election_jitter_max: Duration,
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
            ConfigError::ElectionStepOutOfRange {
                election_step,
                members,
                election_jitter_max,
            } => write!(
                f,
                "election_step: {election_step} must be greater than zero, and the last of \
                 {members} members must start within election_jitter_max \
                 ({election_jitter_max}) of its promise's end: (members - 1) x election_step \
                 <= election_jitter_max"
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
    pub fn members(&self) -> &BTreeSet<NodeId> {
        &self.members
    }

    /// floor(N/2)+1.
    pub fn majority(&self) -> usize {
        self.members.len() / 2 + 1
    }

    /// L.
    pub fn lease_duration(&self) -> Duration {
        self.lease_duration
    }

    /// The leader's renewal period.
    pub fn heartbeat_interval(&self) -> Duration {
        self.heartbeat_interval
    }

    /// ρ in parts per million.
    pub fn max_drift_ppm(&self) -> u32 {
        self.max_drift_ppm
    }

    /// How long before the lease ends the leader stops acting.
    pub fn stop_margin(&self) -> Duration {
        self.stop_margin
    }

    /// The upper bound of the random election delay after a failed round.
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
    pub fn lease_hold(&self) -> Duration {
        self.lease_hold
    }

    /// How long a pre-vote or vote round waits for a majority before it gives up and retries
    /// after a fresh jitter: two heartbeat intervals, far more than a round trip yet short
    /// enough that a lost reply costs little failover time.
    pub fn election_round_timeout(&self) -> Duration {
        self.heartbeat_interval + self.heartbeat_interval
    }

    /// Which broken variant this configuration runs.
    #[cfg(feature = "broken-variants")]
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
