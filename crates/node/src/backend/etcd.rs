//! [`Etcd`]: the store-lease requests on the etcd key `/tenure/elections/NAME`, whose value is
//! the holder's node id and which lives as long as the holder's etcd lease.
//!
//! etcd judges expiry (`ExpiryJudge::Store`): it deletes the key when the lease's TTL runs out,
//! and contenders take only an absent key. The record maps onto the key so:
//!
//! - `holder`: the key's value, a node id in decimal, then a space and the node's name (its
//!   `--id`, for the status pages); `None` when the key is absent.
//! - `version`: the key's `mod_revision`, 0 when it is absent. A renewal (a lease keep-alive)
//!   does not change it: with the store judging expiry, contenders never watch the version.
//! - `token`: the key's `create_revision`, the etcd revision of the acquisition, which is
//!   larger for every later acquisition (protocol: The fencing token); 0 when the key is
//!   absent, and the released token in the answer to a release.
//!
//! The requests:
//!
//! - Read: one `Range`.
//! - Acquire: `LeaseGrant` with TTL = the lease in whole seconds, rounded up (etcd may raise it
//!   to its minimum: a longer TTL only delays a takeover), then one `Txn`: if the key's
//!   `create_revision` is 0 (absent), put it with the lease, else read it. A lease that ends up
//!   unused is revoked in the background. Only version 0 can be acquired: a version the
//!   contender saw on a present key is never vacant.
//! - Renew: ONE keep-alive on the tenure's lease (a keep-alive stream opened, one request, one
//!   answer, closed), then a `Range` to check the key is still this tenure's, on this lease. No
//!   keep-alive is ever sent on this client's own: the core counts its acting deadline from
//!   when it sent the renewal, so a renewal the core did not ask for would be unaccounted.
//! - Release: one `Txn`: if the key is this tenure's (`create_revision` = token, value = the
//!   sender), read and delete it; then the lease is revoked in the background.
//!
//! Any error or timeout is [`StoreOutcome::Failed`], and the next request starts on a new
//! client (etcd-client reconnects by itself too; a new client forgets a stuck stream).

use std::collections::BTreeMap;
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, ConnectOptions, KeyValue, PutOptions, Txn, TxnOp};
use tenure_core::{FencingToken, NodeId, Record, StoreOp, StoreOutcome, StoreRequest};

use crate::backend::outage::Outage;
use crate::backend::url::ElectionName;
use crate::backend::{error_chain, BackendError, Identity, StoreClient};

/// The leases of tenures acquired through one client that it remembers. One node holds one
/// tenure at a time; a few more cover tests that share a client between node ids.
const MAX_REMEMBERED_LEASES: usize = 16;

/// The key of `election`.
#[must_use]
pub fn etcd_key(election: &ElectionName) -> String {
    format!("/tenure/elections/{election}")
}

/// An etcd client for one election. See the module docs.
pub struct Etcd {
    endpoints: Vec<String>,
    key: String,
    /// The TTL of every lease granted, in seconds.
    ttl_seconds: i64,
    timeout: Duration,
    client: Option<Client>,
    /// The lease of each tenure acquired through this client, by holder and token.
    leases: BTreeMap<(NodeId, FencingToken), i64>,
    /// Set while a request runs: still set at the next one means that one was abandoned
    /// midway, and its client is in an unknown state.
    interrupted: bool,
    outage: Outage,
    identity: Option<Identity>,
}

impl Etcd {
    /// Writes `identity.name` beside its id when it acquires, and notes the holders' names the
    /// key shows in `identity.names`.
    #[must_use]
    pub fn with_identity(mut self, identity: Identity) -> Etcd {
        self.identity = Some(identity);
        self
    }

    /// The key's value for a tenure of `from`: its id, and its name if it is this node.
    fn value_of(&self, from: NodeId) -> String {
        match Identity::name_for(self.identity.as_ref(), from) {
            Some(name) => format!("{} {name}", from.0),
            None => from.0.to_string(),
        }
    }

    /// The record a key holds, noting the holder's name.
    fn record(&self, value: Option<&KeyValue>) -> Result<Record, Failure> {
        if let Some((id, name)) = value.and_then(holder_and_name) {
            Identity::note(self.identity.as_ref(), id, name);
        }
        record(value)
    }

    /// A client of the etcd cluster at `endpoints` (`HOST:PORT`) for `election`, whose leases
    /// last `lease_duration` rounded up to whole seconds. `timeout` bounds each connection
    /// attempt and each request. It connects lazily: a cluster that cannot be reached is no
    /// error (its requests fail until it answers), and the first request is a warning then.
    pub async fn connect(
        endpoints: &[String],
        election: &ElectionName,
        lease_duration: Duration,
        timeout: Duration,
    ) -> Result<Etcd, BackendError> {
        if endpoints.is_empty() {
            return Err(BackendError::Invalid {
                detail: "no etcd endpoint".into(),
            });
        }
        let ttl_seconds = i64::try_from(lease_duration.as_secs())
            .ok()
            .and_then(|seconds| seconds.checked_add(i64::from(lease_duration.subsec_nanos() > 0)))
            .filter(|&seconds| seconds > 0)
            .ok_or_else(|| BackendError::Invalid {
                detail: format!("the lease {lease_duration:?} is no etcd lease TTL"),
            })?;
        let mut etcd = Etcd {
            endpoints: endpoints.to_vec(),
            key: etcd_key(election),
            ttl_seconds,
            timeout,
            client: None,
            leases: BTreeMap::new(),
            interrupted: false,
            outage: Outage::new("etcd"),
            identity: None,
        };
        etcd.client = Some(
            etcd.new_client()
                .await
                .map_err(|error| BackendError::Invalid {
                    detail: error_chain(&error),
                })?,
        );
        Ok(etcd)
    }

