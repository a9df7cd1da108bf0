//! [`Postgres`]: the store-lease requests as SQL on one row of the table `tenure_elections`.
//!
//! PostgreSQL keeps no clock for the election: the contenders judge expiry
//! (`ExpiryJudge::Contenders`), and the row stays until a compare-and-set changes it. Every
//! request is one statement on a prepared statement, so one round trip; a refused
//! compare-and-set (no row updated) costs one more, a read of the record as it is now, which
//! makes the `Conflict` record one that was current after the refusal:
//!
//! - Read: `SELECT`.
//! - Acquire: `UPDATE … SET holder = $from, version = random, token + 1 WHERE version = $version`.
//! - Renew: `UPDATE … SET version = random WHERE holder = $from AND token = $token`.
//! - Release: `UPDATE … SET holder = NULL, version = random WHERE holder = $from AND token = $token`.
//!
//! The token grows by one with every acquisition, so it strictly increases across holders
//! (protocol: The fencing token). Each statement is atomic: under READ COMMITTED (the default)
//! an `UPDATE` whose row changed under it re-checks its `WHERE` on the newest row version, and
//! under a stricter level it fails with a serialization error, which is `Failed`. The client
//! only connects to a server that accepts writes (`target_session_attrs=read-write`): a hot
//! standby would answer reads from the past.
//!
//! A write during which the server sent a `WARNING` is `Failed`, not `Applied`: PostgreSQL
//! answers a commit whose wait for a synchronous standby was cancelled with success and a
//! warning that it "might not have been replicated", and such a commit can be lost at a
//! failover (protocol: When the store fails over).

use std::io;
use std::time::Duration;

