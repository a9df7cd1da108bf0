//! The coordination-store backends of `tenure run --backend`: they run the store-lease core's
//! requests ([`StoreRequest`]) against a real PostgreSQL or etcd server.
//!
//! # The event loop
//!
//! The driver owns a [`StoreTransport`] built on a [`StoreClient`]. Every
//! `Output::Send(request)` the core emits goes to [`StoreTransport::send`], which never blocks;
//! the loop awaits [`StoreTransport::recv`] inside its `tokio::select!` (it is cancel-safe) and
//! hands each [`StoreReply`] to the core's `handle_reply`. The transport's worker task runs the
//! requests one at a time, each bounded by the request timeout; a request that times out is
//! answered [`StoreOutcome::Failed`] and its connection is dropped.
//!
//! # The call protocol of a client
//!
//! [`StoreClient::execute`] runs one request and says what became of it. Every error, timeout
//! or lost connection is [`StoreOutcome::Failed`], never `Applied`: the request may or may not
//! have been applied. A client connects again by itself on the next request, once per
//! request, bounded by its connect timeout. [`connect`] opens the client a [`Backend`] names.
//!
//! - `url`: `--backend` and `--election`, parsed.
//! - `postgres` and `postgres_tls`: the PostgreSQL client (the contenders judge expiry).
//! - `etcd`: the etcd client (the store judges expiry with its leases).
//! - `transport`: [`StoreTransport`] and its counters.
//! - `outage`: logs a store's failures once per outage.

mod etcd;
mod outage;
mod postgres;
mod postgres_tls;
mod transport;
mod url;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

#[cfg(doc)]
use tenure_core::StoreReply;
use tenure_core::{NodeId, StoreOutcome, StoreRequest};

pub use etcd::{etcd_key, Etcd};
pub use postgres::{Postgres, POSTGRES_DDL, POSTGRES_TABLE};
pub use transport::{StoreCounterReader, StoreCounters, StoreTransport};
pub use url::{
    Backend, BackendUrlError, ElectionName, ElectionNameError, PostgresTarget, TlsMode,
    MAX_ELECTION_NAME_LENGTH, MAX_ETCD_ENDPOINTS,
};

/// The names of the nodes that held the election, by their ids in the store, as the store
/// showed them: a node writes its name beside its id when it acquires (a PostgreSQL column, the
/// etcd key's value), so that every node's status page names the holder. Shared between the
/// client, which fills it, and the status page, which reads it.
#[derive(Clone, Debug, Default)]
pub struct HolderNames(Arc<Mutex<BTreeMap<NodeId, String>>>);

/// At most this many names are kept: more means ids churn (nodes renamed again and again), and
/// then the oldest are forgotten.
const MAX_HOLDER_NAMES: usize = 64;

impl HolderNames {
    /// Notes that the store names `id` as `name`. A name that no node could have (anyone
    /// with write access to the store can write anything) is ignored: it would go into the
    /// status page and the logs as it is.
    pub fn record(&self, id: NodeId, name: &str) {
        if crate::members::validate_name(name).is_err() {
            return;
        }
        let mut names = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if names.get(&id).is_some_and(|known| known == name) {
            return;
        }
        if names.len() >= MAX_HOLDER_NAMES {
            names.pop_first();
        }
        names.insert(id, name.to_string());
    }

    /// The name the store gave `id`, if it gave one.
    #[must_use]
    pub fn get(&self, id: NodeId) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }
}

/// Who this node is in the store: its id, and the name it writes beside it.
#[derive(Clone, Debug)]
pub struct Identity {
    pub id: NodeId,
    pub name: String,
    /// Where the names the store shows are noted.
    pub names: HolderNames,
}

impl Identity {
    /// The name to write beside `from` when it acquires: this node's, if `from` is this node.
    fn name_for(identity: Option<&Identity>, from: NodeId) -> Option<&str> {
        identity
            .filter(|identity| identity.id == from && !identity.name.is_empty())
            .map(|identity| identity.name.as_str())
    }

    /// Notes that the store names `id` as `name`, if there is an identity to note it in.
    fn note(identity: Option<&Identity>, id: NodeId, name: &str) {
        if let Some(identity) = identity {
            identity.names.record(id, name);
        }
    }
}

/// Runs store requests against one store, for one election.
pub trait StoreClient: Send + 'static {
    /// Runs `request` and says what became of it (see the module docs). Bounded in time by the
    /// client's own timeout. If the returned future is dropped before it finishes, the next
    /// call starts on a new connection, since the old one's state is unknown.
    ///
    /// Declared as a function returning a `Send` future, rather than an `async fn`, so that the
    /// transport can run a generic client on its own task.
    fn execute(&mut self, request: StoreRequest) -> impl Future<Output = StoreOutcome> + Send;
}

/// A client for whichever store a [`Backend`] names, so that the driver needs one type.
pub enum AnyStoreClient {
    // Boxed: the clients differ in size (etcd-client's is a few kilobytes).
    Postgres(Box<Postgres>),
    Etcd(Box<Etcd>),
}

impl StoreClient for AnyStoreClient {
    async fn execute(&mut self, request: StoreRequest) -> StoreOutcome {
        match self {
            AnyStoreClient::Postgres(client) => client.execute(request).await,
            AnyStoreClient::Etcd(client) => client.execute(request).await,
        }
    }
}