    /// The TTL this client asks for its leases, in seconds.
    #[must_use]
    pub fn ttl_seconds(&self) -> i64 {
        self.ttl_seconds
    }

    async fn new_client(&self) -> Result<Client, etcd_client::Error> {
        let options = ConnectOptions::new()
            .with_connect_timeout(self.timeout)
            .with_timeout(self.timeout);
        Client::connect(&self.endpoints, Some(options)).await
    }

    /// Runs `request`, making a client first if there is none.
    async fn run(&mut self, request: StoreRequest) -> Result<StoreOutcome, Failure> {
        let mut client = match &self.client {
            Some(client) => client.clone(),
            None => {
                let client = self.new_client().await?;
                self.client = Some(client.clone());
                client
            }
        };
        match request.op {
            StoreOp::Read => Ok(StoreOutcome::Applied(self.read(&mut client).await?)),
            StoreOp::Acquire { version } => self.acquire(&mut client, request.from, version).await,
            StoreOp::Renew { token } => self.renew(&mut client, request.from, token).await,
            StoreOp::Release { token } => self.release(&mut client, request.from, token).await,
        }
    }

    async fn read(&self, client: &mut Client) -> Result<Record, Failure> {
        let response = client.get(self.key.as_str(), None).await?;
        self.record(response.kvs().first())
    }

    async fn acquire(
        &mut self,
        client: &mut Client,
        from: NodeId,
        version: u64,
    ) -> Result<StoreOutcome, Failure> {
        if version != 0 {
            return Ok(StoreOutcome::Conflict(self.read(client).await?));
        }
        let lease = client.lease_grant(self.ttl_seconds, None).await?.id();
        let put = PutOptions::new().with_lease(lease);
        let transaction = Txn::new()
            .when([Compare::create_revision(
                self.key.as_str(),
                CompareOp::Equal,
                0,
            )])
            .and_then([TxnOp::put(
                self.key.as_str(),
                self.value_of(from),
                Some(put),
            )])
            .or_else([TxnOp::get(self.key.as_str(), None)]);
        let response = match client.txn(transaction).await {
            Ok(response) => response,
            Err(error) => {
                // The put may have applied: revoking the lease deletes the key then, and no
                // one holds a tenure the core was never told of.
                self.revoke_in_background(client, lease);
                return Err(error.into());
            }
        };
        if !response.succeeded() {
            self.revoke_in_background(client, lease);
            let current = first_range_value(&response);
            return Ok(StoreOutcome::Conflict(self.record(current.as_ref())?));
        }
        let revision = response
            .header()
            .map(|header| header.revision())
            .ok_or(Failure::Corrupt("a transaction answer without a header"))?;
        let revision =
            u64::try_from(revision).map_err(|_| Failure::Corrupt("a negative revision"))?;
        let token = FencingToken(revision);
        self.remember_lease(from, token, lease);
        Ok(StoreOutcome::Applied(Record {
            holder: Some(from),
            version: revision,
            token,
        }))
    }

    async fn renew(
        &mut self,
        client: &mut Client,
        from: NodeId,
        token: FencingToken,
    ) -> Result<StoreOutcome, Failure> {
        let lease = match self.leases.get(&(from, token)) {
            Some(&lease) => lease,
            None => {
                // A tenure this client did not acquire (it was made anew): the key names the
                // lease, if the tenure is still there.
                let response = client.get(self.key.as_str(), None).await?;
                match response.kvs().first() {
                    Some(value) if is_tenure(value, from, token) => value.lease(),
                    other => return Ok(StoreOutcome::Conflict(self.record(other)?)),
                }
            }
        };
        let alive = match client.lease_keep_alive(lease).await {
            // Dropping the keeper and its stream at once closes the stream: one keep-alive.
            Ok((_keeper, _stream)) => true,
            // etcd-client's name for an answer with TTL ≤ 0: the lease is gone.
            Err(etcd_client::Error::LeaseKeepAliveError(_)) => false,
            Err(error) => return Err(error.into()),
        };
        let response = client.get(self.key.as_str(), None).await?;
        let value = response.kvs().first();
        let current = self.record(value)?;
        if alive
            && value.is_some_and(|value| is_tenure(value, from, token) && value.lease() == lease)
        {
            Ok(StoreOutcome::Applied(current))
        } else {
            self.leases.remove(&(from, token));
            Ok(StoreOutcome::Conflict(current))
        }
    }

