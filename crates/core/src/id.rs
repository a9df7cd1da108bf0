//! Identifiers: nodes, terms and fencing tokens.

use std::fmt;

/// A member of the cluster. The driver maps its own names (`n1`, `n2`, …) onto these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u32);

/// An election term. Terms only rise; one leader at most per term (protocol: term_monotonic;
/// protocol: election_safety).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Term(pub u64);

/// The token a leader hands its child: the term it leads in. Successive acting leaders carry
/// strictly increasing tokens, so a protected resource can reject a stale writer
/// (protocol: The fencing token).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FencingToken(pub u64);

/// Terms above this are "out of range": a peer that sends one is dropped rather than obeyed,
/// because adopting it would leave no room to ever campaign again.
pub const MAX_TERM: Term = Term(1 << 62);

/// How far one message may move a node's term (protocol: Term jumps are bounded). A correct
/// cluster moves by one term per election round, so 2^32 terms are some 136 years of elections
/// at one a second: no member falls that far behind. A holder of the cluster key who sends
/// `MAX_TERM` cannot wedge the cluster with one datagram; exhausting the term space takes
/// 2^30 adopted (and persisted) jumps.
pub const MAX_TERM_STEP: u64 = 1 << 32;

impl Term {
    /// The next term, or `None` at [`MAX_TERM`].
    #[must_use]
    pub fn next(self) -> Option<Term> {
        if self >= MAX_TERM {
            None
        } else {
            Some(Term(self.0 + 1))
        }
    }
}

impl From<Term> for FencingToken {
    fn from(term: Term) -> FencingToken {
        FencingToken(term.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node{}", self.0)
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for FencingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
