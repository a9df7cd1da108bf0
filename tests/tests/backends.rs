//! Clusters of real `tenure run --backend` processes competing in the real PostgreSQL and etcd
//! that `scripts/stores.sh` runs on loopback (protocol: Store leases; docs/backends.md), put
//! through the faults of docs/backends.md "When things go wrong": the holder killed, frozen,
//! cut off from the store, or terminated (graceful handover); the store restarted under load;
//! a wrong password and a store that is not there at start.
//!
//! Every fault runs with two and with three nodes against each store, each node supervising
//! the ledger child, which writes to the fenced store every [`CHILD_PERIOD`] with its token.
//! Every run ends with the same checks ([`Run::finish`]): the ledger shows no two children at
//! once and tokens that only rose across holders (protocol: acting_safety; protocol:
//! fencing_monotonic), and the fenced store rejected no write of a live child and lost no
//! acknowledged one. Each test also asserts that the takeover it provokes happened, by another
//! node, with a larger token, within a bound derived from the timing ([`Store::takeover_bound`]).
//!
//! The combinations of one fault run in parallel threads, each with its own election
//! (`stores::fresh_election`). Restarting a store disturbs every cluster using it, so the
//! restart test holds [`STORE_USE`] for writing and every other test holds it for reading.
//!
//! Set `TENURE_SKIP_STORE_TESTS=1` to skip every test here, and `TENURE_SKIP_NETNS_TESTS=1` to
//! skip only the one that needs network namespaces (root and iproute2's `ip`,
//! `scripts/chaos-deps.sh`); without them, the tests fail and say why.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread;
use std::time::{Duration, Instant};

use tenure_harness::analysis::{check_store, read_acks};
use tenure_harness::netns::{in_namespace, NamespaceNetwork};
use tenure_harness::store::{read_store_log, FencedStore};
use tenure_harness::stores::{self, Stores};
use tenure_harness::tcp_relay::TcpRelay;
use tenure_harness::{
    check_no_overlap, monotonic_nanos, Cluster, ClusterSpec, LedgerEntry, LedgerEvent, Signal,
    StoreBackend, Timing, SLACK,
};

const LEDGER_CHILD: &str = env!("CARGO_BIN_EXE_ledger-child");

/// A one-second lease with the store-lease defaults derived from it (heartbeat L/8, stop grace
/// L/4): short enough to keep the file fast, and a request timeout (L/8) far above a loopback
/// round trip.
const TIMING: Timing = Timing {
    lease: Duration::from_secs(1),
    heartbeat: Duration::from_millis(125),
    stop_grace: Duration::from_millis(250),
    max_drift: 0.01,
};
/// How often the children stamp the ledger and write to the fenced store.
const CHILD_PERIOD: Duration = Duration::from_millis(50);
/// etcd raises a lease TTL below its minimum to it: 1.5 × its election timeout, 2 s at etcd's
/// defaults (docs/backends.md: etcd).
const ETCD_MINIMUM_TTL: Duration = Duration::from_secs(2);
/// How long a store restart keeps the store down: well past the holder's acting window.
const RESTART_DOWN_SECONDS: &str = "2";
/// What a node warns, once per outage, when its store stops answering.
const OUTAGE_WARNING: &str = "requests to the store fail until it answers again";
/// Skips only the test that needs network namespaces.
const SKIP_NETNS: &str = "TENURE_SKIP_NETNS_TESTS";

/// Held for reading by every test that uses the stores, for writing by the one that restarts
/// them.
static STORE_USE: RwLock<()> = RwLock::new(());

fn sharing_the_stores() -> RwLockReadGuard<'static, ()> {
    STORE_USE
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn owning_the_stores() -> RwLockWriteGuard<'static, ()> {
    STORE_USE
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The running stores, or `None` (and a line saying so) when `TENURE_SKIP_STORE_TESTS=1`.
fn the_stores() -> Option<&'static Stores> {
    if stores::skipped() {
        eprintln!("skipped: {}=1", stores::SKIP);
        return None;
    }
    Some(stores::ensure().unwrap_or_else(|problem| {
        panic!(
            "the stores are unavailable: {problem}\n(set {}=1 to skip the store tests)",
            stores::SKIP
        )
    }))
}

