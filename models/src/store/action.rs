//! What can happen next in the store model: the nondeterministic choices of time, the store,
//! the network between nodes and store, crashes and operators.

use std::fmt;

use tenure_core::NodeId;

use crate::store::state::{Call, DisplayReply, DisplayRequest, ReplyInFlight};

/// One step of the store model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreAction {
    /// Global time advances to the next instant at which anything can change: a node's timer,
    /// lease end or acting end, a child's kill deadline, the store's expiry of its holder.
    /// Only when no live node has a due timer, no request has outlived its window and no
    /// stopped child is left to report, and only up to the horizon.
    AdvanceTime,
    /// A node's due timer fires (`StoreLease::handle_timeout`).
    Timeout(NodeId),
    /// The store applies a request, atomically, at this instant of its own clock, and sends
    /// the reply (if the sender still listens).
    Apply(Call),
    /// A request is lost before the store applies it: it never applies.
    LoseRequest(Call),
    /// The store never applies a request, and the adapter answers it as failed at once (a
    /// refused connection, a server error): its outcome is unknown to the sender.
    FailRequest(Call),
    /// A request is slow: the store applies it at any later instant until its sender gives
    /// it up.
    DelayRequest(Call),
    /// A request is held back past its window: the store applies it at any later instant, or
    /// never.
    HoldRequest(Call),
    /// A reply arrives (`StoreLease::handle_reply`).
    Deliver(ReplyInFlight),
    /// A reply is slow: it arrives at any later instant until its node gives the request up.
    DelayReply(ReplyInFlight),
    /// A reply arrives and the network keeps a copy, to arrive at any later instant, or never.
    Duplicate(ReplyInFlight),
    /// A reply is lost: the store applied the request, its sender will never know.
    LoseReply(ReplyInFlight),
    /// A reply turns into a failure (the connection broke after the commit): the store
    /// applied the request, its sender learns only that the outcome is unknown.
    FailReply(ReplyInFlight),
    /// A node crashes: its core and its connections are gone, its child is left to the
    /// deadline guard, and a request it sent may still be applied.
    Crash(NodeId),
    /// A crashed node boots again: a new core, which knows nothing of the election.
    Restart(NodeId),
    /// An operator asks the acting holder to hand over (phase one: stop acting).
    Resign(NodeId),
    /// The resigning holder's child is gone and the driver says so (phase two: release).
    ActingStopped(NodeId),
}

impl fmt::Display for StoreAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreAction::AdvanceTime => write!(f, "time advances to the next event"),
            StoreAction::Timeout(node) => write!(f, "{node}: timer fires"),
            StoreAction::Apply(call) => {
                write!(f, "the store applies {}", DisplayRequest(&call.request))?;
                if call.held {
                    write!(f, " (held)")?;
                }
                Ok(())
            }
            StoreAction::LoseRequest(call) => {
                write!(f, "lose the request {}", DisplayRequest(&call.request))
            }
            StoreAction::FailRequest(call) => write!(
                f,
                "the request {} fails unapplied",
                DisplayRequest(&call.request)
            ),
            StoreAction::DelayRequest(call) => {
                write!(f, "the request {} is slow", DisplayRequest(&call.request))
            }
            StoreAction::DelayReply(reply) => {
                write!(f, "the reply {} is slow", DisplayReply(reply))
            }
            StoreAction::HoldRequest(call) => {
                write!(f, "hold back the request {}", DisplayRequest(&call.request))
            }
            StoreAction::Deliver(reply) => {
                write!(f, "deliver {}", DisplayReply(reply))?;
                if reply.duplicate {
                    write!(f, " (duplicate)")?;
                }
                Ok(())
            }
            StoreAction::Duplicate(reply) => {
                write!(f, "deliver {} and keep a duplicate", DisplayReply(reply))
            }
            StoreAction::LoseReply(reply) => write!(f, "lose the reply {}", DisplayReply(reply)),
            StoreAction::FailReply(reply) => {
                write!(f, "the reply {} turns into a failure", DisplayReply(reply))
            }
            StoreAction::Crash(node) => write!(f, "{node} crashes"),
            StoreAction::Restart(node) => write!(f, "{node} restarts"),
            StoreAction::Resign(node) => write!(f, "{node} is asked to resign"),
            StoreAction::ActingStopped(node) => {
                write!(f, "{node}: the driver reports the child gone")
            }
        }
    }
}
