//! The properties, with the names of [`Invariant`] (protocol: Invariants).
//!
//! Every `Always` is evaluated in every generated state, whatever the bounds: after every
//! event and after every advance of global time. Time stops at every instant at which any
//! deadline of any node passes (see `clock`), and every predicate here has the form
//! `now < deadline`, so it is constant from one such instant to the next: two intervals that
//! overlap at any real instant overlap at the state right after the later one began.

use stateright::Property;
use tenure_core::Invariant;

use crate::children::children_are_safe;
use crate::model::TenureModel;
use crate::state::ClusterState;

/// The `Always` properties, in the order they are checked: every invariant, each named by
/// [`Invariant::name`].
pub const ALWAYS: [Invariant; 7] = Invariant::ALL;

/// The names of the `Sometimes` properties: they show that the bounds reach the interesting
/// states.
pub const SOMETIMES: [&str; 4] = [
    "a_leader_acts",
    "failover_after_crash",
    "handover_after_resign",
    "two_failovers",
];

/// Every property of the model: an `Always` for each invariant, in the order of [`ALWAYS`],
/// then the `Sometimes`.
pub fn all() -> Vec<Property<TenureModel>> {
    let mut properties: Vec<Property<TenureModel>> = ALWAYS
        .into_iter()
        .map(|invariant| Property::always(invariant.name(), holds(invariant)))
        .collect();
    properties.extend([
        Property::sometimes("a_leader_acts", a_leader_acts),
        Property::sometimes("failover_after_crash", failover_after_crash),
        Property::sometimes("handover_after_resign", handover_after_resign),
        Property::sometimes("two_failovers", two_failovers),
    ]);
    properties
}

/// The predicate that checks `invariant` in a state.
fn holds(invariant: Invariant) -> fn(&TenureModel, &ClusterState) -> bool {
    match invariant {
        Invariant::ElectionSafety => election_safety,
        Invariant::LeaseSafety => lease_safety,
        Invariant::LeaseBacked => lease_backed,
        Invariant::ActingSafety => acting_safety,
        Invariant::FencingMonotonic => fencing_monotonic,
        Invariant::TermMonotonic => term_monotonic,
        Invariant::SingleVote => single_vote,
    }
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

/// `lease_backed`: every valid lease rests on promises (protocol: Promises, leases, acting).
/// While a node holds a lease until global instant E, a majority of the nodes (the leader
/// counted) cannot vote before E: each is promised or quarantined until E or later, or is down
/// (a node that restarts is quarantined for a lease from then on, longer than any promise it
/// made before). This is the quorum argument that makes `lease_safety` hold; it fails the
/// moment a leader counts an acknowledgement that no promise stands behind, before any second
/// leader has to be elected to show it.
fn lease_backed(_: &TenureModel, state: &ClusterState) -> bool {
    unbacked_lease(state).is_none()
}

/// The first node whose lease no majority of promises covers, if any.
pub(crate) fn unbacked_lease(state: &ClusterState) -> Option<tenure_core::NodeId> {
    let nodes = state.node_count();
    let majority = nodes / 2 + 1;
    for leader in state.running() {
        let Some(leadership) = leader.leadership.filter(|_| leader.holds_lease()) else {
            continue;
        };
        // E = lease_until / rate_leader; a node covers it if bound / rate_node ≥ E, compared
        // exactly by cross-multiplication.
        let covering = (0..nodes)
            .filter(|&index| {
                let Some(core) = state.core(index) else {
                    return true;
                };
                let bound = core
                    .promise_until()
                    .max(core.quarantine_until())
                    .map_or(0, |until| until.as_nanos());
                u128::from(bound) * u128::from(leader.rate)
                    >= u128::from(leadership.lease_until.as_nanos()) * u128::from(state.rate(index))
            })
            .count();
        if covering < majority {
            return Some(leader.id);
        }
    }
    None
}

/// `acting_safety`: at most one child runs at any instant, counting children that were told
/// to stop and may linger until the guard's SIGKILL, and those of crashed nodes; the guard's
/// kill deadline of every child lies within the lease it runs under (acting ⊂ lease, with the
/// exit delay); and a node that acts holds its lease.
fn acting_safety(_: &TenureModel, state: &ClusterState) -> bool {
    if state
        .running()
        .any(|node| node.is_acting() && !node.holds_lease())
    {
        return false;
    }
    children_are_safe(state.children().map(|(_, child)| child))
}

/// `fencing_monotonic`: every acting interval started with a token above every token that
/// acted before it (the check happens when an interval starts; see `History`).
fn fencing_monotonic(_: &TenureModel, state: &ClusterState) -> bool {
    !state.history.acting.fencing_violated
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

/// `single_vote`: no node ever casts two different votes in one term, also across restarts: a
/// vote is cast when its granted `VoteReply` (or, for a self-vote, the `RequestVote`) leaves;
/// and a running node's vote in its term is the one it cast.
fn single_vote(_: &TenureModel, state: &ClusterState) -> bool {
    !state.history.double_vote
        && state.nodes.iter().all(|slot| {
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
    model.sometimes(3, || state.history.acting.acting_intervals >= 3)
}

fn someone_acts(state: &ClusterState) -> bool {
    state.running().any(|node| node.is_acting())
}

/// Why `invariant` fails in `state`, in one sentence, for the end of a counterexample trace.
pub fn explain(invariant: Invariant, state: &ClusterState) -> String {
    let ids = |nodes: Vec<String>| nodes.join(" and ");
    match invariant {
        Invariant::ElectionSafety => {
            let leaders: Vec<String> = state
                .history
                .leaders
                .iter()
                .map(|(term, node)| format!("{node} led term {term}"))
                .collect();
            format!("two leaders in one term: {}", leaders.join(", "))
        }
        Invariant::LeaseSafety => format!(
            "{} hold a valid lease at global time {}",
            ids(state
                .running()
                .filter(|node| node.holds_lease())
                .map(|node| node.id.to_string())
                .collect()),
            state.time()
        ),
        Invariant::LeaseBacked => format!(
            "{} holds a lease that no majority of promises covers at global time {}",
            unbacked_lease(state).map_or_else(String::new, |node| node.to_string()),
            state.time()
        ),
        Invariant::ActingSafety => {
            let mut acting: Vec<String> = state
                .running()
                .filter(|node| node.is_acting() && !node.holds_lease())
                .map(|node| format!("{} acts without a lease", node.id))
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
            format!("at global time {}: {}", state.time(), ids(acting))
        }
        Invariant::FencingMonotonic => {
            "an acting interval started with a token not above one that \
                                already acted"
                .to_owned()
        }
        Invariant::TermMonotonic => {
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
        Invariant::SingleVote if state.history.double_vote => {
            "a node cast a second, different vote in a term it had voted in".to_owned()
        }
        Invariant::SingleVote => {
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
    }
}
