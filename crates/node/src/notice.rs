//! The transport's own notice, carried in a sealed datagram like an election message.
//!
//! A receiver answers an authentic datagram it dropped as `stale_incarnation` with an
//! `IncarnationNotice`: "I hold incarnation `held` for you, so I dropped your datagram of
//! incarnation `refused`". See `transport` for what each side does with it.
//!
//! Its payload uses the kind byte the core's codec reserves for transports
//! (`tenure_core::TRANSPORT_NOTICE_KIND`, 9), so `Message::decode` refuses it as an unknown kind,
//! as nodes from before the notice do, and it never reaches the election core:
//!
//! ```text
//! kind  fields after the kind byte        length
//!    9  held u64, refused u64                 17
//! ```

use tenure_core::TRANSPORT_NOTICE_KIND;

use crate::wire::{DatagramDropReason, MAX_PAYLOAD};

/// The length of a notice's payload: the kind byte and two `u64`s.
pub const NOTICE_LEN: usize = 1 + 8 + 8;

const _: () = assert!(NOTICE_LEN <= MAX_PAYLOAD, "a notice fits in one datagram");

/// A receiver's answer to an authentic datagram it dropped as `stale_incarnation`: it holds
/// incarnation `held` for the sender, above the `refused` one the datagram carried. Sealed and
/// replay-protected like every datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IncarnationNotice {
    pub held: u64,
    pub refused: u64,
}

impl IncarnationNotice {
    /// The payload bytes of this notice.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(NOTICE_LEN);
        bytes.push(TRANSPORT_NOTICE_KIND);
        bytes.extend_from_slice(&self.held.to_be_bytes());
        bytes.extend_from_slice(&self.refused.to_be_bytes());
        bytes
    }

    /// `None` when `bytes` is not a notice at all (an election message, or garbage for
    /// `Message::decode` to refuse); a notice of the wrong length is malformed.
    pub fn decode(bytes: &[u8]) -> Option<Result<IncarnationNotice, DatagramDropReason>> {
        let (&kind, fields) = bytes.split_first()?;
        if kind != TRANSPORT_NOTICE_KIND {
            return None;
        }
        if fields.len() != NOTICE_LEN - 1 {
            return Some(Err(DatagramDropReason::Malformed));
        }
        Some(Ok(IncarnationNotice {
            held: u64_at(fields, 0),
            refused: u64_at(fields, 8),
        }))
    }
}

/// Reads a `u64` at `offset`; the caller has checked the length.
fn u64_at(fields: &[u8], offset: usize) -> u64 {
    let mut eight = [0; 8];
    eight.copy_from_slice(&fields[offset..offset + 8]);
    u64::from_be_bytes(eight)
}

#[cfg(test)]
mod tests {
    use tenure_core::{DecodeError, Message, Term};

    use super::*;

    #[test]
    fn an_incarnation_notice_round_trips_and_is_no_election_message() {
        let notice = IncarnationNotice {
            held: 10,
            refused: 9,
        };
        let bytes = notice.encode();
        assert_eq!(bytes.len(), NOTICE_LEN);
        assert_eq!(IncarnationNotice::decode(&bytes), Some(Ok(notice)));
        assert_eq!(
            Message::decode(&bytes),
            Err(DecodeError::UnknownKind {
                kind: TRANSPORT_NOTICE_KIND
            })
        );
        assert_eq!(
            IncarnationNotice::decode(&bytes[..9]),
            Some(Err(DatagramDropReason::Malformed))
        );
        assert_eq!(IncarnationNotice::decode(&[]), None);
        let heartbeat = Message::Heartbeat {
            term: Term(1),
            seq: 2,
        }
        .encode();
        assert_eq!(IncarnationNotice::decode(&heartbeat), None);
    }
}
