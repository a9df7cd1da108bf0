//! The software of a simulated host: the node library's real [`Driver`], on parts that talk to
//! turmoil and the world instead of the operating system.
//!
//! - [`SimTransport`]: turmoil UDP carrying the core's codec bytes behind a header of our own, the world's
//!   loss, duplication and held datagrams applied on send, and the real wire's replay window
//!   (`tenure_driver::replay::ReplayWindow`) applied on receipt;
//! - [`SimClock`]: the host's [`crate::time::DriftClock`], sleeping in global time;
//! - [`SimStorage`]: the world's durable cell for this host, which outlives crashes; it is also
//!   where the crash-point fault kills a host between a `Persist` and the sends after it;
//! - [`Recorder`]: the acting sink, reporting to the oracle;
//! - [`SimObserver`]: feeds the trace and the oracle.
//!
//! A paused process must do nothing while its clock runs on, so every way into the driver
//! (a timer, a datagram, the child's exit) first waits for the pause to end. Commands are
//! never sent to a paused host.

use std::fmt::Debug;
use std::hash::Hash;
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;

use tenure_core::{
    Envelope, FencingToken, Instant, Message, NodeId, PersistentState, Term, MAX_ENCODED_LEN,
};
use tenure_driver::replay::ReplayWindow;
use tenure_driver::{
    ActingSink, Clock, Command, Driver, HealthCheck, Observation, Observer, Parts, Status, Storage,
    Transport,
};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use turmoil::net::UdpSocket;

use crate::health::HealthTiming;
use crate::rng::Rng;
use crate::time::SimTime;
use crate::world::{CrashPoint, Fate, Held, Shared};

/// The UDP port every node listens on.
pub(crate) const PORT: u16 = 7_000;

/// A simulated datagram: see [`encode`].
pub(crate) type Datagram = Vec<u8>;

/// The length of a simulated datagram's header: see [`encode`].
const HEADER_LEN: usize = 1 + 4 + 4 + 8 + 8 + 8;

/// Set in the kind byte of a delayed duplicate: the duplication fault delivers copies the real
/// wire would drop as replays, which is harsher than production (docs/simulation.md), so they
/// bypass the replay window. Originals and held datagrams never do.
const UNCHECKED: u8 = 0x80;

/// Runs one boot of node `node` until its driver returns.
pub(crate) async fn software(world: Shared, node: usize) -> turmoil::Result {
    let (config, entropy_seed, inbox_ready, health_checks) = {
        let mut world = world.borrow_mut();
        let inbox_ready = world.hosts[node].inbox_ready.clone();
        let health_checks = world.health_checks;
        (
            world.config.clone(),
            world.rng.next_u64(),
            inbox_ready,
            health_checks,
        )
    };
    let health = HealthTiming::default();
    let (health_sender, health_receiver) = mpsc::channel(HEALTH_RESULTS_QUEUE);
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, PORT)).await?;
    let peers = (0..config.members().len())
        .map(|peer| SocketAddr::new(turmoil::lookup(crate::oracle::name(peer)), PORT))
        .collect();
    let (commands, command_receiver) = mpsc::channel(4);
    boot(&world, node, commands);
    let mut entropy = Rng::new(entropy_seed);
    let incarnation = u64::from(world.borrow().hosts[node].boots);
    let parts = Parts {
        transport: SimTransport {
            socket: Rc::new(socket),
            peers,
            world: world.clone(),
            node,
            incarnation,
            sequence: 0,
            windows: vec![None; config.members().len()],
            inbox_ready,
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
        sink: Recorder::new(
            world.clone(),
            node,
            health_checks.then_some((health, health_sender)),
        ),
        observer: SimObserver {
            world: world.clone(),
            node,
        },
        entropy: move || entropy.next_u64(),
    };
    let mut driver = Driver::new(config, node_id(node), parts)?;
    if health_checks {
        driver = driver.with_health_checks(health_receiver, health.policy());
    }
    let result = driver.run(command_receiver).await;
    world.borrow_mut().oracle.stopped_running(node);
    result?;
    Ok(())
}

