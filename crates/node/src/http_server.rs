//! Serving the HTTP API without letting its clients starve the election of file descriptors.
//!
//! The election needs descriptors at moments it does not choose: a new term or vote is made
//! durable through a temporary file and an fsync of the directory, and a node that starts to
//! act spawns the deadline guard with its pipes. A node that cannot open them must stop (it
//! may not act on a vote it could not store), so HTTP clients that hold every descriptor would
//! take the node out of the cluster: a robustness probe did exactly that with 300 idle
//! connections under `ulimit -n 256`. Hence:
//!
//! - At most [`ConnectionLimits::max_connections`] connections are open at once, a number
//!   derived from the soft `RLIMIT_NOFILE` that leaves [`DESCRIPTOR_RESERVE`] descriptors (and
//!   half of the rest) to everything else. A connection is accepted only once a permit is
//!   free; until then it waits in the kernel's listen backlog, which costs this process no
//!   descriptor.
//! - A client must send a request's complete headers within [`HEADER_READ_TIMEOUT`] of the
//!   connection opening or of the previous response, so an idle or slow-header connection
//!   (slowloris) gives its permit back.
//! - No connection lives longer than [`CONNECTION_LIFETIME`]: it is then closed after its
//!   current request.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rustix::process::{getrlimit, Resource};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::{debug, warn};

/// Descriptors kept for everything but HTTP connections: stdio, the UDP socket, the listener,
/// the state directory's lock, a store's temporary file and directory, the deadline guard's
/// pipes, the runtime's own. A few of those at a time; 64 leaves a wide margin.
pub const DESCRIPTOR_RESERVE: u64 = 64;

/// The most HTTP connections at once, however high the descriptor limit. A node has a few
/// clients (a Prometheus scraper, probes, an operator's `tenure status`).
pub const MAX_HTTP_CONNECTIONS: u64 = 64;

/// How long a client may take to send a request's headers, counted from the connection's
/// opening or the previous response. Probes and scrapers send them at once.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest a connection stays open; then it is closed after its current request.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// How long a connection asked to close after `CONNECTION_LIFETIME` may take to finish.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Buffer size per connection; hyper's minimum. The API's requests are a line and a few
/// headers, so this bounds a connection's memory and its headers.
const MAX_BUFFER: usize = 8 * 1024;

/// Pause after a failed accept (such as EMFILE) before trying again, so that the loop neither
/// spins nor floods the log.
const ACCEPT_RETRY: Duration = Duration::from_millis(250);

/// The shortest interval between two warnings that the connection limit was reached.
const LIMIT_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// Bounds on the HTTP API's connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub connection_lifetime: Duration,
}

impl ConnectionLimits {
    /// The limits for this process's soft `RLIMIT_NOFILE`.
    pub fn for_this_process() -> ConnectionLimits {
        let soft = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
        ConnectionLimits::for_descriptor_limit(soft)
    }

    /// Half the descriptors left after `DESCRIPTOR_RESERVE`, at most `MAX_HTTP_CONNECTIONS`,
    /// and at least one (an API that accepts nothing is of no use; at such a limit the node
    /// itself barely runs).
    pub fn for_descriptor_limit(soft_limit: u64) -> ConnectionLimits {
        let share = soft_limit.saturating_sub(DESCRIPTOR_RESERVE) / 2;
        let max_connections = share.clamp(1, MAX_HTTP_CONNECTIONS);
        ConnectionLimits {
            // At most MAX_HTTP_CONNECTIONS, which fits every usize.
            max_connections: usize::try_from(max_connections).unwrap_or(1),
            header_read_timeout: HEADER_READ_TIMEOUT,
            connection_lifetime: CONNECTION_LIFETIME,
        }
    }
}

