//! The store model: exhaustive checking of the real store-lease core (protocol: Store leases).
//!
//! [`StoreModel`] holds, in every state, the real [`tenure_core::StoreLease`] of every
//! contender, the real [`tenure_core::ReferenceStore`] (one record, linearizable
//! compare-and-set, and, where the store judges expiry, its own clock within ±ρ), the requests
//! on their way to the store and the replies on their way back, each node's children, and
//! the ghost history of acting intervals. Time and clocks are the quorum model's (`clock`):
//! exact ticks, each clock at a fixed rate within ±ρ, and time stopping at every instant at
//! which anything can change.
//!
//! # The step protocol
//!
//! A request enters the store's queue the moment its core emits it. The store applies it, as
//! one atomic step on its own clock, at any instant from its send until its sender gives it up
//! (a timeout, a crash, a release that abandons it); held back, at any later instant or never.
//! Its reply arrives at any instant until the sender gives up, or is lost, or arrives twice.
//! After every action the children and the ghost history are updated, and stateright
//! evaluates every property in the new state.

mod action;
mod bounds;
mod model;
mod properties;
mod state;
mod trace;

pub use action::StoreAction;
pub use bounds::{StoreBounds, StoreSuiteMember};
pub use model::{judge_name, store_timing, StoreModel, StoreSpec};
pub use properties::{
    explain as explain_store, ALWAYS as STORE_ALWAYS, SOMETIMES as STORE_SOMETIMES,
};
pub use state::{Call, ReplyInFlight, StoreHistory, StoreSlot, StoreState};
pub use trace::render as render_store_trace;

use stateright::Path;

use crate::check::Checkable;

impl Checkable for StoreModel {
    type Spec = StoreSpec;

    fn checked_spec(&self) -> &StoreSpec {
        self.spec()
    }

    fn latched(self) -> StoreModel {
        self.latch_sometimes()
    }

    fn render(path: &Path<StoreState, StoreAction>, violated: Option<&str>) -> String {
        trace::render(path, violated)
    }
}