/// Opens a client of `backend` for `election`. `lease_duration` is the core's lease (etcd's
/// lease TTL is it, rounded up to whole seconds); `timeout` bounds each connection attempt and
/// each request; `identity` is the name written beside this node's id, and where the names
/// the store shows are noted. A store that cannot be reached is no error (its requests fail until it
/// can); a configuration that can never work is (see [`BackendError`]).
pub async fn connect(
    backend: &Backend,
    election: &ElectionName,
    lease_duration: Duration,
    timeout: Duration,
    identity: Identity,
) -> Result<AnyStoreClient, BackendError> {
    Ok(match backend {
        Backend::Postgres(target) => AnyStoreClient::Postgres(Box::new(
            Postgres::connect(target, election, timeout)
                .await?
                .with_identity(identity),
        )),
        Backend::Etcd { endpoints } => AnyStoreClient::Etcd(Box::new(
            Etcd::connect(endpoints, election, lease_duration, timeout)
                .await?
                .with_identity(identity),
        )),
    })
}

/// A store configuration that can never work, found when connecting: waiting will not help,
/// the operator must change something. Each message says what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendError {
    /// The server refused the user or its password.
    Authentication { user: String, detail: String },
    /// The database named in the URL does not exist.
    NoDatabase { detail: String },
    /// The user may not create the table, or read and write it.
    Privileges { user: String, detail: String },
    /// The table exists but is not the one tenure creates.
    Table { detail: String },
    /// TLS failed for a reason of configuration: an untrusted certificate, a wrong host name.
    Tls { detail: String },
    /// `sslmode=require` and the server offers no TLS.
    TlsNotOffered { detail: String },
    /// The trusted root certificates could not be read.
    Certificates { detail: String },
    /// The endpoints or the lease cannot be used.
    Invalid { detail: String },
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendError::Authentication { user, detail } => write!(
                f,
                "PostgreSQL refused the user `{user}` ({detail}): check the user and password \
                 in --backend, and the server's pg_hba.conf"
            ),
            BackendError::NoDatabase { detail } => write!(
                f,
                "the PostgreSQL database in --backend does not exist ({detail}): create it, or \
                 name another"
            ),
            BackendError::Privileges { user, detail } => write!(
                f,
                "the PostgreSQL user `{user}` lacks the rights tenure needs ({detail}): have the \
                 database owner create the table and grant access to it:\n{POSTGRES_DDL}\n\
                 GRANT SELECT, INSERT, UPDATE ON {POSTGRES_TABLE} TO \"{user}\";"
            ),
            BackendError::Table { detail } => write!(
                f,
                "the PostgreSQL table {POSTGRES_TABLE} is not the one tenure uses ({detail}); \
                 it must be:\n{POSTGRES_DDL}"
            ),
            BackendError::Tls { detail } => write!(
                f,
                "TLS with PostgreSQL failed ({detail}): the server's certificate must be signed \
                 by a trusted root (the platform's, or the one in sslrootcert=PATH) and name the \
                 host in --backend; sslmode=disable turns TLS off"
            ),
            BackendError::TlsNotOffered { detail } => write!(
                f,
                "the PostgreSQL server offers no TLS ({detail}), and sslmode=require in \
                 --backend demands it: turn ssl on in the server, or lower sslmode"
            ),
            BackendError::Certificates { detail } => {
                write!(f, "the trusted root certificates cannot be read: {detail}")
            }
            BackendError::Invalid { detail } => write!(f, "the backend cannot be used: {detail}"),
        }
    }
}

impl std::error::Error for BackendError {}

/// An error and its causes, joined with `: `. The errors of tokio-postgres and etcd-client
/// never carry the password.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some errors repeat their cause in their own message.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_names_keep_the_latest_name_and_stay_bounded() {
        let names = HolderNames::default();
        names.record(NodeId(7), "n1");
        names.record(NodeId(7), "renamed");
        names.record(NodeId(8), "");
        names.record(NodeId(9), "n9\nforged log line");
        names.record(NodeId(10), &"x".repeat(1000));
        assert_eq!(names.get(NodeId(7)).as_deref(), Some("renamed"));
        assert_eq!(names.get(NodeId(8)), None, "an empty name is no name");
        assert_eq!(
            names.get(NodeId(9)),
            None,
            "no node has a newline in its name"
        );
        assert_eq!(names.get(NodeId(10)), None, "no node has a name that long");
        for id in 100..100 + 2 * MAX_HOLDER_NAMES as u32 {
            names.record(NodeId(id), "n");
        }
        let kept = (0..1000)
            .filter(|&id| names.get(NodeId(id)).is_some())
            .count();
        assert_eq!(kept, MAX_HOLDER_NAMES);
    }

    #[test]
    fn only_this_node_writes_its_name() {
        let identity = Identity {
            id: NodeId(3),
            name: "n3".to_string(),
            names: HolderNames::default(),
        };
        assert_eq!(Identity::name_for(Some(&identity), NodeId(3)), Some("n3"));
        assert_eq!(Identity::name_for(Some(&identity), NodeId(4)), None);
        assert_eq!(Identity::name_for(None, NodeId(3)), None);
    }
}
