//! The properties, with the names of DESIGN.md (Invariants every checker uses).
//!
//! Every `Always` is evaluated in every reachable state: after every event and after every
//! advance of global time, so a lease that ends by time alone is seen ending. Leases and acting
//! windows only begin at events, and events happen only at whole instants of global time, so
//! two intervals that overlap at any real instant also overlap at the state right after the
//! later one began: sampling at states misses no overlap.

use crate::model::TenureModel;
use crate::state::ClusterState;
use stateright::Property;

/// The names of the `Always` properties, in the order they are checked.
pub const ALWAYS: [&str; 6] = [
    "election_safety",
    "lease_safety",
    "acting_safety",
    "fencing_monotonic",
    "term_monotonic",
    "single_vote",
];

/// The names of the `Sometimes` properties: they show that the bounds reach the interesting
/// states.
pub const SOMETIMES: [&str; 4] = [
    "a_leader_acts",
    "failover_after_crash",
    "handover_after_resign",
    "two_failovers",
];

/// Every property of the model.
pub fn all() -> Vec<Property<TenureModel>> {
    vec![
        Property::always("election_safety", election_safety),
        Property::always("lease_safety", lease_safety),
        Property::always("acting_safety", acting_safety),
        Property::always("fencing_monotonic", fencing_monotonic),
        Property::always("term_monotonic", term_monotonic),
        Property::always("single_vote", single_vote),
        Property::sometimes("a_leader_acts", a_leader_acts),
        Property::sometimes("failover_after_crash", failover_after_crash),
        Property::sometimes("handover_after_resign", handover_after_resign),
        Property::sometimes("two_failovers", two_failovers),
    ]
}

/// `election_safety`: at most one leader per term, over the whole run. The history records
/// every node seen leading, with its term.
fn election_safety(_: &TenureModel, state: &ClusterState) -> bool {
    state
        .history
        .leaders
        .windows(2)
        .all(|pair| pair[0].0 != pair[1].0)
}

/// `lease_safety`: at this instant of global time at most one node holds a valid lease, each
/// judged on its own clock (`Node::leadership(now).holds_lease(now)`).
fn lease_safety(_: &TenureModel, state: &ClusterState) -> bool {
    state.running().filter(|node| node.holds_lease()).count() <= 1
}

/// `acting_safety`: at most one node acts at this instant, and a node that acts holds its
/// lease (acting ⊂ lease). The child of a crashed node counts as acting until its acting
/// deadline, under the lease it had (the deadline guard's worst case).
fn acting_safety(_: &TenureModel, state: &ClusterState) -> bool {
    let mut acting = 0;
    for node in state.running() {
        if node.is_acting() {
            if !node.holds_lease() {
                return false;
            }
            acting += 1;
        }
    }
    for (index, orphan) in state.orphans() {
        if !orphan.holds_lease(state.local_now(index.0 as usize)) {
            return false;
        }
        acting += 1;
    }
    acting <= 1
}

/// `fencing_monotonic`: every acting interval started with a token above every token that
/// acted before it (the check happens when an interval starts; see `History`).
fn fencing_monotonic(_: &TenureModel, state: &ClusterState) -> bool {
    !state.history.fencing_violated
}

/// `term_monotonic`: a running node's term is at least the highest it ever had, also across
/// restarts.
fn term_monotonic(_: &TenureModel, state: &ClusterState) -> bool {
    state.nodes.iter().all(|slot| {
        slot.core
            .as_ref()
            .is_none_or(|core| core.term() >= slot.highest_term)
    })
}

/// `single_vote`: a running node's vote in its term is the first vote it cast in that term,
/// also across restarts.
fn single_vote(_: &TenureModel, state: &ClusterState) -> bool {
    state.nodes.iter().all(|slot| {
        let Some(core) = &slot.core else {
            return true;
        };
        match (core.voted_for(), slot.vote) {
            (Some(voted_for), Some((term, first))) if term == core.term() => voted_for == first,
            _ => true,
        }
    })
}

/// Some node acts.
fn a_leader_acts(model: &TenureModel, state: &ClusterState) -> bool {
    model.sometimes(0, || someone_acts(state))
}

/// A node acts after an acting leader crashed. At the crash the crashed node was the only one
/// acting (or `acting_safety` fails first), so whoever acts now began a new interval.
fn failover_after_crash(model: &TenureModel, state: &ClusterState) -> bool {
    model.sometimes(1, || {
        state.history.crashed_while_acting && someone_acts(state)
    })
}

/// A node acts after a leader resigned gracefully.
fn handover_after_resign(model: &TenureModel, state: &ClusterState) -> bool {
    model.sometimes(2, || state.history.resigned && someone_acts(state))
}

/// A third acting interval: two failovers (or handovers) in a row.
fn two_failovers(model: &TenureModel, state: &ClusterState) -> bool {
    model.sometimes(3, || state.history.acting_intervals >= 3)
}

fn someone_acts(state: &ClusterState) -> bool {
    state.running().any(|node| node.is_acting())
}

/// Why `name` fails in `state`, in one sentence, for the end of a counterexample trace.
pub fn explain(name: &str, state: &ClusterState) -> String {
    let ids = |nodes: Vec<String>| nodes.join(" and ");
    match name {
        "election_safety" => {
            let leaders: Vec<String> = state
                .history
                .leaders
                .iter()
                .map(|(term, node)| format!("{node} led term {term}"))
                .collect();
            format!("two leaders in one term: {}", leaders.join(", "))
        }
        "lease_safety" => format!(
            "{} hold a valid lease at global time {}",
            ids(state
                .running()
                .filter(|node| node.holds_lease())
                .map(|node| node.id.to_string())
                .collect()),
            state.time
        ),
        "acting_safety" => {
            let mut acting: Vec<String> = state
                .running()
                .filter(|node| node.is_acting())
                .map(|node| {
                    if node.holds_lease() {
                        node.id.to_string()
                    } else {
                        format!("{} (without a lease)", node.id)
                    }
                })
                .collect();
            acting.extend(
                state
                    .orphans()
                    .map(|(node, _)| format!("the child of crashed {node}")),
            );
            format!("acting at global time {}: {}", state.time, ids(acting))
        }
        "fencing_monotonic" => "an acting interval started with a token not above one that \
                                already acted"
            .to_owned(),
        "term_monotonic" => {
            let back: Vec<String> = state
                .nodes
                .iter()
                .filter_map(|slot| {
                    let core = slot.core.as_ref()?;
                    (core.term() < slot.highest_term).then(|| {
                        format!(
                            "{} is at term {} after term {}",
                            core.id(),
                            core.term(),
                            slot.highest_term
                        )
                    })
                })
                .collect();
            back.join(", ")
        }
        "single_vote" => {
            let twice: Vec<String> = state
                .nodes
                .iter()
                .filter_map(|slot| {
                    let core = slot.core.as_ref()?;
                    let (term, first) = slot.vote?;
                    let now = core.voted_for()?;
                    (term == core.term() && now != first).then(|| {
                        format!(
                            "{} voted for {first} and then for {now} in term {term}",
                            core.id()
                        )
                    })
                })
                .collect();
            twice.join(", ")
        }
        _ => String::new(),
    }
}
