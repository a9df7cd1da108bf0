//! The model's state: the real core state of every node, the global clock, the network, and
//! the ghost history the properties need.

use std::fmt;

use tenure_core::{
    Envelope, FencingToken, Instant, Leadership, Node, NodeId, PersistentState, RoleKind, Term,
};

use crate::action::DisplayEnvelope;
use crate::clock::local_time;
use crate::network::Network;

/// One state of the cluster.
///
/// Kept compact because the checker visits tens of millions of them: global time in whole
/// units as a `u8`, each node's clock derived from the global time and its rate rather than
/// stored, the network as sorted batches and a sorted multiset, small counters, and ghost
/// history normalised so that two runs that can no longer behave differently end in the same
/// state.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ClusterState {
    /// Global time in units, from 0 to the horizon.
    pub(crate) time: u8,
    /// Faults so far: lost, duplicated and delayed messages, cut links and crashes (bounded by
    /// `Bounds::max_faults`).
    pub(crate) faults: u8,
    /// Crashes so far (bounded by `Bounds::max_crashes`).
    pub(crate) crashes: u8,
    /// Resignations requested so far (bounded by `Bounds::max_resigns`).
    pub(crate) resigns: u8,
    /// The driver's side of a resignation: this leader's child is being stopped, and the
    /// driver will report it stopped (`handle_acting_stopped`) before the unit ends.
    pub(crate) stopping: Option<NodeId>,
    /// The links that are cut (a partition), one bit per pair of nodes: a message over a cut
    /// link is lost.
    pub(crate) cut_links: u64,
    /// Indexed by node id.
    pub(crate) nodes: Vec<NodeSlot>,
    /// Messages in flight.
    pub(crate) network: Network,
    /// What happened before, as far as a property still needs it.
    pub(crate) history: History,
}

/// One node: its clock, its process (if running) and its disk.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NodeSlot {
    /// Local ticks per unit of global time (9, 10 or 11).
    pub(crate) rate: u8,
    /// The running core, or `None` while the node is crashed.
    pub(crate) core: Option<Node>,
    /// What the node's last `Output::Persist` wrote: what a restart reads back.
    pub(crate) persisted: Option<PersistentState>,
    /// Ghost for `term_monotonic`: the highest term this node ever had, across restarts.
    pub(crate) highest_term: Term,
    /// Ghost for `single_vote`: the first vote this node cast in its current term, across
    /// restarts. Forgotten once the node moves to a higher term, where it can no longer vote
    /// in the old one unless its term went back, which `term_monotonic` reports.
    pub(crate) vote: Option<(Term, NodeId)>,
    /// The leadership the node had when it crashed while acting: its child is not the node's
    /// but the deadline guard's, and in the worst case the guard allows it runs on until
    /// `acting_until` on this node's clock, which keeps running (DESIGN: The deadline guard).
    /// Forgotten once that instant has passed.
    pub(crate) orphan: Option<Leadership>,
}

/// Ghost history: facts about the past that the properties need and the nodes do not hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct History {
    /// Every (term, leader) seen, sorted. An entry is forgotten once no node can ever lead
    /// its term again (every node is past it and none is a candidate in it), unless the term
    /// already has two leaders.
    pub(crate) leaders: Vec<(Term, NodeId)>,
    /// The highest fencing token that acted so far, or `None` when every token that could
    /// still act is higher than any that did (then the exact value no longer matters).
    pub(crate) highest_token_acted: Option<FencingToken>,
    /// An acting interval started with a token not above one that acted before.
    pub(crate) fencing_violated: bool,
    /// How many acting intervals started, counted up to 3.
    pub(crate) acting_intervals: u8,
    /// A node crashed while acting.
    pub(crate) crashed_while_acting: bool,
    /// A leader completed a graceful resignation (`handle_acting_stopped`).
    pub(crate) resigned: bool,
}

impl History {
    /// The (term, leader) pairs still remembered.
    pub fn leaders_seen(&self) -> &[(Term, NodeId)] {
        &self.leaders
    }

    /// The highest token that acted, while it still matters.
    pub fn highest_token_acted(&self) -> Option<FencingToken> {
        self.highest_token_acted
    }
}

/// A node's view at the state's instant, for properties and traces.
pub struct NodeView<'a> {
    pub id: NodeId,
    pub now: Instant,
    pub core: &'a Node,
    pub leadership: Option<Leadership>,
}

impl NodeView<'_> {
    /// Whether the node holds a valid lease now.
    pub fn holds_lease(&self) -> bool {
        self.leadership
            .is_some_and(|leadership| leadership.holds_lease(self.now))
    }

    /// Whether the node acts now.
    pub fn is_acting(&self) -> bool {
        self.leadership
            .is_some_and(|leadership| leadership.is_acting(self.now))
    }
}

impl ClusterState {
    /// Global time in units.
    pub fn time(&self) -> u8 {
        self.time
    }

    /// Faults so far.
    pub fn faults(&self) -> u8 {
        self.faults
    }

    /// The persisted state of node `index`.
    pub fn persisted(&self, index: usize) -> Option<PersistentState> {
        self.nodes[index].persisted
    }

    /// The number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Messages in flight.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// The ghost history.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// Whether the link between `first` and `second` is cut.
    pub fn link_is_cut(&self, first: NodeId, second: NodeId) -> bool {
        self.cut_links & link_bit(first, second) != 0
    }

