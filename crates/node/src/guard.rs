//! The deadline guard: a tiny process between tenure and the supervised child that kills the
//! child's whole process group when tenure's acting deadline passes.
//!
//! protocol: The deadline guard. The child is not tenure's own child but the guard's. tenure
//! starts the guard by re-executing its own binary in a hidden mode,
//!
//! ```text
//! tenure __guard --deadline-ns D --stop-grace-ms G --kill-after-ms K -- COMMAND ARGUMENTS...
//! ```
//!
//! and holds the write end of a pipe that is the guard's standard input. Over it tenure sends
//! text lines:
//!
//! - `extend <nanoseconds>`: the acting deadline is now this `CLOCK_BOOTTIME` instant (a
//!   system-wide clock, so tenure and the guard read the same one). It replaces the deadline
//!   in force, whether later or earlier.
//! - `stop`: stop the child now.
//!
//! The guard stops the child when the deadline passes without an extension, when `stop`
//! arrives, when the pipe reaches end of file (tenure died, even by SIGKILL, since the kernel
//! closes a dead process's descriptors), or when a line is not part of this protocol (a bug
//! in tenure; stopping is the safe way to surface it). A dead, frozen, hung or starved tenure
//! therefore still cannot let its child outlive the lease.
//!
//! # Stopping, and the timing it guarantees
//!
//! Let `D` be the deadline in force, `G` the stop grace and `K` the kill allowance.
//!
//! 1. The guard wakes by `D`. Its `poll` timeout is computed from `CLOCK_BOOTTIME`, but `poll`
//!    itself measures `CLOCK_MONOTONIC`, which stands still while the machine is suspended;
//!    the timeout is therefore capped at `MAX_POLL_WAIT`, so after a resume the guard looks
//!    at `CLOCK_BOOTTIME` again within that cap.
//! 2. At `D` it sends SIGTERM to the child's process group (and SIGCONT, so that a stopped
//!    member can act on the SIGTERM).
//! 3. When the child exits, or at `D + G` at the latest, it sends SIGKILL to the group. The
//!    child (the group leader) is not reaped until then, so its process ID, which is the
//!    group ID, cannot be reused by an unrelated process that the signal would then hit.
//! 4. By `D + G + K` the kernel has ended the child and the guard reaps it. If it has not
//!    (a process stuck in uninterruptible I/O cannot be killed), the guard says so on stderr
//!    and exits with `EXIT_KILL_TIMED_OUT`.
//!
//! So, while the guard gets the CPU, the child does not outlive `D + G + K`; tenure's
//! `stop_margin` must be at least `G + K` plus an allowance for the guard's wake-up latency.
//! The guard cannot help when the whole machine freezes (it freezes too): there the fencing
//! token must protect the resource.
//!
//! When the child exits by itself, the guard sends SIGKILL to whatever is left of its group
//! (a daemon's forgotten helpers) before reaping it, and exits with the child's status.
//!
//! # Containment and its limits
//!
//! The child runs in a new process group, with standard input from `/dev/null` (so it can
//! never read tenure's control lines) and standard output and error inherited. It gets
//! `PR_SET_PDEATHSIG(SIGKILL)`, so if the guard itself is SIGKILLed the child dies too. Two
//! things escape: descendants of the child that leave its process group (`setsid`, classic
//! double-fork daemonizing; run the daemon in the foreground), and descendants of the child
//! when the guard is SIGKILLed (the death signal reaches only the child; run tenure under a
//! service manager that kills its whole cgroup on stop, e.g. systemd with `KillMode=mixed`).
//!
//! # Exit status
//!
//! Like `timeout(1)`, the guard exits with the child's own status when the child exited by
//! itself (its exit code, or 128 + the signal number that killed it), and with a reserved code
//! otherwise. See the `EXIT_*` constants. A child that exits by itself with a reserved code
//! is indistinguishable from the guard's outcome of that code; avoid codes 120 to 127 in the
//! supervised daemon.
//!
//! # Files
//!
//! `handle` is tenure's side: it starts a guard and talks to it. The guard process itself is
//! `run` (its main loop), `control` (the control lines it reads) and `child` (the child it
//! starts, signals and reaps). Both sides share `options` (the guard's command line) and
//! `outcome` (what its exit status means).

mod child;
mod control;
mod handle;
mod options;
mod outcome;
mod run;

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustix::time::Timespec;

pub use handle::GuardHandle;
pub use options::{GuardOptions, GuardUsageError};
pub use outcome::{GuardOutcome, StopReason};
pub use run::run_guard;

/// The hidden first argument that makes the `tenure` binary run as a guard.
pub const GUARD_SUBCOMMAND: &str = "__guard";

