//! `tenure run`: one node, wired together.
//!
//! The driver loop runs on a single-threaded tokio runtime together with the HTTP API, the
//! signal handler and the peer-address resolver. One thread is plenty for a few datagrams per
//! heartbeat, and it keeps the node's behaviour easy to reason about: nothing runs in parallel
//! with a turn of the loop.
//!
//! Start-up order: logs, the state file (locked, boot incarnation stored), the UDP socket, the
//! HTTP listener, then the driver. Anything that fails before the driver runs is reported with
//! what to do, and the node exits with status 1 having started no child.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tenure_core::{FencingToken, Instant, NodeId, BROKEN_VARIANTS_COMPILED};
use tokio::net::{TcpListener, UdpSocket};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::clock::BootClock;
use crate::http::{self, HttpState};
use crate::http_server::ConnectionLimits;
use crate::logging;
use crate::members::PeerAddress;
use crate::observer::{NodeInfo, NodeObserver, Shared};
use crate::settings::{human, KeySource, RunSettings, KILL_AFTER};
use crate::split_mix::SplitMix64;
use crate::state_file::StateFile;
use crate::storage::StateStorage;
use crate::supervisor::{ChildStats, Supervisor, SupervisorSettings};
use crate::transport::{resolve_peers, PeerTable, TransportStats, UdpTransport};
use tenure_driver::{ActingSink, Clock as _, Command, Driver, DriverError, HealthPolicy, Parts};

/// Why the node could not start or stopped with an error. Exit status 1.
#[derive(Debug)]
pub struct RunError(pub String);

/// How `tenure run` ended without an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// A graceful shutdown after SIGTERM or SIGINT: exit status 0.
    ShutDown,
    /// A shutdown after the daemon failed for good (`--exit-on-daemon-failure`): exit status
    /// [`EXIT_DAEMON_FAILED`].
    DaemonFailed,
}

/// The exit status of `tenure run` after its daemon failed for good.
pub const EXIT_DAEMON_FAILED: u8 = 3;

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Runs a node until it is shut down (`Ok`) or fails.
pub fn run(settings: RunSettings) -> Result<RunOutcome, RunError> {
    logging::init(settings.log_format, &settings.log_level);
    announce(&settings);
    if settings.store.is_some() {
        return crate::store_run::run(settings);
    }

    // A failure to start is returned, not logged: the binary prints it as the one error line
    // of a refused start, as it does for configuration errors.
    let (mut state_file, stored) =
        StateFile::open(&settings.state_dir).map_err(|problem| RunError(problem.to_string()))?;
    let incarnation = state_file
        .begin_boot()
        .map_err(|problem| RunError(problem.to_string()))?;
    match &stored {
        Some(state) => info!(
            path = %state_file.path().display(),
            term = state.term,
            voted_for = state.voted_for.as_deref().unwrap_or("none"),
            incarnation,
            "state file read; sitting out one lease before voting (boot quarantine)"
        ),
        None => info!(
            path = %state_file.path().display(),
            incarnation,
            "no state file: a fresh node"
        ),
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|problem| RunError(format!("cannot start the async runtime: {problem}")))?;
    runtime.block_on(run_node(settings, state_file, incarnation))
}

