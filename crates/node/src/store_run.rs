//! `tenure run --backend URL`: a node whose election is held in a coordination store
//! (protocol: Store leases).
//!
//! The same driver, acting sink, deadline guard, HTTP API and signal handling as the quorum
//! (`run.rs`), around the store-lease core instead of the quorum's, with a store client for
//! transport and no local state. Start-up connects to the store first: a store that refuses
//! the credentials or cannot be reached stops the node with one error and exit status 1,
//! before any child could start.

use std::sync::Arc;

use tenure_core::StoreLease;
use tokio::sync::mpsc;
use tracing::info;

use crate::backend::{self, AnyStoreClient, HolderNames, Identity, StoreTransport};
use crate::clock::BootClock;
use crate::members::Members;
use crate::observer::{NodeInfo, Shared, StoreInfo};
use crate::run::{
    acting_sink, bind_http, entropy, finish, handle_signals, observer, spawn_http, RunError,
    RunOutcome,
};
use crate::settings::{RunSettings, StoreSettings};
use crate::supervisor::ChildStats;
use crate::transport::{PeerTable, TransportStats};
use tenure_driver::{Clock as _, Driver, HealthPolicy, Parts, Stateless};

/// Runs a store-backed node until it is shut down (`Ok`) or fails.
pub fn run(settings: RunSettings) -> Result<RunOutcome, RunError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|problem| RunError(format!("cannot start the async runtime: {problem}")))?;
    runtime.block_on(run_node(settings))
}

async fn run_node(settings: RunSettings) -> Result<RunOutcome, RunError> {
    let Some(store) = settings.store.clone() else {
        return Err(RunError(
            "no --backend: not a store-backed node".to_string(),
        ));
    };
    let clock = BootClock::new();
    let identity = Identity {
        id: store.id,
        name: settings.members.own_name().to_string(),
        names: HolderNames::default(),
    };
    let names = identity.names.clone();
    let transport = connect(&store, identity).await?;
    let http_listener = bind_http(&settings).await?;
    let child_stats = Arc::new(ChildStats::default());
    let shared = Arc::new(Shared::new(
        node_info(&settings, &store, child_stats.clone(), names),
        clock.now(),
    ));
    let (health_results, health_receiver) = mpsc::channel(8);
    let (commands, command_receiver) = mpsc::channel(16);
    let sink = acting_sink(&settings, child_stats, health_results)?;
    let core = StoreLease::new(store.config, store.id, clock.now());
    let parts = Parts {
        transport,
        clock,
        storage: Stateless,
        sink,
        observer: observer(&shared, &settings, &commands),
        entropy: entropy(),
    };
    let mut driver = Driver::with_election(core, parts);
    if let Some(health) = &settings.health {
        driver = driver.with_health_checks(
            health_receiver,
            HealthPolicy {
                failures: health.failures,
            },
        );
    }
    if let Some(listener) = http_listener {
        spawn_http(listener, &shared, &commands, &settings);
    }
    tokio::spawn(handle_signals(commands)?);
    finish(driver.run(command_receiver).await, &shared)
}

/// Opens the store client and its transport. A configuration that can never work (a wrong
/// password, a missing database or right, a TLS refusal) is the one error of a refused start;
/// a store that cannot be reached yet is not: its requests fail, so the node does not act, and
/// it is logged once until the store answers.
async fn connect(
    store: &StoreSettings,
    identity: Identity,
) -> Result<StoreTransport<AnyStoreClient>, RunError> {
    let params = store.config.params();
    let lease = std::time::Duration::from_nanos(params.lease_duration.as_nanos());
    let timeout = std::time::Duration::from_nanos(params.request_timeout.as_nanos());
    let client = backend::connect(&store.backend, &store.election, lease, timeout, identity)
        .await
        .map_err(|problem| {
            RunError(format!(
                "cannot use the store {}: {problem}",
                store.redacted_url()
            ))
        })?;
    info!(
        backend = %store.redacted_url(),
        election = %store.election,
        "store client ready"
    );
    Ok(StoreTransport::new(client, timeout))
}

/// What the status page shows of this node: itself alone as a member (the others are known
/// only by the names the store gives), and the store.
fn node_info(
    settings: &RunSettings,
    store: &StoreSettings,
    child: Arc<ChildStats>,
    names: HolderNames,
) -> NodeInfo {
    let members: Members = settings.members.clone();
    NodeInfo {
        peers: Arc::new(PeerTable::new(&members, &[])),
        members,
        transport: Arc::new(TransportStats::default()),
        child,
        lease_duration: store.config.lease_duration(),
        supervises_child: settings.command.is_some(),
        health_checked: settings.health.is_some(),
        quarantine_until: None,
        store: Some(StoreInfo {
            backend: store.redacted_url(),
            election: store.election.as_str().to_string(),
            judge: match store.judge {
                tenure_core::ExpiryJudge::Contenders => "contenders",
                tenure_core::ExpiryJudge::Store => "store",
            },
            id: store.id,
            names,
        }),
    }
}
