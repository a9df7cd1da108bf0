//! The software of a simulated host: the node library's real [`Driver`], on parts that talk to
//! turmoil and the world instead of the operating system.
//!
//! - [`SimTransport`]: turmoil UDP with a fixed 25-byte encoding of our own, and the world's
//!   loss and duplication applied on send;
//! - [`SimClock`]: the host's [`crate::time::DriftClock`], sleeping in global time;
//! - [`SimStorage`]: the world's durable cell for this host, which outlives crashes;
//! - [`Recorder`]: the acting sink, reporting to the oracle;
//! - [`SimObserver`]: feeds the trace and the oracle.
//!
//! A paused process must do nothing while its clock runs on, so every way into the driver
//! (a timer, a datagram, the child's exit) first waits for the pause to end. Commands are
//! never sent to a paused host.

use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;

use tenure_core::{Envelope, FencingToken, Instant, Message, NodeId, PersistentState, Term};
use tenure_node::driver::{
    ActingSink, Clock, Driver, Observation, Observer, Parts, Status, Storage, Transport,
};
use tokio::sync::mpsc;
use turmoil::net::UdpSocket;

use crate::rng::Rng;
use crate::time::SimTime;
use crate::world::{Fate, Shared};

/// The UDP port every node listens on.
const PORT: u16 = 7_000;

/// Runs one boot of node `node` until its driver returns.
pub(crate) async fn software(world: Shared, node: usize) -> turmoil::Result {
    let (config, entropy_seed) = {
        let mut world = world.borrow_mut();
        (world.config.clone(), world.rng.next_u64())
    };
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, PORT)).await?;
    let peers = (0..config.members().len())
        .map(|peer| SocketAddr::new(turmoil::lookup(crate::oracle::name(peer)), PORT))
        .collect();
    let (commands, command_receiver) = mpsc::channel(4);
    {
        let mut world = world.borrow_mut();
        let now = SimTime::in_host();
        let host = &mut world.hosts[node];
        host.commands = Some(commands);
        host.paused_until = None;
        host.boots += 1;
        let boots = host.boots;
        world.trace.world(
            now,
            &format!("{} boots (#{boots})", crate::oracle::name(node)),
        );
    }
    let mut entropy = Rng::new(entropy_seed);
    let parts = Parts {
        transport: SimTransport {
            socket: Rc::new(socket),
            peers,
            world: world.clone(),
            node,
            held: None,
            buffer: [0; 64],
        },
        clock: SimClock {
            world: world.clone(),
            node,
        },
        storage: SimStorage {
            world: world.clone(),
            node,
        },
        sink: Recorder {
            world: world.clone(),
            node,
            acting: None,
        },
        observer: SimObserver {
            world: world.clone(),
            node,
        },
        entropy: move || entropy.next_u64(),
    };
    let driver = Driver::new(config, node_id(node), parts)?;
    driver.run(command_receiver).await?;
    Ok(())
}

/// The core's id of node index `node`: ids start at 1, like host names.
pub(crate) fn node_id(node: usize) -> NodeId {
    NodeId(node as u32 + 1)
}

/// Resolves once host `node` is not paused.
async fn unfrozen(world: &Shared, node: usize) {
    loop {
        let now = SimTime::in_host();
        let Some(until) = world.borrow().paused(node, now) else {
            return;
        };
        tokio::time::sleep(until.since(now)).await;
    }
}

// ----- Transport ------------------------------------------------------------------------------

pub(crate) struct SimTransport {
    /// Shared with the tasks that send delayed duplicates.
    socket: Rc<UdpSocket>,
    /// Indexed by node index.
    peers: Vec<SocketAddr>,
    world: Shared,
    node: usize,
    /// An envelope received while paused, kept here across cancellation until it is delivered.
    held: Option<Envelope>,
    buffer: [u8; 64],
}

