//! Store runs (protocol: Store leases): a simulated coordination store on a turmoil host of its
//! own, and the nodes' side of it, so that the node library's real driver runs a
//! [`StoreLease`] against it exactly as it runs the quorum core against its peers.
//!
//! - The store host (`store`) serves a [`ReferenceStore`], the store semantics the core is
//!   written against, with either judge of expiry; where the store judges, it does so on a
//!   drifting clock of its own. Its record lives in the world, outside the host, so a restart
//!   keeps it, as a durable store's would; a restart loses whatever was in flight to or from
//!   it.
//! - [`StoreTransport`] carries a node's requests to the store and its replies back over
//!   turmoil UDP. Each request and reply may be lost (the loss fault) or delayed (the latency
//!   fault), so a request may be applied and its reply never arrive, or arrive after the core
//!   gave the request up (its timeout is the production one).
//! - Every reply names the boot of the node that sent the request: a reply to an earlier boot
//!   is dropped by the transport, as a connection-based client (PostgreSQL, etcd) never sees
//!   replies meant for the connection of a process that died.
//!
//! Wire format (big-endian), simulation only. A request: from u32, the sender's boot u32,
//! id u64, op u8 (0 read, 1 acquire, 2 renew, 3 release), its argument u64 (version or token),
//! the global time it was sent u64. A reply: the boot u32 and id u64 it answers, outcome u8
//! (0 applied, 1 conflict, 2 failed), the record (holder u32, 0 for none; version u64; token
//! u64), the global time it was sent u64.

use std::net::{Ipv4Addr, SocketAddr};

use tenure_core::{
    FencingToken, NodeId, Record, ReferenceStore, StoreLease, StoreLeaseConfig, StoreOp,
    StoreOutcome, StoreReply, StoreRequest,
};
use tenure_driver::{Clock, Driver, Parts, Stateless, Transport};
use tokio::sync::mpsc;
use turmoil::net::UdpSocket;

use crate::host::{boot, node_id, unfrozen, Recorder, SimClock, SimObserver, PORT};
use crate::rng::Rng;
use crate::time::{DriftClock, SimTime};
use crate::world::Shared;

/// The store's host name.
pub const STORE_HOST: &str = "store";

/// The UDP port the store listens on.
const STORE_PORT: u16 = 7_100;

const REQUEST_LEN: usize = 4 + 4 + 8 + 1 + 8 + 8;
const REPLY_LEN: usize = 4 + 8 + 1 + 4 + 8 + 8 + 8;

/// The store as the world keeps it, across restarts of its host.
pub(crate) struct StoreState {
    /// The nodes' configuration (every node runs the same).
    pub(crate) config: StoreLeaseConfig,
    /// The record and, where the store judges expiry, its expiry, on the store's clock.
    pub(crate) reference: ReferenceStore,
    /// The store's own clock, within ±ρ of real time like every other.
    pub(crate) clock: DriftClock,
    /// How often the store's host started.
    pub(crate) boots: u32,
    /// When the store's host last started: a request sent before then was in flight on a
    /// connection the restart dropped, and is never applied.
    pub(crate) booted_at: SimTime,
}

impl StoreState {
    /// The record as it is at global time `now`.
    pub(crate) fn record(&self, now: SimTime) -> Record {
        self.reference.record(self.clock.local_at(now))
    }
}

// ----- The store's host ------------------------------------------------------------------------

/// Runs one boot of the store until its host crashes: applies each request atomically on
/// arrival, in arrival order, and answers it.
pub(crate) async fn store_software(world: Shared) -> turmoil::Result {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, STORE_PORT)).await?;
    {
        let mut world = world.borrow_mut();
        let boots = world.store.as_mut().map_or(0, |store| {
            store.boots += 1;
            store.booted_at = SimTime::in_host();
            store.boots
        });
        world
            .trace
            .world(SimTime::in_host(), &format!("store boots (#{boots})"));
    }
    let mut buffer = [0; 64];
    loop {
        let (length, from) = socket.recv_from(&mut buffer).await?;
        let Some((request, boot, sent_at)) = decode_request(&buffer[..length]) else {
            continue;
        };
        // Causality first, as in the nodes' transports: turmoil moves datagrams at step
        // boundaries, so a request could otherwise be served before the instant it was sent.
        let now = SimTime::in_host();
        if now < sent_at {
            tokio::time::sleep(sent_at.since(now)).await;
        }
        if let Some(reply) = serve(&world, request, boot, sent_at) {
            let _ = socket.send_to(&reply, from).await;
        }
    }
}

