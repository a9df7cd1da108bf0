//! [`Sealer`]: seals outgoing datagrams for one node in one incarnation.

use std::fmt;

use hmac::Mac;

use super::{ClusterKey, HmacSha256, HEADER_LEN, MAGIC, MAX_DATAGRAM, MAX_PAYLOAD, TAG_LEN};

/// Why a payload could not be sealed. Both are caller errors; nothing is consumed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("payload of {length} bytes exceeds the maximum of {MAX_PAYLOAD}")]
    PayloadTooLarge { length: usize },
    #[error("sequence numbers of this incarnation are exhausted; restart the node")]
    SequenceExhausted,
}

/// Seals outgoing datagrams for one node in one incarnation.
#[derive(Clone)]
pub struct Sealer {
    mac: HmacSha256,
    own_index: u16,
    incarnation: u64,
    next_sequence: u64,
}

impl Sealer {
    /// A sealer for the member at `own_index` in its boot `incarnation`, which must be greater
    /// than every earlier boot's (see `StateFile::begin_boot`), or peers drop everything it
    /// seals as `stale_incarnation`, or worse, as `replayed`.
    pub fn new(key: &ClusterKey, own_index: u16, incarnation: u64) -> Sealer {
        Sealer {
            mac: key.mac(),
            own_index,
            incarnation,
            next_sequence: 0,
        }
    }

    /// The incarnation this sealer seals in.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// Seals from now on in `incarnation`, sequences starting again from 0. The caller must
    /// have made `incarnation` durable first (`StateFile::raise_incarnation`), and it must be
    /// greater than the current one, for the reasons given at `Sealer::new`.
    pub fn move_to_incarnation(&mut self, incarnation: u64) {
        assert!(
            incarnation > self.incarnation,
            "incarnation {incarnation} is not above {}",
            self.incarnation
        );
        self.incarnation = incarnation;
        self.next_sequence = 0;
    }

    /// Seals `payload` for the member at index `to`, using the next sequence number.
    pub fn seal(&mut self, to: u16, payload: &[u8]) -> Result<Vec<u8>, SealError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(SealError::PayloadTooLarge {
                length: payload.len(),
            });
        }
        // The last sequence, u64::MAX, is never handed out, so `next_sequence` cannot wrap
        // and reuse a sequence; 2^64 - 1 datagrams per boot is not a limit anyone reaches.
        let sequence = self.next_sequence;
        let next_sequence = sequence
            .checked_add(1)
            .ok_or(SealError::SequenceExhausted)?;
        let payload_len = u16::try_from(payload.len()).map_err(|_| SealError::PayloadTooLarge {
            length: payload.len(),
        })?;

        let mut datagram = Vec::with_capacity(HEADER_LEN + payload.len() + TAG_LEN);
        datagram.extend_from_slice(&MAGIC);
        datagram.extend_from_slice(&self.own_index.to_be_bytes());
        datagram.extend_from_slice(&to.to_be_bytes());
        datagram.extend_from_slice(&self.incarnation.to_be_bytes());
        datagram.extend_from_slice(&sequence.to_be_bytes());
        datagram.extend_from_slice(&payload_len.to_be_bytes());
        datagram.extend_from_slice(payload);
        let mut mac = self.mac.clone();
        mac.update(&datagram);
        datagram.extend_from_slice(&mac.finalize().into_bytes());
        debug_assert!(datagram.len() <= MAX_DATAGRAM);

        self.next_sequence = next_sequence;
        Ok(datagram)
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Sealer")
            .field("own_index", &self.own_index)
            .field("incarnation", &self.incarnation)
            .field("next_sequence", &self.next_sequence)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_to_reuse_the_last_sequence() {
        let key = ClusterKey::from_hex(&"ab".repeat(32)).unwrap();
        let mut sealer = Sealer::new(&key, 1, 7);
        sealer.next_sequence = u64::MAX - 1;
        assert!(sealer.seal(0, b"last").is_ok());
        assert_eq!(
            sealer.seal(0, b"one too many"),
            Err(SealError::SequenceExhausted)
        );
        assert_eq!(
            sealer.seal(0, b"still not"),
            Err(SealError::SequenceExhausted)
        );
    }
}
