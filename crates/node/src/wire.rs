//! Authenticated datagrams between the members of one cluster.
//!
//! Every datagram is sealed with HMAC-SHA256 under the cluster key, names its sender and its
//! receiver, and carries the sender's incarnation (boot counter) and a per-boot sequence
//! number. STYLE ("Assertions and limits"): a malformed, forged, misaddressed or replayed
//! datagram is dropped with a `DropReason` to count, never a panic.
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
//! carry terms), so this costs liveness at worst (docs/operations.md, "Threat model").
//!
//! The key file holds the key in hex; see `ClusterKey::from_file`.

use std::fmt;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tenure_driver::replay::{ReplayError, ReplayWindow};

use crate::small_file;

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

/// The well-known key of `--insecure` mode: all zeros. It provides **no authentication**:
/// anyone who can send a datagram to a node can forge any message, depose the leader and run
/// the daemon twice. Only for a demo on a trusted network or a single machine.
pub const INSECURE_KEY: [u8; 32] = [0; 32];

/// Fewest key bytes accepted from a key file (128 bits).
pub const MIN_KEY_LEN: usize = 16;
/// Most key bytes accepted from a key file (HMAC-SHA256's block size).
pub const MAX_KEY_LEN: usize = 64;

/// Longest key file read: the longest key in hex with generous room for whitespace.
const MAX_KEY_FILE_LEN: u64 = 4096;

/// The secret shared by all members of a cluster. Its `Debug` output never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterKey {
    bytes: Vec<u8>,
}

/// Why a key file was refused. The message names the file and the rule it broke.
#[derive(Debug, thiserror::Error)]
#[error(
    "cluster key file {}: {problem}. The file must hold one line of {} to {} hexadecimal \
     digits ({MIN_KEY_LEN} to {MAX_KEY_LEN} random bytes), for example made with \
     `openssl rand -hex 32`, and every node of the cluster must use the same key",
    .path.display(),
    MIN_KEY_LEN * 2,
    MAX_KEY_LEN * 2
)]
pub struct KeyFileError {
    pub path: PathBuf,
    pub problem: String,
}

impl ClusterKey {
    /// Reads a key from a file holding it in hex, and returns it with the file's permission
    /// bits (for a warning when other users may read it). Leading and trailing whitespace
    /// (such as the newline `openssl rand -hex 32 > key` leaves) is ignored; upper and lower
    /// case are both accepted. The read is bounded in size and never blocks (`small_file`).
    pub fn from_file(path: &Path) -> Result<(ClusterKey, u32), KeyFileError> {
        let key_file_error = |problem: String| KeyFileError {
            path: path.to_path_buf(),
            problem,
        };
        // A valid file is at most a few hundred bytes.
        let file = small_file::read(path, MAX_KEY_FILE_LEN).map_err(key_file_error)?;
        let key = ClusterKey::from_hex(&file.text).map_err(key_file_error)?;
        Ok((key, file.mode))
    }

    /// Parses a key in hex, whitespace around it ignored. The error says what is wrong.
    pub fn from_hex(text: &str) -> Result<ClusterKey, String> {
        let digits = text.trim();
        if digits.is_empty() {
            return Err("it is empty".to_string());
        }
        if let Some(position) = digits.find(|c: char| !c.is_ascii_hexdigit()) {
            return Err(format!(
                "it contains {:?} at position {position}, which is not a hexadecimal digit",
                digits[position..].chars().next().unwrap_or('?')
            ));
        }
        if digits.len() % 2 != 0 {
            return Err(format!(
                "it holds an odd number of hexadecimal digits ({})",
                digits.len()
            ));
        }
        let length = digits.len() / 2;
        if !(MIN_KEY_LEN..=MAX_KEY_LEN).contains(&length) {
            return Err(format!(
                "it holds {} hexadecimal digits ({length} bytes)",
                digits.len()
            ));
        }
        let bytes: Vec<u8> = digits
            .as_bytes()
            .chunks_exact(2)
            .map(|pair| (hex_value(pair[0]) << 4) | hex_value(pair[1]))
            .collect();
        if bytes.iter().all(|&byte| byte == 0) {
            return Err(
                "it is all zeros, the well-known insecure key; generate a random key \
                        (or run with --insecure if no authentication is really intended)"
                    .to_string(),
            );
        }
        Ok(ClusterKey { bytes })
    }