async fn run_node(
    settings: RunSettings,
    state_file: StateFile,
    incarnation: u64,
) -> Result<RunOutcome, RunError> {
    let clock = BootClock::new();
    let members = settings.members.clone();
    let (socket, http_listener) = bind(&settings).await?;
    let peers = Arc::new(PeerTable::new(&members, &settings.peer_addresses));
    let transport_stats = Arc::new(TransportStats::default());
    let child_stats = Arc::new(ChildStats::default());
    let info = NodeInfo {
        members: members.clone(),
        peers: peers.clone(),
        transport: transport_stats.clone(),
        child: child_stats.clone(),
        lease_duration: settings.config.lease_duration(),
        supervises_child: settings.command.is_some(),
        health_checked: settings.health.is_some(),
        quarantine_until: boot_quarantine_until(&settings, &state_file, &clock),
        store: None,
    };
    let shared = Arc::new(Shared::new(info, clock.now()));
    // Health check results go from the supervisor's checkers to the driver (protocol:
    // Health-gated acting); a handful queue at most, since the driver reads them as they come.
    let (health_results, health_receiver) = mpsc::channel(8);
    let (commands, command_receiver) = mpsc::channel(16);
    let sink = acting_sink(&settings, child_stats, health_results)?;
    // The transport raises the incarnation in the state file when peers refuse it, and the
    // storage keeps whatever the file holds, so both share it.
    let state_file = Arc::new(Mutex::new(state_file));
    let transport = UdpTransport::new(
        socket,
        members.clone(),
        &settings.key,
        incarnation,
        peers.clone(),
        transport_stats,
    )
    .with_state_file(state_file.clone());
    let parts = Parts {
        transport,
        clock,
        storage: StateStorage::shared(state_file, members.clone(), incarnation),
        sink,
        observer: observer(&shared, &settings, &commands),
        entropy: entropy(),
    };
    let mut driver = Driver::new(settings.config.clone(), members.own_id(), parts)
        .map_err(|problem| RunError(format!("cannot start the election loop: {problem}")))?;
    if let Some(health) = &settings.health {
        driver = driver.with_health_checks(
            health_receiver,
            HealthPolicy {
                failures: health.failures,
            },
        );
    }

    let named = |(_, address): &(NodeId, PeerAddress)| matches!(address, PeerAddress::Host { .. });
    if settings.peer_addresses.iter().any(named) {
        tokio::spawn(resolve_peers(peers, members.clone()));
    }
    if let Some(listener) = http_listener {
        spawn_http(listener, &shared, &commands, &settings);
    }
    tokio::spawn(handle_signals(commands)?);
    finish(driver.run(command_receiver).await, &shared)
}

/// The node's observer; with `--exit-on-daemon-failure` it asks for a shutdown through
/// `commands` once the daemon failed for good.
pub(crate) fn observer(
    shared: &Arc<Shared>,
    settings: &RunSettings,
    commands: &mpsc::Sender<Command>,
) -> NodeObserver {
    let observer = NodeObserver::new(shared.clone());
    if settings.exit_on_daemon_failure {
        observer.exit_on_daemon_failure(commands.clone())
    } else {
        observer
    }
}

/// Binds the UDP socket the other members reach this node on and, with `--http`, the HTTP
/// API's listener; the errors say what to check.
async fn bind(settings: &RunSettings) -> Result<(UdpSocket, Option<TcpListener>), RunError> {
    let listen = settings
        .listen
        .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let socket = UdpSocket::bind(listen).await.map_err(|problem| {
        RunError(format!(
            "cannot listen for the other members on UDP {listen}: {problem}. Another process \
             may use the port (is another tenure running?), or the address is not one of this \
             machine's"
        ))
    })?;
    Ok((socket, bind_http(settings).await?))
}

/// With `--http`, binds the HTTP API's listener; the error says what to check.
pub(crate) async fn bind_http(settings: &RunSettings) -> Result<Option<TcpListener>, RunError> {
    let Some(address) = settings.http else {
        return Ok(None);
    };
    let listener = TcpListener::bind(address).await.map_err(|problem| {
        RunError(format!(
            "cannot serve the HTTP API on {address}: {problem}. Another process may use the \
             port, or the address is not one of this machine's"
        ))
    })?;
    Ok(Some(listener))
}

/// Until when the status reports the boot quarantine.
fn boot_quarantine_until(
    settings: &RunSettings,
    state_file: &StateFile,
    clock: &BootClock,
) -> Option<Instant> {
    // The core starts the boot quarantine when the driver boots it, a moment from now; the
    // status page shows the same rule (protocol: Boot quarantine).
    let fresh = state_file
        .current()
        .is_none_or(|state| state.term == 0 && state.voted_for.is_none());
    (settings.members.len() > 1 || !fresh).then(|| clock.now() + settings.config.lease_duration())
}

/// Where acting happens: the supervised command, or nothing for an observer-only node.
pub(crate) fn acting_sink(
    settings: &RunSettings,
    child_stats: Arc<ChildStats>,
    health_results: mpsc::Sender<tenure_driver::HealthCheck>,
) -> Result<NodeSink, RunError> {
    let Some((command, arguments)) = &settings.command else {
        return Ok(NodeSink::ObserverOnly(ObserverOnly::default()));
    };
    let supervisor = Supervisor::new(
        SupervisorSettings {
            executable: own_executable()?,
            command: command.clone(),
            arguments: arguments.clone(),
            stop_grace: settings.stop_grace,
            kill_after: KILL_AFTER,
            max_restarts: settings.max_child_restarts,
            node_name: settings.members.own_name().to_string(),
            health: settings.health.clone().map(Arc::new),
            log_format: settings.log_format,
        },
        child_stats,
    )
    .with_health_results(health_results);
    Ok(NodeSink::Supervised(Box::new(supervisor)))
}