/// Records a boot of host `node` in the world: its command channel, a fresh start (no pause,
/// no released datagrams, no crash point reached), and a line in the trace.
pub(crate) fn boot(world: &Shared, node: usize, commands: mpsc::Sender<Command>) {
    let mut world = world.borrow_mut();
    let now = SimTime::in_host();
    let host = &mut world.hosts[node];
    host.commands = Some(commands);
    host.paused_until = None;
    host.boots += 1;
    host.inbox.clear();
    host.crash_requested = false;
    host.sends_before_crash = None;
    let boots = host.boots;
    world.trace.world(
        now,
        &format!("{} boots (#{boots})", crate::oracle::name(node)),
    );
}

/// Health check results queued for the driver at most: it reads them as they come while it
/// acts, and the checks stop with the child.
const HEALTH_RESULTS_QUEUE: usize = 8;

/// The core's id of node index `node`: ids start at 1, like host names.
pub(crate) fn node_id(node: usize) -> NodeId {
    NodeId(node as u32 + 1)
}

/// Resolves once host `node` is not paused.
pub(crate) async fn unfrozen(world: &Shared, node: usize) {
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
    /// This boot's number, sent in every datagram like the real wire's incarnation.
    incarnation: u64,
    /// The next sequence number of this boot, across all peers, like the real wire's.
    sequence: u64,
    /// The real wire's replay window per sender (indexed by node index). Forgotten on a
    /// restart, as in the binary.
    windows: Vec<Option<ReplayWindow>>,
    /// Notified when the adversary releases a held datagram to this host.
    inbox_ready: Rc<Notify>,
    /// An envelope received and the global time it was sent, kept here across cancellation
    /// until it is delivered (after a pause, and never before it was sent).
    held: Option<(Envelope, SimTime)>,
    buffer: [u8; 64],
}

impl Transport for SimTransport {
    async fn send(&mut self, envelope: Envelope) {
        let index = (envelope.to.0 as usize).checked_sub(1);
        let Some((to, peer)) = index.and_then(|index| Some((index, *self.peers.get(index)?)))
        else {
            return;
        };
        let sent_at = SimTime::in_host();
        if let Message::VoteReply {
            term,
            granted: true,
        } = envelope.message
        {
            // A granted vote on the wire is a vote, even if the host dies before its status
            // (or its durable write, with a core that persists too late) shows it.
            self.world
                .borrow_mut()
                .oracle
                .vote_sent(self.node, term, envelope.to, sent_at);
        }
        let bytes = encode(&envelope, self.incarnation, self.sequence, sent_at);
        self.sequence += 1;
        if let Message::Heartbeat { term, seq } = envelope.message {
            if self.substitute(to, term, seq, &bytes) {
                crash_point_after_send(&self.world, self.node).await;
                return;
            }
        }
        let early_heartbeat =
            matches!(envelope.message, Message::Heartbeat { seq, .. } if seq <= EARLY_HEARTBEATS);
        let muted = matches!(envelope.message, Message::Heartbeat { .. })
            && self
                .world
                .borrow()
                .network
                .muted_heartbeats
                .contains(&self.node);
        let fate = if muted {
            Fate::Lost
        } else {
            self.world.borrow_mut().fate(self.node, to, early_heartbeat)
        };
        // Best effort, like UDP: a failed send is a lost datagram.
        match fate {
            Fate::Lost => {}
            Fate::Sent => {
                let _ = self.socket.send_to(&bytes, peer).await;
            }
            Fate::Held => self.hold(bytes, to, &envelope.message),
            Fate::Duplicated(delay) => {
                let _ = self.socket.send_to(&bytes, peer).await;
                let socket = self.socket.clone();
                let world = self.world.clone();
                let epoch = world.borrow().network.epoch;
                let mut copy = bytes;
                copy[0] |= UNCHECKED;
                tokio::task::spawn_local(async move {
                    tokio::time::sleep(delay).await;
                    if world.borrow().network.epoch == epoch {
                        let _ = socket.send_to(&copy, peer).await;
                    }
                });
            }
        }
        crash_point_after_send(&self.world, self.node).await;
    }

