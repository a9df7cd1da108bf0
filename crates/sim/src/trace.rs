//! The trace of a run: everything every driver did and every fault the world applied, in the
//! order it happened. Always folded into a hash, which the determinism test compares between
//! two runs of one seed; kept as text only when asked (reproducing a failure), because
//! formatting every message would cost more than the rest of the simulation.

use std::fmt::Debug;
use std::hash::{Hash, Hasher};

use tenure_core::{CommandError, Instant};
use tenure_driver::Observation;

use crate::oracle::name;
use crate::time::SimTime;

/// The trace of one run.
pub struct Trace {
    hasher: Fnv,
    lines: Option<Vec<String>>,
}

impl Trace {
    /// An empty trace; `keep_lines` keeps a line of text per entry.
    pub fn new(keep_lines: bool) -> Trace {
        Trace {
            hasher: Fnv::default(),
            lines: keep_lines.then(Vec::new),
        }
    }

    /// A driver step of `node`, at global time `at` and local time `local`.
    pub fn observed<Out: Hash + Debug, In: Hash + Debug>(
        &mut self,
        at: SimTime,
        node: usize,
        local: Instant,
        observation: &Observation<Out, In>,
    ) {
        at.hash(&mut self.hasher);
        (node as u64).hash(&mut self.hasher);
        local.hash(&mut self.hasher);
        hash_observation(&mut self.hasher, observation);
        if let Some(lines) = &mut self.lines {
            lines.push(format!("{at} {} {observation:?}", name(node)));
        }
    }

    /// Something the world did: a fault, a crash, a restart.
    pub fn world(&mut self, at: SimTime, what: &str) {
        at.hash(&mut self.hasher);
        what.hash(&mut self.hasher);
        if let Some(lines) = &mut self.lines {
            lines.push(format!("{at} world {what}"));
        }
    }

    /// The hash of everything traced so far.
    pub fn hash(&self) -> u64 {
        self.hasher.finish()
    }

    /// The text lines, if kept.
    pub fn into_lines(self) -> Vec<String> {
        self.lines.unwrap_or_default()
    }
}

/// Feeds every field of `observation` to `hasher`. Written out because `Observation` carries
/// a `CommandError`, which does not implement `Hash`.
/// The quorum's envelopes and the store lease's requests and replies hash the same way.
fn hash_observation<Out: Hash, In: Hash>(hasher: &mut Fnv, observation: &Observation<Out, In>) {
    match observation {
        Observation::Event(event) => (0u8, event).hash(hasher),
        Observation::Persisted(state) => (1u8, state).hash(hasher),
        Observation::Sent(envelope) => (2u8, envelope).hash(hasher),
        Observation::Received(envelope, received) => (3u8, envelope, received).hash(hasher),
        Observation::ActingStarted {
            fencing_token,
            acting_until,
        } => (4u8, fencing_token, acting_until).hash(hasher),
        Observation::ActingExtended { acting_until } => (5u8, acting_until).hash(hasher),
        Observation::ActingStopRequested => 6u8.hash(hasher),
        Observation::ActingStopped => 7u8.hash(hasher),
        Observation::ChildLost(result) => (8u8, code(result)).hash(hasher),
        Observation::ResignCommand(successor, result) => {
            (9u8, successor, code(result)).hash(hasher)
        }
        Observation::Shutdown(result) => (10u8, code(result)).hash(hasher),
        Observation::HandedOver(result) => (11u8, code(result)).hash(hasher),
        Observation::Failed => 12u8.hash(hasher),
        Observation::CampaignHeld { losses, hold } => (13u8, losses, hold).hash(hasher),
        Observation::Paused { leading } => (14u8, leading).hash(hasher),
        Observation::Resumed => 15u8.hash(hasher),
        Observation::HealthCheckFailed {
            consecutive_failures,
            failures,
            reason,
        } => (16u8, consecutive_failures, failures, reason).hash(hasher),
        Observation::HealthRecovered { after_failures } => (17u8, after_failures).hash(hasher),
        Observation::Unhealthy(result) => (18u8, code(result)).hash(hasher),
    }
}

fn code(result: &Result<(), CommandError>) -> (u8, u32) {
    match result {
        Ok(()) => (0, 0),
        Err(CommandError::NotLeader) => (1, 0),
        Err(CommandError::InvalidSuccessor { successor }) => (2, successor.0),
        Err(CommandError::NotResigning) => (3, 0),
    }
}

/// FNV-1a, 64 bits: fixed, so a trace hash means the same on every machine and every run.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}