use tenure_core::{FencingToken, NodeId, Record, StoreOp, StoreOutcome, StoreRequest};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::config::TargetSessionAttrs;
use tokio_postgres::error::Severity;
use tokio_postgres::{AsyncMessage, Client, Row, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::backend::outage::Outage;
use crate::backend::url::{ElectionName, PostgresTarget};
use crate::backend::{error_chain, postgres_tls, BackendError, Identity, StoreClient};

/// The table tenure keeps its elections in, one row per election.
pub const POSTGRES_TABLE: &str = "tenure_elections";

/// The table, as tenure creates it when it is missing. A user without the right to create it
/// needs the database owner to run this (and to grant `SELECT, INSERT, UPDATE` on it).
/// `holder_name` is the holder's `--id`, for the status pages; `updated_at` is for people
/// reading the table, and tenure never reads it.
pub const POSTGRES_DDL: &str = "\
CREATE TABLE IF NOT EXISTS tenure_elections (
    election text PRIMARY KEY,
    holder bigint,
    holder_name text,
    version bigint NOT NULL CHECK (version >= 0),
    token bigint NOT NULL CHECK (token >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);";

/// How long a dropped connection's task may take to say goodbye to the server before it is
/// aborted (a server that stopped answering would keep it forever).
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// The least time the first connection, at start-up, is given. Nothing acts before it, so a
/// longer wait costs only start-up time; bounded by the request timeout alone, a login slower
/// than a request (TLS and SCRAM over a long round trip, a loaded machine, a debug build) was
/// taken for an unreachable server, and a refused password never became the one error of a
/// refused start: the node ran on, logging the refusal at debug level only.
const STARTUP_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

// The casts to bigint let a table whose `holder` is an `integer` work too.
const READ: &str = "SELECT holder::bigint, version::bigint, token::bigint, holder_name::text \
                    FROM tenure_elections WHERE election = $1";
// Every write stores a fresh random version (1 to 2^52), never `version + 1`: a write that the
// primary showed and then lost at a failover must not be confused with a later one that would
// have the same number (protocol: When the store fails over).
const ACQUIRE: &str = "UPDATE tenure_elections \
                       SET holder = $2::bigint, holder_name = $4::text, version = \
                               floor(random() * 4503599627370496)::bigint + 1, \
                           token = token + 1, \
                           updated_at = now() \
                       WHERE election = $1 AND version = $3::bigint \
                       RETURNING holder::bigint, version::bigint, token::bigint, holder_name::text";
const RENEW: &str = "UPDATE tenure_elections \
                     SET version = floor(random() * 4503599627370496)::bigint + 1, \
                         updated_at = now() \
                     WHERE election = $1 AND holder = $2::bigint AND token = $3::bigint \
                     RETURNING holder::bigint, version::bigint, token::bigint, holder_name::text";
const RELEASE: &str = "UPDATE tenure_elections \
                       SET holder = NULL, holder_name = NULL, \
                           version = floor(random() * 4503599627370496)::bigint + 1, \
                           updated_at = now() \
                       WHERE election = $1 AND holder = $2::bigint AND token = $3::bigint \
                       RETURNING holder::bigint, version::bigint, token::bigint, holder_name::text";
const INSERT_ROW: &str = "INSERT INTO tenure_elections (election, holder, version, token) \
                          VALUES ($1, NULL, 0, 0) ON CONFLICT (election) DO NOTHING";
const TABLE_EXISTS: &str = "SELECT to_regclass('tenure_elections') IS NOT NULL";

/// A PostgreSQL client for one election. See the module docs.
pub struct Postgres {
    /// With the connect timeout set.
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    election: ElectionName,
    timeout: Duration,
    connection: Option<Connection>,
    /// Set while a request runs: still set at the next one means that one was abandoned
    /// midway, and its connection is in an unknown state.
    interrupted: bool,
    outage: Outage,
    identity: Option<Identity>,
}

impl Postgres {
    /// Writes `identity.name` beside its id when it acquires, and notes the holders' names the
    /// rows show in `identity.names`.
    #[must_use]
    pub fn with_identity(mut self, identity: Identity) -> Postgres {
        self.identity = Some(identity);
        self
    }

    /// Connects to `target` for `election`: sets the statement timeout, creates the table if
    /// it is missing, inserts the election's row if it is missing, and prepares the
    /// statements. `timeout` bounds the connection (and every later one) and each request.
    ///
    /// A server that cannot be reached is no error: its requests fail until it answers. A
    /// refused password, a missing database, missing rights or a TLS failure are. This first
    /// connection may take up to [`STARTUP_CONNECT_TIMEOUT`] if `timeout` is shorter.
    pub async fn connect(
        target: &PostgresTarget,
        election: &ElectionName,
        timeout: Duration,
    ) -> Result<Postgres, BackendError> {
        let mut config = target.config.clone();
        config.connect_timeout(timeout);
        config.target_session_attrs(TargetSessionAttrs::ReadWrite);
        let mut postgres = Postgres {
            tls: postgres_tls::connector(target)?,
            config,
            election: election.clone(),
            timeout,
            connection: None,
            interrupted: false,
            outage: Outage::new("postgres"),
            identity: None,
        };
        let startup_timeout = timeout.max(STARTUP_CONNECT_TIMEOUT);
        let mut startup_config = postgres.config.clone();
        startup_config.connect_timeout(startup_timeout);
        // `timeout` still sets the connection's statement timeout: the connection serves the
        // requests that follow.
        let opened = tokio::time::timeout(
            startup_timeout,
            open(&startup_config, &postgres.tls, &postgres.election, timeout),
        )
        .await;
        match opened {
            Ok(Ok(connection)) => postgres.connection = Some(connection),
            Ok(Err(error)) => {
                let user = postgres.config.get_user().unwrap_or_default();
                if let Some(fatal) = fatal(&error, user) {
                    return Err(fatal);
                }
                postgres.outage.handle_failure("connecting", &error);
            }
            Err(_) => postgres
                .outage
                .handle_failure("connecting", &"no answer within the timeout"),
        }
        Ok(postgres)
    }

    /// Whether a connection is open (it may still have died since its latest request).
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.connection.is_some()
    }

    /// Runs `request`, connecting first if there is no connection.
    async fn run(&mut self, request: StoreRequest) -> Result<StoreOutcome, Failure> {
        let connection = match &mut self.connection {
            Some(connection) => connection,
            slot @ None => slot.insert(
                open(&self.config, &self.tls, &self.election, self.timeout)
                    .await
                    .map_err(Failure::Open)?,
            ),
        };
        // Warnings from before this request are not about it.
        while connection.session.warnings.try_recv().is_ok() {}
        let client = &connection.session.client;
        let statements = &connection.statements;
        let election = self.election.as_str();
        let from = i64::from(request.from.0);
        // A version or token beyond bigint cannot be in the row: such a request conflicts.
        let (statement, operand) = match request.op {
            StoreOp::Read => (&statements.read, None),
            StoreOp::Acquire { version } => (&statements.acquire, Some(version)),
            StoreOp::Renew { token } => (&statements.renew, Some(token.0)),
            StoreOp::Release { token } => (&statements.release, Some(token.0)),
        };
        // Only this node's own acquisitions carry its name.
        let name = Identity::name_for(self.identity.as_ref(), request.from);
        let row = match operand.map(i64::try_from) {
            None => client.query_opt(statement, &[&election]).await?,
            Some(Ok(operand)) if matches!(request.op, StoreOp::Acquire { .. }) => {
                client
                    .query_opt(statement, &[&election, &from, &operand, &name])
                    .await?
            }
            Some(Ok(operand)) => {
                client
                    .query_opt(statement, &[&election, &from, &operand])
                    .await?
            }
            Some(Err(_)) => None,
        };
        if let Some(row) = row {
            // The connection's task handled any notice before it passed on the end of the
            // statement, so a warning about this write is in the channel now.
            if request.op != StoreOp::Read {
                if let Ok(warning) = connection.session.warnings.try_recv() {
                    return Err(Failure::Warned(warning));
                }
            }
            return Ok(StoreOutcome::Applied(decode(&row, self.identity.as_ref())?));
        }
        // A read that finds no row, or a refused write followed by one: someone deleted the
        // row by hand.
        if request.op == StoreOp::Read {
            return Err(Failure::RowMissing);
        }
        match client.query_opt(&statements.read, &[&election]).await? {
            Some(row) => Ok(StoreOutcome::Conflict(decode(
                &row,
                self.identity.as_ref(),
            )?)),
            None => Err(Failure::RowMissing),
        }
    }
}

