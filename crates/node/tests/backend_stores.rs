//! The PostgreSQL and etcd backends against real servers on loopback, started by
//! `eval "$(scripts/stores.sh)"`; without them these tests fail, saying so, unless
//! `TENURE_SKIP_STORE_TESTS=1`.
//!
//! - Each client answers a script of requests from three nodes as the reference store does
//!   (the semantics in code, `tenure_core::ReferenceStore`), fencing tokens strictly increasing.
//! - Configuration errors are one clear error at connect; an unreachable or silent server
//!   makes requests fail within the timeout.
//! - etcd expires a holder that stops renewing, within its TTL and a second.
//! - The store-lease core runs on each client through the transport: one holder, about one
//!   request per poll interval.
//!
//! Every test uses an election of its own, so they run in parallel; the restarts of the stores
//! are in `backend_restarts.rs`, a test binary of their own, so that they disturb no other test.

mod store_env;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::Duration;

use tenure_core::{
    Duration as CoreDuration, Event, ExpiryJudge, FencingToken, Instant as CoreInstant, NodeId,
    Output, Record, ReferenceStore, StoreLease, StoreLeaseConfig, StoreLeaseParams, StoreOp,
    StoreOutcome, StoreRequest,
};
use tenure_node::backend::{
    BackendError, ElectionName, Etcd, HolderNames, Identity, Postgres, PostgresTarget, StoreClient,
    StoreCounters, StoreTransport, POSTGRES_DDL,
};
use tokio::time::Instant;

use store_env::{
    etcd_endpoints, fresh_election, postgres_target, POSTGRES_LIMITED_URL, POSTGRES_URL, TIMEOUT,
};

/// A lease long enough that nothing expires during a script.
const LONG_LEASE: Duration = Duration::from_secs(60);

// ----- The reference store, by script ---------------------------------------------------------

/// What a node does in a script. Each side (the client and the reference) fills in the version
/// and tokens from what that node saw on that side.
#[derive(Clone, Copy, Debug)]
enum Step {
    Read,
    /// Acquire with the version the node saw last.
    Acquire,
    /// Renew the tenure the node holds (or token 0 if it holds none).
    Renew,
    /// Renew with the token of the record the node saw last: someone else's tenure.
    RenewSeen,
    /// Renew with the token of the node's previous tenure.
    RenewPrevious,
    Release,
    ReleasePrevious,
}

use Step::*;

/// What one node knows, on one side.
#[derive(Clone, Copy, Debug, Default)]
struct Knowledge {
    seen: Record,
    held: Option<FencingToken>,
    previous: Option<FencingToken>,
}

impl Knowledge {
    fn op(&self, step: Step) -> StoreOp {
        let token = |token: Option<FencingToken>| token.unwrap_or_default();
        match step {
            Read => StoreOp::Read,
            Acquire => StoreOp::Acquire {
                version: self.seen.version,
            },
            Renew => StoreOp::Renew {
                token: token(self.held),
            },
            RenewSeen => StoreOp::Renew {
                token: self.seen.token,
            },
            RenewPrevious => StoreOp::Renew {
                token: token(self.previous),
            },
            Release => StoreOp::Release {
                token: token(self.held),
            },
            ReleasePrevious => StoreOp::Release {
                token: token(self.previous),
            },
        }
    }

    fn learn(&mut self, op: StoreOp, outcome: StoreOutcome) {
        let (StoreOutcome::Applied(record) | StoreOutcome::Conflict(record)) = outcome else {
            panic!("{op:?} failed against a healthy store");
        };
        self.seen = record;
        match (op, outcome) {
            (StoreOp::Acquire { .. }, StoreOutcome::Applied(record)) => {
                self.previous = self.held.or(self.previous);
                self.held = Some(record.token);
            }
            (StoreOp::Release { .. }, StoreOutcome::Applied(_)) => {
                self.previous = self.held;
                self.held = None;
            }
            _ => {}
        }
    }
}

/// Whether a step applied or conflicted, with contenders judging expiry (PostgreSQL) and with
/// the store judging it (etcd).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    A,
    C,
}

use Kind::{A, C};

