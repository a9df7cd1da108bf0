//! The election messages inside a sealed datagram's payload.
//!
//! One kind byte, then the fields in declaration order, integers big-endian, booleans as one
//! byte 0 or 1. Every kind has exactly one valid length, and `decode` insists on it: a payload
//! that is one byte short or long, names no kind, or holds any other boolean byte is
//! `DropReason::Malformed`. Since the payload was authenticated first, such a payload means a
//! peer running incompatible code, which is worth counting rather than guessing at.
//!
//! `WireMessage` mirrors `tenure_core::Message` field for field (terms as plain `u64`); the
//! driver maps one onto the other.
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
//!    9  (IncarnationNotice) held u64, refused u64               17
//! ```
//!
//! Kind 9 is not an election message but a notice between transports (`IncarnationNotice`):
//! "I hold incarnation `held` for you, so I dropped your datagram of incarnation `refused` as
//! `stale_incarnation`". `WireMessage::decode` refuses it as malformed, as nodes from before
//! it do, so it never reaches the election core.
//!
//! Kind numbers are part of the wire format: never renumber one, only add new ones.

use crate::wire::{DropReason, MAX_PAYLOAD};

/// One election message as carried on the wire; the same shape as `tenure_core::Message`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WireMessage {
    PreVote { term: u64 },
    PreVoteReply { term: u64, granted: bool },
    RequestVote { term: u64 },
    VoteReply { term: u64, granted: bool },
    Heartbeat { term: u64, seq: u64 },
    HeartbeatAck { term: u64, seq: u64 },
    Resign { term: u64 },
    TimeoutNow { term: u64 },
}

/// The longest encoding (a kind byte and two `u64`s).
pub const MAX_ENCODED_LEN: usize = 1 + 8 + 8;

const _: () = assert!(
    MAX_ENCODED_LEN <= MAX_PAYLOAD,
    "every message fits in one datagram"
);

const KIND_PRE_VOTE: u8 = 1;
const KIND_PRE_VOTE_REPLY: u8 = 2;
const KIND_REQUEST_VOTE: u8 = 3;
const KIND_VOTE_REPLY: u8 = 4;
const KIND_HEARTBEAT: u8 = 5;
const KIND_HEARTBEAT_ACK: u8 = 6;
const KIND_RESIGN: u8 = 7;
const KIND_TIMEOUT_NOW: u8 = 8;
const KIND_INCARNATION_NOTICE: u8 = 9;

/// A receiver's answer to an authentic datagram it dropped as `stale_incarnation`: it holds
/// incarnation `held` for the sender, above the `refused` one the datagram carried. Sealed and
/// replay-protected like every datagram; see `transport` for what each side does with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IncarnationNotice {
    pub held: u64,
    pub refused: u64,
}

impl IncarnationNotice {
    /// The payload bytes of this notice.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(MAX_ENCODED_LEN);
        bytes.push(KIND_INCARNATION_NOTICE);
        bytes.extend_from_slice(&self.held.to_be_bytes());
        bytes.extend_from_slice(&self.refused.to_be_bytes());
        bytes
    }

    /// `None` when `bytes` is not a notice at all (an election message, or garbage for
    /// `WireMessage::decode` to refuse); a notice of the wrong length is malformed.
    pub fn decode(bytes: &[u8]) -> Option<Result<IncarnationNotice, DropReason>> {
        let (&kind, fields) = bytes.split_first()?;
        if kind != KIND_INCARNATION_NOTICE {
            return None;
        }
        if fields.len() != 16 {
            return Some(Err(DropReason::Malformed));
        }
        Some(Ok(IncarnationNotice {
            held: u64_at(fields, 0),
            refused: u64_at(fields, 8),
        }))
    }
}

