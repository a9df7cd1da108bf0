//! What can happen next in the model: the nondeterministic choices of network, time, crashes
//! and operators.

use std::fmt;

use tenure_core::{Envelope, Message, NodeId};

use crate::network::InFlight;

/// One step of the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Global time advances to the next instant at which anything can change: a node's timer,
    /// promise, quarantine, lease or acting window, a child's kill deadline, or the end of a
    /// message's delivery window. Only when no output is pending, no live node has a due timer
    /// and no message's window ends now, and only up to the horizon.
    AdvanceTime,
    /// A node's due timer fires; the driver passes the entropy that draws the shortest or the
    /// longest election jitter.
    Timeout { node: NodeId, jitter: Jitter },
    /// The pending outputs of a node take effect, in order: a `Persist` is durable, a `Send`
    /// enters the network.
    Apply(NodeId),
    /// The first `applied` pending outputs of a node take effect, then it crashes: a crash
    /// between any two outputs (or before the first).
    CrashAfter { node: NodeId, applied: u8 },
    /// A message in flight arrives.
    Deliver(InFlight),
    /// A message in flight arrives and a copy of it is held back: the network duplicated it.
    Duplicate(InFlight),
    /// A message in flight is lost.
    Drop(InFlight),
    /// A message in flight is held back, to arrive at any later instant, or never.
    Hold(InFlight),
    /// A held message arrives.
    DeliverHeld(Envelope),
    /// A node crashes: its volatile state and its unapplied outputs are gone, its persisted
    /// state stays, and its child is left to the deadline guard.
    Crash(NodeId),
    /// The link between two nodes goes down: every message over it, either way, is lost
    /// until it heals (a partition).
    Cut(NodeId, NodeId),
    /// A cut link works again.
    Heal(NodeId, NodeId),
    /// A crashed node boots again from its persisted state.
    Restart(NodeId),
    /// An operator asks the leader to hand over to `successor` (phase one: stop acting).
    Resign { node: NodeId, successor: NodeId },
    /// The resigning leader's child is gone and the driver says so (phase two: `Resign` and
    /// `TimeoutNow` leave).
    ActingStopped(NodeId),
}

/// The two ends of the election jitter the model draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Jitter {
    /// Entropy 0: no jitter.
    Shortest,
    /// Entropy `u64::MAX`: the full `election_jitter_max`.
    Longest,
}

impl Jitter {
    /// The entropy handed to `Node::handle_timeout`.
    pub fn entropy(self) -> u64 {
        match self {
            Jitter::Shortest => 0,
            Jitter::Longest => u64::MAX,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::AdvanceTime => write!(f, "time advances to the next event"),
            Action::Timeout { node, jitter } => match jitter {
                Jitter::Shortest => write!(f, "{node}: timer fires"),
                Jitter::Longest => write!(f, "{node}: timer fires (longest jitter)"),
            },
            Action::Apply(node) => write!(f, "{node}: its outputs take effect"),
            Action::CrashAfter { node, applied } => {
                write!(
                    f,
                    "{node} crashes after {applied} of its outputs took effect"
                )
            }
            Action::Deliver(message) => write!(f, "deliver {}", DisplayEnvelope(&message.envelope)),
            Action::Duplicate(message) => write!(
                f,
                "deliver {} and hold a duplicate",
                DisplayEnvelope(&message.envelope)
            ),
            Action::Drop(message) => write!(f, "lose {}", DisplayEnvelope(&message.envelope)),
            Action::Hold(message) => write!(f, "hold back {}", DisplayEnvelope(&message.envelope)),
            Action::DeliverHeld(envelope) => {
                write!(f, "deliver the held {}", DisplayEnvelope(envelope))
            }
            Action::Cut(first, second) => write!(f, "the link {first}–{second} is cut"),
            Action::Heal(first, second) => write!(f, "the link {first}–{second} heals"),
            Action::Crash(node) => write!(f, "{node} crashes"),
            Action::Restart(node) => write!(f, "{node} restarts from its persisted state"),
            Action::Resign { node, successor } => {
                write!(f, "{node} is asked to resign in favour of {successor}")
            }
            Action::ActingStopped(node) => {
                write!(f, "{node}: the driver reports the child gone")
            }
        }
    }
}

/// `from→to Message{…}` in one short line.
pub struct DisplayEnvelope<'a>(pub &'a Envelope);

impl fmt::Display for DisplayEnvelope<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Envelope { from, to, message } = self.0;
        write!(f, "{from}→{to} ")?;
        match message {
            Message::PreVote { term } => write!(f, "PreVote(term {term})"),
            Message::PreVoteReply { term, granted } => {
                write!(f, "PreVoteReply(term {term}, granted {granted})")
            }
            Message::RequestVote { term } => write!(f, "RequestVote(term {term})"),
            Message::VoteReply { term, granted } => {
                write!(f, "VoteReply(term {term}, granted {granted})")
            }
            Message::Heartbeat { term, seq } => write!(f, "Heartbeat(term {term}, seq {seq})"),
            Message::HeartbeatAck { term, seq } => {
                write!(f, "HeartbeatAck(term {term}, seq {seq})")
            }
            Message::Resign { term } => write!(f, "Resign(term {term})"),
            Message::TimeoutNow { term } => write!(f, "TimeoutNow(term {term})"),
        }
    }
}