/// Serves `router` on `listener` within `limits` until the process exits.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_BUFFER);
    let mut last_limit_warning: Option<Instant> = None;
    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let now = Instant::now();
                if last_limit_warning.is_none_or(|at| now >= at + LIMIT_WARNING_INTERVAL) {
                    last_limit_warning = Some(now);
                    warn!(
                        max_connections = limits.max_connections,
                        "the HTTP API has reached its connection limit; new connections wait \
                         until one closes (idle ones close after {}s). The election is not \
                         affected",
                        limits.header_read_timeout.as_secs()
                    );
                }
                permits
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| io::Error::other("the connection semaphore was closed"))?
            }
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(problem) if is_connection_error(&problem) => continue,
            Err(problem) => {
                // EMFILE or ENFILE: something else holds the descriptors. Back off; the
                // pending connection stays in the backlog.
                warn!(%problem, "cannot accept an HTTP connection; retrying");
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(router.clone());
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let lifetime = limits.connection_lifetime;
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = tokio::time::sleep(lifetime) => {
                    connection.as_mut().graceful_shutdown();
                    tokio::time::timeout(CLOSE_GRACE, connection.as_mut())
                        .await
                        .unwrap_or(Ok(()))
                }
            };
            if let Err(problem) = result {
                debug!(%problem, "HTTP connection ended with an error");
            }
            drop(permit);
        });
    }
}

/// Errors of one connection that the peer caused; the listener itself is fine.
fn is_connection_error(problem: &io::Error) -> bool {
    matches!(
        problem.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    /// A server with one connection slot and a 300 ms header timeout, and its address.
    async fn small_server() -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let limits = ConnectionLimits {
            max_connections: 1,
            header_read_timeout: Duration::from_millis(300),
            connection_lifetime: Duration::from_secs(60),
        };
        let router = Router::new().route("/", get(|| async { "ok" }));
        tokio::spawn(serve(listener, router, limits));
        address
    }

    /// Sends a request on a new connection and returns the response, or `None` if none came
    /// within `limit`.
    async fn request(address: std::net::SocketAddr, limit: Duration) -> Option<String> {
        let exchange = async {
            let mut stream = TcpStream::connect(address).await.ok()?;
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .ok()?;
            let mut response = String::new();
            stream.read_to_string(&mut response).await.ok()?;
            Some(response)
        };
        tokio::time::timeout(limit, exchange).await.ok().flatten()
    }

    #[tokio::test]
    async fn a_slow_header_client_loses_its_slot_at_the_header_timeout() {
        let address = small_server().await;
        // A slowloris takes the only slot: one header byte every 50 ms, never finishing.
        let mut slow = TcpStream::connect(address).await.unwrap();
        let dripping = tokio::spawn(async move {
            let started = Instant::now();
            for byte in b"GET / HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter()
            {
                if slow.write_all(&[*byte]).await.is_err() {
                    return Some(started.elapsed());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let mut rest = Vec::new();
            // The server must have closed the connection by now.
            let _ = slow.read_to_end(&mut rest).await;
            None
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        // While it holds the slot, another client waits in the backlog.
        assert_eq!(request(address, Duration::from_millis(100)).await, None);
        // The header timeout closes the slow connection, and the waiting client is served.
        let response = request(address, Duration::from_secs(5)).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("ok"), "{response}");
        let cut = dripping.await.unwrap();
        assert!(
            cut.is_some_and(|after| after < Duration::from_secs(2)),
            "{cut:?}"
        );
    }

    #[test]
    fn the_connection_limit_leaves_the_reserve_and_half_the_rest() {
        let limit = |soft| ConnectionLimits::for_descriptor_limit(soft).max_connections;
        assert_eq!(limit(1024), 64);
        assert_eq!(limit(u64::MAX), 64);
        assert_eq!(limit(256), 64);
        assert_eq!(limit(128), 32);
        assert_eq!(limit(100), 18);
        assert_eq!(limit(64), 1);
        assert_eq!(limit(0), 1);
        // At any limit above the reserve, the connections and the reserve fit in it.
        for soft in 66..=1024 {
            assert!(limit(soft) as u64 + DESCRIPTOR_RESERVE <= soft, "{soft}");
        }
    }
}