/// One of the two stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Store {
    Postgres,
    Etcd,
}

const STORES: [Store; 2] = [Store::Postgres, Store::Etcd];
const SIZES: [usize; 2] = [2, 3];

impl Store {
    fn name(self) -> &'static str {
        match self {
            Store::Postgres => "postgres",
            Store::Etcd => "etcd",
        }
    }

    /// A fresh election in this store.
    fn backend(self, stores: &Stores, label: &str) -> StoreBackend {
        let election = stores::fresh_election(&format!("e2e-{label}"));
        match self {
            Store::Postgres => stores.postgres(&election),
            Store::Etcd => stores.etcd(&election),
        }
    }

    /// How long after the holder's latest applied renewal a contender may take the record
    /// over, at most (protocol: Who judges expiry). PostgreSQL: the contender times L from the
    /// first reply that showed it the latest version, at most one poll and one request
    /// timeout after that renewal. etcd: the key lives a TTL (L rounded up to whole seconds,
    /// raised to etcd's minimum) after the latest keep-alive, and a contender reads it again
    /// one poll later.
    fn expiry_bound(self) -> Duration {
        let poll_and_request = TIMING.heartbeat * 2;
        match self {
            Store::Postgres => TIMING.lease + poll_and_request,
            Store::Etcd => {
                let ttl = Duration::from_secs(TIMING.lease.as_secs_f64().ceil() as u64);
                ttl.max(ETCD_MINIMUM_TTL) + poll_and_request
            }
        }
    }

    /// From a fault of the holder to its successor's child starting: the expiry, the
    /// acquisition's round trip and the child's start, plus the one `SLACK`.
    fn takeover_bound(self) -> Duration {
        self.expiry_bound() + TIMING.heartbeat * 2 + SLACK
    }

    /// From a fresh cluster's start to its first holder's child: the record is vacant, so the
    /// first read takes it; the store's client connects first.
    fn first_holder_bound(self) -> Duration {
        TIMING.heartbeat * 4 + SLACK
    }

    /// `scripts/stores.sh` restarts this store with this command.
    fn restart_command(self) -> &'static str {
        match self {
            Store::Postgres => "restart-postgres",
            Store::Etcd => "restart-etcd",
        }
    }

    /// Where the store listens, as the URL names it.
    fn address(self, stores: &Stores) -> SocketAddr {
        let host_port = match self {
            Store::Postgres => host_port_of(&stores.postgres_url),
            Store::Etcd => stores
                .etcd_endpoints
                .split(',')
                .next()
                .unwrap_or_default()
                .to_string(),
        };
        host_port
            .parse()
            .unwrap_or_else(|_| panic!("{host_port} is no IP address and port"))
    }

    /// `backend` with the store's address replaced by `address`.
    fn through(self, backend: &StoreBackend, stores: &Stores, address: SocketAddr) -> StoreBackend {
        let original = self.address(stores).to_string();
        assert!(backend.url.contains(&original), "{}", backend.url);
        StoreBackend {
            url: backend.url.replacen(&original, &address.to_string(), 1),
            election: backend.election.clone(),
        }
    }
}

/// `HOST:PORT` of a `postgres://USER:PASSWORD@HOST:PORT/…` URL.
fn host_port_of(url: &str) -> String {
    let after_credentials = url.rsplit_once('@').map_or(url, |(_, rest)| rest);
    after_credentials
        .split(['/', '?'])
        .next()
        .unwrap_or_default()
        .to_string()
}

/// One cluster of one combination, with its fenced store.
struct Run {
    label: String,
    store: Store,
    cluster: Cluster,
    fenced: FencedStore,
    store_log: PathBuf,
    acks: PathBuf,
}