    /// The insecure well-known key, `INSECURE_KEY`. See its documentation.
    pub fn insecure() -> ClusterKey {
        ClusterKey {
            bytes: INSECURE_KEY.to_vec(),
        }
    }

    /// Whether this is `INSECURE_KEY`, so the node can warn about it loudly.
    pub fn is_insecure(&self) -> bool {
        self.bytes == INSECURE_KEY
    }

    /// A key derived from this one for `context`: HMAC-SHA256(key, context).
    ///
    /// The node seals its datagrams under a key derived from the cluster key and the settings
    /// every member must share (the member list and the lease), so that nodes configured
    /// differently cannot talk at all, instead of forming quorums that do not intersect or
    /// leases that outlast their promises. A mismatch then shows as `unauthenticated` drops.
    pub fn derive(&self, context: &[u8]) -> ClusterKey {
        let mut mac = self.mac();
        mac.update(context);
        ClusterKey {
            bytes: mac.finalize().into_bytes().to_vec(),
        }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC is defined for keys of every length (long keys are hashed, short ones padded),
        // so the hmac crate never refuses one.
        HmacSha256::new_from_slice(&self.bytes).expect("HMAC accepts keys of any length")
    }
}

impl fmt::Debug for ClusterKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_insecure() {
            formatter.write_str("ClusterKey(INSECURE)")
        } else {
            write!(
                formatter,
                "ClusterKey({} bytes, redacted)",
                self.bytes.len()
            )
        }
    }
}

/// Why an incoming datagram was dropped. `name` gives the stable metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// Longer than `MAX_DATAGRAM`.
    Oversized,
    /// Too short, length field inconsistent, or a payload the core's codec cannot decode.
    Malformed,
    /// Does not start with `MAGIC`: not tenure, or another layout version.
    BadMagic,
    /// The sender index is not another member of this cluster.
    UnknownPeer,
    /// Addressed to another member.
    Misaddressed,
    /// The tag does not verify: forged, damaged, or sealed with another key.
    Unauthenticated,
    /// A sequence already accepted, or older than the replay window.
    Replayed,
    /// From an earlier incarnation (boot) of the sender than one already seen.
    StaleIncarnation,
}

impl DropReason {
    /// Every reason, for registering metrics up front.
    pub const ALL: [DropReason; 8] = [
        DropReason::Oversized,
        DropReason::Malformed,
        DropReason::BadMagic,
        DropReason::UnknownPeer,
        DropReason::Misaddressed,
        DropReason::Unauthenticated,
        DropReason::Replayed,
        DropReason::StaleIncarnation,
    ];

    /// The stable snake_case name used as a metric label. Never change one: dashboards and
    /// alerts depend on them.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Oversized => "oversized",
            DropReason::Malformed => "malformed",
            DropReason::BadMagic => "bad_magic",
            DropReason::UnknownPeer => "unknown_peer",
            DropReason::Misaddressed => "misaddressed",
            DropReason::Unauthenticated => "unauthenticated",
            DropReason::Replayed => "replayed",
            DropReason::StaleIncarnation => "stale_incarnation",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

impl std::error::Error for DropReason {}

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

/// An authenticated, fresh datagram's sender and payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened {
    pub from: u16,
    pub payload: Vec<u8>,
}

/// Verifies incoming datagrams for one node and remembers, per sender, what it has accepted.
#[derive(Clone)]
pub struct Opener {
    mac: HmacSha256,
    own_index: u16,
    /// Indexed by sender; `None` until a first authentic datagram from that sender.
    windows: Vec<Option<ReplayWindow>>,
}

