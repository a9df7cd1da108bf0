//! The store model's state: the real store-lease core of every node, the reference store, the
//! requests and replies between them, the children, and the ghost history the properties need.

use std::fmt;

use tenure_core::{
    Instant, Leadership, NodeId, ReferenceStore, StoreLease, StoreOp, StoreOutcome, StoreReply,
    StoreRequest,
};

use crate::children::ActingLedger;
use crate::clock::local_time;
use crate::state::Child;

/// One state of the store model. As in the quorum model, local clocks are derived from the
/// global time and each clock's rate rather than stored, and the requests and replies in
/// flight are sorted multisets.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StoreState {
    /// Global time in ticks, from 0 to the horizon.
    pub(crate) time: u32,
    /// Faults so far: lost requests, lost replies and crashes.
    pub(crate) faults: u8,
    /// Crashes so far.
    pub(crate) crashes: u8,
    /// Resignations requested so far.
    pub(crate) resigns: u8,
    /// Requests held past their window and replies duplicated so far.
    pub(crate) holds: u8,
    /// Requests applied, and replies delivered, later than the instant they were sent.
    pub(crate) delays: u8,
    /// Indexed by node id.
    pub(crate) nodes: Vec<StoreSlot>,
    /// The store: one record, linearizable compare-and-set (`tenure_core::ReferenceStore`).
    pub(crate) store: ReferenceStore,
    /// The store's clock rate (local nanoseconds per global tick), for `ExpiryJudge::Store`.
    pub(crate) store_rate: u8,
    /// Where the store judges expiry: the global tick at which it expires the holder. The model
    /// keeps it beside the store (which does not show it) so that time stops there.
    pub(crate) expires_at: Option<u32>,
    /// Requests sent and not yet applied, sorted (a multiset).
    pub(crate) calls: Vec<Call>,
    /// Replies the store sent and no node has received yet, sorted (a multiset).
    pub(crate) replies: Vec<ReplyInFlight>,
    /// What happened before, as far as a property still needs it.
    pub(crate) history: StoreHistory,
}

/// One node: its clock, its process (if running), and its children.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StoreSlot {
    /// Local nanoseconds per global tick (9, 10 or 11).
    pub(crate) rate: u8,
    /// The running core, or `None` while the node is crashed. Nothing is persisted: the store
    /// holds the election's state.
    pub(crate) core: Option<StoreLease>,
    /// The driver asked the core to resign and has not yet reported the child gone.
    pub(crate) resigning: bool,
    /// The node's children that may still run (they are the guard's: a crash leaves them).
    pub(crate) children: Vec<Child>,
}

/// A request on its way to the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Call {
    /// The request, as the core emitted it.
    pub request: StoreRequest,
    /// Its sender still runs the process that sent it, so a reply has somewhere to go. A crash
    /// closes the connection: the store may still apply the request, but nobody hears back.
    pub answered: bool,
    /// It is slow: the store applies it at any instant until its sender gives it up, not at
    /// once.
    pub slow: bool,
    /// It was held back past its window: the store applies it at any later instant, or never.
    pub held: bool,
}

/// A reply on its way from the store to a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReplyInFlight {
    /// Whose request it answers.
    pub to: NodeId,
    pub reply: StoreReply,
    /// It is slow: it arrives at any instant until its node gives the request up, not at
    /// once.
    pub slow: bool,
    /// A copy the network made: it arrives at any later instant, or never.
    pub duplicate: bool,
}

/// Ghost history of the store model.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct StoreHistory {
    /// The acting intervals that began.
    pub(crate) acting: ActingLedger,
    /// A node crashed while acting.
    pub(crate) crashed_while_acting: bool,
    /// A holder completed a graceful resignation (`handle_acting_stopped`).
    pub(crate) released: bool,
}

impl StoreState {
    /// Global time in ticks.
    pub fn time(&self) -> u32 {
        self.time
    }

    /// The number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The core of node `index`, unless it is crashed.
    pub fn core(&self, index: usize) -> Option<&StoreLease> {
        self.nodes[index].core.as_ref()
    }

    /// The local time of node `index` now.
    pub fn local_now(&self, index: usize) -> Instant {
        local_time(self.time, self.nodes[index].rate)
    }

    /// The store's clock now.
    pub fn store_now(&self) -> Instant {
        local_time(self.time, self.store_rate)
    }

    /// The requests on their way to the store.
    pub fn calls(&self) -> &[Call] {
        &self.calls
    }

    /// The replies on their way to the nodes.
    pub fn replies(&self) -> &[ReplyInFlight] {
        &self.replies
    }

    /// The ghost history.
    pub fn history(&self) -> &StoreHistory {
        &self.history
    }

    /// The leadership of node `index` now, if it runs and holds one.
    pub fn leadership(&self, index: usize) -> Option<Leadership> {
        self.core(index)?.leadership(self.local_now(index))
    }

    /// Whether node `index` acts now.
    pub fn is_acting(&self, index: usize) -> bool {
        let now = self.local_now(index);
        self.leadership(index)
            .is_some_and(|leadership| leadership.is_acting(now))
    }

