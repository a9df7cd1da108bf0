//! The deadline guard's children and the ledger of acting intervals, shared by the quorum model
//! and the store model (protocol: Acting; protocol: The deadline guard; protocol: The fencing
//! token).

use tenure_core::{FencingToken, Instant, Leadership};

use crate::clock::timing;
use crate::state::Child;

/// Ghost history of acting intervals: what `fencing_monotonic` and the `Sometimes` properties
/// need to know about the intervals that already began.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ActingLedger {
    /// The highest fencing token that acted so far, or `None` when every token that could
    /// still act is higher than any that did (then the exact value no longer matters).
    pub(crate) highest_token_acted: Option<FencingToken>,
    /// An acting interval started with a token not above one that acted before.
    pub(crate) fencing_violated: bool,
    /// How many acting intervals started, counted up to 3.
    pub(crate) acting_intervals: u8,
}

impl ActingLedger {
    /// Forgets the highest token that acted once every token that could still start an
    /// acting interval is above it (`lowest_token_to_act`).
    pub(crate) fn forget_below(&mut self, lowest_token_to_act: FencingToken) {
        if self
            .highest_token_acted
            .is_some_and(|highest| highest < lowest_token_to_act)
        {
            self.highest_token_acted = None;
        }
    }
}

/// Updates one node's children at its local time `now`, given what its core says about acting
/// (`acting`: its leadership if it acts now, or `None`). The guard's SIGKILL has ended every
/// child whose deadline has come; a renewal moves the running child's deadline; a node that
/// stopped acting sends SIGTERM and its child may linger for `timing::CHILD_EXIT_MAX`; a node
/// that begins acting starts a child with its token, which the ledger checks against every
/// token that acted before.
pub(crate) fn supervise(
    children: &mut Vec<Child>,
    acting: Option<Leadership>,
    now: Instant,
    ledger: &mut ActingLedger,
) {
    children.retain(|child| now < child.until);
    let current = children.iter_mut().find(|child| !child.stopping);
    match (acting, current) {
        (Some(leadership), Some(child)) if child.token == leadership.fencing_token => {
            // A renewal moves the guard's deadline.
            child.lease_until = leadership.lease_until;
            child.until = leadership.acting_until + timing::CHILD_EXIT_MAX;
        }
        (acting, current) => {
            if let Some(child) = current {
                // The node stopped acting: SIGTERM now, SIGKILL by the deadline.
                child.stopping = true;
                child.until = child.until.min(now + timing::CHILD_EXIT_MAX);
            }
            if let Some(leadership) = acting {
                // fencing_monotonic: a new acting interval starts with this token.
                let token = leadership.fencing_token;
                if ledger
                    .highest_token_acted
                    .is_some_and(|highest| highest >= token)
                {
                    ledger.fencing_violated = true;
                }
                ledger.highest_token_acted = ledger.highest_token_acted.max(Some(token));
                ledger.acting_intervals = (ledger.acting_intervals + 1).min(3);
                children.push(Child {
                    token,
                    lease_until: leadership.lease_until,
                    until: leadership.acting_until + timing::CHILD_EXIT_MAX,
                    stopping: false,
                });
                children.sort_unstable();
            }
        }
    }
}

/// `acting_safety` over the children that run at one instant (crashed nodes' included): at
/// most one runs, and the guard's kill deadline of each lies within the lease it runs under
/// (acting ⊂ lease, with the exit delay).
pub(crate) fn children_are_safe(children: impl Iterator<Item = Child>) -> bool {
    let mut running = 0;
    for child in children {
        if child.until > child.lease_until {
            return false;
        }
        running += 1;
    }
    running <= 1
}
