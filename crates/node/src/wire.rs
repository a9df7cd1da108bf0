//! Authenticated datagrams between the members of one cluster.
//!
//! Every datagram is sealed with HMAC-SHA256 under the cluster key, names its sender and its
//! receiver, and carries the sender's incarnation (boot counter) and a per-boot sequence
//! number. A malformed, forged, misaddressed or replayed datagram (protocol: Bad input is
//! dropped) is dropped with a `DatagramDropReason` to count, never a panic.
//!
//! Layout (all integers big-endian):
//!
//! ```text
//! offset  size  field
//!      0     4  magic "TNR1"
//!      4     2  sender index    (into the sorted member list)
//!      6     2  receiver index
//!      8     8  sender incarnation
//!     16     8  sequence        (per sender incarnation, from 0)
//!     24     2  payload length  (n)
//!     26     n  payload
//!   26+n    32  HMAC-SHA256(cluster key, bytes 0 .. 26+n)
//! ```
//!
//! Replay protection. For each sender the opener remembers the highest incarnation seen and,
//! within it, the highest sequence and which of the 64 sequences below it have been accepted.
//! A higher incarnation (the sender restarted) starts afresh; a lower one is dropped as
//! `stale_incarnation`; a sequence already accepted or older than the window is `replayed`.
//! The window absorbs reordering of up to 64 datagrams. What it cannot stop: the windows live
//! in memory, so a *receiver* that restarts has forgotten them all and takes the first
//! authentic datagram from each sender, of any incarnation. Recordings of the sender's
//! datagrams, of earlier boots too, are then accepted again, each at most once per boot of
//! the receiver, if they are replayed in increasing incarnation order (within one, no more
//! than 63 sequences below the highest accepted) and before a genuine datagram of the
//! sender's current boot arrives; after it, earlier boots are
//! `stale_incarnation`. The election protocol tolerates duplicated and stale messages (they
//! carry terms), so this costs liveness at worst (docs/operations.md: Threat model).
//!
//! The key file holds the key in hex; see `ClusterKey::from_file`.
//!
//! One file per job: `key` reads and derives the cluster key, `seal` seals outgoing datagrams,
//! `open` checks incoming ones, and `drop_reason` names why one was dropped.

mod drop_reason;
mod key;
mod open;
mod seal;

use hmac::Hmac;
use sha2::Sha256;

pub use drop_reason::DatagramDropReason;
pub use key::{ClusterKey, KeyFileError, INSECURE_KEY, MAX_KEY_LEN, MIN_KEY_LEN};
pub use open::{sender_and_incarnation, Opened, Opener};
pub use seal::{SealError, Sealer};

type HmacSha256 = Hmac<Sha256>;

/// The first four bytes of every datagram; the digit is the layout version.
pub const MAGIC: [u8; 4] = *b"TNR1";
/// Largest datagram sent or accepted. Far below any path MTU, so datagrams never fragment.
pub const MAX_DATAGRAM: usize = 512;
/// Bytes before the payload: magic, sender, receiver, incarnation, sequence, payload length.
pub const HEADER_LEN: usize = 4 + 2 + 2 + 8 + 8 + 2;
/// Bytes of the HMAC-SHA256 tag that ends every datagram.
pub const TAG_LEN: usize = 32;
/// Largest payload that fits in one datagram.
pub const MAX_PAYLOAD: usize = MAX_DATAGRAM - HEADER_LEN - TAG_LEN;
/// How many sequences below the highest one the replay window remembers.
pub use tenure_driver::replay::REPLAY_WINDOW;

const _: () = assert!(MAX_PAYLOAD > 0 && MAX_PAYLOAD <= u16::MAX as usize);
const _: () = assert!(
    tenure_core::MAX_ENCODED_LEN <= MAX_PAYLOAD,
    "every message the core's codec encodes fits in one datagram"
);

/// The header fields, read from a datagram already known to be at least `HEADER_LEN` long.
struct Header {
    magic: [u8; 4],
    sender: u16,
    receiver: u16,
    incarnation: u64,
    sequence: u64,
    payload_len: u16,
}

impl Header {
    fn parse(datagram: &[u8]) -> Header {
        debug_assert!(datagram.len() >= HEADER_LEN);
        Header {
            magic: [datagram[0], datagram[1], datagram[2], datagram[3]],
            sender: u16_at(datagram, 4),
            receiver: u16_at(datagram, 6),
            incarnation: u64_at(datagram, 8),
            sequence: u64_at(datagram, 16),
            payload_len: u16_at(datagram, 24),
        }
    }
}