impl Run {
    /// A prepared cluster of `size` nodes competing in `backend`, not started; the children
    /// stamp the ledger and write to the fenced store.
    fn prepare(store: Store, size: usize, label: &str, backend: StoreBackend) -> Run {
        let spec = ClusterSpec {
            timing: TIMING,
            directory_prefix: format!("tenure-backends-{label}-"),
            ..ClusterSpec::with_backend(size, LEDGER_CHILD, backend)
        };
        let mut cluster = Cluster::prepare(spec);
        let directory = cluster.directory().to_path_buf();
        let store_log = directory.join("store.log");
        let acks = directory.join("acks");
        let fenced = FencedStore::start(&directory.join("store.sock"), &store_log)
            .expect("start the fenced store");
        let period = CHILD_PERIOD.as_millis().to_string();
        cluster.set_child_arguments(&[
            "--alive-ms".to_string(),
            period.clone(),
            "--store".to_string(),
            fenced.socket().display().to_string(),
            "--write-ms".to_string(),
            period,
            "--acks".to_string(),
            acks.display().to_string(),
        ]);
        Run {
            label: label.to_string(),
            store,
            cluster,
            fenced,
            store_log,
            acks,
        }
    }

    /// A started cluster on loopback, in a fresh election of `store`.
    fn start(stores: &Stores, store: Store, size: usize, fault: &str) -> Run {
        let label = format!("{fault}-{}-{size}", store.name());
        let mut run = Run::prepare(store, size, &label, store.backend(stores, &label));
        run.spawn_all();
        run
    }

    fn spawn_all(&mut self) {
        for index in 0..self.cluster.nodes.len() {
            self.cluster.spawn(index);
        }
    }

    /// Waits for the first holder, and for its child to have written to the fenced store.
    fn first_holder(&self) -> (usize, u64) {
        let entry = self
            .cluster
            .wait_for_ledger_start(self.store.first_holder_bound(), 0);
        self.wait_for_writes(entry.token);
        (self.index_of(&entry.node), entry.token)
    }

    /// Waits until the fenced store accepted writes with `token`: the child is at work.
    fn wait_for_writes(&self, token: u64) {
        self.cluster.wait_for(
            SLACK,
            &format!("writes with token {token} in the fenced store"),
            |_| {
                let writes = read_store_log(&self.store_log)
                    .iter()
                    .filter(|record| record.accepted && record.token == token)
                    .count();
                (writes >= 3).then_some(())
            },
        );
    }

    fn index_of(&self, node: &str) -> usize {
        self.cluster
            .nodes
            .iter()
            .position(|candidate| candidate.name == node)
            .unwrap_or_else(|| self.fail(&format!("no node {node}")))
    }

    /// Waits for the child of `token` to record its stop.
    fn wait_for_stop(&self, token: u64, limit: Duration) -> LedgerEntry {
        self.cluster.wait_for(
            limit,
            &format!("the child of token {token} to stop"),
            |cluster| {
                cluster
                    .ledger()
                    .into_iter()
                    .find(|entry| entry.token == token && entry.event == LedgerEvent::Stop)
            },
        )
    }

    /// Waits for a child with a token above `token` to start, and checks that it is not
    /// `former`'s and that it started within `limit` of `since`.
    fn wait_for_successor(
        &self,
        former: usize,
        token: u64,
        since: u64,
        limit: Duration,
    ) -> LedgerEntry {
        let next = self.cluster.wait_for_ledger_start(limit, token);
        let former_name = &self.cluster.nodes[former].name;
        if next.node == *former_name {
            self.fail(&format!(
                "{former_name} acted again (token {}) instead of another node taking over",
                next.token
            ));
        }
        let took = Duration::from_nanos(next.at.saturating_sub(since));
        if took > limit {
            self.fail(&format!(
                "the takeover took {took:?}, above the bound {limit:?}"
            ));
        }
        eprintln!(
            "[{}] {} took over with token {} (was {token}) {} ms after the fault; bound {} ms",
            self.label,
            next.node,
            next.token,
            took.as_millis(),
            limit.as_millis()
        );
        self.wait_for_writes(next.token);
        next
    }

