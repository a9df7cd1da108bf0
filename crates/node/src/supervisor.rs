//! The driver's [`ActingSink`] in the binary: the supervised daemon, run under a deadline guard.
//!
//! tenure never starts the daemon itself. For each acting period it starts a guard (this very
//! binary, re-executed from `/proc/self/exe` in its hidden `__guard` mode; no fork of the
//! multi-threaded tenure), which starts the daemon in a new process group and holds the acting
//! deadline. Every lease renewal extends the deadline over the guard's control pipe. The guard
//! stops the daemon's whole group when told to, when the deadline passes without an extension,
//! or when the pipe closes because tenure died (see `guard`).
//!
//! The daemon gets three environment variables: `TENURE_FENCING_TOKEN` (the term, in decimal),
//! `TENURE_NODE_ID` and `TENURE_LEADER_ID` (both this node's name, since only the leader runs
//! it). Its standard output and error are tenure's own, passed through unchanged, so the
//! daemon's structured logs stay intact; its standard input is `/dev/null`.
//!
//! If the daemon exits on its own while this node acts, it is restarted after a backoff
//! (`RESTART_BACKOFF_FIRST`, doubling up to `RESTART_BACKOFF_MAX`), at most `max_restarts` times
//! per acting period; a daemon that ran for `RESTART_BUDGET_RESET` without exiting earns its
//! budget back. When the budget is spent, or the command cannot be run at all, acting ends and
//! the driver hands leadership over, so another node gets its turn.

use std::ffi::OsString;
use std::io;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustix::process::{pidfd_open, Pid, PidfdFlags};
use tenure_core::{FencingToken, Instant};
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use crate::cli::LogFormat;
use crate::clock::BootClock;
use crate::guard::{GuardHandle, GuardOptions, GuardOutcome, StopReason};
use crate::health_check::{HealthChecker, HealthSettings};
use tenure_driver::{ActingSink, HealthCheck};

/// The first restart waits this long; each further one twice as long as the one before.
pub const RESTART_BACKOFF_FIRST: Duration = Duration::from_millis(100);
/// The longest wait before a restart.
pub const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A daemon that ran this long before exiting gets its whole restart budget back: a crash once
/// a day is not a reason to give up leadership on the third day.
pub const RESTART_BUDGET_RESET: Duration = Duration::from_secs(60);
/// How often to look for the guard's exit on kernels without `pidfd_open` (before 5.3).
const EXIT_POLL_FALLBACK: Duration = Duration::from_millis(10);

/// What to run and how to stop it.
#[derive(Clone, Debug)]
pub struct SupervisorSettings {
    /// This binary, for the guard; normally `/proc/self/exe`.
    pub executable: PathBuf,
    /// The daemon.
    pub command: OsString,
    pub arguments: Vec<OsString>,
    /// From SIGTERM to SIGKILL.
    pub stop_grace: Duration,
    /// From SIGKILL until the guard gives up waiting for the group to end.
    pub kill_after: Duration,
    /// Restarts per acting period before giving leadership up.
    pub max_restarts: u32,
    /// This node's name, for the daemon's environment.
    pub node_name: String,
    /// How the daemon's health is checked, if it is (protocol: Health-gated acting).
    pub health: Option<Arc<HealthSettings>>,
    /// tenure's log format, which the guard's own lines follow.
    pub log_format: LogFormat,
}

/// Counters of the supervisor, shared with the metrics endpoint.
#[derive(Debug, Default)]
pub struct ChildStats {
    /// Guards started (first starts and restarts).
    pub starts: AtomicU64,
    /// Restarts after the daemon exited on its own.
    pub restarts: AtomicU64,
    /// 1 while a daemon runs (or is being stopped), else 0.
    pub running: AtomicU64,
}