fn u16_at(bytes: &[u8], offset: usize) -> u16 {
    u16::from_be_bytes([bytes[offset], bytes[offset + 1]])
}

fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    let mut eight = [0; 8];
    eight.copy_from_slice(&bytes[offset..offset + 8]);
    u64::from_be_bytes(eight)
}

#[cfg(test)]
mod tests {
    use hmac::Mac;
    use proptest::prelude::*;

    use super::*;

    const KEY_HEX: &str = "00112233445566778899aabbccddeeff0123456789abcdef0123456789abcdef";

    fn key() -> ClusterKey {
        ClusterKey::from_hex(KEY_HEX).unwrap()
    }

    /// Node 1 of 3 sealing to node 0, and node 0's opener.
    fn pair() -> (Sealer, Opener) {
        (Sealer::new(&key(), 1, 7), Opener::new(&key(), 0, 3))
    }

    /// Re-signs a datagram after a test changed its header, to show that a check holds even
    /// for an authentic datagram.
    fn resign(datagram: &mut [u8]) {
        let split = datagram.len() - TAG_LEN;
        let mut mac = key().mac();
        mac.update(&datagram[..split]);
        datagram[split..].copy_from_slice(&mac.finalize().into_bytes());
    }

    // ---- Sealing and opening ----

    #[test]
    fn seals_the_documented_layout() {
        let (mut sealer, _) = pair();
        let datagram = sealer.seal(2, b"hello").unwrap();
        assert_eq!(&datagram[0..4], b"TNR1");
        assert_eq!(&datagram[4..6], &[0, 1]);
        assert_eq!(&datagram[6..8], &[0, 2]);
        assert_eq!(&datagram[8..16], &7u64.to_be_bytes());
        assert_eq!(&datagram[16..24], &0u64.to_be_bytes());
        assert_eq!(&datagram[24..26], &[0, 5]);
        assert_eq!(&datagram[26..31], b"hello");
        assert_eq!(datagram.len(), HEADER_LEN + 5 + TAG_LEN);
        let second = sealer.seal(2, b"").unwrap();
        assert_eq!(&second[16..24], &1u64.to_be_bytes());
    }

    #[test]
    fn opens_what_was_sealed() {
        let (mut sealer, mut opener) = pair();
        for payload in [&b""[..], b"x", &[0xab; MAX_PAYLOAD]] {
            let datagram = sealer.seal(0, payload).unwrap();
            assert!(datagram.len() <= MAX_DATAGRAM);
            assert_eq!(
                opener.open(&datagram),
                Ok(Opened {
                    from: 1,
                    payload: payload.to_vec()
                })
            );
        }
    }

    #[test]
    fn refuses_to_seal_an_oversized_payload_without_using_a_sequence() {
        let (mut sealer, mut opener) = pair();
        assert_eq!(
            sealer.seal(0, &[0; MAX_PAYLOAD + 1]),
            Err(SealError::PayloadTooLarge {
                length: MAX_PAYLOAD + 1
            })
        );
        let datagram = sealer.seal(0, b"ok").unwrap();
        assert_eq!(&datagram[16..24], &0u64.to_be_bytes());
        assert!(opener.open(&datagram).is_ok());
    }

    // ---- Drop reasons, one per check ----

    #[test]
    fn drops_oversized_and_short_datagrams() {
        let (_, mut opener) = pair();
        assert_eq!(
            opener.open(&[0; MAX_DATAGRAM + 1]),
            Err(DatagramDropReason::Oversized)
        );
        assert_eq!(opener.open(&[]), Err(DatagramDropReason::Malformed));
        assert_eq!(
            opener.open(&[0; HEADER_LEN + TAG_LEN - 1]),
            Err(DatagramDropReason::Malformed)
        );
    }

    #[test]
    fn drops_bad_magic() {
        let (mut sealer, mut opener) = pair();
        let mut datagram = sealer.seal(0, b"x").unwrap();
        datagram[3] = b'2';
        resign(&mut datagram);
        assert_eq!(opener.open(&datagram), Err(DatagramDropReason::BadMagic));
    }

    #[test]
    fn drops_inconsistent_payload_lengths() {
        let (mut sealer, mut opener) = pair();
        let datagram = sealer.seal(0, b"abc").unwrap();
        for claimed in [0u16, 2, 4, u16::MAX] {
            let mut wrong = datagram.clone();
            wrong[24..26].copy_from_slice(&claimed.to_be_bytes());
            resign(&mut wrong);
            assert_eq!(
                opener.open(&wrong),
                Err(DatagramDropReason::Malformed),
                "{claimed}"
            );
        }
        let mut extended = datagram.clone();
        extended.push(0);
        assert_eq!(opener.open(&extended), Err(DatagramDropReason::Malformed));
    }

