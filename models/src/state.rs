//! The model's state: the real core state of every node, the global clock, the network, and
//! the ghost history the properties need.

use std::fmt;

use tenure_core::{
    Envelope, FencingToken, Instant, Leadership, Node, NodeId, PersistentState, RoleKind, Term,
};

use crate::action::DisplayEnvelope;
use crate::children::ActingLedger;
use crate::clock::local_time;
use crate::network::Network;

/// One state of the cluster.
///
/// Kept compact because the checker visits millions of them: global time in ticks, each
/// node's clock derived from the global time and its rate rather than stored, the network as
/// sorted multisets, small counters, and ghost history normalised so that two runs that can no
/// longer behave differently end in the same state.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ClusterState {
    /// Global time in ticks, from 0 to the horizon.
    pub(crate) time: u32,
    /// Faults so far: lost messages, cut links and crashes (bounded by `SearchBounds::max_faults`).
    pub(crate) faults: u8,
    /// Crashes so far (bounded by `SearchBounds::max_crashes`).
    pub(crate) crashes: u8,
    /// Resignations requested so far (bounded by `SearchBounds::max_resigns`).
    pub(crate) resigns: u8,
    /// Messages held back or duplicated so far (bounded by `SearchBounds::max_holds`).
    pub(crate) holds: u8,
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

/// One node: its clock, its process (if running), its driver's unapplied outputs, its disk and
/// its children.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NodeSlot {
    /// Local nanoseconds per global tick (9, 10 or 11).
    pub(crate) rate: u8,
    /// The running core, or `None` while the node is crashed.
    pub(crate) core: Option<Node>,
    /// Outputs the core emitted that have not taken effect yet, in order: the driver applies
    /// them one at a time, and a crash loses the rest.
    pub(crate) pending: Vec<Pending>,
    /// What the node's last applied `Output::Persist` wrote: what a restart reads back.
    pub(crate) persisted: Option<PersistentState>,
    /// The driver asked the core to resign and has not yet reported the child gone.
    pub(crate) resigning: bool,
    /// Ghost for `term_monotonic`: the highest term this node ever wrote to disk or showed
    /// the world (its term when an output of it took effect), across restarts. A term the
    /// core adopted in memory and lost in a crash before any output took effect was never
    /// seen by anyone, and may be forgotten.
    pub(crate) highest_term: Term,
    /// Ghost for `single_vote`: the vote this node cast in its newest term, as the world saw
    /// it: a granted `VoteReply` that left, or its own `RequestVote` (a self-vote), across
    /// restarts.
    pub(crate) vote: Option<(Term, NodeId)>,
    /// The node's children that may still run: the one of its current acting interval, and
    /// any that were told to stop and may linger until their kill deadline. They are the
    /// guard's, not the node's: a crash leaves them running.
    pub(crate) children: Vec<Child>,
}

/// An output of a core that the driver has not applied yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pending {
    /// Write this state to disk (durable once applied).
    Persist(PersistentState),
    /// Hand this message to the network.
    Send(Envelope),
}

/// A supervised child process (protocol: Acting; the deadline guard).
///
/// It starts when its node starts acting, with the term as its fencing token. While the node
/// acts, its guard's deadline is the acting deadline. Once the node stops acting (its window
/// closes, it resigns, it is deposed), the child gets SIGTERM and may run on for up to
/// `timing::CHILD_EXIT_MAX`; the guard's SIGKILL ends it for sure by `until`. A crashed node's
/// child runs on under its guard until the same deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Child {
    /// The token it acts with.
    pub token: FencingToken,
    /// The end of the lease it runs under, on its node's clock.
    pub lease_until: Instant,
    /// It runs while its node's clock is before this instant: the acting deadline plus the
    /// longest exit, or the moment it was told to stop plus the longest exit.
    pub until: Instant,
    /// It has been told to stop.
    pub stopping: bool,
}

/// Ghost history: facts about the past that the properties need and the nodes do not hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct History {
    /// Every (term, leader) seen, sorted. An entry is forgotten once no node can ever lead
    /// its term again (every node is past it and none is a candidate in it), unless the term
    /// already has two leaders.
    pub(crate) leaders: Vec<(Term, NodeId)>,
    /// The acting intervals that began: the highest token that acted, whether a token failed
    /// to rise, how many began.
    pub(crate) acting: ActingLedger,
    /// A node crashed while acting.
    pub(crate) crashed_while_acting: bool,
    /// A leader completed a graceful resignation (`handle_acting_stopped`).
    pub(crate) resigned: bool,
    /// A node granted a vote (or asked for votes) in a term in which it had already voted for
    /// another node.
    pub(crate) double_vote: bool,
}

impl History {
    /// The (term, leader) pairs still remembered.
    pub fn leaders_seen(&self) -> &[(Term, NodeId)] {
        &self.leaders
    }

    /// The highest token that acted, while it still matters.
    pub fn highest_token_acted(&self) -> Option<FencingToken> {
        self.acting.highest_token_acted
    }
}

/// A node's view at the state's instant, for properties and traces.
pub struct NodeView<'a> {
    pub id: NodeId,
    pub rate: u8,
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
    /// Global time in ticks.
    pub fn time(&self) -> u32 {
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

    /// The outputs of node `index` that have not taken effect yet.
    pub fn pending(&self, index: usize) -> &[Pending] {
        &self.nodes[index].pending
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

    /// The clock rate of node `index`.
    pub fn rate(&self, index: usize) -> u8 {
        self.nodes[index].rate
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
                rate: slot.rate,
                now,
                core,
                leadership: core.leadership(now),
            })
        })
    }

    /// Every child that runs at this instant, crashed nodes' included, with its node.
    pub fn children(&self) -> impl Iterator<Item = (NodeId, Child)> + '_ {
        self.nodes
            .iter()
            .enumerate()
            .flat_map(move |(index, slot)| {
                let now = self.local_now(index);
                slot.children
                    .iter()
                    .filter(move |child| now < child.until)
                    .map(move |child| (NodeId(index as u32), *child))
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
        let orphan: String = slot
            .children
            .iter()
            .filter(|child| now < child.until)
            .map(|child| {
                format!(
                    ", child (token {}) {} until {}",
                    child.token,
                    if child.stopping { "stopping" } else { "runs" },
                    child.until.as_nanos()
                )
            })
            .collect();
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
        if !slot.pending.is_empty() {
            line.push_str(&format!(", {} output(s) pending", slot.pending.len()));
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
        let in_flight = if self.network.in_flight().is_empty() {
            "none".to_owned()
        } else {
            let messages: Vec<String> = self
                .network
                .in_flight()
                .iter()
                .map(|message| {
                    format!(
                        "{} (by {})",
                        DisplayEnvelope(&message.envelope),
                        message.deadline
                    )
                })
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
            "in flight: {}; held: {}{}",
            in_flight,
            list(self.network.held()),
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
            "global time {} (faults {}, crashes {}, resigns {}, holds {})",
            self.time, self.faults, self.crashes, self.resigns, self.holds
        )?;
        for index in 0..self.nodes.len() {
            writeln!(f, "  {}", self.describe_node(index))?;
        }
        writeln!(f, "  {}", self.describe_network())?;
        write!(f, "  history: {:?}", self.history)
    }
}
