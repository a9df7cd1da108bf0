//! The store backends (`--backends postgres,etcd`; protocol: Store leases): for each backend
//! and each cluster size of `--store-nodes`, a cluster of `tenure run --backend` nodes in the
//! PostgreSQL or etcd that `scripts/stores.sh` runs (`tenure_harness::stores`), each node
//! supervising the ledger child, at `--lease` with the store defaults (poll interval L/8, stop
//! grace L/4). On each: crash failover (SIGKILL of the holder's tenure), graceful handover
//! (SIGTERM), then the store's load over a steady window (`store_load`). Beside etcd,
//! `etcdctl lock` on the same etcd with as many contenders, at etcd's TTL for the lease.
//!
//! Every election is fresh (`stores::fresh_election`): the stores keep their records between
//! runs, and other users may share them.

use tenure_harness::ledger_tail::LedgerTail;
use tenure_harness::stats::millis;
use tenure_harness::stores::{self, fresh_election, Stores};
use tenure_harness::{Cluster, Healthy};

use crate::session::Bench;
use crate::store_results::{etcd_ttl, store_timing, BackendKind, LockSeries, StoreSeries};
use crate::tenure::Measured;
use crate::{failed, Failure, STEP_LIMIT};

impl Bench<'_> {
    /// Every backend of `--backends` at every size of `--store-nodes`, then `etcdctl lock`.
    pub(crate) fn store_backends(&mut self) -> Result<(), Failure> {
        let stores = stores::ensure().map_err(|problem| {
            failed(format!(
                "the stores are not running and could not be started: {problem}"
            ))
        })?;
        let rounds = self.args.store_rounds.max(1);
        let mut backends = self.args.backends.clone();
        backends.sort();
        backends.dedup();
        let sizes = self.args.store_nodes.clone();
        for backend in backends {
            for &nodes in &sizes {
                let series = self.store_series(backend, nodes, rounds, stores)?;
                self.stores.series.push(series);
                self.sample_load();
            }
            if backend == BackendKind::Etcd && self.args.etcd {
                for &contenders in &sizes {
                    let series = self.lock_series(contenders, rounds, stores)?;
                    self.stores.locks.push(series);
                    self.sample_load();
                }
            }
        }
        Ok(())
    }

    /// One backend at one cluster size: crash failovers, handovers, then the store's load.
    fn store_series(
        &mut self,
        backend: BackendKind,
        nodes: usize,
        rounds: u32,
        stores: &Stores,
    ) -> Result<StoreSeries, Failure> {
        let timing = store_timing(self.args.lease);
        let election = fresh_election("tenure-bench");
        let mut spec = self.child_spec(timing)?;
        spec.size = nodes;
        spec.backend = Some(match backend {
            BackendKind::Postgres => stores.postgres(&election),
            BackendKind::Etcd => stores.etcd(&election),
        });
        let name = format!("{} {nodes} nodes", backend.name());
        self.say(&format!(
            "{name}: starting, lease {}, poll interval {}, stop grace {}, election {election}",
            humantime::format_duration(timing.lease),
            humantime::format_duration(timing.heartbeat),
            humantime::format_duration(timing.stop_grace)
        ));
        let cluster = Cluster::start(spec);
        let mut tail = LedgerTail::new(&cluster.ledger);
        let healthy = self.wait_for(STEP_LIMIT, "a store-backed cluster at rest", || {
            store_healthy(&cluster, &mut tail)
        })?;
        let mut measured = Measured {
            cluster,
            tail,
            healthy,
            lease: humantime::format_duration(timing.lease).to_string(),
            name,
            backend: Some(backend),
        };
        let crashes = self.crash_rounds(&mut measured, rounds)?;
        let handovers = self.handover_rounds(&mut measured, rounds, 0)?;
        let load = self.store_load(&measured, backend, stores)?;
        Ok(StoreSeries {
            backend,
            nodes,
            timing,
            crashes: crashes.iter().map(|takeover| takeover.took).collect(),
            handovers,
            load: Some(load),
            overlaps: measured.finish(),
        })
    }

    /// Waits until the measured cluster is at rest again: `Cluster::healthy` for the quorum,
    /// `store_healthy` for a store.
    pub(crate) fn wait_settled(&self, measured: &mut Measured) -> Result<Healthy, Failure> {
        match measured.backend {
            None => self.wait_healthy(&measured.cluster, &mut measured.tail),
            Some(_) => self.wait_for(STEP_LIMIT, "a store-backed cluster at rest", || {
                store_healthy(&measured.cluster, &mut measured.tail)
            }),
        }
    }

    /// `etcdctl lock --ttl T` on the stores' etcd with `contenders` contenders, T etcd's TTL
    /// for `--lease`: failover after SIGKILL of the holding etcdctl, and whether its child
    /// still ran when the next one started (`etcd_round`).
    fn lock_series(
        &mut self,
        contenders: usize,
        rounds: u32,
        stores: &Stores,
    ) -> Result<LockSeries, Failure> {
        let ttl = etcd_ttl(self.args.lease);
        let lock = fresh_election("tenure-bench-lock");
        self.say(&format!(
            "etcdctl lock --ttl {} on the stores' etcd ({}), {contenders} contenders, lock {lock}",
            ttl.as_secs(),
            stores.etcd_endpoints
        ));
        let mut etcd =
            crate::etcd::Etcd::external(ttl.as_secs(), &stores.etcd_endpoints, &lock, contenders)?;
        let executable = std::env::current_exe()
            .map_err(|error| failed(format!("cannot find this program: {error}")))?;
        for index in 0..contenders {
            etcd.start_contender(index, &executable)?;
        }
        let mut tail = LedgerTail::new(&etcd.ledger);
        let mut series = LockSeries {
            contenders,
            ttl,
            ..LockSeries::default()
        };
        for round in 1..=rounds {
            let (took, still_running) = self.etcd_round(&mut etcd, &mut tail, &executable)?;
            self.say(&format!(
                "etcdctl lock, {contenders} contenders: failover {round:>2}/{rounds}: {} ms; old \
                 child {}",
                millis(took),
                if still_running {
                    "still running"
                } else {
                    "gone"
                }
            ));
            self.keep_sample(
                &format!("etcdctl lock {contenders} contenders crash failover"),
                &format!("{}s", ttl.as_secs()),
                round,
                took,
                None,
            );
            series.failovers.push(took);
            series.old_child_still_running += u32::from(still_running);
        }
        Ok(series)
    }
}

/// Whether a store-backed cluster is at rest: every node runs and answers `/status`; exactly
/// one acts; every node names it as the holder (so every contender has read the record since
/// it started); and exactly one child runs according to `ledger`: the holder's, with its token.
fn store_healthy(cluster: &Cluster, ledger: &mut LedgerTail) -> Option<Healthy> {
    ledger.poll();
    let mut statuses = Vec::new();
    for index in 0..cluster.nodes.len() {
        if !cluster.is_running(index) {
            return None;
        }
        statuses.push(cluster.status(index)?);
    }
    let acting: Vec<(usize, u64)> = statuses
        .iter()
        .enumerate()
        .filter(|(_, status)| status["acting"] == true)
        .map(|(index, status)| (index, status["fencing_token"].as_u64().unwrap_or(0)))
        .collect();
    let [(leader, token)] = acting[..] else {
        return None;
    };
    let holder = cluster.nodes[leader].name.as_str();
    let agreed = statuses.iter().all(|status| status["leader"] == holder);
    let running = ledger.running();
    let [child] = running[..] else {
        return None;
    };
    (agreed && child.token == token && child.node == holder).then_some(Healthy {
        leader,
        token,
        child_pid: child.pid,
    })
}