    #[test]
    fn drops_unknown_senders_including_itself() {
        let mut opener = Opener::new(&key(), 0, 3);
        for sender in [0u16, 3, u16::MAX] {
            let mut sealer = Sealer::new(&key(), sender, 1);
            let datagram = sealer.seal(0, b"x").unwrap();
            assert_eq!(
                opener.open(&datagram),
                Err(DatagramDropReason::UnknownPeer),
                "{sender}"
            );
        }
    }

    #[test]
    fn drops_misaddressed_datagrams() {
        let (mut sealer, mut opener) = pair();
        for receiver in [1u16, 2, 3, u16::MAX] {
            let datagram = sealer.seal(receiver, b"x").unwrap();
            assert_eq!(
                opener.open(&datagram),
                Err(DatagramDropReason::Misaddressed),
                "{receiver}"
            );
        }
    }

    #[test]
    fn drops_forged_and_foreign_key_datagrams() {
        let (mut sealer, mut opener) = pair();
        let mut datagram = sealer.seal(0, b"x").unwrap();
        // A changed payload, keeping the old tag.
        datagram[HEADER_LEN] ^= 1;
        assert_eq!(
            opener.open(&datagram),
            Err(DatagramDropReason::Unauthenticated)
        );
        // A changed tag.
        let mut datagram = sealer.seal(0, b"x").unwrap();
        let last = datagram.len() - 1;
        datagram[last] ^= 0x80;
        assert_eq!(
            opener.open(&datagram),
            Err(DatagramDropReason::Unauthenticated)
        );
        // Another cluster's key, and the insecure key.
        let other = ClusterKey::from_hex(&"ab".repeat(32)).unwrap();
        for foreign in [other, ClusterKey::insecure()] {
            let datagram = Sealer::new(&foreign, 1, 7).seal(0, b"x").unwrap();
            assert_eq!(
                opener.open(&datagram),
                Err(DatagramDropReason::Unauthenticated)
            );
        }
    }