impl WireMessage {
    /// The payload bytes for this message; at most `MAX_ENCODED_LEN` long.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(MAX_ENCODED_LEN);
        match *self {
            WireMessage::PreVote { term } => put_term(&mut bytes, KIND_PRE_VOTE, term),
            WireMessage::PreVoteReply { term, granted } => {
                put_term(&mut bytes, KIND_PRE_VOTE_REPLY, term);
                bytes.push(u8::from(granted));
            }
            WireMessage::RequestVote { term } => put_term(&mut bytes, KIND_REQUEST_VOTE, term),
            WireMessage::VoteReply { term, granted } => {
                put_term(&mut bytes, KIND_VOTE_REPLY, term);
                bytes.push(u8::from(granted));
            }
            WireMessage::Heartbeat { term, seq } => {
                put_term(&mut bytes, KIND_HEARTBEAT, term);
                bytes.extend_from_slice(&seq.to_be_bytes());
            }
            WireMessage::HeartbeatAck { term, seq } => {
                put_term(&mut bytes, KIND_HEARTBEAT_ACK, term);
                bytes.extend_from_slice(&seq.to_be_bytes());
            }
            WireMessage::Resign { term } => put_term(&mut bytes, KIND_RESIGN, term),
            WireMessage::TimeoutNow { term } => put_term(&mut bytes, KIND_TIMEOUT_NOW, term),
        }
        debug_assert!(bytes.len() <= MAX_ENCODED_LEN);
        bytes
    }

    /// Parses a payload produced by `encode`; anything else is `DropReason::Malformed`.
    pub fn decode(bytes: &[u8]) -> Result<WireMessage, DropReason> {
        let (&kind, fields) = bytes.split_first().ok_or(DropReason::Malformed)?;
        let message = match (kind, fields.len()) {
            (KIND_PRE_VOTE, 8) => WireMessage::PreVote {
                term: u64_at(fields, 0),
            },
            (KIND_PRE_VOTE_REPLY, 9) => WireMessage::PreVoteReply {
                term: u64_at(fields, 0),
                granted: bool_at(fields, 8)?,
            },
            (KIND_REQUEST_VOTE, 8) => WireMessage::RequestVote {
                term: u64_at(fields, 0),
            },
            (KIND_VOTE_REPLY, 9) => WireMessage::VoteReply {
                term: u64_at(fields, 0),
                granted: bool_at(fields, 8)?,
            },
            (KIND_HEARTBEAT, 16) => WireMessage::Heartbeat {
                term: u64_at(fields, 0),
                seq: u64_at(fields, 8),
            },
            (KIND_HEARTBEAT_ACK, 16) => WireMessage::HeartbeatAck {
                term: u64_at(fields, 0),
                seq: u64_at(fields, 8),
            },
            (KIND_RESIGN, 8) => WireMessage::Resign {
                term: u64_at(fields, 0),
            },
            (KIND_TIMEOUT_NOW, 8) => WireMessage::TimeoutNow {
                term: u64_at(fields, 0),
            },
            // An unknown kind, or a known kind at the wrong length.
            _ => return Err(DropReason::Malformed),
        };
        Ok(message)
    }
}

fn put_term(bytes: &mut Vec<u8>, kind: u8, term: u64) {
    bytes.push(kind);
    bytes.extend_from_slice(&term.to_be_bytes());
}

/// Reads a `u64` at `offset`; the caller has checked the length, as `decode` does per kind.
fn u64_at(fields: &[u8], offset: usize) -> u64 {
    let mut eight = [0; 8];
    eight.copy_from_slice(&fields[offset..offset + 8]);
    u64::from_be_bytes(eight)
}

