//! The driver's [`Transport`] in the binary: election messages in authenticated UDP datagrams.
//!
//! Each message travels alone in one datagram sealed by `wire` (HMAC-SHA256 under the cluster
//! key, sender incarnation and sequence against replays) around a payload encoded by the core's codec (`tenure_core::Message::encode`). Datagrams
//! that are oversized, malformed, forged, replayed, misaddressed or from unknown members are
//! dropped here, counted by reason in [`TransportStats`] and logged at debug level; they never
//! reach the driver and never cause a panic.
//!
//! Refused incarnations. A receiver that drops an authentic datagram as `stale_incarnation`
//! holds a higher incarnation for its sender than the one the sender seals in: another process
//! runs with the sender's id (a copied configuration), or a key holder forged a datagram with a
//! higher incarnation. Unanswered, the sender would be silenced for good: it keeps its
//! incarnation until it restarts, and a duplicate may have set one above its next boot's. So
//! the receiver answers, at most once per sender per `NOTICE_INTERVAL`, with a sealed
//! `IncarnationNotice` to the datagram's source (and the sender's configured address, if
//! another) naming the incarnation it holds and the one it refused. A node that gets a notice refusing exactly its current incarnation stores an
//! incarnation above the held one in its state file, seals from then on in it (sequences from
//! 0), warns, and reports itself not joined for a while. A notice refusing any other
//! incarnation (a recording of an earlier boot replayed to the receiver, or the other process
//! with the same id) changes nothing. A receiver that keeps refusing one incarnation of a
//! sender while it accepts another logs an error naming both incarnations and both sources:
//! two processes claim that id.
//!
//! The source address of a datagram is not checked: the tag already proves which member sealed
//! it, and members behind NAT or with changing pod IPs would otherwise be refused. Replies go to
//! the configured address of the member, re-resolved every `RESOLVE_INTERVAL` when it is a host
//! name.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tenure_core::{Envelope, Message, NodeId};
use tokio::net::UdpSocket;
use tracing::{debug, error, warn};

use crate::clock::BootClock;
use crate::members::{Members, PeerAddress};
use crate::notice::IncarnationNotice;
use crate::state_file::StateFile;
use crate::storage::lock_state_file;
use crate::wire::{
    sender_and_incarnation, ClusterKey, DatagramDropReason, Opener, Sealer, MAX_DATAGRAM,
};
use tenure_driver::Transport;

/// How often host-name peer addresses are resolved again. A restarted pod may come back with a
/// new IP; until then its datagrams still arrive (the source is not checked), only replies to it
/// go astray, so a couple of seconds costs nothing but that peer's acks.
pub const RESOLVE_INTERVAL: Duration = Duration::from_secs(2);

/// Counters of the transport, shared with the metrics endpoint.
#[derive(Debug, Default)]
pub struct TransportStats {
    /// Dropped datagrams, indexed like `wire::DatagramDropReason::ALL`.
    dropped: [AtomicU64; DatagramDropReason::ALL.len()],
    /// Datagrams handed to the socket.
    pub datagrams_sent: AtomicU64,
    /// Datagrams that passed authentication and decoding.
    pub datagrams_accepted: AtomicU64,
    /// Sends that failed: the socket refused, or the peer's host name is not resolved yet.
    pub send_failures: AtomicU64,
    /// The incarnation this node seals in now.
    pub incarnation: AtomicU64,
    /// Times a peer's notice made this node move to a higher incarnation.
    pub incarnation_moves: AtomicU64,
    /// Notices sent to peers whose datagrams this node refused as `stale_incarnation`.
    pub notices_sent: AtomicU64,
    /// Times a receiver saw one sender id in two incarnations at once (two processes).
    pub duplicate_ids: AtomicU64,
    /// `CLOCK_BOOTTIME` nanoseconds of the last notice that refused this node's incarnation;
    /// 0 = never.
    refused_at: AtomicU64,
    /// The peer (`NodeId`) that sent that notice, and the incarnation it held.
    refused_by: AtomicU64,
    refused_held: AtomicU64,
}

/// The last time a peer refused this node's datagrams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// `CLOCK_BOOTTIME` nanoseconds.
    pub at_nanos: u64,
    pub by: NodeId,
    /// The incarnation the peer held for this node, above this node's at the time.
    pub held: u64,
}

impl TransportStats {
    /// Datagrams dropped for `reason`.
    pub fn dropped(&self, reason: DatagramDropReason) -> u64 {
        self.dropped[drop_index(reason)].load(Ordering::Relaxed)
    }