/// Three nodes: acquisitions, a stale acquisition, renewals of one's own, someone else's and a
/// previous tenure, releases, and (where contenders judge) a takeover.
const SCRIPT: [(u32, Step, Kind, Kind); 22] = [
    (1, Read, A, A),
    (2, Read, A, A),
    (1, Acquire, A, A),
    // Node 2 saw the record before node 1 took it: its version is stale.
    (2, Acquire, C, C),
    (1, Renew, A, A),
    (2, RenewSeen, C, C),
    (3, Read, A, A),
    // Where contenders judge expiry, a current version may be taken over; where the store
    // judges, only a vacant record.
    (3, Acquire, A, C),
    (1, Renew, C, A),
    (1, Release, C, A),
    (2, Read, A, A),
    (2, Acquire, A, A),
    (1, Renew, C, C),
    (3, Renew, C, C),
    (2, Renew, A, A),
    (2, Release, A, A),
    (1, Read, A, A),
    (1, Acquire, A, A),
    (2, RenewPrevious, C, C),
    (2, ReleasePrevious, C, C),
    (1, Release, A, A),
    (3, Read, A, A),
];

/// Runs [`SCRIPT`] on `clients` (one per node, ids 1 to 3) and on the reference store, and
/// checks that they agree: exactly where contenders judge expiry; where the store judges, on
/// outcomes and holders, with the store's own versions and tokens mapped onto the reference's.
/// Returns the nodes whose acquisitions applied.
async fn check_against_reference<C: StoreClient>(
    judge: ExpiryJudge,
    clients: &mut [C; 3],
) -> Vec<NodeId> {
    let mut reference = ReferenceStore::new(judge, CoreDuration::from_secs(3600));
    let mut reference_knowledge = [Knowledge::default(); 3];
    let mut client_knowledge = [Knowledge::default(); 3];
    let mut tokens = TokenMap::default();
    let mut versions = VersionMap::default();
    let mut acquired_tokens = Vec::new();
    let mut acquirers = Vec::new();
    for (index, &(node, step, contenders, store)) in SCRIPT.iter().enumerate() {
        let slot = node as usize - 1;
        let from = NodeId(node);
        let reference_op = reference_knowledge[slot].op(step);
        let expected = reference.apply(
            CoreInstant::ZERO,
            StoreRequest {
                id: index as u64,
                from,
                op: reference_op,
            },
        );
        let client_op = client_knowledge[slot].op(step);
        let request = StoreRequest {
            id: index as u64,
            from,
            op: client_op,
        };
        let outcome = clients[slot].execute(request).await;
        let context = format!("step {index} ({node}, {step:?}): {request:?}");
        let kind = match judge {
            ExpiryJudge::Contenders => contenders,
            ExpiryJudge::Store => store,
        };
        assert_eq!(kind_of(expected), kind, "the reference at {context}");
        match judge {
            ExpiryJudge::Contenders => versions.check(expected, outcome, &context),
            ExpiryJudge::Store => tokens.check(expected, outcome, &context),
        }
        if let (StoreOp::Acquire { .. }, StoreOutcome::Applied(record)) = (client_op, outcome) {
            acquired_tokens.push(record.token);
            acquirers.push(from);
        }
        reference_knowledge[slot].learn(reference_op, expected);
        client_knowledge[slot].learn(client_op, outcome);
    }
    assert!(
        acquired_tokens.windows(2).all(|pair| pair[0] < pair[1]),
        "the fencing tokens of successive acquisitions must increase: {acquired_tokens:?}"
    );
    acquirers
}

/// Node `id`'s identity, named `n{id}`, noting names in `names`.
fn identity(id: u32, names: &HolderNames) -> Identity {
    Identity {
        id: NodeId(id),
        name: format!("n{id}"),
        names: names.clone(),
    }
}

/// Every node that acquired is known by its name: the status pages name the holder.
fn assert_named(acquirers: &[NodeId], names: &HolderNames) {
    assert!(!acquirers.is_empty(), "the script acquires");
    for id in acquirers {
        assert_eq!(
            names.get(*id),
            Some(format!("n{}", id.0)),
            "the name of {id:?}"
        );
    }
}

fn kind_of(outcome: StoreOutcome) -> Kind {
    match outcome {
        StoreOutcome::Applied(_) => A,
        StoreOutcome::Conflict(_) => C,
        StoreOutcome::Failed => panic!("the reference never fails"),
    }
}

/// Where contenders judge expiry, PostgreSQL writes a fresh random version with every write
/// (protocol: When the store fails over): its versions must map one-to-one onto the
/// reference's, and everything else must be equal.
#[derive(Default)]
struct VersionMap {
    store_of_reference: BTreeMap<u64, u64>,
    reference_of_store: BTreeMap<u64, u64>,
}

