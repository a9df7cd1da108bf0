//! [`Invariant`]: the safety properties every checker checks, under one set of names.

use std::fmt;

/// A safety property of the protocol (protocol: Invariants). The core's cluster harness, the
/// model checker and the simulation's oracle check these, and report a violation by
/// [`Invariant::name`], so a counterexample reads the same whichever checker found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Invariant {
    /// At most one leader per term (protocol: election_safety).
    ElectionSafety,
    /// At every instant of real time, at most one node holds a valid lease
    /// (protocol: lease_safety).
    LeaseSafety,
    /// Every valid lease is covered to its end by a majority that is promised, in boot
    /// quarantine or down: the reason `lease_safety` holds (protocol: lease_backed).
    LeaseBacked,
    /// At most one node acts at any instant, and acting lies within the lease
    /// (protocol: acting_safety).
    ActingSafety,
    /// Successive acting intervals carry strictly increasing fencing tokens
    /// (protocol: fencing_monotonic).
    FencingMonotonic,
    /// A node's term never decreases, also across restarts (protocol: term_monotonic).
    TermMonotonic,
    /// A node votes at most once per term, also across restarts (protocol: single_vote).
    SingleVote,
}

impl Invariant {
    /// Every invariant, in the order the spec lists them and the checkers report them.
    pub const ALL: [Invariant; 7] = [
        Invariant::ElectionSafety,
        Invariant::LeaseSafety,
        Invariant::LeaseBacked,
        Invariant::ActingSafety,
        Invariant::FencingMonotonic,
        Invariant::TermMonotonic,
        Invariant::SingleVote,
    ];

    /// The stable snake_case name: the spec's heading, and what every checker prints.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::ElectionSafety => "election_safety",
            Invariant::LeaseSafety => "lease_safety",
            Invariant::LeaseBacked => "lease_backed",
            Invariant::ActingSafety => "acting_safety",
            Invariant::FencingMonotonic => "fencing_monotonic",
            Invariant::TermMonotonic => "term_monotonic",
            Invariant::SingleVote => "single_vote",
        }
    }

    /// The invariant called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Invariant> {
        Invariant::ALL
            .into_iter()
            .find(|invariant| invariant.name() == name)
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_distinct_and_leads_back_to_its_invariant() {
        for invariant in Invariant::ALL {
            assert_eq!(Invariant::from_name(invariant.name()), Some(invariant));
        }
        assert_eq!(Invariant::from_name("liveness"), None);
    }

    #[test]
    fn all_is_in_order() {
        assert!(Invariant::ALL.windows(2).all(|pair| pair[0] < pair[1]));
    }
}