impl Transport for SimTransport {
    async fn send(&mut self, envelope: Envelope) {
        let peer = (envelope.to.0 as usize)
            .checked_sub(1)
            .and_then(|index| self.peers.get(index));
        let Some(peer) = peer else {
            return;
        };
        let bytes = encode(&envelope);
        let peer = *peer;
        let fate = self.world.borrow_mut().fate();
        // Best effort, like UDP: a failed send is a lost datagram.
        match fate {
            Fate::Lost => {}
            Fate::Sent => {
                let _ = self.socket.send_to(&bytes, peer).await;
            }
            Fate::Duplicated(delay) => {
                let _ = self.socket.send_to(&bytes, peer).await;
                let socket = self.socket.clone();
                let world = self.world.clone();
                let epoch = world.borrow().network.epoch;
                tokio::task::spawn_local(async move {
                    tokio::time::sleep(delay).await;
                    if world.borrow().network.epoch == epoch {
                        let _ = socket.send_to(&bytes, peer).await;
                    }
                });
            }
        }
    }

    async fn recv(&mut self) -> Envelope {
        loop {
            if self.held.is_none() {
                if let Ok((length, _)) = self.socket.recv_from(&mut self.buffer).await {
                    self.held = decode(&self.buffer[..length]);
                }
            }
            if let Some(envelope) = self.held {
                unfrozen(&self.world, self.node).await;
                self.held = None;
                return envelope;
            }
        }
    }
}

/// kind u8, from u32, to u32, term u64, then seq u64 or granted as 0/1: 25 bytes, big-endian.
fn encode(envelope: &Envelope) -> [u8; 25] {
    let (kind, term, extra) = match envelope.message {
        Message::PreVote { term } => (1, term, 0),
        Message::PreVoteReply { term, granted } => (2, term, u64::from(granted)),
        Message::RequestVote { term } => (3, term, 0),
        Message::VoteReply { term, granted } => (4, term, u64::from(granted)),
        Message::Heartbeat { term, seq } => (5, term, seq),
        Message::HeartbeatAck { term, seq } => (6, term, seq),
        Message::Resign { term } => (7, term, 0),
        Message::TimeoutNow { term } => (8, term, 0),
    };
    let mut bytes = [0; 25];
    bytes[0] = kind;
    bytes[1..5].copy_from_slice(&envelope.from.0.to_be_bytes());
    bytes[5..9].copy_from_slice(&envelope.to.0.to_be_bytes());
    bytes[9..17].copy_from_slice(&term.0.to_be_bytes());
    bytes[17..25].copy_from_slice(&extra.to_be_bytes());
    bytes
}

/// The inverse of [`encode`]; `None` for anything it could not have produced.
fn decode(bytes: &[u8]) -> Option<Envelope> {
    let bytes: &[u8; 25] = bytes.try_into().ok()?;
    let word = |range: std::ops::Range<usize>| {
        bytes[range]
            .iter()
            .fold(0u64, |word, byte| word << 8 | u64::from(*byte))
    };
    let from = NodeId(word(1..5) as u32);
    let to = NodeId(word(5..9) as u32);
    let term = Term(word(9..17));
    let extra = word(17..25);
    let message = match (bytes[0], extra) {
        (1, 0) => Message::PreVote { term },
        (2, 0 | 1) => Message::PreVoteReply {
            term,
            granted: extra == 1,
        },
        (3, 0) => Message::RequestVote { term },
        (4, 0 | 1) => Message::VoteReply {
            term,
            granted: extra == 1,
        },
        (5, seq) => Message::Heartbeat { term, seq },
        (6, seq) => Message::HeartbeatAck { term, seq },
        (7, 0) => Message::Resign { term },
        (8, 0) => Message::TimeoutNow { term },
        _ => return None,
    };
    Some(Envelope { from, to, message })
}

// ----- Clock ----------------------------------------------------------------------------------

pub(crate) struct SimClock {
    world: Shared,
    node: usize,
}

impl Clock for SimClock {
    fn now(&self) -> Instant {
        self.world.borrow().clocks[self.node].local_at(SimTime::in_host())
    }

