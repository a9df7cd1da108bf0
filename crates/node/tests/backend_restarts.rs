//! A store restarted under load (`scripts/stores.sh restart-postgres 2`, `restart-etcd 2`):
//! the holder's renewals fail while the store is down and apply again once it is back, on a
//! new connection, with the tenure intact.
//!
//! A test binary of its own, so that the restarts disturb no other store test (cargo runs test
//! binaries one after another). The two tests restart different stores, so they may run in
//! parallel.

mod store_env;

use std::time::Duration;

use tenure_core::{NodeId, StoreOp, StoreOutcome, StoreRequest};
use tenure_node::backend::{Etcd, Postgres, StoreClient};
use tokio::time::Instant;

use store_env::{
    etcd_endpoints, fresh_election, postgres_target, stores_script, POSTGRES_URL, TIMEOUT,
};

/// How long the store stays down.
const DOWN_SECONDS: &str = "2";
/// How often the holder renews.
const RENEW_EVERY: Duration = Duration::from_millis(100);
/// The whole test gives up after this: the restart takes a few seconds.
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);

#[tokio::test]
async fn postgres_renewals_fail_during_a_restart_and_apply_after() {
    let Some(target) = postgres_target(POSTGRES_URL) else {
        return;
    };
    let client = Postgres::connect(&target, &fresh_election("restart"), TIMEOUT)
        .await
        .expect("PostgreSQL is up");
    renew_through_restart(client, "restart-postgres").await;
}

#[tokio::test]
async fn etcd_renewals_fail_during_a_restart_and_apply_after() {
    let Some(endpoints) = etcd_endpoints() else {
        return;
    };
    // A lease far longer than the outage: etcd keeps leases across a restart.
    let lease = Duration::from_secs(60);
    let client = Etcd::connect(&endpoints, &fresh_election("restart"), lease, TIMEOUT)
        .await
        .expect("etcd is up");
    renew_through_restart(client, "restart-etcd").await;
}

/// Acquires through `client`, then renews every [`RENEW_EVERY`] while `scripts/stores.sh
/// command` restarts the store, and checks that renewals failed during the outage, and
/// applied before it and again after it, on the same tenure.
async fn renew_through_restart<C: StoreClient>(mut client: C, command: &'static str) {
    let request = |id, op| StoreRequest {
        id,
        from: NodeId(1),
        op,
    };
    let StoreOutcome::Applied(acquired) = client
        .execute(request(1, StoreOp::Acquire { version: 0 }))
        .await
    else {
        panic!("the acquisition of a fresh election must apply");
    };
    let token = acquired.token;

    // The restart runs beside the renewals.
    let restart = tokio::task::spawn_blocking(move || stores_script(&[command, DOWN_SECONDS]));
    let started = Instant::now();
    let mut outcomes = Vec::new();
    let mut id = 2;
    loop {
        assert!(
            started.elapsed() < GIVE_UP_AFTER,
            "no renewal applied after the restart within {GIVE_UP_AFTER:?}: {outcomes:?}"
        );
        let outcome = client.execute(request(id, StoreOp::Renew { token })).await;
        if let StoreOutcome::Applied(record) | StoreOutcome::Conflict(record) = outcome {
            assert_eq!(
                outcome,
                StoreOutcome::Applied(record),
                "the tenure must survive the restart"
            );
            assert_eq!(record.token, token);
        }
        outcomes.push(outcome.kind_index());
        id += 1;
        let failed_earlier = outcomes.contains(&StoreOutcome::Failed.kind_index());
        if restart.is_finished() && failed_earlier && outcome != StoreOutcome::Failed {
            break;
        }
        tokio::time::sleep(RENEW_EVERY).await;
    }
    restart.await.expect("the restart script ran");
    let failures = outcomes
        .iter()
        .filter(|&&kind| kind == StoreOutcome::Failed.kind_index())
        .count();
    eprintln!(
        "{command}: {} renewals over {:?}, {failures} failed",
        outcomes.len(),
        started.elapsed()
    );
    assert!(failures > 0, "no renewal failed while the store was down");
}
