//! [`ConfigError`]: why a configuration was refused, worded once for every reader.
//!
//! The rules and their explanations live here; only the names differ between readers. A
//! library user reads the field names of [`crate::ConfigParams`] (`lease_duration 2s`), an
//! operator of the `tenure` binary reads its flags (`--lease 2s`): the binary passes its own
//! [`ParamNames`] to [`ConfigError::display_with`] instead of re-wording each error.

use std::fmt;

use crate::config::MAX_CLUSTER_SIZE;
use crate::id::NodeId;
use crate::time::Duration;

/// Why [`crate::Config::new`] refused.
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
        lease_duration: Duration,
        max_drift: f64,
    },
    /// `election_jitter_max` is longer than the lease.
    JitterTooLarge {
        election_jitter_max: Duration,
        lease_duration: Duration,
    },
    /// `election_step` is zero, or the last rank's delay exceeds `election_jitter_max`
    /// (protocol: Election timing).
    ElectionStepOutOfRange {
        election_step: Duration,
        members: usize,
        election_jitter_max: Duration,
    },
}

/// A parameter of [`crate::ConfigParams`], as an error message names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Param {
    Members,
    LeaseDuration,
    HeartbeatInterval,
    MaxDrift,
    StopMargin,
    ElectionJitterMax,
    ElectionStep,
}

impl Param {
    /// The field of [`crate::ConfigParams`] that holds it.
    #[must_use]
    pub fn field_name(self) -> &'static str {
        match self {
            Param::Members => "members",
            Param::LeaseDuration => "lease_duration",
            Param::HeartbeatInterval => "heartbeat_interval",
            Param::MaxDrift => "max_drift",
            Param::StopMargin => "stop_margin",
            Param::ElectionJitterMax => "election_jitter_max",
            Param::ElectionStep => "election_step",
        }
    }
}

/// How a reader calls the parameters and writes durations. The defaults are the field names
/// of [`crate::ConfigParams`] and the core's own [`Duration`] display.
pub trait ParamNames {
    /// What the reader sets to change `param`: a field name, a flag.
    fn name(&self, param: Param) -> String {
        param.field_name().to_string()
    }

    /// A duration as the reader writes it.
    fn duration(&self, duration: Duration) -> String {
        duration.to_string()
    }

    /// `param` at `value`, as the reader set it: the name and the value by default. A reader
    /// who sets `param` through another value (the binary derives the stop margin from its
    /// stop grace) shows that one instead.
    fn setting(&self, param: Param, value: Duration) -> String {
        format!("{} {}", self.name(param), self.duration(value))
    }

    /// How `param` came to be `value`: the value by default, or the sum that made it.
    fn derivation(&self, param: Param, value: Duration) -> String {
        let _ = param;
        self.duration(value)
    }
}

/// The field names of [`crate::ConfigParams`]: what [`ConfigError`]'s `Display` uses.
#[derive(Clone, Copy, Debug, Default)]
pub struct FieldNames;

impl ParamNames for FieldNames {}

impl ConfigError {
    /// The parameter to change to fix the error.
    #[must_use]
    pub fn param(&self) -> Param {
        match self {
            ConfigError::NoMembers
            | ConfigError::TooManyMembers { .. }
            | ConfigError::DuplicateMember { .. } => Param::Members,
            ConfigError::ZeroLease => Param::LeaseDuration,
            ConfigError::ZeroHeartbeat | ConfigError::HeartbeatTooSlow { .. } => {
                Param::HeartbeatInterval
            }
            ConfigError::DriftOutOfRange { .. } => Param::MaxDrift,
            ConfigError::NoActingWindow { .. } => Param::StopMargin,
            ConfigError::JitterTooLarge { .. } => Param::ElectionJitterMax,
            ConfigError::ElectionStepOutOfRange { .. } => Param::ElectionStep,
        }
    }

    /// The error in the words of a reader who calls the parameters `names`.
    #[must_use]
    pub fn display_with<'a>(&'a self, names: &'a dyn ParamNames) -> impl fmt::Display + 'a {
        Worded { error: self, names }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.display_with(&FieldNames).fmt(f)
    }
}

