//! `GET /metrics`: the node's counters and gauges in the Prometheus text format (0.0.4).
//!
//! Names follow the rest of tenure (`term`, `lease`, `acting`, `fencing_token`), counters end in
//! `_total`, durations are in seconds. Label values are fixed lists (roles, message kinds, drop
//! reasons) or member names, so the series count is bounded.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use tenure_core::{
    DropReason as CoreDropReason, Instant, MessageKind, RoleKind, StoreOp, StoreOutcome,
};
use tenure_driver::HealthState;

use crate::observer::{NodeInfo, Shared, Snapshot};
use crate::wire::DatagramDropReason as WireDropReason;

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const ROLES: [RoleKind; 4] = [
    RoleKind::Follower,
    RoleKind::PreCandidate,
    RoleKind::Candidate,
    RoleKind::Leader,
];

/// Renders every metric at local time `now`.
pub fn render(shared: &Shared, snapshot: &Snapshot, now: Instant) -> String {
    let mut out = Metrics::default();
    render_cluster(&mut out, shared, snapshot, now);
    render_election(&mut out, shared, snapshot, now);
    render_messages(&mut out, shared, snapshot, now);
    render_store(&mut out, shared, snapshot, now);
    render_transport(&mut out, shared, snapshot, now);
    render_child(&mut out, shared, snapshot, now);
    render_reachability(&mut out, shared, snapshot, now);
    out.text
}

/// The cluster metrics.
fn render_cluster(out: &mut Metrics, shared: &Shared, _snapshot: &Snapshot, _now: Instant) {
    let info = &shared.info;
    let id = shared.info.members.own_name();
    out.header(
        "tenure_info",
        "gauge",
        "Always 1; labels identify this node.",
    );
    out.sample(
        "tenure_info",
        &[("id", id), ("version", env!("CARGO_PKG_VERSION"))],
        1,
    );

    out.header(
        "tenure_lease_seconds",
        "gauge",
        "The configured lease (--lease): crash failover takes about one.",
    );
    out.float_sample(
        "tenure_lease_seconds",
        &[],
        info.lease_duration.as_nanos() as f64 / 1e9,
    );
    out.header(
        "tenure_members",
        "gauge",
        "Members of the cluster, this node included.",
    );
    out.sample("tenure_members", &[], count(info.members.len()));
    out.header(
        "tenure_quorum_size",
        "gauge",
        "Members it takes to elect a leader or renew a lease: a majority.",
    );
    out.sample("tenure_quorum_size", &[], count(info.members.majority()));
}

/// The election metrics.
fn render_election(out: &mut Metrics, shared: &Shared, snapshot: &Snapshot, now: Instant) {
    let info = &shared.info;
    out.header(
        "tenure_role",
        "gauge",
        "1 for the role this node is in, 0 for the others.",
    );
    for role in ROLES {
        out.sample(
            "tenure_role",
            &[("role", role.name())],
            u64::from(snapshot.role == role),
        );
    }
    out.header(
        "tenure_leader_known",
        "gauge",
        "1 while this node knows the leader of its term (itself when leading), else 0.",
    );
    out.sample(
        "tenure_leader_known",
        &[],
        u64::from(snapshot.leader.is_some()),
    );
    out.header(
        "tenure_quarantined",
        "gauge",
        "1 while this node sits out its boot quarantine (it votes for no one), else 0.",
    );
    out.sample(
        "tenure_quarantined",
        &[],
        u64::from(info.is_quarantined(now)),
    );
    out.header("tenure_term", "gauge", "The current term.");
    out.sample("tenure_term", &[], snapshot.term.0);
    out.header(
        "tenure_acting",
        "gauge",
        "1 while this node acts: it leads, holds the lease and runs the child.",
    );
    let acting = snapshot.is_acting(now);
    out.sample("tenure_acting", &[], u64::from(acting));
    out.header(
        "tenure_fencing_token",
        "gauge",
        "The fencing token handed to the child while acting, else 0.",
    );
    let token = match snapshot.leadership {
        Some(leadership) if acting => leadership.fencing_token.0,
        _ => 0,
    };
    out.sample("tenure_fencing_token", &[], token);
    out.header(
        "tenure_lease_remaining_seconds",
        "gauge",
        "How long this node's lease still holds; 0 when it holds none.",
    );
    let remaining = snapshot
        .lease_remaining(now)
        .map_or(0.0, |remaining| remaining.as_nanos() as f64 / 1e9);
    out.float_sample("tenure_lease_remaining_seconds", &[], remaining);
}