    async fn release(
        &mut self,
        client: &mut Client,
        from: NodeId,
        token: FencingToken,
    ) -> Result<StoreOutcome, Failure> {
        let Ok(revision) = i64::try_from(token.0) else {
            return Ok(StoreOutcome::Conflict(self.read(client).await?));
        };
        let key = self.key.as_str();
        let transaction = Txn::new()
            .when([
                Compare::create_revision(key, CompareOp::Equal, revision),
                Compare::value(key, CompareOp::Equal, self.value_of(from)),
            ])
            .and_then([TxnOp::get(key, None), TxnOp::delete(key, None)])
            .or_else([TxnOp::get(key, None)]);
        let response = client.txn(transaction).await?;
        let value = first_range_value(&response);
        if !response.succeeded() {
            return Ok(StoreOutcome::Conflict(self.record(value.as_ref())?));
        }
        let remembered = self.leases.remove(&(from, token));
        if let Some(lease) = value.as_ref().map(KeyValue::lease).or(remembered) {
            self.revoke_in_background(client, lease);
        }
        Ok(StoreOutcome::Applied(Record {
            holder: None,
            version: 0,
            token,
        }))
    }

    fn remember_lease(&mut self, from: NodeId, token: FencingToken, lease: i64) {
        if self.leases.len() >= MAX_REMEMBERED_LEASES {
            // The oldest tenure of the smallest node id: long over, or renewed through a read.
            self.leases.pop_first();
        }
        self.leases.insert((from, token), lease);
    }

    /// Revokes `lease` without delaying the answer; a revocation that fails leaves the lease
    /// to run out on its own, a TTL later.
    fn revoke_in_background(&self, client: &Client, lease: i64) {
        let mut client = client.clone();
        let timeout = self.timeout;
        tokio::spawn(async move {
            match tokio::time::timeout(timeout, client.lease_revoke(lease)).await {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => tracing::debug!(store = "etcd", lease, "revoke failed: {error}"),
                Err(_) => tracing::debug!(store = "etcd", lease, "revoke timed out"),
            }
        });
    }
}

impl StoreClient for Etcd {
    async fn execute(&mut self, request: StoreRequest) -> StoreOutcome {
        if std::mem::replace(&mut self.interrupted, true) {
            // The previous request was abandoned midway: start on a new client.
            self.client = None;
        }
        let outcome = match tokio::time::timeout(self.timeout, self.run(request)).await {
            Ok(Ok(outcome)) => {
                self.outage.handle_success();
                outcome
            }
            Ok(Err(failure)) => {
                self.client = None;
                self.outage.handle_failure(request.op.name(), &failure);
                StoreOutcome::Failed
            }
            Err(_) => {
                self.client = None;
                self.outage
                    .handle_failure(request.op.name(), &"no answer within the timeout");
                StoreOutcome::Failed
            }
        };
        self.interrupted = false;
        outcome
    }
}

/// Why a request failed. Each is taken as [`StoreOutcome::Failed`].
#[derive(Debug)]
enum Failure {
    Etcd(etcd_client::Error),
    Corrupt(&'static str),
}

impl From<etcd_client::Error> for Failure {
    fn from(error: etcd_client::Error) -> Failure {
        Failure::Etcd(error)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Etcd(error) => f.write_str(&error_chain(error)),
            Failure::Corrupt(what) => write!(f, "etcd answered with {what}"),
        }
    }
}

/// Whether `value` is the key of the tenure `token` of `from`.
fn is_tenure(value: &KeyValue, from: NodeId, token: FencingToken) -> bool {
    u64::try_from(value.create_revision()) == Ok(token.0) && holder(value) == Some(from)
}

/// The node id a key's value names, if it is one.
fn holder(value: &KeyValue) -> Option<NodeId> {
    holder_and_name(value).map(|(id, _)| id)
}

/// The node id a key's value names, and the name after it (empty if there is none).
fn holder_and_name(value: &KeyValue) -> Option<(NodeId, &str)> {
    let text = std::str::from_utf8(value.value()).ok()?;
    let (id, name) = text.split_once(' ').unwrap_or((text, ""));
    Some((NodeId(id.parse::<u32>().ok()?), name))
}

/// The record a key holds (see the module docs), or the vacant record when it is absent.
fn record(value: Option<&KeyValue>) -> Result<Record, Failure> {
    let Some(value) = value else {
        return Ok(Record::default());
    };
    let revision = |revision: i64| {
        u64::try_from(revision).map_err(|_| Failure::Corrupt("a negative revision"))
    };
    Ok(Record {
        holder: Some(holder(value).ok_or(Failure::Corrupt("a key whose value is no node id"))?),
        version: revision(value.mod_revision())?,
        token: FencingToken(revision(value.create_revision())?),
    })
}

/// The key as the first read in a transaction's answer found it, if it was there.
fn first_range_value(response: &etcd_client::TxnResponse) -> Option<KeyValue> {
    response
        .op_responses()
        .into_iter()
        .find_map(|op| match op {
            etcd_client::TxnOpResponse::Get(range) => Some(range.kvs().first().cloned()),
            _ => None,
        })
        .flatten()
}
