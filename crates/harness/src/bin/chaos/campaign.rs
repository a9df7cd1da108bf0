//! One cluster under faults: start it with its fenced store and partitions, inject one fault
//! per cycle until the budget is spent, and check the ledger, the acknowledgements and the
//! store's log at the end. The faults themselves are in `leader` and `follower`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tenure_harness::analysis::{check_children, check_store, read_acks};
use tenure_harness::ledger_tail::LedgerTail;
use tenure_harness::stats::millis;
use tenure_harness::store::{read_store_log, FencedStore, StoreRecord};
use tenure_harness::{
    intervals, read_ledger, Cluster, ClusterSpec, Healthy, LedgerEntry, Signal, SplitMix64,
};

use crate::bounds::Bounds;
use crate::fault::FaultPlan;
use crate::network::Network;
use crate::report::CampaignReport;
use crate::run::Run;
use crate::{Abort, PartitionMode, CHILD_MODE, CHILD_PERIOD, POLL, RUN_PREFIX};

/// When a campaign stops injecting faults.
pub(crate) struct Budget {
    pub(crate) until: Instant,
    pub(crate) cycles: Option<u32>,
}

/// One cluster under faults. Field order is drop order: the cluster's processes go first,
/// then the store, then the network namespaces they ran in.
pub(crate) struct Campaign<'a> {
    pub(crate) cluster: Cluster,
    pub(crate) store: FencedStore,
    pub(crate) network: Network,
    pub(crate) run: &'a Run<'a>,
    pub(crate) size: usize,
    pub(crate) rng: SplitMix64,
    pub(crate) bounds: Bounds,
    pub(crate) tail: LedgerTail,
    acks: PathBuf,
    store_log: PathBuf,
    /// The children frozen with their whole node, whose overlaps are reported apart.
    pub(crate) frozen: BTreeSet<u32>,
}