/// The messages metrics.
fn render_messages(out: &mut Metrics, _shared: &Shared, snapshot: &Snapshot, _now: Instant) {
    out.header(
        "tenure_elections_total",
        "counter",
        "Elections this node started (it became a candidate).",
    );
    out.sample("tenure_elections_total", &[], snapshot.elections);
    out.header(
        "tenure_elections_won_total",
        "counter",
        "Elections this node won.",
    );
    out.sample("tenure_elections_won_total", &[], snapshot.elections_won);

    out.header(
        "tenure_messages_sent_total",
        "counter",
        "Election messages sent, by kind.",
    );
    for kind in MessageKind::ALL {
        out.sample(
            "tenure_messages_sent_total",
            &[("kind", kind.name())],
            snapshot.counters.sent(kind),
        );
    }
    out.header(
        "tenure_messages_received_total",
        "counter",
        "Authentic election messages received, by kind.",
    );
    for kind in MessageKind::ALL {
        out.sample(
            "tenure_messages_received_total",
            &[("kind", kind.name())],
            snapshot.counters.received(kind),
        );
    }
    out.header(
        "tenure_messages_dropped_total",
        "counter",
        "Authentic messages the election core dropped, by reason (stale terms, promises, ...).",
    );
    for reason in CoreDropReason::ALL {
        out.sample(
            "tenure_messages_dropped_total",
            &[("reason", reason.name())],
            snapshot.counters.dropped(reason),
        );
    }
    out.header(
        "tenure_last_refused_term",
        "gauge",
        "The term of the last message refused for a term jump beyond 2^32 (term_too_far), \
         else 0.",
    );
    out.sample(
        "tenure_last_refused_term",
        &[],
        snapshot.term_jumps.last.map_or(0, |(_, term)| term.0),
    );
}

/// The store backend's metrics (protocol: Store leases), only with `--backend`: requests by
/// kind, so that the store's load per node can be read off, and replies by outcome.
fn render_store(out: &mut Metrics, shared: &Shared, snapshot: &Snapshot, _now: Instant) {
    let Some(store) = &shared.info.store else {
        return;
    };
    out.header(
        "tenure_store_info",
        "gauge",
        "The store backend: its election and who judges expiry (1).",
    );
    out.sample(
        "tenure_store_info",
        &[("election", &store.election), ("judge", store.judge)],
        1,
    );
    out.header(
        "tenure_store_requests_total",
        "counter",
        "Requests sent to the store, by kind (read, acquire, renew, release).",
    );
    for (index, op) in StoreOp::KINDS.iter().enumerate() {
        out.sample(
            "tenure_store_requests_total",
            &[("op", op)],
            snapshot.counters.store_requests[index],
        );
    }
    out.header(
        "tenure_store_replies_total",
        "counter",
        "Replies from the store, by outcome: applied, conflict, or failed (outcome unknown; \
         such a reply extends nothing).",
    );
    for (index, outcome) in StoreOutcome::KINDS.iter().enumerate() {
        out.sample(
            "tenure_store_replies_total",
            &[("outcome", outcome)],
            snapshot.counters.store_replies[index],
        );
    }
}

/// The transport metrics.
fn render_transport(out: &mut Metrics, shared: &Shared, snapshot: &Snapshot, now: Instant) {
    let info = &shared.info;
    out.header(
        "tenure_datagrams_dropped_total",
        "counter",
        "Datagrams dropped before the election core: malformed, oversized, unauthenticated, \
         replayed, from unknown peers.",
    );
    for reason in WireDropReason::ALL {
        out.sample(
            "tenure_datagrams_dropped_total",
            &[("reason", reason.name())],
            info.transport.dropped(reason),
        );
    }
    out.header(
        "tenure_datagrams_sent_total",
        "counter",
        "Datagrams handed to the socket.",
    );
    out.sample(
        "tenure_datagrams_sent_total",
        &[],
        info.transport.datagrams_sent.load(Ordering::Relaxed),
    );
    out.header(
        "tenure_send_failures_total",
        "counter",
        "Datagrams not sent: the socket refused, or the peer's host name is not resolved.",
    );
    out.sample(
        "tenure_send_failures_total",
        &[],
        info.transport.send_failures.load(Ordering::Relaxed),
    );
    render_incarnations(out, shared, snapshot, now);
}