/// The acting sink of the binary. See the module docs.
pub struct Supervisor {
    settings: SupervisorSettings,
    stats: Arc<ChildStats>,
    clock: BootClock,
    phase: Phase,
    fencing_token: FencingToken,
    acting_until: Instant,
    /// Restarts in this acting period.
    restarts: u32,
    /// When the current daemon started (`CLOCK_BOOTTIME` nanoseconds).
    started_at: u64,
    /// Where health check results go: the driver's receiver (`Driver::with_health_checks`).
    health_results: Option<mpsc::Sender<HealthCheck>>,
    /// The checks of the daemon that runs now; dropped (and its check in flight killed) when
    /// the daemon stops or exits.
    health_checker: Option<HealthChecker>,
}

enum Phase {
    /// No guard.
    Idle,
    /// The daemon runs.
    Running(RunningGuard),
    /// The daemon exited on its own; a new one starts at `until` unless acting ends first.
    Backoff { until: tokio::time::Instant },
    /// The guard was told to stop the daemon and has not exited yet.
    Stopping(RunningGuard),
}

impl Supervisor {
    pub fn new(settings: SupervisorSettings, stats: Arc<ChildStats>) -> Supervisor {
        Supervisor {
            settings,
            stats,
            clock: BootClock::new(),
            phase: Phase::Idle,
            fencing_token: FencingToken(0),
            acting_until: Instant::ZERO,
            restarts: 0,
            started_at: 0,
            health_results: None,
            health_checker: None,
        }
    }

    /// Sends the result of every health check of the daemon to `results`, if its settings ask
    /// for checks (protocol: Health-gated acting).
    #[must_use]
    pub fn with_health_results(mut self, results: mpsc::Sender<HealthCheck>) -> Supervisor {
        self.health_results = Some(results);
        self
    }

    fn spawn_guard(&mut self) -> io::Result<RunningGuard> {
        let options = GuardOptions {
            deadline_nanos: self.acting_until.as_nanos(),
            stop_grace: self.settings.stop_grace,
            kill_after: self.settings.kill_after,
            command: self.settings.command.clone(),
            arguments: self.settings.arguments.clone(),
            log_format: self.settings.log_format,
        };
        let name = OsString::from(&self.settings.node_name);
        let environment = [
            (
                "TENURE_FENCING_TOKEN".into(),
                self.fencing_token.0.to_string().into(),
            ),
            ("TENURE_NODE_ID".into(), name.clone()),
            ("TENURE_LEADER_ID".into(), name),
        ];
        let handle = GuardHandle::spawn(&self.settings.executable, &options, &environment)?;
        let exit = ExitWatch::new(handle.pid());
        // Every start of the daemon, restarts included, gets its grace before the first check.
        self.health_checker = match (&self.settings.health, &self.health_results) {
            (Some(health), Some(results)) => Some(HealthChecker::start(
                health.clone(),
                environment.to_vec(),
                results.clone(),
            )),
            _ => None,
        };
        self.started_at = self.clock.now_nanos();
        self.stats.starts.fetch_add(1, Ordering::Relaxed);
        self.stats.running.store(1, Ordering::Relaxed);
        info!(
            fencing_token = self.fencing_token.0,
            guard_pid = handle.pid(),
            command = %self.settings.command.to_string_lossy(),
            "started the child under its deadline guard"
        );
        Ok(RunningGuard { handle, exit })
    }

    /// Decides what follows the guard's exit while the daemon should run: the backoff before a
    /// restart, or `None` to end acting.
    fn after_exit(&mut self, outcome: GuardOutcome) -> Option<Duration> {
        self.stats.running.store(0, Ordering::Relaxed);
        self.health_checker = None;
        let ran_for = Duration::from_nanos(self.clock.now_nanos().saturating_sub(self.started_at));
        let restartable = self.report_exit(outcome, ran_for);
        if !restartable {
            return None;
        }
        if ran_for >= RESTART_BUDGET_RESET {
            self.restarts = 0;
        }
        if self.restarts >= self.settings.max_restarts {
            warn!(
                restarts = self.restarts,
                "the child keeps exiting; giving leadership up so that another node gets its turn"
            );
            return None;
        }
        if self.clock.now_nanos() >= self.acting_until.as_nanos() {
            return None;
        }
        self.restarts += 1;
        self.stats.restarts.fetch_add(1, Ordering::Relaxed);
        let backoff = restart_backoff(self.restarts);
        info!(
            restart = self.restarts,
            of = self.settings.max_restarts,
            backoff_ms = backoff.as_millis() as u64,
            "restarting the child"
        );
        Some(backoff)
    }