    async fn recv(&mut self) -> Envelope {
        loop {
            if self.held.is_none() {
                let released = self.world.borrow_mut().hosts[self.node].inbox.pop_front();
                match released {
                    Some(bytes) => self.held = self.open(&bytes, true),
                    None => {
                        let inbox_ready = self.inbox_ready.clone();
                        tokio::select! {
                            biased;
                            () = inbox_ready.notified() => {}
                            received = self.socket.recv_from(&mut self.buffer) => {
                                if let Ok((length, _)) = received {
                                    let bytes = self.buffer[..length].to_vec();
                                    self.held = self.open(&bytes, false);
                                }
                            }
                        }
                    }
                }
            }
            if let Some((envelope, sent_at)) = self.held {
                // turmoil moves datagrams at step boundaries while hosts run their timers at
                // exact instants within a step, so a receiver that runs after its sender in
                // the same step could see a datagram before the instant it was sent. Causality
                // first: nothing is received before it was sent.
                let now = SimTime::in_host();
                if now < sent_at {
                    tokio::time::sleep(sent_at.since(now)).await;
                }
                unfrozen(&self.world, self.node).await;
                self.held = None;
                return envelope;
            }
        }
    }
}

impl SimTransport {
    /// Hands a genuine datagram to the adversary, who releases it later (`Runner::release`),
    /// normally once its receiver has moved to a later term.
    fn hold(&mut self, bytes: Datagram, to: usize, message: &Message) {
        let mut world = self.world.borrow_mut();
        let now = SimTime::in_host();
        let delay = world.rng.range(0, HOLD_DELAY_MAX_MS);
        world.held.push_back(Held {
            bytes,
            from: self.node,
            to,
            term: message.term(),
            heartbeat_seq: match message {
                Message::Heartbeat { seq, .. } => Some(*seq),
                _ => None,
            },
            earliest: now.after(std::time::Duration::from_millis(delay)),
            latest: now.after(std::time::Duration::from_millis(HOLD_MAX_MS)),
        });
    }

    /// The adversary's substitution: if it holds a heartbeat from this node to `to` of an
    /// older term with the very `seq` of the heartbeat about to leave, it delivers that stale
    /// one instead and holds the fresh one back. A reply that carries the receiver's (newer)
    /// term and echoes the `seq` is then indistinguishable from an ack of the fresh heartbeat
    /// unless the core answers stale heartbeats with `NO_HEARTBEAT` (protocol: Stale replies
    /// acknowledge nothing). Returns whether it substituted.
    fn substitute(&mut self, to: usize, term: Term, seq: u64, fresh: &Datagram) -> bool {
        let mut world = self.world.borrow_mut();
        let world = &mut *world;
        let Some(index) = world.held.iter().position(|held| {
            (held.from, held.to) == (self.node, to)
                && held.term < term
                && held.heartbeat_seq == Some(seq)
        }) else {
            return false;
        };
        let Some(stale) = world.held.remove(index) else {
            return false;
        };
        let now = SimTime::in_host();
        world.trace.world(
            now,
            &format!(
                "substitutes a heartbeat of term {} for {}'s heartbeat {seq} of term {term} to {}",
                stale.term,
                crate::oracle::name(self.node),
                crate::oracle::name(to)
            ),
        );
        world.held.push_back(Held {
            bytes: fresh.clone(),
            from: self.node,
            to,
            term,
            heartbeat_seq: Some(seq),
            earliest: now,
            latest: now.after(std::time::Duration::from_millis(HOLD_MAX_MS)),
        });
        let host = &mut world.hosts[to];
        host.inbox.push_back(stale.bytes);
        host.inbox_ready.notify_one();
        true
    }

    /// Decodes a datagram and applies the real wire's replay window to it, as the binary's
    /// `Opener` does after authentication: a datagram from an older boot of its sender, one
    /// already accepted, or one older than the window is dropped.
    fn open(&mut self, bytes: &[u8], released: bool) -> Option<(Envelope, SimTime)> {
        let (envelope, incarnation, sequence, sent_at, checked) = decode(bytes)?;
        let sender = (envelope.from.0 as usize).checked_sub(1)?;
        if checked {
            let window = self.windows.get_mut(sender)?;
            let verdict = match window {
                None => {
                    *window = Some(ReplayWindow::first(incarnation, sequence));
                    Ok(())
                }
                Some(window) => window.accept(incarnation, sequence),
            };
            if released {
                let now = SimTime::in_host();
                let line = match verdict {
                    Ok(()) => format!(
                        "released to {}: {envelope:?}",
                        crate::oracle::name(self.node)
                    ),
                    Err(reason) => format!(
                        "released to {} and dropped ({reason:?}): {envelope:?}",
                        crate::oracle::name(self.node)
                    ),
                };
                self.world.borrow_mut().trace.world(now, &line);
            }
            verdict.ok()?;
        }
        Some((envelope, sent_at))
    }
}

