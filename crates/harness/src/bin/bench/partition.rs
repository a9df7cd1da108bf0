//! Failover after a partition of the leader, and cold starts, at one lease.
//!
//! Partitions go through the UDP fault proxy (`tenure_harness::proxy`): it needs neither root
//! nor iproute2, and it cuts only the nodes' datagrams, so the benchmark still reads every
//! node's `/status`. Every datagram between two nodes then passes one more socket and a thread
//! of the benchmark, so this cluster is apart from the one that measures crash failover.

use std::net::SocketAddr;
use std::time::Duration;

use tenure_harness::ledger_tail::LedgerTail;
use tenure_harness::proxy::FaultProxy;
use tenure_harness::stats::millis;
use tenure_harness::{monotonic_nanos, Cluster};

use crate::results::{LeaseResult, Takeover};
use crate::session::Bench;
use crate::tenure::{overlaps, Measured};
use crate::{failed, Failure};

impl Bench<'_> {
    /// The acting node cut off from the others until the next child's start line; then healed,
    /// and the next round starts once the cluster is healthy again.
    pub(crate) fn partition_rounds(
        &mut self,
        result: &mut LeaseResult,
        rounds: u32,
    ) -> Result<(), Failure> {
        let timing = result.timing;
        let lease = humantime::format_duration(timing.lease).to_string();
        self.say(&format!(
            "tenure, lease {lease}: starting 3 nodes behind a UDP fault proxy"
        ));
        let mut cluster = Cluster::prepare(self.child_spec(timing)?);
        let targets: Vec<SocketAddr> = cluster.nodes.iter().map(|node| node.udp).collect();
        let proxy = FaultProxy::start(&targets)
            .map_err(|error| failed(format!("cannot start the fault proxy: {error}")))?;
        for (index, node) in cluster.nodes.iter_mut().enumerate() {
            node.advertised = proxy.address(index);
        }
        for index in 0..cluster.nodes.len() {
            cluster.spawn(index);
        }
        let mut tail = LedgerTail::new(&cluster.ledger);
        let healthy = self.wait_healthy(&cluster, &mut tail)?;
        let mut measured = Measured {
            cluster,
            tail,
            healthy,
            lease: lease.clone(),
            name: "tenure".to_string(),
            backend: None,
        };
        let members = measured.members();
        for round in 1..=rounds {
            let phase = self.rng.duration(timing.heartbeat);
            self.sleep(phase)?;
            let leader = measured.healthy.leader;
            let cut_at = monotonic_nanos();
            proxy.isolate(leader);
            let next = self.wait_start(
                &mut measured.tail,
                measured.healthy.token,
                "the next child after a partition",
            )?;
            let took = Duration::from_nanos(next.at.saturating_sub(cut_at));
            let takeover = measured.takeover(&next, took);
            self.say(&format!(
                "tenure lease {lease}: partition failover {round:>2}/{rounds}: {} ms, {} -> {} \
                 (token +{})",
                millis(took),
                takeover.from.as_deref().unwrap_or("?"),
                takeover.to,
                takeover.token_step
            ));
            self.keep_sample(
                "tenure partition failover",
                &lease,
                round,
                took,
                Some((&takeover, &members)),
            );
            result.partitions.push(takeover);
            proxy.heal(leader);
            measured.healthy = self.wait_healthy(&measured.cluster, &mut measured.tail)?;
        }
        self.sample_load();
        result.overlaps += measured.finish();
        drop(proxy);
        Ok(())
    }

    /// A fresh cluster (no state) whose nodes are started one right after the other, until
    /// the first child's start line; then the cluster is shut down.
    pub(crate) fn cold_starts(
        &mut self,
        result: &mut LeaseResult,
        rounds: u32,
    ) -> Result<(), Failure> {
        let timing = result.timing;
        let lease = humantime::format_duration(timing.lease).to_string();
        for round in 1..=rounds {
            let mut cluster = Cluster::prepare(self.child_spec(timing)?);
            let members: Vec<String> = cluster.nodes.iter().map(|node| node.name.clone()).collect();
            let mut tail = LedgerTail::new(&cluster.ledger);
            let started_at = monotonic_nanos();
            for index in 0..cluster.nodes.len() {
                cluster.spawn(index);
            }
            let first = self.wait_start(&mut tail, 0, "the first child of a cold start")?;
            let took = Duration::from_nanos(first.at.saturating_sub(started_at));
            let takeover = Takeover {
                took,
                from: None,
                to: first.node.clone(),
                token_step: first.token,
            };
            self.say(&format!(
                "tenure lease {lease}: cold start {round:>2}/{rounds}: {} ms, {} first (token {})",
                millis(took),
                takeover.to,
                first.token
            ));
            self.keep_sample(
                "tenure cold start",
                &lease,
                round,
                took,
                Some((&takeover, &members)),
            );
            result.cold_starts.push(takeover);
            cluster.shutdown();
            result.overlaps += overlaps(&cluster);
        }
        self.sample_load();
        Ok(())
    }
}
