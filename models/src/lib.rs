//! tenure-models: exhaustive model checking of the real `tenure-core` with stateright.
//!
//! [`TenureModel`] holds, in every state, the real [`tenure_core::Node`] of every cluster
//! member, a global clock, each node's clock rate within ±ρ, the messages in flight as a
//! bounded multiset, crashed flags and persisted state, and the ghost history the properties
//! need. Its actions are the faults and inputs of DESIGN.md: deliver, lose, duplicate or delay
//! a message, cut and heal a link, advance time, fire a due timer, crash, restart, and a
//! graceful resignation in two phases.
//!
//! # The step protocol
//!
//! Every action feeds one input to one real core at that node's local time (global time ×
//! its clock rate), then drains the core's outputs in order: `Persist` goes to the node's disk
//! before the step's messages enter the network as one batch. Then the ghost history is
//! updated and normalised, and stateright evaluates every property in the new state.
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
mod clock;
mod model;
mod network;
mod properties;
mod state;
mod trace;

pub use action::{Action, DisplayEnvelope, Jitter};
pub use bounds::Bounds;
pub use check::{
    check, format_bytes, CheckOptions, CheckReport, Progress, PropertyResult, StopWhen, Strategy,
};
pub use clock::{local_time, timing, Drift, DriftSpec, DRIFT_TICKS, MAX_DRIFT, NOMINAL_RATE};
pub use model::{ModelSpec, TenureModel};
pub use network::Network;
pub use properties::{explain, ALWAYS, SOMETIMES};
pub use state::{ClusterState, History, NodeView};
pub use trace::render as render_trace;
