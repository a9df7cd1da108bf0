//! The driver's [`Transport`] in the binary: election messages in authenticated UDP datagrams.
//!
//! Each message travels alone in one datagram sealed by `wire` (HMAC-SHA256 under the cluster
//! key, sender incarnation and sequence against replays) around a `codec` payload. Datagrams
//! that are oversized, malformed, forged, replayed, misaddressed or from unknown members are
//! dropped here, counted by reason in [`TransportStats`] and logged at debug level; they never
//! reach the driver and never cause a panic.
//!
//! The source address of a datagram is not checked: the tag already proves which member sealed
//! it, and members behind NAT or with changing pod IPs would otherwise be refused. Replies go to
//! the configured address of the member, re-resolved every `RESOLVE_INTERVAL` when it is a host
//! name.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tenure_core::{Envelope, Message, NodeId, Term};
use tokio::net::UdpSocket;
use tracing::{debug, warn};

use crate::clock::BootClock;
use crate::codec::WireMessage;
use crate::driver::Transport;
use crate::members::{Members, PeerAddress};
use crate::wire::{ClusterKey, DropReason, Opener, Sealer, MAX_DATAGRAM};

/// How often host-name peer addresses are resolved again. A restarted pod may come back with a
/// new IP; until then its datagrams still arrive (the source is not checked), only replies to it
/// go astray, so a couple of seconds costs nothing but that peer's acks.
pub const RESOLVE_INTERVAL: Duration = Duration::from_secs(2);

/// Counters of the transport, shared with the metrics endpoint.
#[derive(Debug, Default)]
pub struct TransportStats {
    /// Dropped datagrams, indexed like `wire::DropReason::ALL`.
    dropped: [AtomicU64; DropReason::ALL.len()],
    /// Datagrams handed to the socket.
    pub datagrams_sent: AtomicU64,
    /// Datagrams that passed authentication and decoding.
    pub datagrams_accepted: AtomicU64,
    /// Sends that failed: the socket refused, or the peer's host name is not resolved yet.
    pub send_failures: AtomicU64,
}

impl TransportStats {
    /// Datagrams dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[drop_index(reason)].load(Ordering::Relaxed)
    }

    fn count_drop(&self, reason: DropReason) {
        self.dropped[drop_index(reason)].fetch_add(1, Ordering::Relaxed);
    }
}

/// The other members' addresses and when each was last heard from, shared with the resolver
/// task and the status page. Indexed by `NodeId`; the own entry is unused.
#[derive(Debug)]
pub struct PeerTable {
    entries: Vec<PeerEntry>,
}

#[derive(Debug)]
struct PeerEntry {
    configured: Option<PeerAddress>,
    resolved: RwLock<Option<SocketAddr>>,
    /// `CLOCK_BOOTTIME` nanoseconds of the last authentic datagram; 0 = never.
    last_heard: AtomicU64,
}

impl PeerTable {
    /// A table for `members` with the configured addresses of the peers.
    pub fn new(members: &Members, addresses: &[(NodeId, PeerAddress)]) -> PeerTable {
        let entries = members
            .ids()
            .into_iter()
            .map(|id| {
                let configured = addresses
                    .iter()
                    .find(|(peer, _)| *peer == id)
                    .map(|(_, address)| address.clone());
                let resolved = match &configured {
                    Some(PeerAddress::Socket(socket)) => Some(*socket),
                    _ => None,
                };
                PeerEntry {
                    configured,
                    resolved: RwLock::new(resolved),
                    last_heard: AtomicU64::new(0),
                }
            })
            .collect();
        PeerTable { entries }
    }

    /// The address to send to `id`, if known.
    pub fn address(&self, id: NodeId) -> Option<SocketAddr> {
        let entry = self.entry(id)?;
        // A poisoned lock only means a resolver panicked mid-write of a plain value.
        let resolved = entry
            .resolved
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *resolved
    }

    /// The address as configured (`--peer`).
    pub fn configured(&self, id: NodeId) -> Option<&PeerAddress> {
        self.entry(id)?.configured.as_ref()
    }