/// More of the transport metrics.
fn render_incarnations(out: &mut Metrics, shared: &Shared, _snapshot: &Snapshot, _now: Instant) {
    let info = &shared.info;
    out.header(
        "tenure_incarnation",
        "gauge",
        "The incarnation this node seals its datagrams in.",
    );
    out.sample(
        "tenure_incarnation",
        &[],
        info.transport.incarnation.load(Ordering::Relaxed),
    );
    out.header(
        "tenure_incarnation_moves_total",
        "counter",
        "Times a peer refused this node's incarnation (another process with its id, or a \
         forgery) and the node moved above it.",
    );
    out.sample(
        "tenure_incarnation_moves_total",
        &[],
        info.transport.incarnation_moves.load(Ordering::Relaxed),
    );
    out.header(
        "tenure_incarnation_notices_sent_total",
        "counter",
        "Notices sent to peers whose datagrams this node refused as stale_incarnation.",
    );
    out.sample(
        "tenure_incarnation_notices_sent_total",
        &[],
        info.transport.notices_sent.load(Ordering::Relaxed),
    );
    out.header(
        "tenure_duplicate_ids_total",
        "counter",
        "Times this node saw two processes claim one member id (two incarnations at once).",
    );
    out.sample(
        "tenure_duplicate_ids_total",
        &[],
        info.transport.duplicate_ids.load(Ordering::Relaxed),
    );
}

/// The child metrics.
fn render_child(out: &mut Metrics, shared: &Shared, snapshot: &Snapshot, now: Instant) {
    let info = &shared.info;
    out.header(
        "tenure_state_writes_total",
        "counter",
        "Term and vote changes made durable in the state file.",
    );
    out.sample(
        "tenure_state_writes_total",
        &[],
        snapshot.counters.persisted,
    );

    out.header(
        "tenure_child_starts_total",
        "counter",
        "Times the child was started (first starts and restarts).",
    );
    out.sample(
        "tenure_child_starts_total",
        &[],
        info.child.starts.load(Ordering::Relaxed),
    );
    out.header(
        "tenure_child_restarts_total",
        "counter",
        "Restarts after the child exited on its own while this node acted.",
    );
    out.sample(
        "tenure_child_restarts_total",
        &[],
        info.child.restarts.load(Ordering::Relaxed),
    );
    out.header(
        "tenure_child_running",
        "gauge",
        "1 while a child runs under this node's deadline guard.",
    );
    out.sample(
        "tenure_child_running",
        &[],
        info.child.running.load(Ordering::Relaxed),
    );
    render_health(out, shared, snapshot, now);
}

/// More of the child metrics.
fn render_health(out: &mut Metrics, _shared: &Shared, snapshot: &Snapshot, _now: Instant) {
    out.header(
        "tenure_health_failures_total",
        "counter",
        "Failed health checks of the child (--health-cmd, --health-http).",
    );
    out.sample(
        "tenure_health_failures_total",
        &[],
        snapshot.health.failures_total,
    );
    out.header(
        "tenure_health_consecutive_failures",
        "gauge",
        "Failed health checks of the child in a row; at --health-failures the node gives \
         leadership up.",
    );
    out.sample(
        "tenure_health_consecutive_failures",
        &[],
        u64::from(snapshot.health.consecutive_failures),
    );
    out.header(
        "tenure_healthy",
        "gauge",
        "0 while the child's last health check failed, or after this node gave leadership up \
         for failed checks (until it acts again); else 1.",
    );
    out.sample(
        "tenure_healthy",
        &[],
        u64::from(matches!(
            snapshot.health.state,
            HealthState::Unknown | HealthState::Healthy
        )),
    );
}

/// The reachability metrics.
fn render_reachability(out: &mut Metrics, shared: &Shared, snapshot: &Snapshot, now: Instant) {
    let info = &shared.info;
    out.header(
        "tenure_paused",
        "gauge",
        "1 while this node is paused (`tenure pause`): it votes but never campaigns.",
    );
    out.sample("tenure_paused", &[], u64::from(snapshot.paused));

    out.header(
        "tenure_members_reachable",
        "gauge",
        "Members heard from within one lease, this node included. Followers hear only the \
         leader, so only the leader's count covers every member.",
    );
    out.sample(
        "tenure_members_reachable",
        &[],
        count(members_reachable(info, now)),
    );
    out.header(
        "tenure_peer_last_heard_seconds",
        "gauge",
        "Seconds since the last authentic datagram from each peer (absent: never heard).",
    );
    for peer in info.members.peer_ids() {
        if let Some(heard) = info.peers.last_heard(peer) {
            let ago = now.as_nanos().saturating_sub(heard) as f64 / 1e9;
            let name = info.members.display(peer);
            out.float_sample("tenure_peer_last_heard_seconds", &[("peer", &name)], ago);
        }
    }
}

/// The members heard from within one lease of `now`, this node included. A leader hears every
/// follower's acknowledgement each heartbeat; a follower hears only its leader (followers send
/// nothing to each other).
fn members_reachable(info: &NodeInfo, now: Instant) -> usize {
    let lease = info.lease_duration.as_nanos();
    let peers_heard = info
        .members
        .peer_ids()
        .into_iter()
        .filter(|peer| {
            info.peers
                .last_heard(*peer)
                .is_some_and(|heard| now.as_nanos().saturating_sub(heard) <= lease)
        })
        .count();
    1 + peers_heard
}