impl<'a> Campaign<'a> {
    /// Prepares the cluster of campaign `number`, its fenced store and its partitions, and
    /// starts every node.
    pub(crate) fn start(
        run: &'a Run<'a>,
        number: usize,
        size: usize,
        seed: u64,
        mode: PartitionMode,
    ) -> Result<Campaign<'a>, Abort> {
        let executable = std::env::current_exe()
            .map_err(|error| Abort::Setup(format!("cannot find this program: {error}")))?;
        let spec = ClusterSpec {
            timing: run.timing(),
            child_leading_arguments: vec![CHILD_MODE.to_string()],
            log_level: run.args.node_log_level.clone(),
            directory_prefix: format!("{RUN_PREFIX}{}-", std::process::id()),
            ..ClusterSpec::new(size, &executable.display().to_string())
        };
        let mut cluster = Cluster::prepare(spec);
        let directory = cluster.directory().to_path_buf();
        let store_log = directory.join("store.log");
        let acks = directory.join("acks");
        let store = FencedStore::start(&directory.join("store.sock"), &store_log)
            .map_err(|error| Abort::Setup(format!("cannot start the fenced store: {error}")))?;
        let network = Network::around(&mut cluster, mode, number)?;
        // The child's arguments name files in the cluster's own directory, which exists only
        // once the cluster is prepared.
        cluster.set_child_arguments(&[
            "--alive-ms".to_string(),
            CHILD_PERIOD.as_millis().to_string(),
            "--store".to_string(),
            store.socket().display().to_string(),
            "--write-ms".to_string(),
            CHILD_PERIOD.as_millis().to_string(),
            "--acks".to_string(),
            acks.display().to_string(),
        ]);
        for index in 0..size {
            cluster.spawn(index);
        }
        Ok(Campaign {
            tail: LedgerTail::new(&cluster.ledger),
            cluster,
            store,
            network,
            run,
            size,
            rng: SplitMix64::new(seed),
            bounds: run.bounds(),
            acks,
            store_log,
            frozen: BTreeSet::new(),
        })
    }

    pub(crate) fn say(&self, text: &str) {
        println!("[{}] {} nodes {text}", self.run.clock(), self.size);
    }

    pub(crate) fn name(&self, index: usize) -> String {
        self.cluster.nodes[index].name.clone()
    }

    fn check_interrupt(&self) -> Result<(), Abort> {
        if self.run.interrupted.load(Ordering::SeqCst) {
            Err(Abort::Interrupted)
        } else {
            Ok(())
        }
    }

    /// Sleeps `duration`, waking to notice Ctrl-C.
    pub(crate) fn sleep(&self, duration: Duration) -> Result<(), Abort> {
        let until = Instant::now() + duration;
        loop {
            self.check_interrupt()?;
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            std::thread::sleep((until - now).min(POLL));
        }
    }

    /// Waits for the first healthy cluster, then injects faults until the budget is spent or
    /// the cluster does not recover.
    pub(crate) fn run(
        &mut self,
        budget: &Budget,
        report: &mut CampaignReport,
    ) -> Result<(), Abort> {
        let first = self.bounds.recovery() + self.bounds.timing.lease;
        let Some(mut healthy) = self.wait_healthy(first)? else {
            report.violations.push(format!(
                "recovery: no healthy cluster within {} ms of the start",
                millis(first)
            ));
            return Err(Abort::Stuck);
        };
        self.say(&format!(
            "up: {} acts with token {}",
            self.name(healthy.leader),
            healthy.token
        ));
        let Some(plan) = FaultPlan::new(self.size, &self.run.args.faults) else {
            self.say("none of the --faults applies to this cluster size");
            return Ok(());
        };
        // Bounded by the budget: by time, and by cycles when given.
        loop {
            if Instant::now() >= budget.until
                || budget.cycles.is_some_and(|cycles| report.cycles >= cycles)
            {
                return Ok(());
            }
            self.check_interrupt()?;
            let fault = plan.pick(&mut self.rng);
            report.cycles += 1;
            *report.faults.entry(fault).or_default() += 1;
            let outcome = if fault.hits_a_follower() {
                self.follower_fault(fault, &healthy, report)?
            } else {
                self.leader_fault(fault, &healthy, report)?
            };
            let Some(next) = outcome else {
                report.violations.push(format!(
                    "recovery: the cluster was not healthy within {} ms after {} (cycle {})",
                    millis(self.bounds.recovery()),
                    fault.name(),
                    report.cycles
                ));
                return Err(Abort::Stuck);
            };
            healthy = next;
        }
    }

    /// Polls until the cluster is healthy, for at most `limit`.
    pub(crate) fn wait_healthy(&mut self, limit: Duration) -> Result<Option<Healthy>, Abort> {
        let give_up = Instant::now() + limit;
        loop {
            self.check_interrupt()?;
            if let Some(healthy) = self.cluster.healthy(&mut self.tail) {
                return Ok(Some(healthy));
            }
            if Instant::now() >= give_up {
                return Ok(None);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits for a child with a token above `token`, for at most `limit`.
    pub(crate) fn wait_successor(
        &mut self,
        token: u64,
        limit: Duration,
    ) -> Result<Option<LedgerEntry>, Abort> {
        let give_up = Instant::now() + limit;
        loop {
            self.check_interrupt()?;
            self.tail.poll();
            if let Some(start) = self.tail.start_above(token) {
                return Ok(Some(start.clone()));
            }
            if Instant::now() >= give_up {
                return Ok(None);
            }
            std::thread::sleep(POLL / 5);
        }
    }

    /// Waits for the stop line of child `pid`, for at most `limit`.
    pub(crate) fn wait_stop(&mut self, pid: u32, limit: Duration) -> Result<Option<u64>, Abort> {
        let give_up = Instant::now() + limit;
        loop {
            self.check_interrupt()?;
            self.tail.poll();
            if let Some(stop) = self.tail.stop_of(pid) {
                return Ok(Some(stop.at));
            }
            if Instant::now() >= give_up {
                return Ok(None);
            }
            std::thread::sleep(POLL / 5);
        }
    }

    /// Another node than `leader`, drawn from the seed.
    pub(crate) fn random_follower(&mut self, leader: usize) -> usize {
        let offset = 1 + self.rng.below(u64::try_from(self.size - 1).unwrap_or(1));
        (leader + usize::try_from(offset).unwrap_or(1)) % self.size
    }

    /// Waits for node `index` to exit after SIGTERM, which must be with status 0 within the
    /// handover bound; otherwise records a violation (`who` names the node in it) and kills
    /// the node.
    pub(crate) fn expect_graceful_exit(
        &mut self,
        index: usize,
        who: &str,
        report: &mut CampaignReport,
    ) {
        let limit = self.bounds.handover();
        match self.cluster.try_wait_for_exit(index, limit) {
            Some(status) if status.code() == Some(0) => {}
            Some(status) => report.violations.push(format!(
                "graceful: {who} exited with {status} after SIGTERM (cycle {})",
                report.cycles
            )),
            None => {
                report.violations.push(format!(
                    "graceful: {who} did not exit within {} ms of SIGTERM (cycle {})",
                    millis(limit),
                    report.cycles
                ));
                self.cluster.signal(index, Signal::KILL);
                self.cluster
                    .try_wait_for_exit(index, Duration::from_secs(5));
            }
        }
    }

    /// Stops the cluster (the guards stop the children, which record their stop), then checks
    /// the ledger, the acknowledgements and the store's log.
    pub(crate) fn finish(mut self, report: &mut CampaignReport, keep: bool) {
        // Continue anything still frozen, so that its stop is recorded.
        for index in 0..self.size {
            if self.cluster.is_running(index) {
                self.cluster.signal(index, Signal::CONT);
            }
        }
        self.cluster.shutdown();
        if self.run.args.count_freezes_as_violations {
            self.frozen.clear();
        }
        let ledger = read_ledger(&self.cluster.ledger);
        report.children = check_children(&intervals(&ledger), &self.frozen, CHILD_PERIOD);
        let records = read_store_log(&self.store_log);
        report.store = check_store(&records, &read_acks(&self.acks), &self.frozen);
        check_stale_writes(&records, report);
        collect_violations(report);
        self.say(&format!(
            "done: {} cycles, {} children, {} writes accepted, {} rejected, {} violations",
            report.cycles,
            report.children.children,
            report.store.accepted,
            report.store.rejected,
            report.violations.len()
        ));
        if keep || !report.violations.is_empty() {
            report.kept = self.cluster.keep_directory();
        }
    }
}

/// Every write a frozen child tried after its resume must have been rejected by the store.
fn check_stale_writes(records: &[StoreRecord], report: &mut CampaignReport) {
    for freeze in &report.freezes {
        let after_resume = records
            .iter()
            .filter(|record| record.pid == freeze.pid && record.at >= freeze.resumed_at);
        for record in after_resume {
            if record.accepted {
                report.violations.push(format!(
                    "store: a write of the frozen child {} (token {}) was accepted after its \
                     resume",
                    freeze.pid, freeze.token
                ));
            } else {
                report.rejected_after_resume += 1;
            }
        }
    }
}

/// The ledger's and the store's violations, among the campaign's, by kind.
fn collect_violations(report: &mut CampaignReport) {
    for violation in &report.children.violations {
        report.violations.push(format!("ledger: {violation}"));
    }
    for violation in &report.store.violations {
        let prefix = if violation.starts_with("acknowledged") {
            "acks"
        } else {
            "store"
        };
        report.violations.push(format!("{prefix}: {violation}"));
    }
}