    /// Checks that `node` started no child with `token` after `after` (its tenure ended).
    fn assert_never_acted_again(&self, node: usize, token: u64, after: u64) {
        let name = &self.cluster.nodes[node].name;
        if let Some(entry) = self.cluster.ledger().into_iter().find(|entry| {
            entry.node == *name
                && entry.token == token
                && entry.event == LedgerEvent::Start
                && entry.at > after
        }) {
            self.fail(&format!(
                "{name} started a child again under its old token {token}: {entry:?}"
            ));
        }
    }

    /// Stops every process, then checks the ledger and the fenced store (see the module docs).
    /// Returns the tokens of the children in start order.
    fn finish(mut self) -> Vec<u64> {
        self.cluster.shutdown();
        let ledger = self.cluster.ledger();
        if let Err(problem) = check_no_overlap(&ledger) {
            self.fail(&problem);
        }
        let report = check_store(
            &read_store_log(&self.store_log),
            &read_acks(&self.acks),
            &BTreeSet::new(),
        );
        if !report.violations.is_empty() || report.accepted == 0 {
            self.fail(&format!("the fenced store: {report:?}"));
        }
        let (_, rejected) = self.fenced.counts();
        assert_eq!(
            rejected, 0,
            "{}: the fenced store rejected writes",
            self.label
        );
        ledger
            .iter()
            .filter(|entry| entry.event == LedgerEvent::Start)
            .map(|entry| entry.token)
            .collect()
    }

    fn fail(&self, message: &str) -> ! {
        self.cluster.fail(&format!("[{}] {message}", self.label))
    }
}

/// Runs `scenario` for every store in `stores` and every size, each in a thread of its own
/// (a cluster lives and dies with the thread that started it), and fails naming every
/// combination that failed; their messages are above.
fn each_combination(stores: &[Store], scenario: impl Fn(Store, usize) + Sync) {
    let scenario = &scenario;
    thread::scope(|scope| {
        let handles: Vec<(String, _)> = stores
            .iter()
            .flat_map(|store| SIZES.map(|size| (*store, size)))
            .map(|(store, size)| {
                (
                    format!("{} with {size} nodes", store.name()),
                    scope.spawn(move || scenario(store, size)),
                )
            })
            .collect();
        let failed: Vec<String> = handles
            .into_iter()
            .filter_map(|(label, handle)| handle.join().is_err().then_some(label))
            .collect();
        assert!(
            failed.is_empty(),
            "failed: {failed:?} (see the messages above)"
        );
    });
}

#[test]
fn sigkill_of_the_holder_lets_another_node_act_with_a_larger_token() {
    let Some(stores) = the_stores() else { return };
    let _shared = sharing_the_stores();
    each_combination(&STORES, |store, size| {
        let mut run = Run::start(stores, store, size, "kill");
        let (holder, token) = run.first_holder();

        // Phase 1: SIGKILL the holder's tenure. Its guard sees the pipe close and stops the
        // child at once.
        let killed_at = run.cluster.kill(holder);
        run.wait_for_stop(token, SLACK);

        // Phase 2: another node takes the record over once it expires, with a larger token.
        run.wait_for_successor(holder, token, killed_at, store.takeover_bound());
        let tokens = run.finish();
        assert!(tokens.len() >= 2, "{tokens:?}");
    });
}

#[test]
fn sigterm_of_the_holder_hands_the_election_over_at_the_next_read() {
    let Some(stores) = the_stores() else { return };
    let _shared = sharing_the_stores();
    each_combination(&STORES, |store, size| {
        let mut run = Run::start(stores, store, size, "term");
        let (holder, token) = run.first_holder();

        // Phase 1: SIGTERM the holder: it stops its child, releases the record once the child
        // is gone, and exits 0 once the release is answered (protocol: Graceful handover).
        let terminated_at = run.cluster.signal(holder, Signal::TERM);
        let status = run
            .cluster
            .wait_for_exit(holder, TIMING.stop_margin() + SLACK);
        if !status.success() {
            run.fail(&format!("the holder exited with {status} after SIGTERM"));
        }
        run.wait_for_stop(token, SLACK);

        // Phase 2: another node takes the vacant record at its next read: within the child's
        // stop, two polls and the acquisition, far from a lease when the machine is not
        // overloaded (the figure is printed).
        let bound = TIMING.stop_margin() + TIMING.heartbeat * 3 + SLACK;
        run.wait_for_successor(holder, token, terminated_at, bound);
        run.finish();
    });
}

