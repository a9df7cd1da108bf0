//! The store model's properties, with the names and definitions of the quorum model's
//! (protocol: Invariants): the two invariants a store lease can break, and `Sometimes`
//! properties that show the bounds reach acting, takeover and handover.

use stateright::Property;
use tenure_core::Invariant;

use crate::children::children_are_safe;
use crate::store::model::StoreModel;
use crate::store::state::StoreState;

/// The `Always` properties: the invariants that concern acting. The others concern a quorum's
/// terms, votes and promises, which a store lease does not have.
pub const ALWAYS: [Invariant; 2] = [Invariant::ActingSafety, Invariant::FencingMonotonic];

/// The names of the `Sometimes` properties.
pub const SOMETIMES: [&str; 3] = [
    "a_holder_acts",
    "takeover_after_crash",
    "handover_after_release",
];

/// Every property of the store model: the `Always` of [`ALWAYS`], then the `Sometimes`.
pub fn all() -> Vec<Property<StoreModel>> {
    vec![
        Property::always(Invariant::ActingSafety.name(), acting_safety),
        Property::always(Invariant::FencingMonotonic.name(), fencing_monotonic),
        Property::sometimes(SOMETIMES[0], a_holder_acts),
        Property::sometimes(SOMETIMES[1], takeover_after_crash),
        Property::sometimes(SOMETIMES[2], handover_after_release),
    ]
}

/// `acting_safety`, as the quorum model checks it: at most one child runs at any instant,
/// counting children told to stop that may linger until the guard's SIGKILL and those of
/// crashed nodes; every child's kill deadline lies within the lease it runs under; and a node
/// that acts holds its lease (protocol: The store-lease acting rule).
fn acting_safety(_: &StoreModel, state: &StoreState) -> bool {
    let acts_without_lease =
        (0..state.node_count()).any(|index| state.is_acting(index) && !state.holds_lease(index));
    !acts_without_lease && children_are_safe(state.children().map(|(_, child)| child))
}

/// `fencing_monotonic`: every acting interval started with a token above every token that
/// acted before it.
fn fencing_monotonic(_: &StoreModel, state: &StoreState) -> bool {
    !state.history.acting.fencing_violated
}

/// Some holder acts.
fn a_holder_acts(model: &StoreModel, state: &StoreState) -> bool {
    model.sometimes(0, || someone_acts(state))
}

/// A node acts after an acting holder crashed: a takeover (protocol: Who judges expiry), or the
/// restarted node taking the record again as anyone's.
fn takeover_after_crash(model: &StoreModel, state: &StoreState) -> bool {
    model.sometimes(1, || {
        state.history.crashed_while_acting && someone_acts(state)
    })
}

/// A node acts after a holder released the record gracefully.
fn handover_after_release(model: &StoreModel, state: &StoreState) -> bool {
    model.sometimes(2, || state.history.released && someone_acts(state))
}

fn someone_acts(state: &StoreState) -> bool {
    (0..state.node_count()).any(|index| state.is_acting(index))
}

/// Why `invariant` fails in `state`, in one sentence, for the end of a counterexample trace.
pub fn explain(invariant: Invariant, state: &StoreState) -> String {
    match invariant {
        Invariant::ActingSafety => {
            let mut acting: Vec<String> = (0..state.node_count())
                .filter(|&index| state.is_acting(index) && !state.holds_lease(index))
                .map(|index| format!("node{index} acts without a lease"))
                .collect();
            acting.extend(state.children().map(|(node, child)| {
                format!(
                    "the child of {node} (token {}, {} until {}, lease until {})",
                    child.token,
                    if child.stopping { "stopping" } else { "acting" },
                    child.until.as_nanos(),
                    child.lease_until.as_nanos()
                )
            }));
            format!("at global time {}: {}", state.time(), acting.join(" and "))
        }
        Invariant::FencingMonotonic => {
            "an acting interval started with a token not above one that already acted".to_owned()
        }
        other => format!("{other} is not a property of the store model"),
    }
}