/// Heartbeats up to this `seq` are held on every held link (see `World::fate`).
const EARLY_HEARTBEATS: u64 = 8;

/// A held datagram waits at least up to this long after it was sent (drawn uniformly).
const HOLD_DELAY_MAX_MS: u64 = 500;

/// A held datagram is released this long after it was sent even if its receiver's term has
/// not moved on; the replay window usually rejects it by then.
const HOLD_MAX_MS: u64 = 30_000;

/// The simulation's datagram: a header standing in for the real wire's sealed one, then the
/// payload exactly as the real transport carries it, the core's codec
/// ([`Message::encode`]). Header, big-endian: flags u8 (bit 7: an unchecked duplicate), from
/// u32, to u32, the sender's incarnation u64 and sequence u64, then (simulation only, never
/// seen by the driver) the global time it was sent in nanoseconds.
fn encode(envelope: &Envelope, incarnation: u64, sequence: u64, sent_at: SimTime) -> Datagram {
    let mut bytes = Vec::with_capacity(HEADER_LEN + MAX_ENCODED_LEN);
    bytes.push(0);
    bytes.extend_from_slice(&envelope.from.0.to_be_bytes());
    bytes.extend_from_slice(&envelope.to.0.to_be_bytes());
    bytes.extend_from_slice(&incarnation.to_be_bytes());
    bytes.extend_from_slice(&sequence.to_be_bytes());
    bytes.extend_from_slice(&sent_at.as_nanos().to_be_bytes());
    assert_eq!(bytes.len(), HEADER_LEN, "the header layout above");
    envelope.message.encode_into(&mut bytes);
    bytes
}

/// The inverse of [`encode`]: the envelope, incarnation, sequence, send time, and whether the
/// replay window applies; `None` for anything it could not have produced.
fn decode(bytes: &[u8]) -> Option<(Envelope, u64, u64, SimTime, bool)> {
    let (header, payload) = bytes.split_at_checked(HEADER_LEN)?;
    let word = |range: std::ops::Range<usize>| {
        header[range]
            .iter()
            .fold(0u64, |word, byte| word << 8 | u64::from(*byte))
    };
    let checked = header[0] & UNCHECKED == 0;
    let from = NodeId(u32::try_from(word(1..5)).ok()?);
    let to = NodeId(u32::try_from(word(5..9)).ok()?);
    let message = Message::decode(payload).ok()?;
    Some((
        Envelope { from, to, message },
        word(9..17),
        word(17..25),
        SimTime(word(25..33)),
        checked,
    ))
}

/// The crash-point fault: the host has reached the point where it dies. It asks the runner to
/// crash it at the end of this step and does nothing more meanwhile (the runner drops the
/// host's runtime with this future in it).
async fn crash_here(world: &Shared, node: usize, point: &str) {
    {
        let mut world = world.borrow_mut();
        world.hosts[node].crash_requested = true;
        world.hosts[node].crash_point = None;
        world.hosts[node].sends_before_crash = None;
        let now = SimTime::in_host();
        world.trace.world(
            now,
            &format!(
                "{} reaches its crash point ({point})",
                crate::oracle::name(node)
            ),
        );
    }
    std::future::pending::<()>().await;
}

/// After a send: dies if the crash point allowed only so many sends after the write.
async fn crash_point_after_send(world: &Shared, node: usize) {
    let remaining = {
        let mut world = world.borrow_mut();
        let host = &mut world.hosts[node];
        let Some(remaining) = host.sends_before_crash.as_mut() else {
            return;
        };
        *remaining = remaining.saturating_sub(1);
        *remaining
    };
    if remaining == 0 {
        crash_here(world, node, "after_first_send").await;
    }
}

// ----- Clock ----------------------------------------------------------------------------------

pub(crate) struct SimClock {
    pub(crate) world: Shared,
    pub(crate) node: usize,
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