#[test]
fn a_frozen_holder_is_replaced_and_does_not_act_again_when_it_resumes() {
    let Some(stores) = the_stores() else { return };
    let _shared = sharing_the_stores();
    each_combination(&STORES, |store, size| {
        let run = Run::start(stores, store, size, "freeze");
        let (holder, token) = run.first_holder();

        // Phase 1: SIGSTOP the holder's tenure (not its guard or child). It renews no more, so
        // its guard stops the child when the acting window closes: within one lease.
        let stopped_at = run.cluster.signal(holder, Signal::STOP);
        let stop = run.wait_for_stop(token, TIMING.lease + SLACK);
        let stopped_after = Duration::from_nanos(stop.at.saturating_sub(stopped_at));
        if stopped_after > TIMING.lease_hold() + SLACK {
            run.fail(&format!(
                "the frozen holder's child stopped {stopped_after:?} after"
            ));
        }

        // Phase 2: another node takes over, with a larger token.
        let next = run.wait_for_successor(holder, token, stopped_at, store.takeover_bound());

        // Phase 3: the holder resumes. Its deadline has passed and its next renewal is
        // refused: it must not start its child again under its old token, and nothing may
        // overlap. Watched for two leases, each holding many renewals and reads.
        run.cluster.signal(holder, Signal::CONT);
        thread::sleep(TIMING.lease * 2);
        run.assert_never_acted_again(holder, token, stop.at);
        let status = run
            .cluster
            .wait_for(SLACK, "the resumed node's status", |cluster| {
                cluster.status(holder)
            });
        if status["acting"] == true && status["fencing_token"] == token {
            run.fail(&format!(
                "the resumed node acts under its old token: {status}"
            ));
        }
        let tokens = run.finish();
        assert!(tokens.contains(&next.token), "{tokens:?}");
    });
}

#[test]
fn a_holder_cut_off_from_the_store_stops_and_another_node_takes_over() {
    let Some(stores) = the_stores() else { return };
    if std::env::var(SKIP_NETNS).as_deref() == Ok("1") {
        eprintln!("skipped: {SKIP_NETNS}=1");
        return;
    }
    NamespaceNetwork::remove_stale();
    if let Err(problem) = NamespaceNetwork::probe() {
        panic!(
            "this test needs network namespaces (root, and `ip` from iproute2: run \
             scripts/chaos-deps.sh as root): {problem}\n(set {SKIP_NETNS}=1 to skip it)"
        );
    }
    let _shared = sharing_the_stores();
    each_combination(&STORES, |store, size| {
        // Set-up: every node in a namespace of its own, reaching the store only through a
        // relay that listens in the hub namespace.
        let label = format!("cut-{}-{size}", store.name());
        let tag = format!("{}{size}", store.name());
        let network = NamespaceNetwork::create(&tag, size).expect("create the namespaces");
        let hub_address: IpAddr = [10, 77, 0, 254].into();
        let listener = in_namespace(&network.hub_path(), || {
            TcpListener::bind(SocketAddr::new(hub_address, 0))
        })
        .expect("listen in the hub namespace");
        let relay = TcpRelay::start(listener, store.address(stores)).expect("start the relay");
        let backend = store.through(&store.backend(stores, &label), stores, relay.address());
        let mut run = Run::prepare(store, size, &label, backend);
        for (index, node) in run.cluster.nodes.iter_mut().enumerate() {
            node.http = SocketAddr::new(network.address(index).into(), 8101);
            node.launcher = network.launcher(index);
        }
        run.cluster.http_route = Some(network.http_route());
        run.spawn_all();
        let (holder, token) = run.first_holder();

        // Phase 1: cut the holder off from the store. Its renewals go unanswered, so it stops
        // its child when its acting window closes: within one lease.
        let holder_address = IpAddr::from(network.address(holder));
        let cut_at = monotonic_nanos();
        relay.cut(holder_address);
        let stop = run.wait_for_stop(token, TIMING.lease + SLACK);
        let stopped_after = Duration::from_nanos(stop.at.saturating_sub(cut_at));
        if stopped_after > TIMING.lease_hold() + SLACK {
            run.fail(&format!(
                "the cut holder's child stopped {stopped_after:?} after"
            ));
        }

        // Phase 2: another node takes over once the record expires, with a larger token.
        run.wait_for_successor(holder, token, cut_at, store.takeover_bound());
        let log = std::fs::read_to_string(&run.cluster.nodes[holder].log).unwrap_or_default();
        if !log.contains(OUTAGE_WARNING) {
            run.fail(&format!("the cut holder never logged `{OUTAGE_WARNING}`"));
        }

        // Phase 3: heal. The former holder's renewals are refused now; it must not act again
        // under its old token.
        relay.heal(holder_address);
        run.cluster
            .wait_for(SLACK, "the healed node to reach the store", |cluster| {
                let log = std::fs::read_to_string(&cluster.nodes[holder].log).unwrap_or_default();
                log.contains("the store answers again").then_some(())
            });
        thread::sleep(TIMING.lease * 2);
        run.assert_never_acted_again(holder, token, stop.at);
        run.finish();
        // The namespaces go only after every process in them is gone.
        drop(relay);
        drop(network);
    });
}