    /// Whether node `index` holds a valid lease now.
    pub fn holds_lease(&self, index: usize) -> bool {
        let now = self.local_now(index);
        self.leadership(index)
            .is_some_and(|leadership| leadership.holds_lease(now))
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

    /// One line describing node `index`: clock, role, token, lease, outstanding request.
    pub fn describe_node(&self, index: usize) -> String {
        let slot = &self.nodes[index];
        let now = self.local_now(index);
        let mut line = format!(
            "node{index} [rate {:>2}, clock {:>5}] ",
            slot.rate,
            now.as_nanos()
        );
        match &slot.core {
            None => line.push_str("CRASHED"),
            Some(core) => describe_core(&mut line, core, now),
        }
        for child in slot.children.iter().filter(|child| now < child.until) {
            line.push_str(&format!(
                ", child (token {}) {} until {}",
                child.token,
                if child.stopping { "stopping" } else { "runs" },
                child.until.as_nanos()
            ));
        }
        line
    }

    /// The store and the requests and replies in flight, in one line.
    pub fn describe_store(&self) -> String {
        let record = self.store.record(self.store_now());
        let calls: Vec<String> = self
            .calls
            .iter()
            .map(|call| {
                format!(
                    "{}{}{}{}",
                    DisplayRequest(&call.request),
                    if call.slow { " (slow)" } else { "" },
                    if call.held { " (held)" } else { "" },
                    if call.answered { "" } else { " (sender gone)" }
                )
            })
            .collect();
        let replies: Vec<String> = self
            .replies
            .iter()
            .map(|reply| {
                format!(
                    "{}{}{}",
                    DisplayReply(reply),
                    if reply.slow { " (slow)" } else { "" },
                    if reply.duplicate { " (duplicate)" } else { "" }
                )
            })
            .collect();
        format!(
            "store [rate {:>2}, clock {:>5}]: holder {}, version {}, token {}{}; requests: {}; \
             replies: {}",
            self.store_rate,
            self.store_now().as_nanos(),
            record
                .holder
                .map_or_else(|| "none".to_owned(), |holder| holder.to_string()),
            record.version,
            record.token,
            self.expires_at
                .map_or_else(String::new, |at| format!(", expires at tick {at}")),
            list(calls),
            list(replies)
        )
    }
}

fn describe_core(line: &mut String, core: &StoreLease, now: Instant) {
    let summary = core.summary();
    line.push_str(&format!(
        "{:<9} token seen {}",
        summary.role.name(),
        summary.term
    ));
    if let Some(leadership) = core.leadership(now) {
        line.push_str(&format!(
            ", token {}, lease until {}, acting until {}{}",
            leadership.fencing_token,
            leadership.lease_until.as_nanos(),
            leadership.acting_until.as_nanos(),
            if leadership.is_acting(now) {
                " (ACTING)"
            } else {
                ""
            }
        ));
    }
    if let Some(record) = core.observed() {
        line.push_str(&format!(", saw version {}", record.version));
    }
    if let Some(request) = core.outstanding() {
        line.push_str(&format!(", awaits #{} {:?}", request.id, request.op));
    }
    if let Some(at) = core.poll_timeout() {
        line.push_str(&format!(", timer at {}", at.as_nanos()));
    }
}

fn list(items: Vec<String>) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join("; ")
    }
}

/// `nodeN #id Op` in one short line.
pub struct DisplayRequest<'a>(pub &'a StoreRequest);

impl fmt::Display for DisplayRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let StoreRequest { id, from, op } = self.0;
        write!(f, "{from} #{id} ")?;
        match op {
            StoreOp::Read => write!(f, "read"),
            StoreOp::Acquire { version } => write!(f, "acquire(version {version})"),
            StoreOp::Renew { token } => write!(f, "renew(token {token})"),
            StoreOp::Release { token } => write!(f, "release(token {token})"),
        }
    }
}

/// `→nodeN #id outcome` in one short line.
pub struct DisplayReply<'a>(pub &'a ReplyInFlight);

impl fmt::Display for DisplayReply<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ReplyInFlight { to, reply, .. } = self.0;
        write!(f, "→{to} #{} ", reply.id)?;
        let (kind, record) = match reply.outcome {
            StoreOutcome::Applied(record) => ("applied", record),
            StoreOutcome::Conflict(record) => ("conflict", record),
            StoreOutcome::Failed => return write!(f, "failed"),
        };
        write!(
            f,
            "{kind}(holder {}, version {}, token {})",
            record
                .holder
                .map_or_else(|| "none".to_owned(), |holder| holder.to_string()),
            record.version,
            record.token
        )
    }
}

/// The readable form the traces show.
impl fmt::Debug for StoreState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "global time {} (faults {}, crashes {}, resigns {}, holds {}, delays {})",
            self.time, self.faults, self.crashes, self.resigns, self.holds, self.delays
        )?;
        for index in 0..self.nodes.len() {
            writeln!(f, "  {}", self.describe_node(index))?;
        }
        writeln!(f, "  {}", self.describe_store())?;
        write!(f, "  history: {:?}", self.history)
    }
}