fn bool_at(fields: &[u8], offset: usize) -> Result<bool, DropReason> {
    match fields[offset] {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(DropReason::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// One message of every kind, with fields that tell byte order apart.
    fn one_of_each() -> [WireMessage; 8] {
        let term = 0x0102_0304_0506_0708;
        let seq = 0x1112_1314_1516_1718;
        [
            WireMessage::PreVote { term },
            WireMessage::PreVoteReply {
                term,
                granted: true,
            },
            WireMessage::RequestVote { term },
            WireMessage::VoteReply {
                term,
                granted: false,
            },
            WireMessage::Heartbeat { term, seq },
            WireMessage::HeartbeatAck { term, seq },
            WireMessage::Resign { term },
            WireMessage::TimeoutNow { term },
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
            assert_eq!(WireMessage::decode(&message.encode()), Ok(message));
        }
    }

    #[test]
    fn rejects_every_wrong_length_of_every_kind() {
        for message in one_of_each() {
            let bytes = message.encode();
            for len in 0..bytes.len() {
                assert_eq!(
                    WireMessage::decode(&bytes[..len]),
                    Err(DropReason::Malformed),
                    "{message:?} cut to {len}"
                );
            }
            for extra in 1..=MAX_ENCODED_LEN {
                let mut longer = bytes.clone();
                longer.resize(bytes.len() + extra, 0);
                assert_eq!(
                    WireMessage::decode(&longer),
                    Err(DropReason::Malformed),
                    "{message:?} with {extra} extra bytes"
                );
            }
        }
    }

    #[test]
    fn rejects_unknown_kinds_at_every_length() {
        for kind in [0u8, 9, 10, 0x7f, 0x80, 0xff] {
            for len in 0..=MAX_ENCODED_LEN {
                let mut bytes = vec![0; len.max(1)];
                bytes[0] = kind;
                assert_eq!(WireMessage::decode(&bytes), Err(DropReason::Malformed));
            }
        }
    }

    #[test]
    fn rejects_booleans_other_than_zero_and_one() {
        for kind in [KIND_PRE_VOTE_REPLY, KIND_VOTE_REPLY] {
            for value in 0..=255u8 {
                let mut bytes = vec![kind, 0, 0, 0, 0, 0, 0, 0, 9];
                bytes.push(value);
                let decoded = WireMessage::decode(&bytes);
                if value <= 1 {
                    assert!(decoded.is_ok(), "kind {kind} value {value}");
                } else {
                    assert_eq!(
                        decoded,
                        Err(DropReason::Malformed),
                        "kind {kind} value {value}"
                    );
                }
            }
        }
    }

    fn any_message() -> impl Strategy<Value = WireMessage> {
        prop_oneof![
            any::<u64>().prop_map(|term| WireMessage::PreVote { term }),
            (any::<u64>(), any::<bool>())
                .prop_map(|(term, granted)| WireMessage::PreVoteReply { term, granted }),
            any::<u64>().prop_map(|term| WireMessage::RequestVote { term }),
            (any::<u64>(), any::<bool>())
                .prop_map(|(term, granted)| WireMessage::VoteReply { term, granted }),
            (any::<u64>(), any::<u64>())
                .prop_map(|(term, seq)| WireMessage::Heartbeat { term, seq }),
            (any::<u64>(), any::<u64>())
                .prop_map(|(term, seq)| WireMessage::HeartbeatAck { term, seq }),
            any::<u64>().prop_map(|term| WireMessage::Resign { term }),
            any::<u64>().prop_map(|term| WireMessage::TimeoutNow { term }),
        ]
    }

    proptest! {
        #[test]
        fn round_trips_any_message(message in any_message()) {
            let bytes = message.encode();
            prop_assert!(bytes.len() <= MAX_ENCODED_LEN);
            prop_assert_eq!(WireMessage::decode(&bytes), Ok(message));
        }

        #[test]
        fn decodes_arbitrary_bytes_without_panicking_and_only_canonically(
            bytes in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            // Whatever decodes must be the one encoding of its message: no two byte strings
            // mean the same message.
            if let Ok(message) = WireMessage::decode(&bytes) {
                prop_assert_eq!(message.encode(), bytes);
            }
        }
    }

    #[test]
    fn an_incarnation_notice_round_trips_and_is_no_election_message() {
        let notice = IncarnationNotice {
            held: 10,
            refused: 9,
        };
        let bytes = notice.encode();
        assert_eq!(bytes.len(), MAX_ENCODED_LEN);
        assert_eq!(IncarnationNotice::decode(&bytes), Some(Ok(notice)));
        assert_eq!(WireMessage::decode(&bytes), Err(DropReason::Malformed));
        assert_eq!(
            IncarnationNotice::decode(&bytes[..9]),
            Some(Err(DropReason::Malformed))
        );
        let heartbeat = WireMessage::Heartbeat { term: 1, seq: 2 }.encode();
        assert_eq!(IncarnationNotice::decode(&heartbeat), None);
    }
}