    #[test]
    fn a_forgery_does_not_move_the_replay_window() {
        let (mut sealer, mut opener) = pair();
        let genuine = sealer.seal(0, b"x").unwrap();
        // A forged datagram with a far higher sequence and incarnation, left unsigned.
        let mut forged = genuine.clone();
        forged[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
        forged[16..24].copy_from_slice(&1000u64.to_be_bytes());
        assert_eq!(
            opener.open(&forged),
            Err(DatagramDropReason::Unauthenticated)
        );
        assert!(opener.open(&genuine).is_ok());
    }

    // ---- Replay protection ----

    #[test]
    fn drops_an_exact_replay() {
        let (mut sealer, mut opener) = pair();
        let datagram = sealer.seal(0, b"x").unwrap();
        assert!(opener.open(&datagram).is_ok());
        assert_eq!(opener.open(&datagram), Err(DatagramDropReason::Replayed));
        assert_eq!(opener.open(&datagram), Err(DatagramDropReason::Replayed));
    }

    #[test]
    fn accepts_reordering_within_the_window_once_each() {
        let (mut sealer, mut opener) = pair();
        let datagrams: Vec<Vec<u8>> = (0..REPLAY_WINDOW)
            .map(|_| sealer.seal(0, b"x").unwrap())
            .collect();
        // Newest first, then all the older ones, each exactly once.
        assert!(opener.open(&datagrams[63]).is_ok());
        for datagram in datagrams[..63].iter().rev() {
            assert!(opener.open(datagram).is_ok());
        }
        for datagram in &datagrams {
            assert_eq!(opener.open(datagram), Err(DatagramDropReason::Replayed));
        }
    }

    #[test]
    fn drops_sequences_older_than_the_window() {
        let (mut sealer, mut opener) = pair();
        let oldest = sealer.seal(0, b"x").unwrap();
        let mut newest = Vec::new();
        for _ in 0..REPLAY_WINDOW {
            newest = sealer.seal(0, b"x").unwrap();
        }
        // `newest` is sequence 64, so sequence 0 is exactly one past the window's reach,
        // though never accepted.
        assert!(opener.open(&newest).is_ok());
        assert_eq!(opener.open(&oldest), Err(DatagramDropReason::Replayed));
    }

    #[test]
    fn a_higher_incarnation_resets_the_window_and_a_lower_one_is_stale() {
        let mut opener = Opener::new(&key(), 0, 3);
        let mut first_boot = Sealer::new(&key(), 1, 7);
        let mut second_boot = Sealer::new(&key(), 1, 8);
        let old = first_boot.seal(0, b"old").unwrap();
        for _ in 0..100 {
            assert!(opener.open(&first_boot.seal(0, b"x").unwrap()).is_ok());
        }
        // The restarted sender begins again at sequence 0 and is accepted.
        assert!(opener.open(&second_boot.seal(0, b"new").unwrap()).is_ok());
        assert!(opener.open(&second_boot.seal(0, b"new").unwrap()).is_ok());
        // Anything from the earlier boot is now stale, even a never-seen sequence.
        assert_eq!(opener.open(&old), Err(DatagramDropReason::StaleIncarnation));
        assert_eq!(
            opener.open(&first_boot.seal(0, b"late").unwrap()),
            Err(DatagramDropReason::StaleIncarnation)
        );
    }

    #[test]
    fn keeps_one_window_per_sender() {
        let mut opener = Opener::new(&key(), 0, 3);
        let mut from_one = Sealer::new(&key(), 1, 5);
        let mut from_two = Sealer::new(&key(), 2, 5);
        for _ in 0..3 {
            // Same incarnation and sequence from two senders: both fresh.
            assert!(opener.open(&from_one.seal(0, b"x").unwrap()).is_ok());
            assert!(opener.open(&from_two.seal(0, b"x").unwrap()).is_ok());
        }
    }

    #[test]
    fn drop_reasons_have_stable_distinct_names() {
        let names: Vec<&str> = DatagramDropReason::ALL
            .iter()
            .map(|reason| reason.name())
            .collect();
        assert_eq!(
            names,
            [
                "oversized",
                "malformed",
                "bad_magic",
                "unknown_peer",
                "misaddressed",
                "unauthenticated",
                "replayed",
                "stale_incarnation"
            ]
        );
        assert_eq!(DatagramDropReason::BadMagic.to_string(), "bad_magic");
    }

    #[test]
    #[should_panic(expected = "own index 3 is not below the member count 3")]
    fn an_opener_outside_the_cluster_is_a_programmer_error() {
        let _ = Opener::new(&key(), 3, 3);
    }

    // ---- Keys ----

    #[test]
    fn a_restarted_receiver_accepts_recordings_once_until_the_senders_current_boot_shows() {
        let mut old_boot = Sealer::new(&key(), 1, 7);
        let recorded: Vec<Vec<u8>> = (0..3).map(|_| old_boot.seal(0, b"old").unwrap()).collect();
        let mut current_boot = Sealer::new(&key(), 1, 8);
        let current = current_boot.seal(0, b"new").unwrap();

        // The receiver restarted: every window is empty. A recording of an earlier boot of
        // the sender is accepted, in order, each once.
        let mut opener = Opener::new(&key(), 0, 3);
        for datagram in &recorded {
            assert!(opener.open(datagram).is_ok());
        }
        assert_eq!(opener.open(&recorded[1]), Err(DatagramDropReason::Replayed));
        // The sender's current boot closes the earlier one for good.
        assert!(opener.open(&current).is_ok());
        assert_eq!(
            opener.open(&recorded[0]),
            Err(DatagramDropReason::StaleIncarnation)
        );
        // Another restart of the receiver opens the same window again, in any order within
        // the 64 sequences of the window.
        let mut opener = Opener::new(&key(), 0, 3);
        assert!(opener.open(&recorded[2]).is_ok());
        assert!(opener.open(&recorded[0]).is_ok());
        assert_eq!(opener.open(&recorded[0]), Err(DatagramDropReason::Replayed));
    }

    // ---- Never panic, never accept damage ----

    /// One way to damage a valid datagram.
    #[derive(Clone, Debug)]
    enum Mutation {
        FlipBit { position: usize, bit: u8 },
        Replace { position: usize, value: u8 },
        Truncate { len: usize },
        Append { bytes: Vec<u8> },
        Splice { position: usize, bytes: Vec<u8> },
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            (any::<usize>(), 0u8..8)
                .prop_map(|(position, bit)| Mutation::FlipBit { position, bit }),
            (any::<usize>(), 1u8..=255)
                .prop_map(|(position, value)| Mutation::Replace { position, value }),
            any::<usize>().prop_map(|len| Mutation::Truncate { len }),
            proptest::collection::vec(any::<u8>(), 1..600)
                .prop_map(|bytes| Mutation::Append { bytes }),
            (
                any::<usize>(),
                proptest::collection::vec(any::<u8>(), 1..40)
            )
                .prop_map(|(position, bytes)| Mutation::Splice { position, bytes }),
        ]
    }