/// Serves the HTTP API on `listener` in the background.
pub(crate) fn spawn_http(
    listener: TcpListener,
    shared: &Arc<Shared>,
    commands: &mpsc::Sender<Command>,
    settings: &RunSettings,
) {
    let state = Arc::new(HttpState {
        shared: shared.clone(),
        commands: commands.clone(),
        admin_token: settings.admin_token.clone(),
    });
    let limits = ConnectionLimits::for_this_process();
    info!(
        max_connections = limits.max_connections,
        header_read_timeout = %human(limits.header_read_timeout),
        "HTTP API listening; connections are limited so that they leave file descriptors \
         to the election"
    );
    tokio::spawn(async move {
        if let Err(problem) = http::serve(listener, state, limits).await {
            error!(%problem, "the HTTP API stopped");
        }
    });
}

/// Reports how the election loop ended.
pub(crate) fn finish(
    result: Result<(), DriverError>,
    shared: &Shared,
) -> Result<RunOutcome, RunError> {
    shared.driver_ended();
    match result {
        Ok(()) if shared.daemon_failed() => {
            info!("shut down after the daemon failed for good; exit status 3");
            Ok(RunOutcome::DaemonFailed)
        }
        Ok(()) => {
            info!("shut down cleanly");
            Ok(RunOutcome::ShutDown)
        }
        Err(problem) => {
            error!(%problem, "the election loop failed; exiting (the deadline guard stops the child)");
            Err(RunError(problem.to_string()))
        }
    }
}

/// The first SIGTERM or SIGINT asks the driver to shut down gracefully; a second one exits at
/// once. Exiting closes the guard's control pipe, so the guard still stops the daemon.
pub(crate) fn handle_signals(
    commands: mpsc::Sender<Command>,
) -> Result<impl Future<Output = ()>, RunError> {
    let install = |kind: SignalKind| {
        signal(kind).map_err(|problem| RunError(format!("cannot handle signals: {problem}")))
    };
    let mut terminate = install(SignalKind::terminate())?;
    let mut interrupt = install(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => info!("SIGTERM: shutting down gracefully"),
            _ = interrupt.recv() => info!("SIGINT: shutting down gracefully"),
        }
        if commands.send(Command::Shutdown).await.is_err() {
            return;
        }
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        warn!("second signal: exiting at once; the deadline guard stops the child");
        std::process::exit(1);
    })
}

/// Logs what this node is about to do, and warns about anything an operator should know.
fn announce(settings: &RunSettings) {
    info!(
        id = settings.members.own_name(),
        members = %settings.members.names().join(","),
        lease = %human(settings.lease),
        heartbeat = %human(settings.heartbeat),
        max_drift = settings.max_drift,
        stop_grace = %human(settings.stop_grace),
        version = env!("CARGO_PKG_VERSION"),
        "tenure starting"
    );
    if let Some(store) = &settings.store {
        info!(
            backend = %store.redacted_url(),
            election = %store.election,
            store_id = store.id.0,
            "the election is held in a coordination store (docs/backends.md)"
        );
    }
    if BROKEN_VARIANTS_COMPILED {
        // Feature unification under `cargo test --workspace` compiles the core's test-only
        // variants into this binary; it never selects one, so it runs the correct protocol.
        warn!(
            "this build carries tenure-core's broken-variants feature (a test build); the node \
             runs the correct protocol, but use a release build (`cargo build --release -p \
             tenure-node`) in production"
        );
    }
    if settings.key_source == KeySource::Insecure {
        warn!(
            "--insecure: datagrams are NOT authenticated; anyone who can reach the UDP port can \
             depose the leader and run the daemon twice. Use --cluster-key-file in production"
        );
    }
    if let (Some(http), None) = (settings.http, &settings.admin_token) {
        // A step-down moves leadership and restarts the daemon elsewhere; whoever can do that
        // at will can keep the cluster without a working daemon. Worth a warning, not a refusal:
        // on a loopback-only --http the operator may want it open (operations guide: Security).
        warn!(
            %http,
            "no --admin-token-file: POST /step-down is open to anyone who can connect to --http \
             {http} and lets them move leadership at will. Set --admin-token-file, and bind \
             --http to 127.0.0.1 or a management network only"
        );
    }
    for warning in &settings.warnings {
        warn!("{warning}");
    }
    if settings.command.is_none() {
        info!("no command: this node only takes part in elections and reports the leader");
    }
    if let Some(health) = &settings.health {
        info!(
            probe = %health.probe.describe(),
            interval = %human(health.interval),
            timeout = %human(health.timeout),
            failures = health.failures.get(),
            grace = %human(health.grace),
            "health checks of the child: after the failures in a row, this node stops it and \
             hands leadership over"
        );
    }
}