    /// Logs how the guard ended, and says whether the daemon may be restarted: it may after
    /// an exit of its own or the death or failure of its guard, not after the guard stopped it
    /// or when it cannot be run at all.
    fn report_exit(&self, outcome: GuardOutcome, ran_for: Duration) -> bool {
        match outcome {
            GuardOutcome::ChildExited { code } => {
                warn!(
                    code,
                    ran_for_ms = ran_for.as_millis() as u64,
                    fencing_token = self.fencing_token.0,
                    "the child exited on its own while this node acts"
                );
                true
            }
            GuardOutcome::GuardKilled { signal } => {
                warn!(
                    signal,
                    "the deadline guard was killed by a signal; its child was killed with it"
                );
                true
            }
            GuardOutcome::Stopped(StopReason::DeadlinePassed) => {
                info!(
                    fencing_token = self.fencing_token.0,
                    "the guard stopped the child: the acting deadline passed without a renewal"
                );
                false
            }
            GuardOutcome::Stopped(reason) => {
                warn!(%reason, "the guard stopped the child");
                false
            }
            GuardOutcome::CommandNotFound | GuardOutcome::CannotExecute => {
                error!(
                    command = %self.settings.command.to_string_lossy(),
                    ?outcome,
                    "the command cannot be run on this node; giving leadership up"
                );
                false
            }
            GuardOutcome::KillTimedOut => {
                error!("the child survived SIGKILL (stuck in the kernel?); giving leadership up");
                false
            }
            GuardOutcome::GuardFailed => {
                error!("the deadline guard failed (see its message above)");
                true
            }
        }
    }
}

impl ActingSink for Supervisor {
    async fn start(
        &mut self,
        fencing_token: FencingToken,
        acting_until: Instant,
    ) -> io::Result<()> {
        self.fencing_token = fencing_token;
        self.acting_until = acting_until;
        self.restarts = 0;
        let running = self.spawn_guard()?;
        self.phase = Phase::Running(running);
        Ok(())
    }

    async fn extend(&mut self, acting_until: Instant) -> io::Result<()> {
        self.acting_until = acting_until;
        if let Phase::Running(running) = &mut self.phase {
            // A refused extension (the guard is exiting, or its pipe is full) leaves the old,
            // earlier deadline in force: the daemon stops sooner, never later. `stopped`
            // reports the guard's exit, so there is nothing to do here.
            if let Err(error) = running.handle.extend(acting_until.as_nanos()) {
                debug!(%error, "the guard did not take the extension");
            }
        }
        Ok(())
    }

    async fn stop(&mut self) -> io::Result<()> {
        // A daemon being stopped is not judged any more.
        self.health_checker = None;
        self.phase = match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Running(mut running) => {
                // `stop` closes the pipe even when the line cannot be written, and a closed
                // pipe makes the guard stop the daemon too: it stops either way.
                if let Err(error) = running.handle.stop() {
                    debug!(%error, "the stop line did not reach the guard; its pipe is closed");
                }
                info!(
                    fencing_token = self.fencing_token.0,
                    "stopping the child (SIGTERM, SIGKILL after {} ms)",
                    self.settings.stop_grace.as_millis()
                );
                Phase::Stopping(running)
            }
            Phase::Stopping(running) => Phase::Stopping(running),
            Phase::Backoff { .. } | Phase::Idle => Phase::Idle,
        };
        Ok(())
    }

    async fn stopped(&mut self) {
        // Every await below is cancel-safe and every state change happens after it, so the
        // driver may drop this future at any point and poll a new one later.
        loop {
            match &mut self.phase {
                Phase::Idle => return,
                Phase::Running(running) => {
                    let outcome = running.wait().await;
                    self.phase = Phase::Idle;
                    match self.after_exit(outcome) {
                        Some(backoff) => {
                            self.phase = Phase::Backoff {
                                until: tokio::time::Instant::now() + backoff,
                            };
                        }
                        None => return,
                    }
                }
                Phase::Backoff { until } => {
                    tokio::time::sleep_until(*until).await;
                    if self.clock.now_nanos() >= self.acting_until.as_nanos() {
                        self.phase = Phase::Idle;
                        return;
                    }
                    match self.spawn_guard() {
                        Ok(running) => self.phase = Phase::Running(running),
                        Err(error) => {
                            error!(%error, "cannot restart the child");
                            self.phase = Phase::Idle;
                            return;
                        }
                    }
                }
                Phase::Stopping(running) => {
                    let outcome = running.wait().await;
                    self.stats.running.store(0, Ordering::Relaxed);
                    self.health_checker = None;
                    match outcome {
                        GuardOutcome::KillTimedOut => error!(
                            "the child survived SIGKILL (stuck in the kernel?) and was left behind"
                        ),
                        outcome => info!(?outcome, "the child is gone"),
                    }
                    self.phase = Phase::Idle;
                    return;
                }
            }
        }
    }
}