impl StoreClient for Postgres {
    async fn execute(&mut self, request: StoreRequest) -> StoreOutcome {
        if std::mem::replace(&mut self.interrupted, true) {
            // The previous request was abandoned midway: its connection's state is unknown.
            self.connection = None;
        }
        let outcome = match tokio::time::timeout(self.timeout, self.run(request)).await {
            Ok(Ok(outcome)) => {
                self.outage.handle_success();
                outcome
            }
            Ok(Err(failure)) => {
                // Whatever went wrong, the next request starts on a new connection; it
                // inserts the row again if it went missing.
                self.connection = None;
                self.outage.handle_failure(request.op.name(), &failure);
                StoreOutcome::Failed
            }
            Err(_) => {
                self.connection = None;
                self.outage
                    .handle_failure(request.op.name(), &"no answer within the timeout");
                StoreOutcome::Failed
            }
        };
        self.interrupted = false;
        outcome
    }
}

/// An open connection with its statements prepared.
struct Connection {
    session: Session,
    statements: Statements,
}

/// The client and the task that drives its connection.
struct Session {
    client: Client,
    task: JoinHandle<()>,
    /// The `WARNING`s the server sent, in order, as text.
    warnings: mpsc::UnboundedReceiver<String>,
}

struct Statements {
    read: Statement,
    acquire: Statement,
    renew: Statement,
    release: Statement,
}

impl Drop for Session {
    fn drop(&mut self) {
        // The client is dropped right after this, and the task then says goodbye to the server
        // and ends; one that still runs after the grace is stuck on a silent server.
        let task = self.task.abort_handle();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    tokio::time::sleep(CLOSE_GRACE).await;
                    task.abort();
                });
            }
            Err(_) => task.abort(),
        }
    }
}

/// Why opening a connection failed: the step, and tokio-postgres's error.
#[derive(Debug)]
struct OpenError {
    step: &'static str,
    error: tokio_postgres::Error,
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.step, error_chain(&self.error))
    }
}

/// Why a request failed. Each is taken as [`StoreOutcome::Failed`].
#[derive(Debug)]
enum Failure {
    Open(OpenError),
    Query(tokio_postgres::Error),
    /// The server warned during a write: it may have applied it, and may lose it.
    Warned(String),
    RowMissing,
    Corrupt(&'static str),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(error: tokio_postgres::Error) -> Failure {
        Failure::Query(error)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Open(error) => write!(f, "{error}"),
            Failure::Query(error) => f.write_str(&error_chain(error)),
            Failure::Warned(warning) => write!(
                f,
                "the server warned during the write, which is therefore taken as unknown: \
                 {warning}"
            ),
            Failure::RowMissing => write!(
                f,
                "the election's row in {POSTGRES_TABLE} is gone (deleted by hand?); the next \
                 connection inserts it again"
            ),
            Failure::Corrupt(what) => write!(f, "the election's row holds {what}"),
        }
    }
}