impl Opener {
    /// An opener for the member at `own_index` in a cluster of `member_count` members.
    ///
    /// # Panics
    ///
    /// If `own_index >= member_count`: the configuration that computes both is broken.
    pub fn new(key: &ClusterKey, own_index: u16, member_count: u16) -> Opener {
        assert!(
            own_index < member_count,
            "own index {own_index} is not below the member count {member_count}"
        );
        Opener {
            mac: key.mac(),
            own_index,
            windows: vec![None; usize::from(member_count)],
        }
    }

    /// Checks one datagram and returns its sender and payload, or why it was dropped.
    ///
    /// Cheap header checks come first, then the tag, and only an authentic datagram can touch
    /// the replay windows: a forger must not be able to advance a window and so make genuine
    /// datagrams look replayed.
    pub fn open(&mut self, datagram: &[u8]) -> Result<Opened, DropReason> {
        if datagram.len() > MAX_DATAGRAM {
            return Err(DropReason::Oversized);
        }
        if datagram.len() < HEADER_LEN + TAG_LEN {
            return Err(DropReason::Malformed);
        }
        let header = Header::parse(datagram);
        if header.magic != MAGIC {
            return Err(DropReason::BadMagic);
        }
        if HEADER_LEN + usize::from(header.payload_len) + TAG_LEN != datagram.len() {
            return Err(DropReason::Malformed);
        }
        // Nobody seals datagrams to itself, so one claiming to come from this node is a
        // reflection or a forgery, as foreign as a sender outside the cluster.
        if usize::from(header.sender) >= self.windows.len() || header.sender == self.own_index {
            return Err(DropReason::UnknownPeer);
        }
        if header.receiver != self.own_index {
            return Err(DropReason::Misaddressed);
        }

        let (signed, tag) = datagram.split_at(datagram.len() - TAG_LEN);
        let mut mac = self.mac.clone();
        mac.update(signed);
        // `verify_slice` compares in constant time, so the time taken leaks nothing about
        // how much of a forged tag was right.
        mac.verify_slice(tag)
            .map_err(|_| DropReason::Unauthenticated)?;

        let window = &mut self.windows[usize::from(header.sender)];
        match window {
            None => *window = Some(ReplayWindow::first(header.incarnation, header.sequence)),
            Some(window) => window.accept(header.incarnation, header.sequence)?,
        }
        Ok(Opened {
            from: header.sender,
            payload: signed[HEADER_LEN..].to_vec(),
        })
    }
}

impl Opener {
    /// The incarnation of `sender` this opener holds: the highest it has accepted, if any.
    pub fn held_incarnation(&self, sender: u16) -> Option<u64> {
        self.windows
            .get(usize::from(sender))
            .copied()
            .flatten()
            .map(|window| window.incarnation())
    }
}

/// The sender index and incarnation in a datagram's header, unchecked. Use it only on a
/// datagram `Opener::open` accepted or dropped as `StaleIncarnation`: both passed the tag, so
/// the fields are what a holder of the key sealed.
pub fn sender_and_incarnation(datagram: &[u8]) -> Option<(u16, u64)> {
    (datagram.len() >= HEADER_LEN).then(|| {
        let header = Header::parse(datagram);
        (header.sender, header.incarnation)
    })
}

impl fmt::Debug for Opener {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Opener")
            .field("own_index", &self.own_index)
            .field("windows", &self.windows)
            .finish_non_exhaustive()
    }
}

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

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        // Callers check `is_ascii_hexdigit` first.
        _ => 0,
    }
}