/// The wait before restart number `restart` (1-based).
fn restart_backoff(restart: u32) -> Duration {
    let doublings = restart.saturating_sub(1).min(16);
    RESTART_BACKOFF_FIRST
        .saturating_mul(1 << doublings)
        .min(RESTART_BACKOFF_MAX)
}

/// A started guard and the means to await its exit.
struct RunningGuard {
    handle: GuardHandle,
    exit: ExitWatch,
}

impl RunningGuard {
    /// Resolves with the guard's outcome once it has exited. Cancel-safe.
    async fn wait(&mut self) -> GuardOutcome {
        loop {
            match self.handle.try_wait() {
                Ok(Some(outcome)) => return outcome,
                Ok(None) => {}
                Err(error) => {
                    error!(%error, "cannot wait for the deadline guard");
                    return GuardOutcome::GuardFailed;
                }
            }
            match &self.exit {
                ExitWatch::Pidfd(pidfd) => match pidfd.readable().await {
                    // The pidfd stays readable once the process has exited; the next
                    // `try_wait` reaps it. A wake-up before that is spurious: clear and wait.
                    Ok(mut ready) => {
                        if matches!(self.handle.try_wait(), Ok(None)) {
                            ready.clear_ready();
                        }
                    }
                    Err(_) => tokio::time::sleep(EXIT_POLL_FALLBACK).await,
                },
                ExitWatch::Poll => tokio::time::sleep(EXIT_POLL_FALLBACK).await,
            }
        }
    }
}

/// How the supervisor learns that a guard exited: a pidfd the runtime polls, or, on kernels
/// without one, a short periodic check.
enum ExitWatch {
    Pidfd(AsyncFd<OwnedFd>),
    Poll,
}

impl ExitWatch {
    fn new(pid: u32) -> ExitWatch {
        let pidfd = i32::try_from(pid)
            .ok()
            .and_then(Pid::from_raw)
            .and_then(|pid| pidfd_open(pid, PidfdFlags::empty()).ok())
            .and_then(register_readable);
        match pidfd {
            Some(pidfd) => ExitWatch::Pidfd(pidfd),
            None => ExitWatch::Poll,
        }
    }
}

/// Registers a pidfd with the runtime to learn when it becomes readable (the process exited).
fn register_readable(pidfd: OwnedFd) -> Option<AsyncFd<OwnedFd>> {
    #[allow(unsafe_code)]
    // SAFETY: tokio requires that the descriptor stays open and refers to the same file for the
    // whole life of the `AsyncFd`. The `AsyncFd` owns the `OwnedFd`, which closes its
    // descriptor only when dropped (together with the `AsyncFd`) and always returns the same
    // raw descriptor.
    let registered =
        unsafe { AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE) };
    registered.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_backoff_doubles_up_to_the_cap() {
        assert_eq!(restart_backoff(1), Duration::from_millis(100));
        assert_eq!(restart_backoff(2), Duration::from_millis(200));
        assert_eq!(restart_backoff(3), Duration::from_millis(400));
        assert_eq!(restart_backoff(7), Duration::from_secs(5));
        assert_eq!(restart_backoff(u32::MAX), Duration::from_secs(5));
    }
}