    /// Cuts or heals the link between `first` and `second`.
    pub(crate) fn set_link_cut(&mut self, first: NodeId, second: NodeId, cut: bool) {
        if cut {
            self.cut_links |= link_bit(first, second);
        } else {
            self.cut_links &= !link_bit(first, second);
        }
    }

    /// The local time of node `index` now.
    pub fn local_now(&self, index: usize) -> Instant {
        local_time(self.time, self.nodes[index].rate)
    }

    /// The core of node `index`, unless it is crashed.
    pub fn core(&self, index: usize) -> Option<&Node> {
        self.nodes[index].core.as_ref()
    }

    /// Every running node, as seen at this instant.
    pub fn running(&self) -> impl Iterator<Item = NodeView<'_>> + '_ {
        self.nodes.iter().enumerate().filter_map(|(index, slot)| {
            let core = slot.core.as_ref()?;
            let now = self.local_now(index);
            Some(NodeView {
                id: core.id(),
                now,
                core,
                leadership: core.leadership(now),
            })
        })
    }

    /// The children of crashed nodes that may still run now, with the leadership they run
    /// under (see `NodeSlot::orphan`).
    pub fn orphans(&self) -> impl Iterator<Item = (NodeId, Leadership)> + '_ {
        self.nodes.iter().enumerate().filter_map(|(index, slot)| {
            let orphan = slot.orphan?;
            orphan
                .is_acting(self.local_now(index))
                .then_some((NodeId(index as u32), orphan))
        })
    }

    /// One line describing node `index`: clock, role, term, lease, promise.
    pub fn describe_node(&self, index: usize) -> String {
        let slot = &self.nodes[index];
        let now = self.local_now(index);
        let mut line = format!(
            "node{index} [rate {:>2}, clock {:>3}] ",
            slot.rate,
            now.as_nanos()
        );
        let orphan = slot
            .orphan
            .filter(|orphan| orphan.is_acting(now))
            .map(|orphan| {
                format!(
                    ", its child still runs until {} (token {})",
                    orphan.acting_until.as_nanos(),
                    orphan.fencing_token
                )
            })
            .unwrap_or_default();
        let Some(core) = &slot.core else {
            let persisted = slot.persisted.unwrap_or_default();
            line.push_str(&format!(
                "CRASHED       term {} (persisted), voted {}{orphan}",
                persisted.term,
                describe_vote(persisted.voted_for)
            ));
            return line;
        };
        line.push_str(&format!(
            "{:<13} term {}, voted {}",
            core.role().name(),
            core.term(),
            describe_vote(core.voted_for())
        ));
        if core.role() == RoleKind::Follower {
            if let Some(leader) = core.leader() {
                line.push_str(&format!(", follows {leader}"));
            }
        }
        if let Some(leadership) = core.leadership(now) {
            line.push_str(&format!(
                ", lease until {}{}, acting until {}{}",
                leadership.lease_until.as_nanos(),
                if leadership.holds_lease(now) {
                    " (HOLDS)"
                } else {
                    " (expired)"
                },
                leadership.acting_until.as_nanos(),
                if leadership.is_acting(now) {
                    format!(" (ACTING, token {})", leadership.fencing_token)
                } else {
                    String::new()
                }
            ));
        } else if core.role() == RoleKind::Leader {
            line.push_str(", no lease");
        }
        if let Some(until) = core.promise_until().filter(|until| now < *until) {
            line.push_str(&format!(", promised until {}", until.as_nanos()));
        }
        if let Some(until) = core.quarantine_until().filter(|until| now < *until) {
            line.push_str(&format!(", quarantined until {}", until.as_nanos()));
        }
        if let Some(at) = core.poll_timeout() {
            line.push_str(&format!(", timer at {}", at.as_nanos()));
        }
        line.push_str(&orphan);
        line
    }

    /// The messages in flight in one line.
    pub fn describe_network(&self) -> String {
        let list = |envelopes: &[Envelope]| -> String {
            if envelopes.is_empty() {
                return "none".to_owned();
            }
            let messages: Vec<String> = envelopes
                .iter()
                .map(|envelope| DisplayEnvelope(envelope).to_string())
                .collect();
            messages.join("; ")
        };
        let mut cut = Vec::new();
        for first in 0..self.nodes.len() {
            for second in first + 1..self.nodes.len() {
                let (a, b) = (NodeId(first as u32), NodeId(second as u32));
                if self.link_is_cut(a, b) {
                    cut.push(format!("{a}–{b}"));
                }
            }
        }
        format!(
            "queued: {}; delayed: {}{}",
            list(self.network.queued()),
            list(self.network.delayed()),
            if cut.is_empty() {
                String::new()
            } else {
                format!("; CUT: {}", cut.join(", "))
            }
        )
    }
}

/// One bit per unordered pair of node ids (at most 9 nodes: 36 pairs).
fn link_bit(first: NodeId, second: NodeId) -> u64 {
    let (low, high) = if first.0 < second.0 {
        (first.0, second.0)
    } else {
        (second.0, first.0)
    };
    1 << (low * 9 + high)
}

fn describe_vote(vote: Option<NodeId>) -> String {
    vote.map_or_else(|| "nobody".to_owned(), |id| id.to_string())
}

/// The readable form the Explorer and the traces show.
impl fmt::Debug for ClusterState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "global time {} (faults {}, crashes {}, resigns {})",
            self.time, self.faults, self.crashes, self.resigns
        )?;
        for index in 0..self.nodes.len() {
            writeln!(f, "  {}", self.describe_node(index))?;
        }
        writeln!(f, "  {}", self.describe_network())?;
        write!(f, "  history: {:?}", self.history)
    }
}
