//! The messages nodes exchange. Every one carries the sender's term (protocol: Roles and
//! messages).

use crate::id::{NodeId, Term};

/// One protocol message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Message {
    /// "Would you vote for me in `term`?" — a probe that changes no state on the receiver, so a
    /// node that was cut off cannot disrupt a healthy cluster when it returns. `term` is the
    /// sender's term + 1.
    PreVote { term: Term },
    /// Answer to [`Message::PreVote`]; `term` echoes the proposed term.
    PreVoteReply { term: Term, granted: bool },
    /// A real vote request for `term`; a granted vote is persisted before the reply leaves.
    RequestVote { term: Term },
    /// Answer to [`Message::RequestVote`]; `term` is the voter's term after handling it.
    VoteReply { term: Term, granted: bool },
    /// The leader of `term` renews its lease; `seq` numbers its heartbeats.
    Heartbeat { term: Term, seq: u64 },
    /// A follower accepted heartbeat `seq` of `term` and promised for a lease duration. A reply
    /// with a higher term deposes a stale leader.
    HeartbeatAck { term: Term, seq: u64 },
    /// The leader of `term` has stopped acting for good; followers may drop their promise.
    Resign { term: Term },
    /// Sent with [`Message::Resign`] to the chosen successor: campaign now.
    TimeoutNow { term: Term },
}

/// The kind of a message, for metrics and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MessageKind {
    PreVote,
    PreVoteReply,
    RequestVote,
    VoteReply,
    Heartbeat,
    HeartbeatAck,
    Resign,
    TimeoutNow,
}

/// A message with its sender and receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Envelope {
    pub from: NodeId,
    pub to: NodeId,
    pub message: Message,
}

impl Message {
    /// The term the message carries.
    #[must_use]
    pub fn term(&self) -> Term {
        match *self {
            Message::PreVote { term }
            | Message::PreVoteReply { term, .. }
            | Message::RequestVote { term }
            | Message::VoteReply { term, .. }
            | Message::Heartbeat { term, .. }
            | Message::HeartbeatAck { term, .. }
            | Message::Resign { term }
            | Message::TimeoutNow { term } => term,
        }
    }

    /// The kind of the message.
    #[must_use]
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::PreVote { .. } => MessageKind::PreVote,
            Message::PreVoteReply { .. } => MessageKind::PreVoteReply,
            Message::RequestVote { .. } => MessageKind::RequestVote,
            Message::VoteReply { .. } => MessageKind::VoteReply,
            Message::Heartbeat { .. } => MessageKind::Heartbeat,
            Message::HeartbeatAck { .. } => MessageKind::HeartbeatAck,
            Message::Resign { .. } => MessageKind::Resign,
            Message::TimeoutNow { .. } => MessageKind::TimeoutNow,
        }
    }
}

impl MessageKind {
    /// Every kind, in a fixed order (for metrics tables).
    pub const ALL: [MessageKind; 8] = [
        MessageKind::PreVote,
        MessageKind::PreVoteReply,
        MessageKind::RequestVote,
        MessageKind::VoteReply,
        MessageKind::Heartbeat,
        MessageKind::HeartbeatAck,
        MessageKind::Resign,
        MessageKind::TimeoutNow,
    ];

    /// A stable snake_case name for metrics labels.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            MessageKind::PreVote => "pre_vote",
            MessageKind::PreVoteReply => "pre_vote_reply",
            MessageKind::RequestVote => "request_vote",
            MessageKind::VoteReply => "vote_reply",
            MessageKind::Heartbeat => "heartbeat",
            MessageKind::HeartbeatAck => "heartbeat_ack",
            MessageKind::Resign => "resign",
            MessageKind::TimeoutNow => "timeout_now",
        }
    }
}