impl VersionMap {
    fn check(&mut self, expected: StoreOutcome, outcome: StoreOutcome, context: &str) {
        assert_eq!(
            kind_of(expected),
            kind_of(outcome),
            "{context}: {outcome:?}"
        );
        let (StoreOutcome::Applied(want) | StoreOutcome::Conflict(want)) = expected else {
            unreachable!("the reference never fails");
        };
        let (StoreOutcome::Applied(got) | StoreOutcome::Conflict(got)) = outcome else {
            unreachable!("the kinds are equal");
        };
        assert_eq!(
            (got.holder, got.token),
            (want.holder, want.token),
            "{context}: {outcome:?}"
        );
        let mapped = *self
            .store_of_reference
            .entry(want.version)
            .or_insert(got.version);
        let back = *self
            .reference_of_store
            .entry(got.version)
            .or_insert(want.version);
        assert_eq!(
            (mapped, back),
            (got.version, want.version),
            "{context}: versions must map one to one (a version never repeats)"
        );
    }
}

/// Where the store judges expiry, its tokens are revisions: a one-to-one map onto the
/// reference's tokens, built as they show up.
#[derive(Default)]
struct TokenMap {
    store_of_reference: BTreeMap<FencingToken, FencingToken>,
    reference_of_store: BTreeMap<FencingToken, FencingToken>,
}

impl TokenMap {
    fn check(&mut self, expected: StoreOutcome, outcome: StoreOutcome, context: &str) {
        assert_eq!(
            kind_of(expected),
            kind_of(outcome),
            "{context}: {outcome:?}"
        );
        let (StoreOutcome::Applied(want) | StoreOutcome::Conflict(want)) = expected else {
            unreachable!("the reference never fails");
        };
        let (StoreOutcome::Applied(got) | StoreOutcome::Conflict(got)) = outcome else {
            unreachable!("the kinds are equal");
        };
        assert_eq!(got.holder, want.holder, "{context}: {outcome:?}");
        if got.holder.is_none() {
            assert_eq!(got.version, 0, "a vacant key has version 0: {context}");
            return;
        }
        let mapped = *self
            .store_of_reference
            .entry(want.token)
            .or_insert(got.token);
        let back = *self
            .reference_of_store
            .entry(got.token)
            .or_insert(want.token);
        assert_eq!(
            (mapped, back),
            (got.token, want.token),
            "{context}: tokens {got:?} and {want:?}"
        );
    }
}

#[tokio::test]
async fn postgres_answers_as_the_reference_store() {
    let Some(target) = postgres_target(POSTGRES_URL) else {
        return;
    };
    let election = fresh_election("reference");
    let names = HolderNames::default();
    let mut clients = [
        postgres(&target, &election)
            .await
            .with_identity(identity(1, &names)),
        postgres(&target, &election)
            .await
            .with_identity(identity(2, &names)),
        postgres(&target, &election)
            .await
            .with_identity(identity(3, &names)),
    ];
    let acquirers = check_against_reference(ExpiryJudge::Contenders, &mut clients).await;
    assert_named(&acquirers, &names);
}

#[tokio::test]
async fn etcd_answers_as_the_reference_store() {
    let Some(endpoints) = etcd_endpoints() else {
        return;
    };
    let election = fresh_election("reference");
    let names = HolderNames::default();
    let mut clients = [
        etcd(&endpoints, &election, LONG_LEASE)
            .await
            .with_identity(identity(1, &names)),
        etcd(&endpoints, &election, LONG_LEASE)
            .await
            .with_identity(identity(2, &names)),
        etcd(&endpoints, &election, LONG_LEASE)
            .await
            .with_identity(identity(3, &names)),
    ];
    let acquirers = check_against_reference(ExpiryJudge::Store, &mut clients).await;
    assert_named(&acquirers, &names);
}

async fn postgres(target: &PostgresTarget, election: &ElectionName) -> Postgres {
    let client = Postgres::connect(target, election, TIMEOUT)
        .await
        .unwrap_or_else(|error| panic!("connecting to {target}: {error}"));
    assert!(client.is_connected(), "{target} is up but not connected");
    client
}