#[test]
fn a_store_restarted_under_load_leaves_no_overlap_and_a_holder_again() {
    let Some(stores) = the_stores() else { return };
    let _owned = owning_the_stores();
    // The script restarts the stores it manages (TENURE_STORES_DIR and its ports); they must
    // be the ones the tests use, not others named by TENURE_TEST_* variables.
    let managed = stores::run_script(&["env"]).unwrap_or_else(|problem| panic!("{problem}"));
    assert!(
        managed.contains(&stores.postgres_url) && managed.contains(&stores.etcd_endpoints),
        "the TENURE_TEST_* variables name stores that scripts/stores.sh does not manage, so it \
         cannot restart them: unset them, or set TENURE_STORES_DIR and TENURE_STORES_*_PORT to \
         the stores they name\n{managed}"
    );

    // Set-up: both sizes against both stores, every child writing to its fenced store.
    let runs: Vec<Run> = STORES
        .iter()
        .flat_map(|store| SIZES.map(|size| Run::start(stores, *store, size, "restart")))
        .collect();
    let tokens: Vec<u64> = runs.iter().map(|run| run.first_holder().1).collect();

    // Phase 1: restart both stores at once, each down for RESTART_DOWN_SECONDS.
    let restarted_at = monotonic_nanos();
    thread::scope(|scope| {
        let restarts: Vec<_> = STORES
            .iter()
            .map(|store| {
                scope.spawn(move || {
                    stores::run_script(&[store.restart_command(), RESTART_DOWN_SECONDS])
                })
            })
            .collect();
        for restart in restarts {
            if let Err(problem) = restart.join().expect("the restart thread") {
                panic!("{problem}");
            }
        }
    });
    let restart_took = Duration::from_nanos(monotonic_nanos() - restarted_at);

    // Phase 2: no holder can renew while its store is down, so every holder's child stopped
    // when its acting window closed; and once the store is back, a node acts again, with a
    // larger token (the old tenure lapsed: protocol: The store-lease acting rule).
    for (run, token) in runs.iter().zip(tokens) {
        run.wait_for_stop(token, SLACK);
        let next = run
            .cluster
            .wait_for_ledger_start(run.store.takeover_bound() + TIMING.lease, token);
        run.wait_for_writes(next.token);
        eprintln!(
            "[{}] {} acts with token {} (was {token}) {} ms after the restart began",
            run.label,
            next.node,
            next.token,
            next.at.saturating_sub(restarted_at) / 1_000_000
        );
    }
    for run in runs {
        let label = run.label.clone();
        let tokens = run.finish();
        assert!(
            tokens.len() >= 2,
            "{label}: {tokens:?} (restart took {restart_took:?})"
        );
    }
}