    /// When `id` was last heard from (`CLOCK_BOOTTIME` nanoseconds), if ever.
    pub fn last_heard(&self, id: NodeId) -> Option<u64> {
        let nanos = self.entry(id)?.last_heard.load(Ordering::Relaxed);
        (nanos != 0).then_some(nanos)
    }

    fn entry(&self, id: NodeId) -> Option<&PeerEntry> {
        self.entries.get(usize::try_from(id.0).ok()?)
    }

    fn heard(&self, id: NodeId, now_nanos: u64) {
        if let Some(entry) = self.entry(id) {
            entry.last_heard.store(now_nanos.max(1), Ordering::Relaxed);
        }
    }
}

/// Resolves host-name peers now and every `RESOLVE_INTERVAL`, forever. A failed lookup keeps
/// the previous address; the first failure for a host is a warning, repeats are debug lines.
pub async fn resolve_peers(peers: Arc<PeerTable>, members: Members) {
    let mut warned = vec![false; peers.entries.len()];
    loop {
        for (index, entry) in peers.entries.iter().enumerate() {
            let Some(PeerAddress::Host { host, port }) = &entry.configured else {
                continue;
            };
            let name = members
                .name(NodeId(u32::try_from(index).unwrap_or(u32::MAX)))
                .unwrap_or("?");
            let found = tokio::net::lookup_host((host.as_str(), *port))
                .await
                .map(|mut addresses| addresses.next());
            match found {
                Ok(Some(address)) => {
                    let mut resolved = entry
                        .resolved
                        .write()
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    if *resolved != Some(address) {
                        debug!(peer = name, %address, "resolved peer address");
                    }
                    *resolved = Some(address);
                    warned[index] = false;
                }
                Ok(None) | Err(_) => {
                    let problem = match found {
                        Err(error) => error.to_string(),
                        _ => "no address".to_string(),
                    };
                    if warned[index] {
                        debug!(peer = name, host = %host, %problem, "cannot resolve peer");
                    } else {
                        warn!(
                            peer = name,
                            host = %host,
                            %problem,
                            "cannot resolve peer address; retrying every {}s (messages to it \
                             are dropped until then)",
                            RESOLVE_INTERVAL.as_secs()
                        );
                        warned[index] = true;
                    }
                }
            }
        }
        tokio::time::sleep(RESOLVE_INTERVAL).await;
    }
}

/// Authenticated UDP between the members.
pub struct UdpTransport {
    socket: UdpSocket,
    members: Members,
    sealer: Sealer,
    opener: Opener,
    peers: Arc<PeerTable>,
    stats: Arc<TransportStats>,
    clock: BootClock,
    /// One byte longer than the largest datagram, so that a longer one shows as oversized
    /// instead of being silently truncated to a valid length.
    buffer: Vec<u8>,
    /// Sources already warned about for failing authentication (bounded).
    warned: Vec<SocketAddr>,
}

/// How many distinct sources of unauthenticated datagrams get a warning; beyond that, debug
/// lines only, so a flood of forgeries cannot flood the log.
const MAX_WARNED_SOURCES: usize = 16;

impl UdpTransport {
    /// A transport on `socket` for this boot's `incarnation` (see `StateFile::begin_boot`).
    pub fn new(
        socket: UdpSocket,
        members: Members,
        key: &ClusterKey,
        incarnation: u64,
        peers: Arc<PeerTable>,
        stats: Arc<TransportStats>,
    ) -> UdpTransport {
        let own = Members::wire_index(members.own_id());
        let count = u16::try_from(members.len()).unwrap_or(u16::MAX);
        UdpTransport {
            socket,
            sealer: Sealer::new(key, own, incarnation),
            opener: Opener::new(key, own, count),
            members,
            peers,
            stats,
            clock: BootClock::new(),
            buffer: vec![0; MAX_DATAGRAM + 1],
            warned: Vec::new(),
        }
    }