async fn etcd(endpoints: &[String], election: &ElectionName, lease: Duration) -> Etcd {
    Etcd::connect(endpoints, election, lease, TIMEOUT)
        .await
        .unwrap_or_else(|error| panic!("connecting to etcd at {endpoints:?}: {error}"))
}

// ----- Warnings -------------------------------------------------------------------------------

/// A deferred constraint trigger that raises, at commit, on this test's elections only, the
/// warning PostgreSQL sends with the success of a commit whose wait for a synchronous standby
/// was cancelled: the commit is visible on the primary and may be lost at a failover. A
/// deferred trigger fires where that wait happens, after the statement's rows and before the
/// server says it is ready again.
const WARN_AT_COMMIT: &str = "
CREATE OR REPLACE FUNCTION tenure_test_warn_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.election LIKE 'warned-at-commit-%' THEN
        RAISE WARNING 'canceling wait for synchronous replication due to user request'
            USING DETAIL = 'The transaction has already committed locally, but might not '
                           'have been replicated to the standby.';
    END IF;
    RETURN NULL;
END $$;
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_trigger WHERE tgname = 'tenure_test_warn_at_commit') THEN
        CREATE CONSTRAINT TRIGGER tenure_test_warn_at_commit AFTER UPDATE ON tenure_elections
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
            EXECUTE FUNCTION tenure_test_warn_at_commit();
    END IF;
END $$;";

/// protocol: When the store fails over. A write that PostgreSQL applied but warned about is
/// `Failed` (unknown), never `Applied`: the holder extends nothing on a renewal that a failover
/// may lose, and a contender does not act on such an acquisition.
#[tokio::test]
async fn a_write_the_server_warns_about_at_commit_is_unknown_not_applied() {
    let Some(target) = postgres_target(POSTGRES_URL) else {
        return;
    };
    let election = fresh_election("warned-at-commit");
    let mut client = postgres(&target, &election).await;
    let (raw, connection) = target
        .config
        .connect(tokio_postgres::NoTls)
        .await
        .expect("a second connection, for the test's trigger");
    let driving = tokio::spawn(connection);
    raw.batch_execute(WARN_AT_COMMIT)
        .await
        .expect("the test's trigger is created");

    let request = |id, op| StoreRequest {
        id,
        from: NodeId(1),
        op,
    };
    let StoreOutcome::Applied(vacant) = client.execute(read(1)).await else {
        panic!("the read is answered");
    };
    assert_eq!(vacant.holder, None);
    let version = vacant.version;
    let acquired = client
        .execute(request(2, StoreOp::Acquire { version }))
        .await;
    assert_eq!(
        acquired,
        StoreOutcome::Failed,
        "an acquisition warned about"
    );

    // The server did apply it: the record names node 1 under the next token.
    let StoreOutcome::Applied(held) = client.execute(read(3)).await else {
        panic!("the read after the warning is answered");
    };
    assert_eq!(held.holder, Some(NodeId(1)));
    assert_eq!(held.token, FencingToken(vacant.token.0 + 1));
    let token = held.token;
    let renewed = client.execute(request(4, StoreOp::Renew { token })).await;
    assert_eq!(renewed, StoreOutcome::Failed, "a renewal warned about");
    let released = client.execute(request(5, StoreOp::Release { token })).await;
    assert_eq!(released, StoreOutcome::Failed, "a release warned about");

    // Reads are not writes: the warning is about nothing they did.
    let StoreOutcome::Applied(after) = client.execute(read(6)).await else {
        panic!("a read is answered");
    };
    assert_eq!(after.holder, None, "the release applied too");
    drop(raw);
    driving.abort();
}

// ----- Configuration errors -------------------------------------------------------------------

#[tokio::test]
async fn a_wrong_postgres_password_is_one_clear_error_at_connect() {
    let Some(mut target) = postgres_target(POSTGRES_URL) else {
        return;
    };
    let wrong = "not-the-password-7f3a";
    target.config.password(wrong);
    let error = Postgres::connect(&target, &fresh_election("password"), TIMEOUT)
        .await
        .err()
        .expect("a wrong password must not connect");
    assert!(
        matches!(&error, BackendError::Authentication { user, .. } if user == "tenure"),
        "{error:?}"
    );
    let message = error.to_string();
    eprintln!("{message}");
    assert!(message.contains("password"), "{message}");
    assert!(
        !message.contains(wrong),
        "the message shows the password: {message}"
    );
}