#[test]
fn a_wrong_password_or_a_missing_store_at_start_never_starts_the_child() {
    let Some(stores) = the_stores() else { return };
    let _shared = sharing_the_stores();
    thread::scope(|scope| {
        let wrong_password = scope.spawn(|| {
            for size in SIZES {
                wrong_password_exits_with_one_error(stores, size);
            }
        });
        each_combination(&STORES, |store, size| {
            missing_store_waits_without_acting(stores, store, size);
        });
        if wrong_password.join().is_err() {
            panic!("the wrong-password run failed (see above)");
        }
    });
}

/// A wrong password: every node exits with status 1 and one error naming the problem, before
/// any child could start (docs/backends.md: When things go wrong).
fn wrong_password_exits_with_one_error(stores: &Stores, size: usize) {
    let label = format!("password-postgres-{size}");
    let mut backend = Store::Postgres.backend(stores, &label);
    let (credentials, rest) = backend
        .url
        .rsplit_once('@')
        .expect("a URL with credentials");
    let (user, _password) = credentials.rsplit_once(':').expect("a URL with a password");
    backend.url = format!("{user}:not-the-password@{rest}");
    let mut run = Run::prepare(Store::Postgres, size, &label, backend);
    run.spawn_all();
    for index in 0..size {
        let status = run.cluster.wait_for_exit(index, SLACK);
        let log = std::fs::read_to_string(&run.cluster.nodes[index].log).unwrap_or_default();
        if status.code() != Some(1) {
            run.fail(&format!(
                "{} exited with {status}, not 1",
                run.cluster.nodes[index].name
            ));
        }
        let error = "PostgreSQL refused the user `tenure`";
        if !log.contains(error) || !log.contains("check the user and password") {
            run.fail(&format!("no `{error}` in the log"));
        }
        if log.contains("not-the-password") {
            run.fail("the log shows the password");
        }
    }
    if !run.cluster.ledger().is_empty() {
        run.fail("a child started");
    }
}

/// A store that is not there at start: the node does not exit (store_run.rs: a store that
/// cannot be reached yet is no error of configuration), warns once that connecting failed, and
/// acts only once the store is there. Shown by starting the store's relay late on the port
/// the nodes were given.
fn missing_store_waits_without_acting(stores: &Stores, store: Store, size: usize) {
    let label = format!("missing-{}-{size}", store.name());
    let closed = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port");
    let backend = store.through(&store.backend(stores, &label), stores, closed);
    let mut run = Run::prepare(store, size, &label, backend);
    run.spawn_all();

    // Phase 1: for two leases nobody acts, every node runs, and each says why.
    let watch_until = Instant::now() + TIMING.lease * 2;
    while Instant::now() < watch_until {
        if !run.cluster.acting().is_empty() || !run.cluster.ledger().is_empty() {
            run.fail("a node acted without its store");
        }
        thread::sleep(TIMING.heartbeat);
    }
    for index in 0..size {
        if run
            .cluster
            .try_wait_for_exit(index, Duration::ZERO)
            .is_some()
        {
            run.fail(&format!("{} exited", run.cluster.nodes[index].name));
        }
    }
    run.cluster
        .wait_for(SLACK, "every node to warn about the store", |cluster| {
            cluster
                .nodes
                .iter()
                .all(|node| {
                    let log = std::fs::read_to_string(&node.log).unwrap_or_default();
                    log.contains(OUTAGE_WARNING)
                })
                .then_some(())
        });

    // Phase 2: the store appears on that port; one node takes the vacant record.
    let listener = TcpListener::bind(closed).expect("the port is still free");
    let relay = TcpRelay::start(listener, store.address(stores)).expect("start the relay");
    let appeared_at = monotonic_nanos();
    let entry = run
        .cluster
        .wait_for_ledger_start(store.first_holder_bound(), 0);
    let took = Duration::from_nanos(entry.at.saturating_sub(appeared_at));
    if took > store.first_holder_bound() {
        run.fail(&format!(
            "the first holder took {took:?} once the store was there"
        ));
    }
    run.wait_for_writes(entry.token);
    run.finish();
    drop(relay);
}