    /// Opens one datagram: authentication and replay checks, then the payload.
    fn open(&mut self, length: usize) -> Result<Envelope, DropReason> {
        let opened = self.opener.open(&self.buffer[..length])?;
        let message = WireMessage::decode(&opened.payload)?;
        Ok(Envelope {
            from: NodeId(u32::from(opened.from)),
            to: self.members.own_id(),
            message: from_wire(message),
        })
    }
}

impl Transport for UdpTransport {
    async fn send(&mut self, envelope: Envelope) {
        let payload = to_wire(envelope.message).encode();
        let to = Members::wire_index(envelope.to);
        let datagram = match self.sealer.seal(to, &payload) {
            Ok(datagram) => datagram,
            Err(error) => {
                // Payloads are at most 17 bytes and sequences run out after 2^64 datagrams, so
                // this does not happen; dropping the message is what a lossy network would do.
                warn!(%error, "cannot seal a datagram; dropping it");
                self.stats.send_failures.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let Some(address) = self.peers.address(envelope.to) else {
            debug!(
                peer = self.members.display(envelope.to),
                "peer address not resolved; dropping a datagram to it"
            );
            self.stats.send_failures.fetch_add(1, Ordering::Relaxed);
            return;
        };
        match self.socket.send_to(&datagram, address).await {
            Ok(_) => {
                self.stats.datagrams_sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                debug!(peer = self.members.display(envelope.to), %address, %error, "send failed");
                self.stats.send_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    async fn recv(&mut self) -> Envelope {
        loop {
            // `recv_from` is cancel-safe, and everything after it is synchronous: when the
            // driver drops this future for another branch, no datagram is lost half-handled.
            let (length, source) = match self.socket.recv_from(&mut self.buffer).await {
                Ok(received) => received,
                Err(error) => {
                    // Errors on an unconnected UDP socket are transient (an ICMP error report,
                    // a signal); a short pause keeps a persistent one from spinning the loop.
                    debug!(%error, "receive failed");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
            };
            match self.open(length) {
                Ok(envelope) => {
                    self.stats
                        .datagrams_accepted
                        .fetch_add(1, Ordering::Relaxed);
                    self.peers.heard(envelope.from, self.clock.now_nanos());
                    return envelope;
                }
                Err(reason) => {
                    self.stats.count_drop(reason);
                    debug!(%source, length, %reason, "dropped datagram");
                    if reason == DropReason::Unauthenticated
                        && !self.warned.contains(&source)
                        && self.warned.len() < MAX_WARNED_SOURCES
                    {
                        self.warned.push(source);
                        warn!(
                            %source,
                            "datagrams from this address fail authentication: a node with \
                             another cluster key, member list or --lease (all must be the same \
                             on every node), or a forgery; they are dropped"
                        );
                    }
                }
            }
        }
    }
}

/// The wire form of a core message.
pub fn to_wire(message: Message) -> WireMessage {
    match message {
        Message::PreVote { term } => WireMessage::PreVote { term: term.0 },
        Message::PreVoteReply { term, granted } => WireMessage::PreVoteReply {
            term: term.0,
            granted,
        },
        Message::RequestVote { term } => WireMessage::RequestVote { term: term.0 },
        Message::VoteReply { term, granted } => WireMessage::VoteReply {
            term: term.0,
            granted,
        },
        Message::Heartbeat { term, seq } => WireMessage::Heartbeat { term: term.0, seq },
        Message::HeartbeatAck { term, seq } => WireMessage::HeartbeatAck { term: term.0, seq },
        Message::Resign { term } => WireMessage::Resign { term: term.0 },
        Message::TimeoutNow { term } => WireMessage::TimeoutNow { term: term.0 },
    }
}

/// The core form of a wire message. Range checks (terms beyond `MAX_TERM`, zero sequences) are
/// the core's: it drops such messages and counts them.
pub fn from_wire(message: WireMessage) -> Message {
    match message {
        WireMessage::PreVote { term } => Message::PreVote { term: Term(term) },
        WireMessage::PreVoteReply { term, granted } => Message::PreVoteReply {
            term: Term(term),
            granted,
        },
        WireMessage::RequestVote { term } => Message::RequestVote { term: Term(term) },
        WireMessage::VoteReply { term, granted } => Message::VoteReply {
            term: Term(term),
            granted,
        },
        WireMessage::Heartbeat { term, seq } => Message::Heartbeat {
            term: Term(term),
            seq,
        },
        WireMessage::HeartbeatAck { term, seq } => Message::HeartbeatAck {
            term: Term(term),
            seq,
        },
        WireMessage::Resign { term } => Message::Resign { term: Term(term) },
        WireMessage::TimeoutNow { term } => Message::TimeoutNow { term: Term(term) },
    }
}

fn drop_index(reason: DropReason) -> usize {
    DropReason::ALL
        .iter()
        .position(|candidate| *candidate == reason)
        .expect("DropReason::ALL lists every reason")
}

#[cfg(test)]
mod tests {
    use tenure_core::MessageKind;

    use super::*;

    fn key() -> ClusterKey {
        ClusterKey::from_hex(&"5a".repeat(32)).unwrap()
    }

    async fn pair() -> (UdpTransport, UdpTransport, Arc<TransportStats>) {
        let first = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let second = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let first_address = first.local_addr().unwrap();
        let second_address = second.local_addr().unwrap();
        let on_n1 = Members::new("n1", ["n2"]).unwrap();
        let on_n2 = Members::new("n2", ["n1"]).unwrap();
        let table_n1 = Arc::new(PeerTable::new(
            &on_n1,
            &[(NodeId(1), PeerAddress::Socket(second_address))],
        ));
        let table_n2 = Arc::new(PeerTable::new(
            &on_n2,
            &[(NodeId(0), PeerAddress::Socket(first_address))],
        ));
        let stats_n2 = Arc::new(TransportStats::default());
        let n1 = UdpTransport::new(first, on_n1, &key(), 7, table_n1, Arc::default());
        let n2 = UdpTransport::new(second, on_n2, &key(), 9, table_n2, stats_n2.clone());
        (n1, n2, stats_n2)
    }

    #[test]
    fn every_message_survives_the_wire_form() {
        let term = Term(5);
        let messages = [
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
            Message::Heartbeat { term, seq: 3 },
            Message::HeartbeatAck { term, seq: 4 },
            Message::Resign { term },
            Message::TimeoutNow { term },
        ];
        let kinds: Vec<MessageKind> = messages.iter().map(Message::kind).collect();
        assert_eq!(kinds, MessageKind::ALL);
        for message in messages {
            assert_eq!(from_wire(to_wire(message)), message);
        }
    }

    #[tokio::test]
    async fn delivers_authentic_datagrams_and_counts_what_it_drops() {
        let (mut n1, mut n2, stats) = pair().await;
        let envelope = Envelope {
            from: NodeId(0),
            to: NodeId(1),
            message: Message::Heartbeat {
                term: Term(2),
                seq: 1,
            },
        };
        n1.send(envelope).await;
        assert_eq!(n2.recv().await, envelope);
        assert!(n2.peers.last_heard(NodeId(0)).is_some());

        // Garbage, an oversized datagram, and a datagram sealed under another key, then a
        // genuine one: only the genuine one comes out, the others are counted.
        let intruder = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let target = n2.socket.local_addr().unwrap();
        intruder.send_to(b"hello", target).unwrap();
        intruder.send_to(&[0u8; 2000], target).unwrap();
        let other_key = ClusterKey::from_hex(&"77".repeat(32)).unwrap();
        let forged = Sealer::new(&other_key, 0, 7)
            .seal(1, &to_wire(envelope.message).encode())
            .unwrap();
        intruder.send_to(&forged, target).unwrap();
        n1.send(envelope).await;
        assert_eq!(n2.recv().await, envelope);
        assert_eq!(stats.dropped(DropReason::Malformed), 1);
        assert_eq!(stats.dropped(DropReason::Oversized), 1);
        assert_eq!(stats.dropped(DropReason::Unauthenticated), 1);
        assert_eq!(stats.datagrams_accepted.load(Ordering::Relaxed), 2);
    }
}
