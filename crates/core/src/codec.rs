//! The wire encoding of a [`Message`]: the bytes every transport carries.
//!
//! One kind byte, then the fields in declaration order, integers big-endian, booleans as one
//! byte 0 or 1. Every kind has exactly one valid length, and [`Message::decode`] insists on it:
//! a payload that is one byte short or long, names no kind, or holds any other boolean byte is
//! a [`DecodeError`]. So every message has exactly one encoding, and every byte string decodes
//! to at most one message.
//!
//! ```text
//! kind  message         fields after the kind byte        length
//!    1  PreVote         term u64                               9
//!    2  PreVoteReply    term u64, granted u8                  10
//!    3  RequestVote     term u64                               9
//!    4  VoteReply       term u64, granted u8                  10
//!    5  Heartbeat       term u64, seq u64                     17
//!    6  HeartbeatAck    term u64, seq u64                     17
//!    7  Resign          term u64                               9
//!    8  TimeoutNow      term u64                               9
//!    9  (reserved)      a transport's own notice, never an election message
//! ```
//!
//! Kind numbers are part of the wire format: never renumber one, only add new ones. The real
//! transport (`tenure-node`) seals these bytes in an authenticated datagram; the simulation
//! (`tenure-sim`) carries the very same bytes on its simulated network. The core itself never
//! encodes or decodes: it takes and returns [`Message`] values, and a decoded term is checked
//! by the core's own rules (protocol: Term jumps are bounded) like any other.

use core::fmt;

use crate::id::Term;
use crate::message::Message;

/// The longest encoding (a kind byte and two `u64`s).
pub const MAX_ENCODED_LEN: usize = 1 + 8 + 8;

/// The kind byte reserved for a transport's own notices (`tenure-node` uses it to tell a
/// restarted peer which incarnation it holds for it). [`Message::decode`] refuses it as
/// [`DecodeError::UnknownKind`], as nodes from before the reservation do.
pub const TRANSPORT_NOTICE_KIND: u8 = 9;

const KIND_PRE_VOTE: u8 = 1;
const KIND_PRE_VOTE_REPLY: u8 = 2;
const KIND_REQUEST_VOTE: u8 = 3;
const KIND_VOTE_REPLY: u8 = 4;
const KIND_HEARTBEAT: u8 = 5;
const KIND_HEARTBEAT_ACK: u8 = 6;
const KIND_RESIGN: u8 = 7;
const KIND_TIMEOUT_NOW: u8 = 8;