#[tokio::test]
async fn a_wrong_postgres_password_is_the_error_even_when_a_login_outlasts_the_request_timeout() {
    // A login takes far longer than a millisecond (TCP, SCRAM): bounded by the request timeout
    // alone, the first connection timed out, the refusal was never seen, and the node ran on.
    let Some(mut target) = postgres_target(POSTGRES_URL) else {
        return;
    };
    target.config.password("not-the-password-9c1e");
    let request_timeout = Duration::from_millis(1);
    let error = Postgres::connect(&target, &fresh_election("password-slow"), request_timeout)
        .await
        .err()
        .expect("a wrong password must not connect, however short the request timeout");
    assert!(
        matches!(&error, BackendError::Authentication { user, .. } if user == "tenure"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_postgres_user_without_create_rights_is_shown_the_table() {
    let Some(target) = postgres_target(POSTGRES_LIMITED_URL) else {
        return;
    };
    let error = Postgres::connect(&target, &fresh_election("rights"), TIMEOUT)
        .await
        .err()
        .expect("a user who may not create the table must not connect");
    assert!(
        matches!(error, BackendError::Privileges { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    eprintln!("{message}");
    assert!(message.contains(POSTGRES_DDL), "{message}");
    assert!(
        message.contains("GRANT SELECT, INSERT, UPDATE ON tenure_elections TO \"tenure_limited\""),
        "{message}"
    );
}

#[tokio::test]
async fn sslmode_require_against_a_server_without_tls_is_refused() {
    let Some(target) = postgres_target(POSTGRES_URL) else {
        return;
    };
    // scripts/stores.sh starts PostgreSQL without TLS.
    let url = target
        .to_string()
        .replace("sslmode=disable", "sslmode=require");
    let require = with_password(&url, &target);
    let error = Postgres::connect(&require, &fresh_election("tls"), TIMEOUT)
        .await
        .err()
        .expect("sslmode=require must not connect without TLS");
    assert!(
        matches!(error, BackendError::TlsNotOffered { .. }),
        "{error:?}"
    );
    eprintln!("{error}");

    // sslmode=prefer falls back to plaintext when the server offers no TLS.
    let url = target
        .to_string()
        .replace("sslmode=disable", "sslmode=prefer");
    let prefer = with_password(&url, &target);
    let mut client = postgres(&prefer, &fresh_election("tls")).await;
    let outcome = client.execute(read(1)).await;
    assert!(matches!(outcome, StoreOutcome::Applied(_)), "{outcome:?}");
}

/// `url` (a redacted target) parsed again, with `target`'s password put back.
fn with_password(url: &str, target: &PostgresTarget) -> PostgresTarget {
    let Ok(tenure_node::backend::Backend::Postgres(parsed)) =
        tenure_node::backend::Backend::parse(&url.replace(":***@", "@"))
    else {
        panic!("{url} does not parse");
    };
    let mut parsed = *parsed;
    if let Some(password) = target.config.get_password() {
        parsed.config.password(password);
    }
    parsed
}

fn read(id: u64) -> StoreRequest {
    StoreRequest {
        id,
        from: NodeId(1),
        op: StoreOp::Read,
    }
}

// ----- Unreachable and silent servers ---------------------------------------------------------

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.local_addr().expect("its address").port()
}

/// Reads through `client` once and checks that the read fails within the timeout (and a
/// margin for scheduling).
async fn assert_fails_in_time<C: StoreClient>(client: &mut C, what: &str) {
    for id in 1..=2 {
        let started = Instant::now();
        let outcome = client.execute(read(id)).await;
        let elapsed = started.elapsed();
        assert_eq!(outcome, StoreOutcome::Failed, "{what}");
        assert!(
            elapsed <= TIMEOUT + Duration::from_millis(500),
            "{what}: the read took {elapsed:?}, over the timeout {TIMEOUT:?}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_postgres_fails_within_the_timeout() {
    let Some(mut target) = postgres_target(POSTGRES_URL) else {
        return;
    };
    target.config.port(closed_port());
    // Nobody listens: no configuration error, just failing requests.
    let mut client = Postgres::connect(&target, &fresh_election("closed"), TIMEOUT)
        .await
        .expect("an unreachable server is no configuration error");
    assert!(!client.is_connected());
    assert_fails_in_time(&mut client, "closed port").await;
}

#[tokio::test]
async fn a_silent_postgres_fails_within_the_timeout() {
    let Some(mut target) = postgres_target(POSTGRES_URL) else {
        return;
    };
    // A listener that never accepts: the kernel completes the handshake, and nothing answers.
    let silent = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    target
        .config
        .port(silent.local_addr().expect("its address").port());
    let started = Instant::now();
    let mut client = Postgres::connect(&target, &fresh_election("silent"), TIMEOUT)
        .await
        .expect("a silent server is no configuration error");
    assert!(started.elapsed() <= TIMEOUT + Duration::from_millis(500));
    assert_fails_in_time(&mut client, "silent server").await;
    drop(silent);
}

#[tokio::test]
async fn an_unreachable_etcd_fails_within_the_timeout() {
    let Some(_) = etcd_endpoints() else {
        return;
    };
    let endpoints = [format!("127.0.0.1:{}", closed_port())];
    let mut client = etcd(&endpoints, &fresh_election("closed"), LONG_LEASE).await;
    assert_fails_in_time(&mut client, "closed port").await;
}

#[tokio::test]
async fn a_silent_etcd_fails_within_the_timeout() {
    let Some(_) = etcd_endpoints() else {
        return;
    };
    let silent = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let endpoints = [format!(
        "127.0.0.1:{}",
        silent.local_addr().expect("its address").port()
    )];
    let mut client = etcd(&endpoints, &fresh_election("silent"), LONG_LEASE).await;
    assert_fails_in_time(&mut client, "silent server").await;
    drop(silent);
}

// ----- etcd's expiry --------------------------------------------------------------------------

#[tokio::test]
async fn etcd_expires_a_holder_that_stops_renewing() {
    let Some(endpoints) = etcd_endpoints() else {
        return;
    };
    let lease = Duration::from_secs(2);
    let election = fresh_election("expiry");
    let mut holder = etcd(&endpoints, &election, lease).await;
    let mut contender = etcd(&endpoints, &election, lease).await;
    let ttl = Duration::from_secs(holder.ttl_seconds().unsigned_abs());
    let request = |id, from, op| StoreRequest {
        id,
        from: NodeId(from),
        op,
    };

    // Node 1 acquires and renews for twice the TTL: the key outlives its first TTL.
    let StoreOutcome::Applied(acquired) = holder
        .execute(request(1, 1, StoreOp::Acquire { version: 0 }))
        .await
    else {
        panic!("the acquisition of a fresh key must apply");
    };
    let token = acquired.token;
    let renewing_until = Instant::now() + ttl * 2;
    let mut id = 2;
    while Instant::now() < renewing_until {
        let outcome = holder
            .execute(request(id, 1, StoreOp::Renew { token }))
            .await;
        assert!(
            matches!(outcome, StoreOutcome::Applied(r) if r.token == token),
            "{outcome:?}"
        );
        id += 1;
        tokio::time::sleep(ttl / 4).await;
    }

    // It stops: etcd deletes the key within the TTL (and a second of slack) of the latest
    // keep-alive, and not long before.
    let last_renewal = Instant::now();
    holder
        .execute(request(id, 1, StoreOp::Renew { token }))
        .await;
    let vacant_at = loop {
        let outcome = contender.execute(request(id, 2, StoreOp::Read)).await;
        let StoreOutcome::Applied(record) = outcome else {
            panic!("{outcome:?}");
        };
        if record.holder.is_none() {
            break Instant::now();
        }
        assert!(
            last_renewal.elapsed() <= ttl + Duration::from_secs(1),
            "the key outlived its TTL {ttl:?} by more than a second"
        );
        id += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        vacant_at - last_renewal >= ttl / 2,
        "the key went after {:?}, well before its TTL {ttl:?}",
        vacant_at - last_renewal
    );

    // The contender takes it, with a larger token; the former holder's renewal conflicts.
    let outcome = contender
        .execute(request(id + 1, 2, StoreOp::Acquire { version: 0 }))
        .await;
    assert!(
        matches!(outcome, StoreOutcome::Applied(r) if r.holder == Some(NodeId(2)) && r.token > token),
        "{outcome:?}"
    );
    let outcome = holder
        .execute(request(id + 2, 1, StoreOp::Renew { token }))
        .await;
    assert!(
        matches!(outcome, StoreOutcome::Conflict(r) if r.holder == Some(NodeId(2))),
        "{outcome:?}"
    );
}

// ----- The core on each store -----------------------------------------------------------------

/// The lease of the core runs: renewals and polls every eighth of it.
const CORE_LEASE: CoreDuration = CoreDuration::from_secs(4);
const CORE_RUN: Duration = Duration::from_secs(5);

#[tokio::test]
async fn the_core_holds_one_tenure_on_postgres() {
    let Some(target) = postgres_target(POSTGRES_URL) else {
        return;
    };
    let election = fresh_election("core");
    let first = postgres(&target, &election).await;
    let second = postgres(&target, &election).await;
    check_core_run(ExpiryJudge::Contenders, first, second).await;
}

#[tokio::test]
async fn the_core_holds_one_tenure_on_etcd() {
    let Some(endpoints) = etcd_endpoints() else {
        return;
    };
    let election = fresh_election("core");
    let lease = Duration::from_nanos(CORE_LEASE.as_nanos());
    let first = etcd(&endpoints, &election, lease).await;
    let second = etcd(&endpoints, &election, lease).await;
    check_core_run(ExpiryJudge::Store, first, second).await;
}

/// Two nodes run the store-lease core on `first` and `second` for [`CORE_RUN`]: exactly one
/// acquires, keeps the tenure to the end, and each node sends about one request per poll
/// interval (a renewal or a read), never more than one and a half.
async fn check_core_run<C: StoreClient>(judge: ExpiryJudge, first: C, second: C) {
    let params = StoreLeaseParams::for_lease(CORE_LEASE, CoreDuration::from_millis(500), judge);
    let config = StoreLeaseConfig::new(params).expect("a valid store-lease configuration");
    let poll_interval = Duration::from_nanos(params.poll_interval.as_nanos());
    let started = Instant::now();
    let (one, two) = tokio::join!(
        run_core(config, NodeId(1), first, started),
        run_core(config, NodeId(2), second, started),
    );
    let acquisitions = one.acquisitions + two.acquisitions;
    assert_eq!(acquisitions, 1, "one acquisition in all: {one:?} {two:?}");
    assert!(
        one.holds_at_end != two.holds_at_end,
        "one holder at the end: {one:?} {two:?}"
    );
    for run in [&one, &two] {
        let rate =
            run.counters
                .requests_per_interval(&StoreCounters::default(), CORE_RUN, poll_interval);
        eprintln!(
            "{judge:?} node {}: {} requests, {rate:.2} per poll interval of {poll_interval:?}",
            run.id,
            run.counters.requests_total()
        );
        assert_eq!(run.counters.failures(), 0, "{run:?}");
        assert!(rate <= 1.5, "{rate} requests per poll interval: {run:?}");
    }
}

#[derive(Debug)]
struct CoreRun {
    id: NodeId,
    acquisitions: u32,
    holds_at_end: bool,
    counters: StoreCounters,
}

/// Drives one node's core with `client` through a transport until [`CORE_RUN`] has passed
/// since `started`, as the driver does: outputs to the transport, replies and timeouts back.
async fn run_core<C: StoreClient>(
    config: StoreLeaseConfig,
    id: NodeId,
    client: C,
    started: Instant,
) -> CoreRun {
    let now = || CoreInstant::from_nanos(started.elapsed().as_nanos() as u64);
    let request_timeout = Duration::from_nanos(config.params().request_timeout.as_nanos());
    let mut transport = StoreTransport::new(client, request_timeout);
    let mut core = StoreLease::new(config, id, now());
    let mut acquisitions = 0;
    let end = started + CORE_RUN;
    loop {
        while let Some(output) = core.poll_output() {
            match output {
                Output::Send(request) => transport.send(request),
                Output::Event(Event::LeaseAcquired { .. }) => acquisitions += 1,
                Output::Event(_) => {}
                Output::Persist(_) => panic!("the store-lease core persists nothing"),
            }
        }
        let wake = core
            .poll_timeout()
            .map_or(end, |at| started + Duration::from_nanos(at.as_nanos()))
            .min(end);
        tokio::select! {
            reply = transport.recv() => {
                core.handle_reply(now(), reply);
            }
            () = tokio::time::sleep_until(wake) => {
                if Instant::now() >= end {
                    break;
                }
                core.handle_timeout(now());
            }
        }
    }
    CoreRun {
        id,
        acquisitions,
        holds_at_end: core.leadership(now()).is_some(),
        counters: transport.counters(),
    }
}
