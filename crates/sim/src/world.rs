//! The world outside the hosts: what survives a crash (clocks, durable storage), what the
//! fault injector controls (pauses, loss, duplication), and the oracle and trace that watch.
//! Hosts and the runner share it through an `Rc<RefCell<_>>`: turmoil runs every host on this
//! one thread, one at a time, so a borrow never spans an `.await`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;

use tenure_core::{Config, PersistentState, Term};
use tenure_driver::Command;
use tokio::sync::{mpsc, Notify};

use crate::oracle::Oracle;
use crate::rng::Rng;
use crate::time::{DriftClock, SimTime};
use crate::trace::Trace;

/// The world, shared by the hosts and the runner.
pub(crate) type Shared = Rc<RefCell<World>>;

pub(crate) struct World {
    pub(crate) config: Arc<Config>,
    pub(crate) hosts: Vec<HostState>,
    /// Per host, indexed like `hosts`; apart so that the oracle can read them while the rest
    /// of the world is borrowed mutably.
    pub(crate) clocks: Vec<DriftClock>,
    pub(crate) network: Network,
    /// Loss and duplication draws, and each boot's election entropy.
    pub(crate) rng: Rng,
    pub(crate) oracle: Oracle,
    pub(crate) trace: Trace,
    /// Datagrams the adversary holds back (the hold fault), oldest first; at most
    /// [`MAX_HELD`].
    pub(crate) held: VecDeque<Held>,
    /// Whether the daemons' health is checked: only in runs whose schedule has a hang or an
    /// outage (see `crate::health`).
    pub(crate) health_checks: bool,
    /// The oracle's ids of the daemons that hang (the hang fault).
    pub(crate) hung: Vec<u64>,
    /// Every daemon's health check fails (the outage fault).
    pub(crate) outage: bool,
    /// The store of a store run; `None` in a quorum run.
    pub(crate) store: Option<crate::store::StoreState>,
}

/// The most datagrams the adversary holds at once: a router's queue is bounded too.
pub(crate) const MAX_HELD: usize = 64;

/// A genuine datagram the network holds back, to release it later, normally into a later
/// term of its receiver. It keeps its sender's incarnation and sequence, so the receiver's
/// replay window (the real wire's rule) decides whether it is still accepted.
#[derive(Clone, Debug)]
pub(crate) struct Held {
    pub(crate) bytes: crate::host::Datagram,
    pub(crate) from: usize,
    pub(crate) to: usize,
    /// The term the datagram carries.
    pub(crate) term: Term,
    /// The heartbeat's `seq`, if it is one (the adversary can read that much: the wire
    /// authenticates datagrams, it does not encrypt them).
    pub(crate) heartbeat_seq: Option<u64>,
    /// Not released before this.
    pub(crate) earliest: SimTime,
    /// Released then even if the receiver's term has not moved on.
    pub(crate) latest: SimTime,
}

/// Where a host crashes inside the driver's drain, between a `Persist` and the sends that
/// depend on it (the crash-point fault).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CrashPoint {
    /// The core asked for the write; the host dies before it is durable.
    BeforeWrite,
    /// The write is durable; the host dies before the first send after it.
    AfterWrite,
    /// The write is durable and one send has left; the host dies before the next.
    AfterFirstSend,
}

impl CrashPoint {
    /// Every crash point.
    pub const ALL: [CrashPoint; 3] = [
        CrashPoint::BeforeWrite,
        CrashPoint::AfterWrite,
        CrashPoint::AfterFirstSend,
    ];

    /// The snake_case name used in schedules.
    pub fn name(self) -> &'static str {
        match self {
            CrashPoint::BeforeWrite => "before_write",
            CrashPoint::AfterWrite => "after_write",
            CrashPoint::AfterFirstSend => "after_first_send",
        }
    }
}

