//! tenure-models: exhaustive model checking of the real `tenure-core` with stateright.
//!
//! [`TenureModel`] holds, in every state, the real [`tenure_core::Node`] of every cluster
//! member, a global clock in exact ticks, each node's clock rate within ±ρ, each driver's
//! unapplied outputs, the messages in flight and held back as bounded multisets, crashed flags
//! and persisted state, every supervised child (lingering ones included), and the ghost history
//! the properties need. Its actions are the faults and inputs that docs/protocol.md allows:
//! deliver, lose, duplicate or hold back a message, cut and heal a link, advance time to the
//! next instant at which anything can change, fire a due timer, apply one output, crash,
//! restart, and a graceful resignation in two phases.
//!
//! [`StoreModel`] does the same for the store-lease core: the real [`tenure_core::StoreLease`]
//! of two or three contenders against the real [`tenure_core::ReferenceStore`], on the same
//! clocks, children and acting properties (see `docs/verification.md`, Store leases).
//!
//! # The step protocol
//!
//! Every input action feeds one input to one real core at that node's local time (global time
//! × its clock rate) and queues the core's outputs in the node's driver. They take effect one
//! `Apply` at a time, in order (`Persist` writes the disk, `Send` puts a message in flight), and
//! the node may crash between any two. After every action the children and the ghost history
//! are updated, and stateright evaluates every property in the new state.
//!
//! # Running a check
//!
//! ```text
//! let model = TenureModel::new(ModelSpec::default_check())?;
//! let report = check(model, &CheckOptions::default(), |progress| eprintln!("{progress}"));
//! assert!(report.passed());
//! ```
//!
//! The `tenure-models` binary wraps this in a command line (`check`, `explore`);
//! `docs/verification.md` says what is checked, under which bounds, and what is out of scope.

#![forbid(unsafe_code)]

mod action;
mod bounds;
mod check;
mod children;
mod clock;
mod latch;
mod model;
mod network;
mod properties;
mod state;
mod store;
mod trace;

pub use action::{Action, DisplayEnvelope, Jitter};
pub use bounds::{SearchBounds, SuiteMember};
pub use check::{
    check, format_bytes, CheckOptions, CheckReport, Checkable, Progress, PropertyResult, StopWhen,
    Strategy,
};
pub use clock::{
    global_instant, local_time, timing, Drift, DriftSpec, DRIFT_TICKS, GRAIN, MAX_DRIFT,
    NOMINAL_RATE, TICKS_PER_UNIT,
};
pub use model::{order_name, ModelSpec, TenureModel};
pub use network::{InFlight, Network};
pub use properties::{explain, ALWAYS, SOMETIMES};
pub use state::{Child, ClusterState, History, NodeView, Pending};
pub use store::{
    explain_store, judge_name, render_store_trace, store_timing, Call, ReplyInFlight, StoreAction,
    StoreBounds, StoreHistory, StoreModel, StoreSlot, StoreSpec, StoreState, StoreSuiteMember,
    STORE_ALWAYS, STORE_SOMETIMES,
};
pub use trace::render as render_trace;