    async fn sleep_until(&self, deadline: Instant) {
        // Converted afresh after every wake: a drift fault may have changed the rate.
        loop {
            let target = self.world.borrow().clocks[self.node].global_at(deadline);
            let now = SimTime::in_host();
            if now >= target {
                break;
            }
            tokio::time::sleep(target.since(now)).await;
        }
        unfrozen(&self.world, self.node).await;
    }
}

// ----- Storage --------------------------------------------------------------------------------

pub(crate) struct SimStorage {
    world: Shared,
    node: usize,
}

impl Storage for SimStorage {
    fn load(&mut self) -> std::io::Result<Option<PersistentState>> {
        Ok(self.world.borrow().hosts[self.node].storage)
    }

    async fn store(&mut self, state: PersistentState) -> std::io::Result<()> {
        let mut world = self.world.borrow_mut();
        world.hosts[self.node].storage = Some(state);
        world.oracle.persisted(self.node, SimTime::in_host(), state);
        Ok(())
    }
}

// ----- Acting sink ----------------------------------------------------------------------------

/// The child as the oracle sees it. It reports every start, extension and stop request, and
/// learns from the oracle when the child is gone (stopped, or killed at its deadline, plus
/// its exit time), which is when `stopped` resolves.
pub(crate) struct Recorder {
    world: Shared,
    node: usize,
    /// The oracle's id of the current child.
    acting: Option<u64>,
}

impl ActingSink for Recorder {
    async fn start(
        &mut self,
        fencing_token: FencingToken,
        acting_until: Instant,
    ) -> std::io::Result<()> {
        let id = self.world.borrow_mut().oracle.acting_started(
            self.node,
            fencing_token,
            acting_until,
            SimTime::in_host(),
        );
        self.acting = Some(id);
        Ok(())
    }

    async fn extend(&mut self, acting_until: Instant) -> std::io::Result<()> {
        if let Some(id) = self.acting {
            let mut world = self.world.borrow_mut();
            let world = &mut *world;
            world
                .oracle
                .acting_extended(id, acting_until, SimTime::in_host(), &world.clocks);
        }
        Ok(())
    }

    async fn stop(&mut self) -> std::io::Result<()> {
        if let Some(id) = self.acting {
            self.world
                .borrow_mut()
                .oracle
                .acting_stop_requested(id, SimTime::in_host());
        }
        Ok(())
    }

    async fn stopped(&mut self) {
        let Some(id) = self.acting else {
            return std::future::pending().await;
        };
        loop {
            let end = {
                let world = self.world.borrow();
                world.oracle.child_end(id, &world.clocks)
            };
            let now = SimTime::in_host();
            match end {
                Some(end) if now < end => tokio::time::sleep(end.since(now)).await,
                _ => break,
            }
        }
        unfrozen(&self.world, self.node).await;
        self.acting = None;
    }
}

// ----- Observer -------------------------------------------------------------------------------

pub(crate) struct SimObserver {
    world: Shared,
    node: usize,
}

impl Observer for SimObserver {
    fn observe(&mut self, now: Instant, observation: &Observation) {
        let at = SimTime::in_host();
        let mut world = self.world.borrow_mut();
        world.trace.observed(at, self.node, now, observation);
        if let Observation::HandedOver(Ok(())) = observation {
            world.oracle.relinquished(self.node, at);
        }
    }

    fn status(&mut self, status: &Status<'_>) {
        let at = SimTime::in_host();
        self.world.borrow_mut().oracle.status(self.node, at, status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_encodes_and_decodes_back() {
        let term = Term(u64::MAX - 3);
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
            Message::Heartbeat {
                term,
                seq: u64::MAX,
            },
            Message::HeartbeatAck { term, seq: 7 },
            Message::Resign { term },
            Message::TimeoutNow { term },
        ];
        for message in messages {
            let envelope = Envelope {
                from: NodeId(1),
                to: NodeId(u32::MAX),
                message,
            };
            assert_eq!(decode(&encode(&envelope)), Some(envelope));
        }
        assert_eq!(decode(&[9; 25]), None, "unknown kind");
        assert_eq!(decode(&[1; 24]), None, "short");
    }
}