/// Why bytes are not a message. Since transports authenticate before decoding, any of these
/// means a peer running incompatible code: worth counting, never worth guessing at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecodeError {
    /// No bytes at all.
    Empty,
    /// A kind byte that names no message (including [`TRANSPORT_NOTICE_KIND`]).
    UnknownKind { kind: u8 },
    /// A known kind at a length other than its one valid length.
    WrongLength { kind: u8, length: usize },
    /// A boolean byte other than 0 or 1.
    InvalidBoolean { value: u8 },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::Empty => write!(formatter, "empty payload"),
            DecodeError::UnknownKind { kind } => write!(formatter, "unknown message kind {kind}"),
            DecodeError::WrongLength { kind, length } => {
                write!(
                    formatter,
                    "message kind {kind} at a wrong length of {length} bytes"
                )
            }
            DecodeError::InvalidBoolean { value } => {
                write!(formatter, "boolean byte {value} is neither 0 nor 1")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

impl Message {
    /// Appends this message's encoding, at most [`MAX_ENCODED_LEN`] bytes, to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let start = out.len();
        match *self {
            Message::PreVote { term } => put_term(out, KIND_PRE_VOTE, term),
            Message::PreVoteReply { term, granted } => {
                put_term(out, KIND_PRE_VOTE_REPLY, term);
                out.push(u8::from(granted));
            }
            Message::RequestVote { term } => put_term(out, KIND_REQUEST_VOTE, term),
            Message::VoteReply { term, granted } => {
                put_term(out, KIND_VOTE_REPLY, term);
                out.push(u8::from(granted));
            }
            Message::Heartbeat { term, seq } => {
                put_term(out, KIND_HEARTBEAT, term);
                out.extend_from_slice(&seq.to_be_bytes());
            }
            Message::HeartbeatAck { term, seq } => {
                put_term(out, KIND_HEARTBEAT_ACK, term);
                out.extend_from_slice(&seq.to_be_bytes());
            }
            Message::Resign { term } => put_term(out, KIND_RESIGN, term),
            Message::TimeoutNow { term } => put_term(out, KIND_TIMEOUT_NOW, term),
        }
        assert!(
            out.len() - start <= MAX_ENCODED_LEN,
            "encoding exceeds its bound"
        );
    }

    /// This message's encoding, at most [`MAX_ENCODED_LEN`] bytes.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_ENCODED_LEN);
        self.encode_into(&mut out);
        out
    }

    /// Parses an encoding produced by [`Message::encode`]; anything else is a [`DecodeError`].
    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        let (&kind, fields) = bytes.split_first().ok_or(DecodeError::Empty)?;
        let expected = match kind {
            KIND_PRE_VOTE | KIND_REQUEST_VOTE | KIND_RESIGN | KIND_TIMEOUT_NOW => 8,
            KIND_PRE_VOTE_REPLY | KIND_VOTE_REPLY => 9,
            KIND_HEARTBEAT | KIND_HEARTBEAT_ACK => 16,
            _ => return Err(DecodeError::UnknownKind { kind }),
        };
        if fields.len() != expected {
            return Err(DecodeError::WrongLength {
                kind,
                length: bytes.len(),
            });
        }
        let term = Term(u64_at(fields, 0));
        let message = match kind {
            KIND_PRE_VOTE => Message::PreVote { term },
            KIND_PRE_VOTE_REPLY => Message::PreVoteReply {
                term,
                granted: bool_at(fields, 8)?,
            },
            KIND_REQUEST_VOTE => Message::RequestVote { term },
            KIND_VOTE_REPLY => Message::VoteReply {
                term,
                granted: bool_at(fields, 8)?,
            },
            KIND_HEARTBEAT => Message::Heartbeat {
                term,
                seq: u64_at(fields, 8),
            },
            KIND_HEARTBEAT_ACK => Message::HeartbeatAck {
                term,
                seq: u64_at(fields, 8),
            },
            KIND_RESIGN => Message::Resign { term },
            KIND_TIMEOUT_NOW => Message::TimeoutNow { term },
            _ => unreachable!("the length match above admits only known kinds"),
        };
        Ok(message)
    }
}

fn put_term(out: &mut Vec<u8>, kind: u8, term: Term) {
    out.push(kind);
    out.extend_from_slice(&term.0.to_be_bytes());
}

/// Reads a `u64` at `offset`; the caller has checked the length, as `decode` does per kind.
fn u64_at(fields: &[u8], offset: usize) -> u64 {
    let mut eight = [0; 8];
    eight.copy_from_slice(&fields[offset..offset + 8]);
    u64::from_be_bytes(eight)
}