/// What the world keeps for one host.
#[derive(Default)]
pub(crate) struct HostState {
    /// The durable state: written by the driver's storage, read back after a restart.
    pub(crate) storage: Option<PersistentState>,
    /// The process is frozen until then (the pause fault); its clock runs on.
    pub(crate) paused_until: Option<SimTime>,
    /// The running driver's command channel.
    pub(crate) commands: Option<mpsc::Sender<Command>>,
    /// How often the host's software started.
    pub(crate) boots: u32,
    /// Datagrams the adversary released to this host, waiting for its transport.
    pub(crate) inbox: VecDeque<crate::host::Datagram>,
    /// Wakes the host's transport when the inbox fills. Shared by every boot of the host.
    pub(crate) inbox_ready: Rc<Notify>,
    /// Armed by the crash-point fault: the host dies at the next such point of its drain.
    pub(crate) crash_point: Option<CrashPoint>,
    /// Sends the host still makes before it dies (the rest of a [`CrashPoint::AfterFirstSend`]).
    pub(crate) sends_before_crash: Option<u32>,
    /// The host has reached its crash point and waits to be crashed by the runner at the end
    /// of the step (it does nothing meanwhile).
    pub(crate) crash_requested: bool,
}

/// Faults the transport applies to every datagram it sends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Network {
    pub(crate) loss_permille: u16,
    pub(crate) duplicate_permille: u16,
    /// A duplicate leaves up to this long after the original: a copy stuck in a queue
    /// somewhere, arriving long after the protocol has moved on.
    pub(crate) duplicate_delay_max_ms: u32,
    /// Bumped by the heal: delayed duplicates from an earlier epoch are dropped, so that the
    /// network really is calm once the faults have healed.
    pub(crate) epoch: u32,
    /// Links on which the adversary holds datagrams back: (from, to, permille).
    pub(crate) holds: Vec<(usize, usize, u16)>,
    /// Nodes whose heartbeats are lost (the mute-heartbeats fault).
    pub(crate) muted_heartbeats: Vec<usize>,
}

/// What becomes of one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fate {
    Lost,
    /// Held back by the adversary (see [`Held`]).
    Held,
    Sent,
    /// Sent, and sent again after this delay.
    Duplicated(std::time::Duration),
}

impl World {
    /// What becomes of a datagram about to be sent.
    /// The adversary of the hold fault stashes every early heartbeat of a term (`seq` up to
    /// this) on the links it holds: a stale heartbeat is dangerous only if its `seq` is one its
    /// sender reaches again in a later term before the receiver's replay window moves past it.
    pub(crate) fn fate(&mut self, from: usize, to: usize, early_heartbeat: bool) -> Fate {
        let network = &self.network;
        let hold = network
            .holds
            .iter()
            .filter(|(a, b, _)| (*a, *b) == (from, to))
            .map(|(_, _, permille)| *permille)
            .max()
            .unwrap_or(0);
        let hold = if early_heartbeat && hold > 0 {
            1_000
        } else {
            hold
        };
        if hold > 0 && self.held.len() < MAX_HELD && self.rng.chance(u64::from(hold), 1_000) {
            Fate::Held
        } else if network.loss_permille > 0
            && self.rng.chance(u64::from(network.loss_permille), 1_000)
        {
            Fate::Lost
        } else if network.duplicate_permille > 0
            && self
                .rng
                .chance(u64::from(network.duplicate_permille), 1_000)
        {
            let delay = self.rng.range(0, u64::from(network.duplicate_delay_max_ms));
            Fate::Duplicated(std::time::Duration::from_millis(delay))
        } else {
            Fate::Sent
        }
    }

    /// Whether the loss fault takes a store request or reply about to be sent.
    pub(crate) fn lost(&mut self) -> bool {
        let permille = self.network.loss_permille;
        permille > 0 && self.rng.chance(u64::from(permille), 1_000)
    }

    /// Until when host `node` is frozen, if it is at `now`.
    pub(crate) fn paused(&self, node: usize, now: SimTime) -> Option<SimTime> {
        self.hosts[node].paused_until.filter(|until| now < *until)
    }
}