/// Applies `request` to the world's store now and returns the encoded reply, or `None` if
/// the loss fault takes the reply (the request stays applied), or if the request was sent
/// before the store's latest restart (its connection died with the store; it is not applied).
fn serve(world: &Shared, request: StoreRequest, boot: u32, sent_at: SimTime) -> Option<Vec<u8>> {
    let mut world = world.borrow_mut();
    let world = &mut *world;
    let now = SimTime::in_host();
    let store = world.store.as_mut()?;
    if sent_at < store.booted_at {
        let line = format!("store drops {request:?} of boot {boot}, sent before its restart");
        world.trace.world(now, &line);
        return None;
    }
    let outcome = store.reference.apply(store.clock.local_at(now), request);
    world.trace.world(
        now,
        &format!("store serves {request:?} of boot {boot}: {outcome:?}"),
    );
    if world.lost() {
        return None;
    }
    let reply = StoreReply {
        id: request.id,
        outcome,
    };
    Some(encode_reply(&reply, boot, now))
}

// ----- A node of a store run ---------------------------------------------------------------------

/// Runs one boot of node `node` of a store run until its driver returns: the real driver
/// around a [`StoreLease`] that boots as a contender (nothing is persisted locally).
pub(crate) async fn store_node_software(world: Shared, node: usize) -> turmoil::Result {
    let (config, entropy_seed) = {
        let mut world = world.borrow_mut();
        let Some(config) = world.store.as_ref().map(|store| store.config) else {
            return Err("a store run without a store".into());
        };
        (config, world.rng.next_u64())
    };
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, PORT)).await?;
    let store = SocketAddr::new(turmoil::lookup(STORE_HOST), STORE_PORT);
    let (commands, command_receiver) = mpsc::channel(4);
    boot(&world, node, commands);
    let boot = world.borrow().hosts[node].boots;
    let clock = SimClock {
        world: world.clone(),
        node,
    };
    let core = StoreLease::new(config, node_id(node), clock.now());
    let mut entropy = Rng::new(entropy_seed);
    let parts = Parts {
        transport: StoreTransport {
            socket,
            store,
            world: world.clone(),
            node,
            boot,
            held: None,
            buffer: [0; 64],
        },
        clock,
        storage: Stateless,
        sink: Recorder::new(world.clone(), node, None),
        observer: SimObserver {
            world: world.clone(),
            node,
        },
        entropy: move || entropy.next_u64(),
    };
    let result = Driver::with_election(core, parts)
        .run(command_receiver)
        .await;
    world.borrow_mut().oracle.stopped_running(node);
    result?;
    Ok(())
}

/// A node's connection to the store: requests out, replies in, over turmoil UDP with the
/// world's loss applied both ways.
pub(crate) struct StoreTransport {
    socket: UdpSocket,
    store: SocketAddr,
    world: Shared,
    node: usize,
    /// This boot's number: replies to requests of another boot are dropped.
    boot: u32,
    /// A reply received and the global time it was sent, kept across cancellation until it
    /// is delivered (after a pause, and never before it was sent).
    held: Option<(StoreReply, SimTime)>,
    buffer: [u8; 64],
}

impl Transport<StoreRequest, StoreReply> for StoreTransport {
    async fn send(&mut self, request: StoreRequest) {
        let bytes = encode_request(&request, self.boot, SimTime::in_host());
        let lost = self.world.borrow_mut().lost();
        // Best effort: a request that cannot be sent is as good as lost, and the core's
        // timeout takes it as an unknown outcome.
        if !lost {
            let _ = self.socket.send_to(&bytes, self.store).await;
        }
    }

    async fn recv(&mut self) -> StoreReply {
        loop {
            if self.held.is_none() {
                let Ok((length, _)) = self.socket.recv_from(&mut self.buffer).await else {
                    // The socket is gone with the host; nothing more will arrive.
                    return std::future::pending().await;
                };
                self.held = decode_reply(&self.buffer[..length])
                    .filter(|(_, boot, _)| *boot == self.boot)
                    .map(|(reply, _, sent_at)| (reply, sent_at));
            }
            if let Some((reply, sent_at)) = self.held {
                let now = SimTime::in_host();
                if now < sent_at {
                    tokio::time::sleep(sent_at.since(now)).await;
                }
                unfrozen(&self.world, self.node).await;
                self.held = None;
                return reply;
            }
        }
    }
}

// ----- Wire format -----------------------------------------------------------------------------

fn encode_request(request: &StoreRequest, boot: u32, sent_at: SimTime) -> Vec<u8> {
    let (op, argument) = match request.op {
        StoreOp::Read => (0, 0),
        StoreOp::Acquire { version } => (1, version),
        StoreOp::Renew { token } => (2, token.0),
        StoreOp::Release { token } => (3, token.0),
    };
    let mut bytes = Vec::with_capacity(REQUEST_LEN);
    bytes.extend_from_slice(&request.from.0.to_be_bytes());
    bytes.extend_from_slice(&boot.to_be_bytes());
    bytes.extend_from_slice(&request.id.to_be_bytes());
    bytes.push(op);
    bytes.extend_from_slice(&argument.to_be_bytes());
    bytes.extend_from_slice(&sent_at.as_nanos().to_be_bytes());
    bytes
}

