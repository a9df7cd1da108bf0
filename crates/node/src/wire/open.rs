//! [`Opener`]: checks incoming datagrams for one node and keeps each sender's replay window.

use std::fmt;

use hmac::Mac;
use tenure_driver::replay::ReplayWindow;

use super::{
    ClusterKey, DatagramDropReason, Header, HmacSha256, HEADER_LEN, MAGIC, MAX_DATAGRAM, TAG_LEN,
};

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
    pub fn open(&mut self, datagram: &[u8]) -> Result<Opened, DatagramDropReason> {
        if datagram.len() > MAX_DATAGRAM {
            return Err(DatagramDropReason::Oversized);
        }
        if datagram.len() < HEADER_LEN + TAG_LEN {
            return Err(DatagramDropReason::Malformed);
        }
        let header = Header::parse(datagram);
        if header.magic != MAGIC {
            return Err(DatagramDropReason::BadMagic);
        }
        if HEADER_LEN + usize::from(header.payload_len) + TAG_LEN != datagram.len() {
            return Err(DatagramDropReason::Malformed);
        }
        // Nobody seals datagrams to itself, so one claiming to come from this node is a
        // reflection or a forgery, as foreign as a sender outside the cluster.
        if usize::from(header.sender) >= self.windows.len() || header.sender == self.own_index {
            return Err(DatagramDropReason::UnknownPeer);
        }
        if header.receiver != self.own_index {
            return Err(DatagramDropReason::Misaddressed);
        }

        let (signed, tag) = datagram.split_at(datagram.len() - TAG_LEN);
        let mut mac = self.mac.clone();
        mac.update(signed);
        // `verify_slice` compares in constant time, so the time taken leaks nothing about
        // how much of a forged tag was right.
        mac.verify_slice(tag)
            .map_err(|_| DatagramDropReason::Unauthenticated)?;

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