fn bool_at(fields: &[u8], offset: usize) -> Result<bool, DecodeError> {
    match fields[offset] {
        0 => Ok(false),
        1 => Ok(true),
        value => Err(DecodeError::InvalidBoolean { value }),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// One message of every kind, with fields that tell byte order apart.
    fn one_of_each() -> [Message; 8] {
        let term = Term(0x0102_0304_0506_0708);
        let seq = 0x1112_1314_1516_1718;
        [
            Message::PreVote { term },
            Message::PreVoteReply {
                term,
                granted: true,
            },
            Message::RequestVote { term },
            Message::VoteReply {
                term,
                granted: false,
            },
            Message::Heartbeat { term, seq },
            Message::HeartbeatAck { term, seq },
            Message::Resign { term },
            Message::TimeoutNow { term },
        ]
    }

    #[test]
    fn encodes_the_documented_layout() {
        let term = [1, 2, 3, 4, 5, 6, 7, 8];
        let seq = [0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18];
        let expected: [Vec<u8>; 8] = [
            [&[1][..], &term].concat(),
            [&[2][..], &term, &[1]].concat(),
            [&[3][..], &term].concat(),
            [&[4][..], &term, &[0]].concat(),
            [&[5][..], &term, &seq].concat(),
            [&[6][..], &term, &seq].concat(),
            [&[7][..], &term].concat(),
            [&[8][..], &term].concat(),
        ];
        for (message, bytes) in one_of_each().iter().zip(expected) {
            assert_eq!(message.encode(), bytes, "{message:?}");
        }
    }

    #[test]
    fn decodes_every_kind() {
        for message in one_of_each() {
            assert_eq!(Message::decode(&message.encode()), Ok(message));
        }
    }

    #[test]
    fn encode_into_appends() {
        let mut out = vec![0xaa];
        Message::Resign { term: Term(3) }.encode_into(&mut out);
        assert_eq!(out, [&[0xaa, 7][..], &3u64.to_be_bytes()].concat());
    }

    #[test]
    fn rejects_every_wrong_length_of_every_kind() {
        for message in one_of_each() {
            let bytes = message.encode();
            let kind = bytes[0];
            assert_eq!(Message::decode(&[]), Err(DecodeError::Empty));
            for length in 1..bytes.len() {
                assert_eq!(
                    Message::decode(&bytes[..length]),
                    Err(DecodeError::WrongLength { kind, length }),
                    "{message:?} cut to {length}"
                );
            }
            for extra in 1..=MAX_ENCODED_LEN {
                let mut longer = bytes.clone();
                longer.resize(bytes.len() + extra, 0);
                assert_eq!(
                    Message::decode(&longer),
                    Err(DecodeError::WrongLength {
                        kind,
                        length: longer.len()
                    }),
                    "{message:?} with {extra} extra bytes"
                );
            }
        }
    }

    #[test]
    fn rejects_unknown_kinds_and_the_reserved_one_at_every_length() {
        for kind in [0u8, TRANSPORT_NOTICE_KIND, 10, 0x7f, 0x80, 0xff] {
            for length in 1..=MAX_ENCODED_LEN {
                let mut bytes = vec![0; length];
                bytes[0] = kind;
                assert_eq!(
                    Message::decode(&bytes),
                    Err(DecodeError::UnknownKind { kind })
                );
            }
        }
    }

    #[test]
    fn rejects_booleans_other_than_zero_and_one() {
        for kind in [KIND_PRE_VOTE_REPLY, KIND_VOTE_REPLY] {
            for value in 0..=255u8 {
                let mut bytes = vec![kind, 0, 0, 0, 0, 0, 0, 0, 9];
                bytes.push(value);
                let decoded = Message::decode(&bytes);
                if value <= 1 {
                    assert!(decoded.is_ok(), "kind {kind} value {value}");
                } else {
                    assert_eq!(
                        decoded,
                        Err(DecodeError::InvalidBoolean { value }),
                        "kind {kind} value {value}"
                    );
                }
            }
        }
    }

    fn any_message() -> impl Strategy<Value = Message> {
        let term = any::<u64>().prop_map(Term);
        prop_oneof![
            term.clone().prop_map(|term| Message::PreVote { term }),
            (term.clone(), any::<bool>())
                .prop_map(|(term, granted)| Message::PreVoteReply { term, granted }),
            term.clone().prop_map(|term| Message::RequestVote { term }),
            (term.clone(), any::<bool>())
                .prop_map(|(term, granted)| Message::VoteReply { term, granted }),
            (term.clone(), any::<u64>()).prop_map(|(term, seq)| Message::Heartbeat { term, seq }),
            (term.clone(), any::<u64>())
                .prop_map(|(term, seq)| Message::HeartbeatAck { term, seq }),
            term.clone().prop_map(|term| Message::Resign { term }),
            term.prop_map(|term| Message::TimeoutNow { term }),
        ]
    }

    proptest! {
        #[test]
        fn round_trips_any_message(message in any_message()) {
            let bytes = message.encode();
            prop_assert!(bytes.len() <= MAX_ENCODED_LEN);
            prop_assert_eq!(Message::decode(&bytes), Ok(message));
        }

        #[test]
        fn decodes_arbitrary_bytes_without_panicking_and_only_canonically(
            bytes in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            // Whatever decodes must be the one encoding of its message: no two byte strings
            // mean the same message.
            if let Ok(message) = Message::decode(&bytes) {
                prop_assert_eq!(message.encode(), bytes);
            }
        }
    }
}