impl From<ReplayError> for DropReason {
    fn from(error: ReplayError) -> DropReason {
        match error {
            ReplayError::StaleIncarnation => DropReason::StaleIncarnation,
            ReplayError::Replayed => DropReason::Replayed,
        }
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn refuses_to_reuse_the_last_sequence() {
        let (mut sealer, _) = pair();
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

    // ---- Drop reasons, one per check ----

    #[test]
    fn drops_oversized_and_short_datagrams() {
        let (_, mut opener) = pair();
        assert_eq!(
            opener.open(&[0; MAX_DATAGRAM + 1]),
            Err(DropReason::Oversized)
        );
        assert_eq!(opener.open(&[]), Err(DropReason::Malformed));
        assert_eq!(
            opener.open(&[0; HEADER_LEN + TAG_LEN - 1]),
            Err(DropReason::Malformed)
        );
    }

    #[test]
    fn drops_bad_magic() {
        let (mut sealer, mut opener) = pair();
        let mut datagram = sealer.seal(0, b"x").unwrap();
        datagram[3] = b'2';
        resign(&mut datagram);
        assert_eq!(opener.open(&datagram), Err(DropReason::BadMagic));
    }

    #[test]
    fn drops_inconsistent_payload_lengths() {
        let (mut sealer, mut opener) = pair();
        let datagram = sealer.seal(0, b"abc").unwrap();
        for claimed in [0u16, 2, 4, u16::MAX] {
            let mut wrong = datagram.clone();
            wrong[24..26].copy_from_slice(&claimed.to_be_bytes());
            resign(&mut wrong);
            assert_eq!(opener.open(&wrong), Err(DropReason::Malformed), "{claimed}");
        }
        let mut extended = datagram.clone();
        extended.push(0);
        assert_eq!(opener.open(&extended), Err(DropReason::Malformed));
    }

    #[test]
    fn drops_unknown_senders_including_itself() {
        let mut opener = Opener::new(&key(), 0, 3);
        for sender in [0u16, 3, u16::MAX] {
            let mut sealer = Sealer::new(&key(), sender, 1);
            let datagram = sealer.seal(0, b"x").unwrap();
            assert_eq!(
                opener.open(&datagram),
                Err(DropReason::UnknownPeer),
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
                Err(DropReason::Misaddressed),
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
        assert_eq!(opener.open(&datagram), Err(DropReason::Unauthenticated));
        // A changed tag.
        let mut datagram = sealer.seal(0, b"x").unwrap();
        let last = datagram.len() - 1;
        datagram[last] ^= 0x80;
        assert_eq!(opener.open(&datagram), Err(DropReason::Unauthenticated));
        // Another cluster's key, and the insecure key.
        let other = ClusterKey::from_hex(&"ab".repeat(32)).unwrap();
        for foreign in [other, ClusterKey::insecure()] {
            let datagram = Sealer::new(&foreign, 1, 7).seal(0, b"x").unwrap();
            assert_eq!(opener.open(&datagram), Err(DropReason::Unauthenticated));
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
        assert_eq!(opener.open(&forged), Err(DropReason::Unauthenticated));
        assert!(opener.open(&genuine).is_ok());
    }

    // ---- Replay protection ----

    #[test]
    fn drops_an_exact_replay() {
        let (mut sealer, mut opener) = pair();
        let datagram = sealer.seal(0, b"x").unwrap();
        assert!(opener.open(&datagram).is_ok());
        assert_eq!(opener.open(&datagram), Err(DropReason::Replayed));
        assert_eq!(opener.open(&datagram), Err(DropReason::Replayed));
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
            assert_eq!(opener.open(datagram), Err(DropReason::Replayed));
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
        assert_eq!(opener.open(&oldest), Err(DropReason::Replayed));
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
        assert_eq!(opener.open(&old), Err(DropReason::StaleIncarnation));
        assert_eq!(
            opener.open(&first_boot.seal(0, b"late").unwrap()),
            Err(DropReason::StaleIncarnation)
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
        let names: Vec<&str> = DropReason::ALL.iter().map(|reason| reason.name()).collect();
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
        assert_eq!(DropReason::BadMagic.to_string(), "bad_magic");
    }

    #[test]
    #[should_panic(expected = "own index 3 is not below the member count 3")]
    fn an_opener_outside_the_cluster_is_a_programmer_error() {
        let _ = Opener::new(&key(), 3, 3);
    }

    // ---- Keys ----

    #[test]
    fn parses_hex_keys() {
        let parsed = ClusterKey::from_hex(&format!("  {}\n", KEY_HEX.to_uppercase())).unwrap();
        assert_eq!(parsed, key());
        assert_eq!(parsed.bytes[0..2], [0x00, 0x11]);
        assert_eq!(parsed.bytes.len(), 32);
        assert!(ClusterKey::from_hex(&"1f".repeat(MIN_KEY_LEN)).is_ok());
        assert!(ClusterKey::from_hex(&"1f".repeat(MAX_KEY_LEN)).is_ok());
        assert!(!parsed.is_insecure());
    }

    #[test]
    fn refuses_bad_hex_keys_saying_why() {
        let cases = [
            (String::new(), "empty"),
            ("   \n".to_string(), "empty"),
            ("1f".repeat(MIN_KEY_LEN - 1), "15 bytes"),
            ("1f".repeat(MAX_KEY_LEN + 1), "65 bytes"),
            (format!("{KEY_HEX}0"), "odd number"),
            (format!("{}zz", &KEY_HEX[2..]), "not a hexadecimal digit"),
            (
                format!("{} {}", &KEY_HEX[..32], &KEY_HEX[32..]),
                "not a hexadecimal digit",
            ),
            ("00".repeat(32), "all zeros"),
        ];
        for (text, expected) in cases {
            let problem = ClusterKey::from_hex(&text).unwrap_err();
            assert!(problem.contains(expected), "{text:?}: {problem}");
        }
    }

    #[test]
    fn reads_key_files_and_names_the_file_and_rule_in_errors() {
        let directory = tempfile::tempdir().unwrap();
        let good = directory.path().join("good.key");
        std::fs::write(&good, format!("{KEY_HEX}\n")).unwrap();
        assert_eq!(ClusterKey::from_file(&good).unwrap().0, key());

        let short = directory.path().join("short.key");
        std::fs::write(&short, "abcd\n").unwrap();
        let missing = directory.path().join("missing.key");
        let binary = directory.path().join("binary.key");
        std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
        for path in [short, missing, binary] {
            let message = ClusterKey::from_file(&path).unwrap_err().to_string();
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(
                message.contains("32 to 128 hexadecimal digits"),
                "{message}"
            );
        }
    }

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
        assert_eq!(opener.open(&recorded[1]), Err(DropReason::Replayed));
        // The sender's current boot closes the earlier one for good.
        assert!(opener.open(&current).is_ok());
        assert_eq!(opener.open(&recorded[0]), Err(DropReason::StaleIncarnation));
        // Another restart of the receiver opens the same window again, in any order within
        // the 64 sequences of the window.
        let mut opener = Opener::new(&key(), 0, 3);
        assert!(opener.open(&recorded[2]).is_ok());
        assert!(opener.open(&recorded[0]).is_ok());
        assert_eq!(opener.open(&recorded[0]), Err(DropReason::Replayed));
    }

    #[test]
    fn derived_keys_depend_on_key_and_context() {
        let first = key().derive(b"members n1,n2,n3");
        assert_eq!(first, key().derive(b"members n1,n2,n3"));
        assert_ne!(first, key().derive(b"members n1,n2"));
        assert_ne!(first, ClusterKey::insecure().derive(b"members n1,n2,n3"));
        assert_eq!(first.bytes.len(), 32);
        // A datagram sealed under one derived key does not open under another.
        let datagram = Sealer::new(&first, 1, 1).seal(0, b"x").unwrap();
        let mut opener = Opener::new(&key().derive(b"members n1,n2"), 0, 3);
        assert_eq!(opener.open(&datagram), Err(DropReason::Unauthenticated));
    }

    #[test]
    fn never_prints_the_key() {
        let printed = format!("{:?} {:?}", key(), Sealer::new(&key(), 0, 1));
        assert!(!printed.to_lowercase().contains("0011223344"), "{printed}");
        assert!(!printed.contains("[0, 17, 34"), "{printed}");
        assert_eq!(
            format!("{:?}", ClusterKey::insecure()),
            "ClusterKey(INSECURE)"
        );
        assert!(ClusterKey::insecure().is_insecure());
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
        assert_eq!(opener.open(&refused), Err(DropReason::StaleIncarnation));
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