fn decode_request(bytes: &[u8]) -> Option<(StoreRequest, u32, SimTime)> {
    if bytes.len() != REQUEST_LEN {
        return None;
    }
    let word = |start: usize, length: usize| word(&bytes[start..start + length]);
    let argument = word(17, 8);
    let op = match bytes[16] {
        0 => StoreOp::Read,
        1 => StoreOp::Acquire { version: argument },
        2 => StoreOp::Renew {
            token: FencingToken(argument),
        },
        3 => StoreOp::Release {
            token: FencingToken(argument),
        },
        _ => return None,
    };
    let request = StoreRequest {
        id: word(8, 8),
        from: NodeId(u32::try_from(word(0, 4)).ok()?),
        op,
    };
    Some((
        request,
        u32::try_from(word(4, 4)).ok()?,
        SimTime(word(25, 8)),
    ))
}

fn encode_reply(reply: &StoreReply, boot: u32, sent_at: SimTime) -> Vec<u8> {
    let (outcome, record) = match reply.outcome {
        StoreOutcome::Applied(record) => (0, record),
        StoreOutcome::Conflict(record) => (1, record),
        StoreOutcome::Failed => (2, Record::default()),
    };
    let mut bytes = Vec::with_capacity(REPLY_LEN);
    bytes.extend_from_slice(&boot.to_be_bytes());
    bytes.extend_from_slice(&reply.id.to_be_bytes());
    bytes.push(outcome);
    bytes.extend_from_slice(&record.holder.map_or(0, |holder| holder.0).to_be_bytes());
    bytes.extend_from_slice(&record.version.to_be_bytes());
    bytes.extend_from_slice(&record.token.0.to_be_bytes());
    bytes.extend_from_slice(&sent_at.as_nanos().to_be_bytes());
    bytes
}

fn decode_reply(bytes: &[u8]) -> Option<(StoreReply, u32, SimTime)> {
    if bytes.len() != REPLY_LEN {
        return None;
    }
    let word = |start: usize, length: usize| word(&bytes[start..start + length]);
    // Node ids start at 1 (`host::node_id`), so 0 can stand for a vacant record.
    let holder = u32::try_from(word(13, 4)).ok()?;
    let record = Record {
        holder: (holder != 0).then_some(NodeId(holder)),
        version: word(17, 8),
        token: FencingToken(word(25, 8)),
    };
    let outcome = match bytes[12] {
        0 => StoreOutcome::Applied(record),
        1 => StoreOutcome::Conflict(record),
        2 => StoreOutcome::Failed,
        _ => return None,
    };
    let reply = StoreReply {
        id: word(4, 8),
        outcome,
    };
    Some((reply, u32::try_from(word(0, 4)).ok()?, SimTime(word(33, 8))))
}

/// A big-endian unsigned integer of up to eight bytes.
fn word(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0u64, |word, byte| word << 8 | u64::from(*byte))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_and_reply_encodes_and_decodes_back() {
        let ops = [
            StoreOp::Read,
            StoreOp::Acquire { version: u64::MAX },
            StoreOp::Renew {
                token: FencingToken(7),
            },
            StoreOp::Release {
                token: FencingToken(u64::MAX - 1),
            },
        ];
        for op in ops {
            let request = StoreRequest {
                id: u64::MAX - 2,
                from: NodeId(u32::MAX),
                op,
            };
            let bytes = encode_request(&request, 3, SimTime(9));
            assert_eq!(decode_request(&bytes), Some((request, 3, SimTime(9))));
            assert_eq!(decode_request(&bytes[1..]), None, "short");
        }
        let record = Record {
            holder: Some(NodeId(2)),
            version: u64::MAX,
            token: FencingToken(5),
        };
        let vacant = Record {
            holder: None,
            ..record
        };
        for outcome in [
            StoreOutcome::Applied(record),
            StoreOutcome::Conflict(vacant),
            StoreOutcome::Failed,
        ] {
            let reply = StoreReply { id: 4, outcome };
            let bytes = encode_reply(&reply, u32::MAX, SimTime(u64::MAX));
            assert_eq!(
                decode_reply(&bytes),
                Some((reply, u32::MAX, SimTime(u64::MAX)))
            );
            assert_eq!(decode_reply(&bytes[1..]), None, "short");
        }
    }
}
