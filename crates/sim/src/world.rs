//! The world outside the hosts: what survives a crash (clocks, durable storage), what the
//! fault injector controls (pauses, loss, duplication), and the oracle and trace that watch.
//! Hosts and the runner share it through an `Rc<RefCell<_>>`: turmoil runs every host on this
//! one thread, one at a time, so a borrow never spans an `.await`.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use tenure_core::{Config, PersistentState};
use tenure_node::driver::Command;
use tokio::sync::mpsc;

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
}

/// Faults the transport applies to every datagram it sends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Network {
    pub(crate) loss_permille: u16,
    pub(crate) duplicate_permille: u16,
    /// A duplicate leaves up to this long after the original: a copy stuck in a queue
    /// somewhere, arriving long after the protocol has moved on.
    pub(crate) duplicate_delay_max_ms: u32,
    /// Bumped by the heal: delayed duplicates from an earlier epoch are dropped, so that the
    /// network really is calm once the faults have healed.
    pub(crate) epoch: u32,
}

/// What becomes of one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fate {
    Lost,
    Sent,
    /// Sent, and sent again after this delay.
    Duplicated(std::time::Duration),
}

impl World {
    /// What becomes of a datagram about to be sent.
    pub(crate) fn fate(&mut self) -> Fate {
        let network = self.network;
        if network.loss_permille > 0 && self.rng.chance(u64::from(network.loss_permille), 1_000) {
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

    /// Until when host `node` is frozen, if it is at `now`.
    pub(crate) fn paused(&self, node: usize, now: SimTime) -> Option<SimTime> {
        self.hosts[node].paused_until.filter(|until| now < *until)
    }
}