    /// Durable when it returns. The crash-point fault kills the host here: before the write,
    /// or after it and before the driver's next send (persist-before-send means every send
    /// that depends on this state comes after this returns).
    async fn store(&mut self, state: PersistentState) -> std::io::Result<()> {
        let point = self.world.borrow().hosts[self.node].crash_point;
        if point == Some(CrashPoint::BeforeWrite) {
            crash_here(&self.world, self.node, "before_write").await;
        }
        {
            let mut world = self.world.borrow_mut();
            world.hosts[self.node].storage = Some(state);
            world.oracle.persisted(self.node, SimTime::in_host(), state);
        }
        match point {
            Some(CrashPoint::AfterWrite) => crash_here(&self.world, self.node, "after_write").await,
            Some(CrashPoint::AfterFirstSend) => {
                let mut world = self.world.borrow_mut();
                world.hosts[self.node].crash_point = None;
                world.hosts[self.node].sends_before_crash = Some(1);
            }
            Some(CrashPoint::BeforeWrite) | None => {}
        }
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
    /// The health checks' timing and where their results go, in runs that check health.
    health: Option<(HealthTiming, mpsc::Sender<HealthCheck>)>,
    /// The checks of the current child; aborted when it stops.
    checker: Option<JoinHandle<()>>,
}

impl Recorder {
    /// The sink of one boot of `node`, with the health checks of runs that check health.
    pub(crate) fn new(
        world: Shared,
        node: usize,
        health: Option<(HealthTiming, mpsc::Sender<HealthCheck>)>,
    ) -> Recorder {
        Recorder {
            world,
            node,
            acting: None,
            health,
            checker: None,
        }
    }

    fn stop_checks(&mut self) {
        if let Some(checker) = self.checker.take() {
            checker.abort();
        }
    }
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
        self.stop_checks();
        if let Some((timing, results)) = &self.health {
            self.checker = Some(tokio::task::spawn_local(check_health(
                self.world.clone(),
                self.node,
                id,
                *timing,
                results.clone(),
            )));
        }
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
        self.stop_checks();
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
        self.stop_checks();
    }
}

/// The health checks of child `child` of `node` (protocol: Health-gated acting), as the
/// binary's checker runs them: none within the grace after the start, then one every interval.
/// A hung child's check fails by its timeout; during an outage every check fails at once.
/// A paused host checks nothing until it runs again.
async fn check_health(
    world: Shared,
    node: usize,
    child: u64,
    timing: HealthTiming,
    results: mpsc::Sender<HealthCheck>,
) {
    tokio::time::sleep(timing.grace).await;
    let mut next = tokio::time::Instant::now();
    loop {
        unfrozen(&world, node).await;
        let hung = world.borrow().hung.contains(&child);
        let result = if hung {
            tokio::time::sleep(timing.timeout).await;
            HealthCheck::Failed(format!("timed out after {:?}", timing.timeout))
        } else if world.borrow().outage {
            HealthCheck::Failed("exit status 1: the database refuses connections".into())
        } else {
            HealthCheck::Passed
        };
        // Full only while the driver does not read, which it does only while it acts.
        let _ = results.try_send(result);
        next += timing.interval;
        tokio::time::sleep_until(next.max(tokio::time::Instant::now())).await;
    }
}

// ----- Observer -------------------------------------------------------------------------------

pub(crate) struct SimObserver {
    pub(crate) world: Shared,
    pub(crate) node: usize,
}

/// The same observer for either core: the trace hashes whatever traffic the core has.
impl<Out, In> Observer<Out, In> for SimObserver
where
    Out: Hash + Debug,
    In: Hash + Debug,
{
    fn observe(&mut self, now: Instant, observation: &Observation<Out, In>) {
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
            let bytes = encode(&envelope, 3, u64::MAX - 1, SimTime(9));
            // The payload is the real transport's: the core's codec, byte for byte.
            assert_eq!(bytes[HEADER_LEN..], message.encode()[..]);
            assert_eq!(
                decode(&bytes),
                Some((envelope, 3, u64::MAX - 1, SimTime(9), true))
            );
            let mut duplicate = bytes.clone();
            duplicate[0] |= UNCHECKED;
            assert_eq!(
                decode(&duplicate),
                Some((envelope, 3, u64::MAX - 1, SimTime(9), false))
            );
            assert_eq!(decode(&bytes[..bytes.len() - 1]), None, "short");
        }
        let mut unknown = vec![0; HEADER_LEN];
        unknown.extend_from_slice(&[9; 17]);
        assert_eq!(decode(&unknown), None, "unknown kind");
        assert_eq!(decode(&[1; HEADER_LEN - 1]), None, "short header");
    }
}
