//! Deliberately broken variants of the protocol, for proving that the checkers have teeth.
//!
//! Compiled only with the `broken-variants` feature, which the `tenure` binary never enables.
//! Each variant removes exactly one rule of docs/protocol.md; the model checker and the
//! simulation must catch every one (protocol: Checking the checkers).

use std::fmt;
use std::str::FromStr;

/// Which rule, if any, the core breaks on purpose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Variant {
    /// The protocol as designed.
    #[default]
    Correct,
    /// The leader holds its lease for `s + L` instead of `s + L·(1−ρ)/(1+ρ)` (breaks
    /// `lease_safety` when the leader's clock runs slow and a follower's fast).
    NoDriftCompensation,
    /// A restarted node votes at once, though it may have forgotten a promise (breaks
    /// `lease_safety`).
    NoBootQuarantine,
    /// Followers grant votes while promised (breaks `lease_safety`).
    NoPromise,
    /// A restarted node forgets whom it voted for (breaks `single_vote`, then
    /// `election_safety`).
    ForgetVoteOnRestart,
    /// The leader acts until `lease_until + stop_margin` instead of `lease_until − stop_margin`
    /// (breaks `acting_safety`: acting ⊄ lease).
    ActPastLease,
    /// A follower answers a heartbeat of an older term with its own term and the heartbeat's
    /// `seq`, which a leader of the newer term takes for an ack of its own heartbeat (breaks
    /// `lease_safety`: the leader extends its lease on a promise nobody made).
    StaleAck,
}

impl Variant {
    /// Every variant, the correct one first.
    pub const ALL: [Variant; 7] = [
        Variant::Correct,
        Variant::NoDriftCompensation,
        Variant::NoBootQuarantine,
        Variant::NoPromise,
        Variant::ForgetVoteOnRestart,
        Variant::ActPastLease,
        Variant::StaleAck,
    ];

    /// The broken variants only.
    pub const BROKEN: [Variant; 6] = [
        Variant::NoDriftCompensation,
        Variant::NoBootQuarantine,
        Variant::NoPromise,
        Variant::ForgetVoteOnRestart,
        Variant::ActPastLease,
        Variant::StaleAck,
    ];

    /// The snake_case name used on command lines.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Variant::Correct => "correct",
            Variant::NoDriftCompensation => "no_drift_compensation",
            Variant::NoBootQuarantine => "no_boot_quarantine",
            Variant::NoPromise => "no_promise",
            Variant::ForgetVoteOnRestart => "forget_vote_on_restart",
            Variant::ActPastLease => "act_past_lease",
            Variant::StaleAck => "stale_ack",
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown variant name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownVariant(pub String);

impl fmt::Display for UnknownVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Variant::ALL.iter().map(|variant| variant.name()).collect();
        write!(
            f,
            "unknown variant {:?}; expected one of: {}",
            self.0,
            names.join(", ")
        )
    }
}

impl std::error::Error for UnknownVariant {}

impl FromStr for Variant {
    type Err = UnknownVariant;
    fn from_str(text: &str) -> Result<Variant, UnknownVariant> {
        Variant::ALL
            .into_iter()
            .find(|variant| variant.name() == text)
            .ok_or_else(|| UnknownVariant(text.to_owned()))
    }
}