impl std::error::Error for ConfigError {}

/// A [`ConfigError`] with the names to word it in.
struct Worded<'a> {
    error: &'a ConfigError,
    names: &'a dyn ParamNames,
}

impl fmt::Display for Worded<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = self.names;
        let name = |param: Param| names.name(param);
        match *self.error {
            ConfigError::NoMembers => {
                write!(
                    f,
                    "{}: the cluster needs at least one member",
                    name(Param::Members)
                )
            }
            ConfigError::TooManyMembers { count } => write!(
                f,
                "{}: {count} members is more than the maximum of {MAX_CLUSTER_SIZE}; use 3 or 5",
                name(Param::Members)
            ),
            ConfigError::DuplicateMember { id } => write!(
                f,
                "{}: {id} is listed twice; every member needs a distinct id",
                name(Param::Members)
            ),
            ConfigError::ZeroLease => {
                write!(f, "{} must be longer than zero", name(Param::LeaseDuration))
            }
            ConfigError::ZeroHeartbeat => {
                write!(
                    f,
                    "{} must be longer than zero",
                    name(Param::HeartbeatInterval)
                )
            }
            ConfigError::HeartbeatTooSlow {
                heartbeat_interval,
                lease_duration,
            } => write!(
                f,
                "{} must be less than a third of {}, so that a lease survives lost \
                 heartbeats: lower {} or raise {}",
                names.setting(Param::HeartbeatInterval, heartbeat_interval),
                names.setting(Param::LeaseDuration, lease_duration),
                name(Param::HeartbeatInterval),
                name(Param::LeaseDuration),
            ),
            ConfigError::DriftOutOfRange { max_drift } => write!(
                f,
                "{} {max_drift} is outside [0, 0.1]; it is the bound on clock-rate drift as a \
                 fraction (0.01 = 1%)",
                name(Param::MaxDrift)
            ),
            ConfigError::NoActingWindow { .. } => self.no_acting_window(f),
            ConfigError::JitterTooLarge {
                election_jitter_max,
                lease_duration,
            } => write!(
                f,
                "{} is longer than {}; failover would be dominated by jitter",
                names.setting(Param::ElectionJitterMax, election_jitter_max),
                names.setting(Param::LeaseDuration, lease_duration),
            ),
            ConfigError::ElectionStepOutOfRange { .. } => self.election_step_out_of_range(f),
        }
    }
}

impl Worded<'_> {
    /// What the election step must fit in (protocol: Election timing).
    fn election_step_out_of_range(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ConfigError::ElectionStepOutOfRange {
            election_step,
            members,
            election_jitter_max,
        } = *self.error
        else {
            unreachable!("called for ElectionStepOutOfRange only");
        };
        let names = self.names;
        write!(
            f,
            "{} must be greater than zero, and the last of {members} members must start within \
             {} of its promise's end: (members - 1) x {} <= {}",
            names.setting(Param::ElectionStep, election_step),
            names.setting(Param::ElectionJitterMax, election_jitter_max),
            names.name(Param::ElectionStep),
            names.name(Param::ElectionJitterMax),
        )
    }

    /// The longest explanation: what the stop margin must leave room for.
    fn no_acting_window(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ConfigError::NoActingWindow {
            stop_margin,
            lease_hold,
            heartbeat_interval,
            lease_duration,
            max_drift,
        } = *self.error
        else {
            unreachable!("called for NoActingWindow only");
        };
        let names = self.names;
        let name = |param: Param| names.name(param);
        write!(
            f,
            "{} leaves the leader no time to act: the leader stops acting {} before its \
             lease ends, and that plus {} must be less than the lease held per renewal, {} \
             ({} shortened for {} {max_drift}). Lower {} or {}, or raise {}",
            names.setting(Param::StopMargin, stop_margin),
            names.derivation(Param::StopMargin, stop_margin),
            names.setting(Param::HeartbeatInterval, heartbeat_interval),
            names.duration(lease_hold),
            names.setting(Param::LeaseDuration, lease_duration),
            name(Param::MaxDrift),
            name(Param::StopMargin),
            name(Param::HeartbeatInterval),
            name(Param::LeaseDuration),
        )
    }
}