/// Opens a connection and makes it ready: statement timeout, table, row, statements.
async fn open(
    config: &tokio_postgres::Config,
    tls: &MakeRustlsConnect,
    election: &ElectionName,
    timeout: Duration,
) -> Result<Connection, OpenError> {
    let at = |step: &'static str| move |error| OpenError { step, error };
    let (client, connection) = config
        .connect(tls.clone())
        .await
        .map_err(at("connecting"))?;
    let (warned, warnings) = mpsc::unbounded_channel();
    let task = tokio::spawn(drive_connection(connection, warned));
    let session = Session {
        client,
        task,
        warnings,
    };
    let client = &session.client;
    // The server gives up on a statement the client has given up on.
    let milliseconds = timeout.as_millis().max(1);
    client
        .batch_execute(&format!("SET statement_timeout = {milliseconds}"))
        .await
        .map_err(at("setting the statement timeout"))?;
    let table_exists: bool = client
        .query_one(TABLE_EXISTS, &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(at("looking for the table"))?;
    if !table_exists {
        create_table(client)
            .await
            .map_err(at("creating the table"))?;
    }
    client
        .execute(INSERT_ROW, &[&election.as_str()])
        .await
        .map_err(at("inserting the election's row"))?;
    let statements = Statements {
        read: client.prepare(READ).await.map_err(at("preparing"))?,
        acquire: client.prepare(ACQUIRE).await.map_err(at("preparing"))?,
        renew: client.prepare(RENEW).await.map_err(at("preparing"))?,
        release: client.prepare(RELEASE).await.map_err(at("preparing"))?,
    };
    Ok(Connection {
        session,
        statements,
    })
}

/// Drives `connection` until it ends, passing each `WARNING` the server sends to `warned`
/// before the messages that follow it (the notices of lower severity are dropped).
async fn drive_connection<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
    warned: mpsc::UnboundedSender<String>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            Some(Ok(AsyncMessage::Notice(notice))) => {
                if notice.parsed_severity() == Some(Severity::Warning) {
                    let mut text = notice.message().to_owned();
                    if let Some(detail) = notice.detail() {
                        text = format!("{text} ({detail})");
                    }
                    let _ = warned.send(text);
                }
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => {
                tracing::debug!(store = "postgres", "the connection ended: {error}");
                return;
            }
            None => return,
        }
    }
}

/// Creates the table. Two nodes that create it at once may see PostgreSQL refuse the second
/// (a known race of `IF NOT EXISTS` on the catalog's unique index): the table exists then.
async fn create_table(client: &Client) -> Result<(), tokio_postgres::Error> {
    match client.batch_execute(POSTGRES_DDL).await {
        Ok(()) => Ok(()),
        Err(error) if matches!(error.code().map(|c| c.code()), Some("23505" | "42P07")) => Ok(()),
        Err(error) => Err(error),
    }
}

/// The record a row holds; the holder's name, if the row gives one, is noted in `identity`.
fn decode(row: &Row, identity: Option<&Identity>) -> Result<Record, Failure> {
    let holder: Option<i64> = row.try_get(0)?;
    let version: i64 = row.try_get(1)?;
    let token: i64 = row.try_get(2)?;
    let name: Option<String> = row.try_get(3)?;
    let holder = match holder {
        None => None,
        Some(holder) => {
            Some(NodeId(u32::try_from(holder).map_err(|_| {
                Failure::Corrupt("a holder that is no node id")
            })?))
        }
    };
    if let (Some(holder), Some(name)) = (holder, &name) {
        Identity::note(identity, holder, name);
    }
    Ok(Record {
        holder,
        version: u64::try_from(version).map_err(|_| Failure::Corrupt("a negative version"))?,
        token: FencingToken(
            u64::try_from(token).map_err(|_| Failure::Corrupt("a negative token"))?,
        ),
    })
}

/// The [`BackendError`] that `error`, met while connecting, stands for; `None` when trying
/// again later may work (the server is down, starting, or overloaded).
fn fatal(error: &OpenError, user: &str) -> Option<BackendError> {
    let detail = error.to_string();
    if let Some(state) = error.error.code() {
        let code = state.code();
        return match code {
            "42501" => Some(BackendError::Privileges {
                user: user.to_owned(),
                detail,
            }),
            "3D000" => Some(BackendError::NoDatabase { detail }),
            _ if code.starts_with("28") => Some(BackendError::Authentication {
                user: user.to_owned(),
                detail,
            }),
            _ if code.starts_with("42") => Some(BackendError::Table { detail }),
            _ => None,
        };
    }
    if causes(&error.error).any(|cause| rustls_error(cause).is_some()) {
        return Some(BackendError::Tls { detail });
    }
    if error.error.is_closed() || causes(&error.error).any(|cause| cause.is::<io::Error>()) {
        return None;
    }
    // What is left is tokio-postgres's own refusal, told apart only by its message: the
    // server lacks TLS under sslmode=require, or wants a password the URL lacks.
    let message = error_chain(&error.error);
    if message.contains("server does not support TLS") {
        Some(BackendError::TlsNotOffered { detail })
    } else if message.contains("TLS") {
        Some(BackendError::Tls { detail })
    } else if message.contains("authentication") {
        Some(BackendError::Authentication {
            user: user.to_owned(),
            detail,
        })
    } else {
        None
    }
}

/// `error` and its causes.
fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |error| error.source())
}

/// The rustls error that `error` is or wraps in an `io::Error` (tokio-rustls reports
/// handshake failures that way, and `io::Error::source` skips the wrapped error itself).
fn rustls_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    error.downcast_ref::<rustls::Error>().or_else(|| {
        error
            .downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    })
}