/// The path to re-execute this binary as the deadline guard. `/proc/self/exe` names the running
/// image even after an upgrade replaced the file, so the guard is always the same version.
fn own_executable() -> Result<PathBuf, RunError> {
    let path = PathBuf::from("/proc/self/exe");
    if path.exists() {
        return Ok(path);
    }
    std::env::current_exe().map_err(|problem| {
        RunError(format!(
            "cannot find this binary to start the deadline guard (is /proc mounted?): {problem}"
        ))
    })
}

/// Uniform `u64`s for the election jitter: SplitMix64 seeded from the operating system. The
/// jitter needs no cryptographic quality, only independence between nodes.
pub(crate) fn entropy() -> impl FnMut() -> u64 {
    let mut seed = [0u8; 8];
    let state = match getrandom::fill(&mut seed) {
        Ok(()) => u64::from_le_bytes(seed),
        // Without OS randomness, the boot clock and the process id still differ per node.
        Err(_) => BootClock::new().now_nanos() ^ (u64::from(std::process::id()) << 32),
    };
    let mut rng = SplitMix64::new(state);
    move || rng.next_u64()
}

/// The acting sink: the supervised daemon, or nothing for an observer-only node.
pub(crate) enum NodeSink {
    Supervised(Box<Supervisor>),
    ObserverOnly(ObserverOnly),
}

impl ActingSink for NodeSink {
    async fn start(
        &mut self,
        fencing_token: FencingToken,
        acting_until: Instant,
    ) -> io::Result<()> {
        match self {
            NodeSink::Supervised(sink) => sink.start(fencing_token, acting_until).await,
            NodeSink::ObserverOnly(sink) => sink.start(fencing_token, acting_until).await,
        }
    }

    async fn extend(&mut self, acting_until: Instant) -> io::Result<()> {
        match self {
            NodeSink::Supervised(sink) => sink.extend(acting_until).await,
            NodeSink::ObserverOnly(sink) => sink.extend(acting_until).await,
        }
    }

    async fn stop(&mut self) -> io::Result<()> {
        match self {
            NodeSink::Supervised(sink) => sink.stop().await,
            NodeSink::ObserverOnly(sink) => sink.stop().await,
        }
    }

    async fn stopped(&mut self) {
        match self {
            NodeSink::Supervised(sink) => sink.stopped().await,
            NodeSink::ObserverOnly(sink) => sink.stopped().await,
        }
    }
}

/// Acting without a child: leadership is only reported (`GET /`, `/ready`).
#[derive(Default)]
pub(crate) struct ObserverOnly {
    acting: bool,
}

impl ActingSink for ObserverOnly {
    async fn start(&mut self, _: FencingToken, _: Instant) -> io::Result<()> {
        self.acting = true;
        Ok(())
    }

    async fn extend(&mut self, _: Instant) -> io::Result<()> {
        Ok(())
    }

    async fn stop(&mut self) -> io::Result<()> {
        self.acting = false;
        Ok(())
    }

    async fn stopped(&mut self) {
        // Nothing can end on its own: acting ends only when the driver stops it.
        if self.acting {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_streams_differ_and_spread() {
        let mut first = entropy();
        let mut second = entropy();
        let a: Vec<u64> = (0..4).map(|_| first()).collect();
        let b: Vec<u64> = (0..4).map(|_| second()).collect();
        assert_ne!(a, b);
        assert!(a.windows(2).all(|pair| pair[0] != pair[1]));
    }
}