/// A member count as a sample. Counts are at most `MAX_CLUSTER_SIZE`, so they fit.
fn count(members: usize) -> u64 {
    u64::try_from(members).unwrap_or(u64::MAX)
}

#[derive(Default)]
struct Metrics {
    text: String,
}

impl Metrics {
    fn header(&mut self, name: &str, kind: &str, help: &str) {
        // Writing to a String cannot fail.
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.name_and_labels(name, labels);
        let _ = writeln!(self.text, " {value}");
    }

    fn float_sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.name_and_labels(name, labels);
        let _ = writeln!(self.text, " {value:.3}");
    }

    fn name_and_labels(&mut self, name: &str, labels: &[(&str, &str)]) {
        self.text.push_str(name);
        if labels.is_empty() {
            return;
        }
        self.text.push('{');
        for (index, (label, value)) in labels.iter().enumerate() {
            if index > 0 {
                self.text.push(',');
            }
            let _ = write!(self.text, "{label}=\"{}\"", escape(value));
        }
        self.text.push('}');
    }
}

/// Escapes a label value as the text format requires.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tenure_core::{Duration, NodeId};

    use super::*;
    use crate::members::Members;
    use crate::observer::Shared;
    use crate::supervisor::ChildStats;
    use crate::transport::{PeerTable, TransportStats};

    const LEASE: Duration = Duration::from_secs(2);

    /// Node n2 of n1, n2, n3, booted at `boot` with a 2 s lease and its boot quarantine.
    fn node_n2(boot: Instant) -> Shared {
        let members = Members::new("n2", ["n1", "n3"]).unwrap();
        let peers = Arc::new(PeerTable::new(&members, &[]));
        let info = NodeInfo {
            members,
            peers,
            transport: Arc::new(TransportStats::default()),
            child: Arc::new(ChildStats::default()),
            lease_duration: LEASE,
            supervises_child: true,
            health_checked: false,
            quarantine_until: Some(boot + LEASE),
            store: None,
        };
        Shared::new(info, boot)
    }

    /// The value of the sample `name` (without labels), as printed.
    fn value<'a>(text: &'a str, name: &str) -> Option<&'a str> {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
    }

    #[test]
    fn reports_what_alerts_need_about_lease_leader_quarantine_and_quorum() {
        let boot = Instant::from_nanos(1_000_000_000_000);
        let shared = node_n2(boot);

        // Just booted: quarantined, no leader known, nobody heard but itself.
        let text = render(&shared, &shared.snapshot(), boot);
        for name in [
            "tenure_lease_seconds",
            "tenure_members",
            "tenure_quorum_size",
            "tenure_leader_known",
            "tenure_quarantined",
            "tenure_members_reachable",
        ] {
            assert!(
                text.contains(&format!("# TYPE {name} gauge\n")),
                "{name}\n{text}"
            );
        }
        assert_eq!(value(&text, "tenure_lease_seconds"), Some("2.000"));
        assert_eq!(value(&text, "tenure_members"), Some("3"));
        assert_eq!(value(&text, "tenure_quorum_size"), Some("2"));
        assert_eq!(value(&text, "tenure_leader_known"), Some("0"));
        assert_eq!(value(&text, "tenure_quarantined"), Some("1"));
        assert_eq!(value(&text, "tenure_members_reachable"), Some("1"));

        // One lease later: out of quarantine, following n1, which was heard exactly one lease
        // ago (still counted); n3 was heard just over a lease ago (no longer counted).
        let now = boot + LEASE;
        shared.info.peers.heard(NodeId(0), (now - LEASE).as_nanos());
        shared
            .info
            .peers
            .heard(NodeId(2), (now - LEASE).as_nanos() - 1);
        let mut snapshot = shared.snapshot();
        snapshot.leader = Some(NodeId(0));
        let text = render(&shared, &snapshot, now);
        assert_eq!(value(&text, "tenure_leader_known"), Some("1"));
        assert_eq!(value(&text, "tenure_quarantined"), Some("0"));
        assert_eq!(value(&text, "tenure_members_reachable"), Some("2"));

        // n3 speaks again (a candidate asks for votes): every member is reachable.
        shared.info.peers.heard(NodeId(2), now.as_nanos());
        let text = render(&shared, &snapshot, now);
        assert_eq!(value(&text, "tenure_members_reachable"), Some("3"));
    }

    #[test]
    fn escapes_label_values() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        let mut metrics = Metrics::default();
        metrics.sample("x_total", &[("a", "1"), ("b", "two")], 3);
        metrics.float_sample("y", &[], 0.25);
        assert_eq!(metrics.text, "x_total{a=\"1\",b=\"two\"} 3\ny 0.250\n");
    }
}