    /// The last refusal of this node's datagrams by a peer, if any.
    pub fn last_refusal(&self) -> Option<Refusal> {
        let at_nanos = self.refused_at.load(Ordering::Relaxed);
        (at_nanos != 0).then(|| Refusal {
            at_nanos,
            by: NodeId(u32::try_from(self.refused_by.load(Ordering::Relaxed)).unwrap_or(0)),
            held: self.refused_held.load(Ordering::Relaxed),
        })
    }

    /// Whether a peer refused this node's datagrams within `window` before `now_nanos`: the
    /// node is not joined then, whatever else it knows.
    pub fn refused_within(&self, now_nanos: u64, window: Duration) -> bool {
        self.last_refusal().is_some_and(|refusal| {
            now_nanos.saturating_sub(refusal.at_nanos) < window.as_nanos() as u64
        })
    }

    fn refused(&self, refusal: Refusal) {
        self.refused_by
            .store(u64::from(refusal.by.0), Ordering::Relaxed);
        self.refused_held.store(refusal.held, Ordering::Relaxed);
        self.refused_at
            .store(refusal.at_nanos.max(1), Ordering::Relaxed);
    }

    fn count_drop(&self, reason: DatagramDropReason) {
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

    /// Records an authentic datagram from `id` at `now_nanos` (`CLOCK_BOOTTIME`).
    pub(crate) fn heard(&self, id: NodeId, now_nanos: u64) {
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
    /// Indexed by sender; see `SenderRecord`.
    records: Vec<SenderRecord>,
    /// Where a raised incarnation is made durable; `None` in tests without a state file.
    state_file: Option<Arc<Mutex<StateFile>>>,
}

/// How many distinct sources of unauthenticated datagrams get a warning; beyond that, debug
/// lines only, so a flood of forgeries cannot flood the log.
const MAX_WARNED_SOURCES: usize = 16;

/// At most one `IncarnationNotice` per sender per interval, so a flood of stale datagrams (or
/// replays of them) gets at most one small answer a second per member.
pub const NOTICE_INTERVAL: Duration = Duration::from_secs(1);
/// How long a node reports itself not joined after a peer refused its incarnation: long enough
/// to see the next notice if the refusal goes on (another process keeps taking the id back).
pub const REFUSED_REPORT_WINDOW: Duration = Duration::from_secs(5);
/// Two incarnations of one sender seen within this window, the lower one refused at least
/// `DUPLICATE_REFUSALS` times, mean two processes with that id.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(10);
const DUPLICATE_REFUSALS: u32 = 3;
/// At most one error line per sender per interval about two processes with its id.
const DUPLICATE_ERROR_INTERVAL: Duration = Duration::from_secs(60);

/// What one receiver has seen of one sender's incarnations.
#[derive(Clone, Copy, Debug, Default)]
struct SenderRecord {
    /// The last accepted datagram: incarnation, source, `CLOCK_BOOTTIME` nanoseconds.
    accepted: Option<(u64, SocketAddr, u64)>,
    /// The incarnation refused lately, its source, since when, and how often.
    refused: Option<(u64, SocketAddr, u64, u32)>,
    /// Changes of the accepted datagrams' source address lately: since when, how many.
    source_changes: (u64, u32),
    /// When the last notice went out (nanoseconds; 0 = never).
    notice_at: u64,
    /// When the last error about two processes was logged (nanoseconds; 0 = never).
    duplicate_error_at: u64,
}

/// One authentic datagram.
impl SenderRecord {
    /// Whether a "two processes claim id" error may be logged at `now`: at most one per
    /// [`DUPLICATE_ERROR_INTERVAL`]. If so, it counts as logged.
    fn take_duplicate_error(&mut self, now: u64) -> bool {
        let due = self.duplicate_error_at == 0
            || now.saturating_sub(self.duplicate_error_at)
                >= DUPLICATE_ERROR_INTERVAL.as_nanos() as u64;
        if due {
            self.duplicate_error_at = now.max(1);
        }
        due
    }
}

enum Incoming {
    Message(Envelope),
    Notice(NodeId, IncarnationNotice),
}

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
        stats.incarnation.store(incarnation, Ordering::Relaxed);
        UdpTransport {
            records: vec![SenderRecord::default(); members.len()],
            state_file: None,
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

    /// Makes incarnation moves durable in `state_file` (the one the storage writes), so the
    /// next boot starts above them.
    pub fn with_state_file(mut self, state_file: Arc<Mutex<StateFile>>) -> UdpTransport {
        self.state_file = Some(state_file);
        self
    }

    /// Opens one datagram: authentication and replay checks, then the payload.
    fn open(&mut self, length: usize) -> Result<Incoming, DatagramDropReason> {
        let opened = self.opener.open(&self.buffer[..length])?;
        let from = NodeId(u32::from(opened.from));
        if let Some(notice) = IncarnationNotice::decode(&opened.payload) {
            return Ok(Incoming::Notice(from, notice?));
        }
        // Range checks (terms far ahead, zero sequences) are the core's: it drops and counts.
        let message =
            Message::decode(&opened.payload).map_err(|_| DatagramDropReason::Malformed)?;
        Ok(Incoming::Message(Envelope {
            from,
            to: self.members.own_id(),
            message,
        }))
    }

    /// Remembers which incarnation of its sender an authentic datagram carried, and from where.
    /// Accepted datagrams whose source keeps changing back and forth mean two processes with
    /// one id and the same incarnation (a copied state file): a member that moves (a new pod
    /// IP, NAT) changes its source once, not `DUPLICATE_REFUSALS` times within
    /// `DUPLICATE_WINDOW`.
    fn note_accepted(&mut self, length: usize, source: SocketAddr, now: u64) {
        let Some((sender, incarnation)) = sender_and_incarnation(&self.buffer[..length]) else {
            return;
        };
        let Some(record) = self.records.get_mut(usize::from(sender)) else {
            return;
        };
        let window = DUPLICATE_WINDOW.as_nanos() as u64;
        let previous = record.accepted.replace((incarnation, source, now));
        let Some((previous_incarnation, previous_source, _)) = previous else {
            return;
        };
        if previous_source == source {
            return;
        }
        let (since, changes) = record.source_changes;
        record.source_changes = if changes > 0 && now.saturating_sub(since) < window {
            (since, changes.saturating_add(1))
        } else {
            (now, 1)
        };
        if record.source_changes.1 >= DUPLICATE_REFUSALS && record.take_duplicate_error(now) {
            self.stats.duplicate_ids.fetch_add(1, Ordering::Relaxed);
            let name = self.members.display(NodeId(u32::from(sender)));
            error!(
                peer = %name,
                incarnation,
                %source,
                previous_incarnation,
                %previous_source,
                "two processes claim id {name}: its datagrams come by turns from {previous_source} \
                 (incarnation {previous_incarnation}) and {source} (incarnation {incarnation}); \
                 stop the one that should not run (a copied configuration and state?), or, if \
                 only one runs, a key holder forged its datagrams"
            );
        }
    }

    /// An authentic datagram was dropped as `stale_incarnation`: tell its sender (rate
    /// limited), and name two processes with one id when both incarnations keep coming.
    fn handle_refused(&mut self, length: usize, source: SocketAddr, now: u64) {
        let Some((sender, refused)) = sender_and_incarnation(&self.buffer[..length]) else {
            return;
        };
        let Some(held) = self.opener.held_incarnation(sender) else {
            return;
        };
        let Some(record) = self.records.get_mut(usize::from(sender)) else {
            return;
        };
        let peer = NodeId(u32::from(sender));
        let name = self.members.display(peer);
        let window = DUPLICATE_WINDOW.as_nanos() as u64;
        record.refused = match record.refused {
            Some((incarnation, _, since, count))
                if incarnation == refused && now.saturating_sub(since) < window =>
            {
                Some((incarnation, source, since, count.saturating_add(1)))
            }
            _ => Some((refused, source, now, 1)),
        };
        if let (Some((accepted, accepted_source, accepted_at)), Some((_, _, _, count))) =
            (record.accepted, record.refused)
        {
            let both_alive = now.saturating_sub(accepted_at) < window;
            if both_alive && count >= DUPLICATE_REFUSALS && record.take_duplicate_error(now) {
                self.stats.duplicate_ids.fetch_add(1, Ordering::Relaxed);
                error!(
                    peer = %name,
                    accepted_incarnation = accepted,
                    %accepted_source,
                    refused_incarnation = refused,
                    refused_source = %source,
                    "two processes claim id {name}: datagrams of incarnation {accepted} from \
                     {accepted_source} are accepted and of incarnation {refused} from {source} \
                     refused; stop the one that should not run (a copied configuration?), or, \
                     if only one runs, a key holder forged its datagrams"
                );
            }
        }
        let interval = NOTICE_INTERVAL.as_nanos() as u64;
        if record.notice_at != 0 && now.saturating_sub(record.notice_at) < interval {
            return;
        }
        record.notice_at = now.max(1);
        self.send_notice(sender, source, IncarnationNotice { held, refused });
    }

    /// Tells a sender whose datagrams this node refuses which incarnation it holds for it.
    fn send_notice(&mut self, sender: u16, source: SocketAddr, notice: IncarnationNotice) {
        let IncarnationNotice { held, refused } = notice;
        let peer = NodeId(u32::from(sender));
        let name = self.members.display(peer);
        let Ok(datagram) = self.sealer.seal(sender, &notice.encode()) else {
            return;
        };
        // To the source, which reaches the refused process even when it is not the one at the
        // configured address (a duplicate elsewhere); and to the configured address, which
        // reaches the member when the source is a relay that only forwards towards us (a
        // proxy). A process that does not seal in `refused` ignores the notice.
        let configured = self
            .peers
            .address(peer)
            .filter(|address| *address != source);
        for address in std::iter::once(source).chain(configured) {
            // Non-blocking, so `recv` stays cancel-safe; a notice lost to a full socket buffer
            // is sent again on the next refusal a second later.
            match self.socket.try_send_to(&datagram, address) {
                Ok(_) => {
                    self.stats.datagrams_sent.fetch_add(1, Ordering::Relaxed);
                    self.stats.notices_sent.fetch_add(1, Ordering::Relaxed);
                    debug!(peer = %name, %address, held, refused, "sent an incarnation notice");
                }
                Err(problem) => {
                    debug!(peer = %name, %address, %problem, "cannot send an incarnation notice");
                    self.stats.send_failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// A peer refuses our datagrams: move above the incarnation it holds, durably first.
    fn handle_notice(&mut self, from: NodeId, notice: IncarnationNotice, now: u64) {
        let own = self.sealer.incarnation();
        let peer = self.members.display(from);
        let me = self.members.own_name().to_string();
        // Only a refusal of the incarnation we seal in now is about us. An older one is a
        // replayed recording of an earlier boot's datagram, or about the other process with
        // our id; moving for it would be useless churn.
        if notice.refused != own || notice.held < own {
            debug!(
                peer = %peer,
                held = notice.held,
                refused = notice.refused,
                own,
                "incarnation notice about another incarnation than ours; ignored"
            );
            return;
        }
        self.stats.refused(Refusal {
            at_nanos: now,
            by: from,
            held: notice.held,
        });
        let moved = match &self.state_file {
            Some(state_file) => lock_state_file(state_file)
                .raise_incarnation(notice.held)
                .map_err(|problem| problem.to_string()),
            None => notice
                .held
                .checked_add(1)
                .ok_or_else(|| "the incarnation counter is exhausted".to_string()),
        };
        match moved {
            Ok(incarnation) => {
                warn!(
                    peer = %peer,
                    held = notice.held,
                    own,
                    incarnation,
                    "peer {peer} refuses our datagrams: it has seen incarnation {} from {me}, \
                     above ours ({own}); another process with id {me} may be running, or a key \
                     holder forged one; moving to {incarnation}",
                    notice.held
                );
                self.sealer.move_to_incarnation(incarnation);
                self.stats.incarnation.store(incarnation, Ordering::Relaxed);
                self.stats.incarnation_moves.fetch_add(1, Ordering::Relaxed);
            }
            Err(problem) => error!(
                peer = %peer,
                held = notice.held,
                own,
                %problem,
                "peer {peer} refuses our datagrams (it holds incarnation {} for {me}, above ours, \
                 {own}), and a higher incarnation cannot be stored; its refusals go on",
                notice.held
            ),
        }
    }
}

impl Transport for UdpTransport {
    async fn send(&mut self, envelope: Envelope) {
        let payload = envelope.message.encode();
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
            let now = self.clock.now_nanos();
            match self.open(length) {
                Ok(incoming) => {
                    self.stats
                        .datagrams_accepted
                        .fetch_add(1, Ordering::Relaxed);
                    self.note_accepted(length, source, now);
                    match incoming {
                        Incoming::Message(envelope) => {
                            self.peers.heard(envelope.from, now);
                            return envelope;
                        }
                        Incoming::Notice(from, notice) => {
                            self.peers.heard(from, now);
                            self.handle_notice(from, notice, now);
                        }
                    }
                }
                Err(reason) => {
                    self.stats.count_drop(reason);
                    debug!(%source, length, %reason, "dropped datagram");
                    if reason == DatagramDropReason::StaleIncarnation {
                        self.handle_refused(length, source, now);
                    }
                    if reason == DatagramDropReason::Unauthenticated
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

fn drop_index(reason: DatagramDropReason) -> usize {
    DatagramDropReason::ALL
        .iter()
        .position(|candidate| *candidate == reason)
        .expect("DatagramDropReason::ALL lists every reason")
}

#[cfg(test)]
mod tests {
    use tenure_core::Term;

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
            .seal(1, &envelope.message.encode())
            .unwrap();
        intruder.send_to(&forged, target).unwrap();
        n1.send(envelope).await;
        assert_eq!(n2.recv().await, envelope);
        assert_eq!(stats.dropped(DatagramDropReason::Malformed), 1);
        assert_eq!(stats.dropped(DatagramDropReason::Oversized), 1);
        assert_eq!(stats.dropped(DatagramDropReason::Unauthenticated), 1);
        assert_eq!(stats.datagrams_accepted.load(Ordering::Relaxed), 2);
    }

    /// Receives on `transport` for a moment; `None` if nothing reached the driver.
    async fn recv_briefly(transport: &mut UdpTransport) -> Option<Envelope> {
        tokio::time::timeout(std::time::Duration::from_millis(300), transport.recv())
            .await
            .ok()
    }

    #[tokio::test]
    async fn a_sender_refused_for_a_forged_incarnation_is_told_and_moves_above_it() {
        let (mut n1, mut n2, stats_n2) = pair().await;
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

        // Phase 1: a key holder seals one datagram as n1 in n1's incarnation + 1; n2 takes it,
        // and from then on refuses n1's genuine datagrams as stale.
        let intruder = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let forged = Sealer::new(&key(), 0, 8)
            .seal(1, &envelope.message.encode())
            .unwrap();
        intruder
            .send_to(&forged, n2.socket.local_addr().unwrap())
            .unwrap();
        assert_eq!(n2.recv().await, envelope);
        n1.send(envelope).await;
        assert_eq!(recv_briefly(&mut n2).await, None);
        assert_eq!(stats_n2.dropped(DatagramDropReason::StaleIncarnation), 1);
        assert_eq!(stats_n2.notices_sent.load(Ordering::Relaxed), 1);

        // Phase 2: n1 gets n2's notice, which reaches no driver, and moves above 8.
        assert_eq!(recv_briefly(&mut n1).await, None);
        assert_eq!(n1.sealer.incarnation(), 9);
        assert_eq!(n1.stats.incarnation.load(Ordering::Relaxed), 9);
        assert_eq!(n1.stats.incarnation_moves.load(Ordering::Relaxed), 1);
        let refusal = n1.stats.last_refusal().unwrap();
        assert_eq!((refusal.by, refusal.held), (NodeId(1), 8));
        assert!(n1
            .stats
            .refused_within(n1.clock.now_nanos(), REFUSED_REPORT_WINDOW));

        // Phase 3: n2 accepts n1 again.
        n1.send(envelope).await;
        assert_eq!(n2.recv().await, envelope);
    }

    #[tokio::test]
    async fn a_notice_about_another_incarnation_than_ours_moves_nothing() {
        let (mut n1, _n2, _) = pair().await;
        // A replayed datagram of an earlier boot (6) makes n2 name incarnation 7 as held: that
        // is our current one, and no reason to move.
        let now = n1.clock.now_nanos();
        n1.handle_notice(
            NodeId(1),
            IncarnationNotice {
                held: 7,
                refused: 6,
            },
            now,
        );
        // The other process with our id was refused, at an incarnation that is not ours.
        n1.handle_notice(
            NodeId(1),
            IncarnationNotice {
                held: 30,
                refused: 20,
            },
            now,
        );
        assert_eq!(n1.sealer.incarnation(), 7);
        assert_eq!(n1.stats.incarnation_moves.load(Ordering::Relaxed), 0);
        assert_eq!(n1.stats.last_refusal(), None);
    }

    #[tokio::test]
    async fn datagrams_of_one_id_from_two_sources_by_turns_are_named_as_two_processes() {
        let (_n1, mut n2, stats_n2) = pair().await;
        let target = n2.socket.local_addr().unwrap();
        // Two processes as n1 with the same incarnation (a copied state file): their
        // sequences interleave, so the receiver accepts datagrams from both sources by turns.
        let (first, second) = (
            std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
            std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
        );
        let mut sealer = Sealer::new(&key(), 0, 7);
        let payload = Message::Heartbeat {
            term: Term(2),
            seq: 1,
        }
        .encode();
        for turn in 0..8 {
            let datagram = sealer.seal(1, &payload).unwrap();
            let socket = if turn % 2 == 0 { &first } else { &second };
            socket.send_to(&datagram, target).unwrap();
            assert_eq!(n2.recv().await.from, NodeId(0));
        }
        assert_eq!(stats_n2.duplicate_ids.load(Ordering::Relaxed), 1);
    }
}