    /// Applies `mutation`; the result always differs from `datagram`.
    fn apply(datagram: &[u8], mutation: &Mutation) -> Vec<u8> {
        let mut damaged = datagram.to_vec();
        match mutation {
            Mutation::FlipBit { position, bit } => damaged[position % datagram.len()] ^= 1 << bit,
            // XOR with a non-zero value always changes the byte.
            Mutation::Replace { position, value } => damaged[position % datagram.len()] ^= value,
            Mutation::Truncate { len } => damaged.truncate(len % datagram.len()),
            Mutation::Append { bytes } => damaged.extend_from_slice(bytes),
            Mutation::Splice { position, bytes } => {
                let at = position % (datagram.len() + 1);
                damaged.splice(at..at, bytes.iter().copied());
            }
        }
        damaged
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_are_dropped_without_panicking(
            bytes in proptest::collection::vec(any::<u8>(), 0..700),
        ) {
            let (_, mut opener) = pair();
            prop_assert!(opener.open(&bytes).is_err());
        }

        #[test]
        fn arbitrary_headers_with_valid_magic_are_dropped(
            sender in any::<u16>(),
            receiver in any::<u16>(),
            incarnation in any::<u64>(),
            sequence in any::<u64>(),
            payload_len in any::<u16>(),
            rest in proptest::collection::vec(any::<u8>(), 0..520),
        ) {
            let (_, mut opener) = pair();
            let mut bytes = MAGIC.to_vec();
            bytes.extend_from_slice(&sender.to_be_bytes());
            bytes.extend_from_slice(&receiver.to_be_bytes());
            bytes.extend_from_slice(&incarnation.to_be_bytes());
            bytes.extend_from_slice(&sequence.to_be_bytes());
            bytes.extend_from_slice(&payload_len.to_be_bytes());
            bytes.extend_from_slice(&rest);
            prop_assert!(opener.open(&bytes).is_err());
        }

        #[test]
        fn every_mutation_of_a_valid_datagram_is_dropped_and_changes_nothing(
            payload in proptest::collection::vec(any::<u8>(), 0..=MAX_PAYLOAD),
            mutations in proptest::collection::vec(mutation(), 1..4),
        ) {
            let (mut sealer, mut opener) = pair();
            let datagram = sealer.seal(0, &payload).unwrap();
            let mut damaged = datagram.clone();
            for mutation in &mutations {
                if damaged.is_empty() {
                    break;
                }
                damaged = apply(&damaged, mutation);
            }
            // Several mutations can cancel out (two flips of one bit); that is no mutation.
            prop_assume!(damaged != datagram);
            prop_assert!(opener.open(&damaged).is_err());
            // The genuine datagram is still accepted: the damaged one touched no state.
            prop_assert_eq!(
                opener.open(&datagram),
                Ok(Opened { from: 1, payload: payload.clone() })
            );
        }
    }

    // ---- Incarnation moves ----

    #[test]
    fn a_sealer_moved_to_a_higher_incarnation_is_accepted_again_from_sequence_zero() {
        let (mut sealer, mut opener) = pair();
        // A forged datagram of incarnation 8 (one above the sender's 7) silences the sender.
        let mut forger = Sealer::new(&key(), 1, 8);
        opener.open(&forger.seal(0, b"forged").unwrap()).unwrap();
        let refused = sealer.seal(0, b"genuine").unwrap();
        assert_eq!(
            opener.open(&refused),
            Err(DatagramDropReason::StaleIncarnation)
        );
        assert_eq!(sender_and_incarnation(&refused), Some((1, 7)));
        assert_eq!(opener.held_incarnation(1), Some(8));
        assert_eq!(opener.held_incarnation(2), None);

        sealer.move_to_incarnation(9);
        assert_eq!(sealer.incarnation(), 9);
        let moved = sealer.seal(0, b"genuine").unwrap();
        assert_eq!(&moved[16..24], &0u64.to_be_bytes());
        assert!(opener.open(&moved).is_ok());
        assert_eq!(opener.held_incarnation(1), Some(9));
    }

    #[test]
    #[should_panic(expected = "is not above")]
    fn a_sealer_never_moves_down() {
        let (mut sealer, _) = pair();
        sealer.move_to_incarnation(7);
    }
}