/// The guard's name in `ps` and `top`: its `argv[0]` and its kernel name (`comm`, at most 15
/// bytes). Re-executed through `/proc/self/exe`, it would otherwise show up as `exe`.
pub const GUARD_PROCESS_NAME: &str = "tenure-guard";

/// Names this process [`GUARD_PROCESS_NAME`] in `/proc/PID/comm` (`prctl(PR_SET_NAME)`), which
/// `ps`, `top` and `pkill` show. Called first thing in guard mode; a failure only costs the
/// name, so it is ignored.
pub fn name_this_process() {
    let _ = rustix::thread::set_name(c"tenure-guard");
}

const _: () = assert!(
    GUARD_PROCESS_NAME.len() < 16,
    "the kernel keeps 15 bytes of a process name"
);

/// Exit code: the deadline passed without an extension, and the child was stopped (or, when
/// the deadline had passed before the guard started, never started).
pub const EXIT_DEADLINE_PASSED: u8 = 120;
/// Exit code: tenure sent `stop`, and the child was stopped.
pub const EXIT_STOP_REQUESTED: u8 = 121;
/// Exit code: the control pipe closed (tenure died), and the child was stopped.
pub const EXIT_CONTROL_CLOSED: u8 = 122;
/// Exit code: a control line was not part of the protocol, and the child was stopped.
pub const EXIT_PROTOCOL_ERROR: u8 = 123;
/// Exit code: the child had not ended `kill-after` after SIGKILL; it was left unreaped.
pub const EXIT_KILL_TIMED_OUT: u8 = 124;
/// Exit code: the guard could not work (bad arguments, a failed system call). If a child was
/// running, it was stopped first.
pub const EXIT_GUARD_FAILED: u8 = 125;
/// Exit code: the command exists but could not be executed (shell convention).
pub const EXIT_CANNOT_EXECUTE: u8 = 126;
/// Exit code: the command was not found (shell convention).
pub const EXIT_COMMAND_NOT_FOUND: u8 = 127;

/// Longest `--stop-grace-ms` or `--kill-after-ms` accepted: one hour. Anything longer is
/// surely a unit mistake, and would make the lease margins absurd.
pub const MAX_GUARD_WAIT: Duration = Duration::from_secs(3600);

/// Longest single `poll` wait; see the module docs (timing, step 1).
pub const MAX_POLL_WAIT: Duration = Duration::from_millis(100);

const _: () = assert!(
    MAX_POLL_WAIT.as_nanos() < MAX_GUARD_WAIT.as_nanos(),
    "a guard waking at the poll cap wakes within any stop grace it accepts"
);

// ---- Shared by the guard's parts ----

/// The poll timeout for `remaining_nanos` until the next event, capped (see module docs).
pub(super) fn poll_timeout(remaining_nanos: u64, cap: Duration) -> Timespec {
    let wait = remaining_nanos.min(nanos(cap));
    Timespec {
        tv_sec: (wait / 1_000_000_000) as i64,
        tv_nsec: (wait % 1_000_000_000) as _,
    }
}

pub(super) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Whether [`report`] writes JSON: set once by `run_guard` from `--log-format`. A process-wide
/// flag because the guard is a process of its own, with one log format.
static JSON_REPORTS: AtomicBool = AtomicBool::new(false);

/// One line on stderr, which the guard shares with tenure and the child, for the operator: text,
/// or with `--log-format json` one JSON object as tenure's own log lines are, so that every line
/// tenure's log stream carries parses (docs/operations.md: Logs).
pub(super) fn report(message: fmt::Arguments<'_>) {
    let line = if JSON_REPORTS.load(Ordering::Relaxed) {
        crate::logging::json_line(
            "WARN",
            &message.to_string(),
            &[("source", GUARD_PROCESS_NAME)],
        )
    } else {
        format!("tenure guard: {message}")
    };
    // Nothing useful can be done if stderr is gone.
    let _ = writeln!(io::stderr(), "{line}");
}

/// Makes [`report`] write in `format`.
pub(super) fn set_report_format(format: crate::cli::LogFormat) {
    JSON_REPORTS.store(format == crate::cli::LogFormat::Json, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_timeouts_are_the_remaining_time_capped() {
        let cap = Duration::from_millis(100);
        let timeout = poll_timeout(5, cap);
        assert_eq!((timeout.tv_sec, timeout.tv_nsec), (0, 5));
        let timeout = poll_timeout(u64::MAX, cap);
        assert_eq!((timeout.tv_sec, timeout.tv_nsec), (0, 100_000_000));
        let timeout = poll_timeout(2_500_000_000, Duration::from_secs(10));
        assert_eq!((timeout.tv_sec, timeout.tv_nsec), (2, 500_000_000));
    }
}
