//! tenure-core: the sans-IO election core of tenure.
//!
//! One [`Node`] per cluster member holds the whole protocol that docs/protocol.md specifies:
//! pre-vote, vote, quorum leases renewed by heartbeats, follower promises, boot quarantine, the
//! acting window and its lapse, graceful resignation and the fencing token. It is fully
//! deterministic: it does no I/O, reads no clock and draws no random numbers. Time
//! ([`Instant`]) and randomness (`entropy`) are arguments, so the model checker, the simulation
//! and the real node drive the very same code. [`Invariant`] names the safety properties that
//! every one of them checks.
//!
//! # The event loop
//!
//! ```text
//! let mut node = Node::new(config, id, persisted, clock.now())?;
//! loop {
//!     // 1. Drain outputs strictly in order. A Persist must be durable before anything after
//!     //    it is handled: that is how persist-before-send is kept.
//!     while let Some(output) = node.poll_output() {
//!         match output {
//!             Output::Persist(state) => storage.write_and_sync(state)?,
//!             Output::Send(envelope) => transport.send(envelope),
//!             Output::Event(event) => log(event),
//!         }
//!     }
//!     // 2. Reconcile the child with the leadership: act only while it says so.
//!     match node.leadership(clock.now()) {
//!         Some(l) if l.is_acting(clock.now()) => supervisor.run_until(l.fencing_token, l.acting_until),
//!         _ => supervisor.stop(),
//!     }
//!     // 3. Sleep until the next timer, the acting deadline, or an input.
//!     select! {
//!         _ = clock.sleep_until(node.poll_timeout()) => node.handle_timeout(clock.now(), rng.u64()),
//!         envelope = transport.recv() => { node.handle_message(clock.now(), envelope); }
//!         _ = supervisor.stopped() => { node.handle_acting_stopped(clock.now()); }
//!     }
//! }
//! ```
//!
//! # The call protocol
//!
//! - Inputs: [`Node::handle_message`], [`Node::handle_timeout`], [`Node::handle_resign`],
//!   [`Node::handle_acting_stopped`]. Each takes the local time `now`, which must never go
//!   backwards between calls: the core asserts it, as it asserts its invariants after every
//!   input, in release builds too.
//! - Outputs: [`Node::poll_output`] returns, in order, [`Output::Persist`] (make durable before
//!   going on), [`Output::Send`] and [`Output::Event`]. Drain them after every input.
//! - Timers: [`Node::poll_timeout`] says when to call [`Node::handle_timeout`] next.
//! - Queries: [`Node::leadership`] tells whether the node leads, until when its lease holds and
//!   until when it may act, with the fencing token to hand out.
//!
//! Network input that is stale, from an unknown peer or out of range is dropped and reported
//! as [`Received::Dropped`] with a [`DropReason`] for the driver to count; it never panics.
//! Misuse of the command API returns a [`CommandError`] and changes nothing.

#![forbid(unsafe_code)]

mod codec;
mod config;
mod config_error;
mod election;
mod id;
mod invariant;
mod leadership;
mod message;
mod node;
mod output;
pub mod store_lease;
mod time;
// Without the feature the variants exist only so `Config::breaks` can name them.
#[cfg_attr(not(feature = "broken-variants"), allow(dead_code, unreachable_pub))]
mod variant;

pub use codec::{DecodeError, MAX_ENCODED_LEN, TRANSPORT_NOTICE_KIND};
pub use config::lease_hold_for;
pub use config::{
    Config, ConfigParams, ElectionOrder, TimingParams, DEFAULT_ELECTION_JITTER_MAX,
    DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_LEASE_DURATION, DEFAULT_MAX_DRIFT, DEFAULT_MAX_DRIFT_PPM,
    DEFAULT_STOP_MARGIN, DEFAULT_TIMING, ELECTION_JITTER_LEASE_DIVISOR, HEARTBEAT_LEASE_DIVISOR,
    MAX_CLUSTER_SIZE, MAX_DRIFT_PPM, PPM,
};
pub use config_error::{ConfigError, FieldNames, Param, ParamNames};
pub use election::{Election, Summary};
pub use id::{FencingToken, NodeId, Term, MAX_TERM, MAX_TERM_STEP};
pub use invariant::Invariant;
pub use leadership::Leadership;
pub use message::{Envelope, Message, MessageKind};
pub use node::{
    CommandError, NewNodeError, Node, MAX_ELECTION_RESENDS, MAX_OUTSTANDING_HEARTBEATS,
    NO_HEARTBEAT,
};
pub use output::{DropReason, Event, Output, PersistentState, Received, RoleKind};
pub use store_lease::{
    ExpiryJudge, Record, ReferenceStore, StoreLease, StoreLeaseConfig, StoreLeaseConfigError,
    StoreLeaseParams, StoreOp, StoreOutcome, StoreReply, StoreRequest, StoreVariant,
};
pub use time::{Duration, Instant};
#[cfg(feature = "broken-variants")]
pub use variant::{UnknownVariant, Variant};

/// Whether this build carries the deliberately broken variants.
///
/// Cargo's feature unification compiles them into the `tenure` binary of a workspace test build
/// (`cargo test --workspace`, where the simulation and the models enable the feature). The
/// binary never selects one: it always runs the correct variant of `ConfigParams::default`, and
/// it logs a warning at startup when this is true. A release build of the binary alone
/// (`cargo build --release -p tenure-node`) does not carry them.
pub const BROKEN_VARIANTS_COMPILED: bool = cfg!(feature = "broken-variants");
