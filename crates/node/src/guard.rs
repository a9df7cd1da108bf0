//! The deadline guard: a tiny process between tenure and the supervised child that kills the
//! child's whole process group when tenure's acting deadline passes.
//!
//! DESIGN ("The deadline guard"): the child is not tenure's own child but the guard's. tenure
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

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags};
use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
use rustix::io::Errno;
use rustix::process::{
    getpid, getppid, kill_process_group, pidfd_open, set_parent_process_death_signal, waitid, Pid,
    PidfdFlags, Signal, WaitId, WaitIdOptions,
};
use rustix::time::Timespec;

use crate::clock::BootClock;

/// The hidden first argument that makes the `tenure` binary run as a guard.
pub const GUARD_SUBCOMMAND: &str = "__guard";

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

/// Longest control line; `extend 18446744073709551615` is 27 bytes.
const MAX_CONTROL_LINE: usize = 64;

/// How often to look at the child while stopping it when `pidfd_open` is unavailable (Linux
/// before 5.3), so that its exit is noticed promptly even without a descriptor to poll.
const FALLBACK_CHILD_CHECK: Duration = Duration::from_millis(5);

/// The guard's configuration: its command line after `__guard`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuardOptions {
    /// The initial acting deadline, a `CLOCK_BOOTTIME` instant in nanoseconds.
    pub deadline_nanos: u64,
    /// How long the child may take to exit after SIGTERM before the group gets SIGKILL.
    pub stop_grace: Duration,
    /// How long the kernel may take to end the child after SIGKILL. Not zero.
    pub kill_after: Duration,
    /// The program to run.
    pub command: OsString,
    /// Its arguments.
    pub arguments: Vec<OsString>,
}

/// A guard command line that does not parse. The message says what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0}; usage: tenure __guard --deadline-ns NANOSECONDS --stop-grace-ms MILLISECONDS \
     --kill-after-ms MILLISECONDS -- COMMAND [ARGUMENTS...]"
)]
pub struct GuardUsageError(String);

impl GuardOptions {
    /// Parses the arguments that follow `__guard`.
    pub fn parse(
        arguments: impl IntoIterator<Item = OsString>,
    ) -> Result<GuardOptions, GuardUsageError> {
        let mut arguments = arguments.into_iter();
        let mut deadline_nanos = None;
        let mut stop_grace_ms = None;
        let mut kill_after_ms = None;
        loop {
            let Some(flag) = arguments.next() else {
                return Err(GuardUsageError(
                    "missing \"--\" and the command".to_string(),
                ));
            };
            if flag == "--" {
                break;
            }
            let slot = match flag.to_str() {
                Some("--deadline-ns") => &mut deadline_nanos,
                Some("--stop-grace-ms") => &mut stop_grace_ms,
                Some("--kill-after-ms") => &mut kill_after_ms,
                _ => return Err(GuardUsageError(format!("unknown option {flag:?}"))),
            };
            if slot.is_some() {
                return Err(GuardUsageError(format!("{flag:?} given twice")));
            }
            let value = arguments
                .next()
                .ok_or_else(|| GuardUsageError(format!("{flag:?} needs a value")))?;
            *slot = Some(parse_decimal(&value).ok_or_else(|| {
                GuardUsageError(format!("{flag:?} needs a whole number, not {value:?}"))
            })?);
        }
        let required = |value: Option<u64>, flag: &str| {
            value.ok_or_else(|| GuardUsageError(format!("{flag} is required")))
        };
        let deadline_nanos = required(deadline_nanos, "--deadline-ns")?;
        let stop_grace = Duration::from_millis(required(stop_grace_ms, "--stop-grace-ms")?);
        let kill_after = Duration::from_millis(required(kill_after_ms, "--kill-after-ms")?);
        if stop_grace > MAX_GUARD_WAIT || kill_after > MAX_GUARD_WAIT {
            return Err(GuardUsageError(
                "--stop-grace-ms and --kill-after-ms must be at most 3600000 (one hour)"
                    .to_string(),
            ));
        }
        if kill_after.is_zero() {
            return Err(GuardUsageError(
                "--kill-after-ms must be at least 1: the kernel needs time to end a process"
                    .to_string(),
            ));
        }
        let command = arguments
            .next()
            .ok_or_else(|| GuardUsageError("no command after \"--\"".to_string()))?;
        Ok(GuardOptions {
            deadline_nanos,
            stop_grace,
            kill_after,
            command,
            arguments: arguments.collect(),
        })
    }

    /// The arguments that `parse` turns back into these options (without `__guard`).
    ///
    /// Durations are sent in whole milliseconds, rounded up so the guard never waits less than
    /// asked.
    pub fn to_arguments(&self) -> Vec<OsString> {
        let mut arguments: Vec<OsString> = vec![
            "--deadline-ns".into(),
            self.deadline_nanos.to_string().into(),
            "--stop-grace-ms".into(),
            whole_milliseconds(self.stop_grace).to_string().into(),
            "--kill-after-ms".into(),
            whole_milliseconds(self.kill_after).to_string().into(),
            "--".into(),
            self.command.clone(),
        ];
        arguments.extend(self.arguments.iter().cloned());
        arguments
    }
}

/// Why the guard stopped a child that had not exited by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StopReason {
    DeadlinePassed,
    StopRequested,
    ControlClosed,
    ProtocolError,
}

impl StopReason {
    fn exit_code(self) -> u8 {
        match self {
            StopReason::DeadlinePassed => EXIT_DEADLINE_PASSED,
            StopReason::StopRequested => EXIT_STOP_REQUESTED,
            StopReason::ControlClosed => EXIT_CONTROL_CLOSED,
            StopReason::ProtocolError => EXIT_PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            StopReason::DeadlinePassed => "the acting deadline passed",
            StopReason::StopRequested => "tenure asked to stop",
            StopReason::ControlClosed => "the control pipe closed (tenure exited or died)",
            StopReason::ProtocolError => "tenure sent a malformed control line",
        })
    }
}

/// How a guard run ended: what `run_guard` returns, and what `GuardHandle` reads back from
/// the guard's exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GuardOutcome {
    /// The child exited by itself; `code` is its exit code, or 128 + the signal that killed
    /// it, as a shell reports it.
    ChildExited { code: u8 },
    /// The guard stopped the child (or, for `DeadlinePassed`, may never have started it).
    Stopped(StopReason),
    /// The child survived SIGKILL for `kill_after` and was left behind unreaped.
    KillTimedOut,
    /// The command could not be executed.
    CannotExecute,
    /// The command was not found.
    CommandNotFound,
    /// The guard itself failed (bad arguments, a failed system call).
    GuardFailed,
    /// Only seen by `GuardHandle`: the guard process was killed by `signal`. Its child got
    /// SIGKILL through the parent-death signal.
    GuardKilled { signal: i32 },
}

impl GuardOutcome {
    /// The guard's exit code for this outcome.
    pub fn exit_code(self) -> u8 {
        match self {
            GuardOutcome::ChildExited { code } => code,
            GuardOutcome::Stopped(reason) => reason.exit_code(),
            GuardOutcome::KillTimedOut => EXIT_KILL_TIMED_OUT,
            GuardOutcome::CannotExecute => EXIT_CANNOT_EXECUTE,
            GuardOutcome::CommandNotFound => EXIT_COMMAND_NOT_FOUND,
            // A guard does not report its own death; should the variant reach here, it is a
            // failure of the guard.
            GuardOutcome::GuardFailed | GuardOutcome::GuardKilled { .. } => EXIT_GUARD_FAILED,
        }
    }

    /// Reads a guard process's exit status back into an outcome.
    pub fn from_exit_status(status: ExitStatus) -> GuardOutcome {
        let Some(code) = status.code() else {
            return GuardOutcome::GuardKilled {
                signal: status.signal().unwrap_or(0),
            };
        };
        // Exit codes are eight bits; `code()` is never outside 0..=255 on Linux.
        let code = u8::try_from(code).unwrap_or(EXIT_GUARD_FAILED);
        match code {
            EXIT_DEADLINE_PASSED => GuardOutcome::Stopped(StopReason::DeadlinePassed),
            EXIT_STOP_REQUESTED => GuardOutcome::Stopped(StopReason::StopRequested),
            EXIT_CONTROL_CLOSED => GuardOutcome::Stopped(StopReason::ControlClosed),
            EXIT_PROTOCOL_ERROR => GuardOutcome::Stopped(StopReason::ProtocolError),
            EXIT_KILL_TIMED_OUT => GuardOutcome::KillTimedOut,
            EXIT_GUARD_FAILED => GuardOutcome::GuardFailed,
            EXIT_CANNOT_EXECUTE => GuardOutcome::CannotExecute,
            EXIT_COMMAND_NOT_FOUND => GuardOutcome::CommandNotFound,
            code => GuardOutcome::ChildExited { code },
        }
    }
}

/// Runs the guard: starts the child, watches the deadline, the control pipe and the child,
/// and stops the child's process group as the module docs describe.
///
/// `control` is the read end of the control pipe (standard input in guard mode). It is read
/// with raw `read` calls, so nothing else may buffer it (use `stdin().as_fd()`, not `stdin()`).
pub fn run_guard(options: &GuardOptions, control: impl AsFd) -> GuardOutcome {
    let clock = BootClock::new();
    // A deadline already past means the lease it stood for is gone: starting the child now
    // would let it act outside every lease, however briefly.
    if clock.now_nanos() >= options.deadline_nanos {
        report(format_args!(
            "not starting {:?}: its deadline has already passed",
            options.command
        ));
        return GuardOutcome::Stopped(StopReason::DeadlinePassed);
    }
    let child = match spawn_child(options) {
        Ok(child) => child,
        Err(error) => {
            report(format_args!("cannot start {:?}: {error}", options.command));
            return match error.kind() {
                io::ErrorKind::NotFound => GuardOutcome::CommandNotFound,
                _ => GuardOutcome::CannotExecute,
            };
        }
    };
    let mut child = SupervisedChild::new(child);
    let reason = match watch(&mut child, options.deadline_nanos, control.as_fd(), &clock) {
        Ok(Watched::ChildExited) => return child.finish_after_own_exit(),
        Ok(Watched::Stop(reason)) => Some(reason),
        Err(error) => {
            report(format_args!(
                "watching the child failed, stopping it: {error}"
            ));
            None
        }
    };
    let outcome = child.stop(options.stop_grace, options.kill_after, &clock);
    match (outcome, reason) {
        (StopResult::Ended, Some(reason)) => GuardOutcome::Stopped(reason),
        (StopResult::Ended, None) => GuardOutcome::GuardFailed,
        (StopResult::KillTimedOut, _) => GuardOutcome::KillTimedOut,
    }
}

/// tenure's side of a running guard.
///
/// Dropping the handle closes the control pipe, so the guard stops the child; like a dropped
/// `std::process::Child`, the guard process itself is then not reaped.
#[derive(Debug)]
pub struct GuardHandle {
    process: Child,
    /// The write end of the control pipe; `None` once closed by `stop`.
    control: Option<ChildStdin>,
    outcome: Option<GuardOutcome>,
}

impl GuardHandle {
    /// Starts `executable` (normally `/proc/self/exe`) in guard mode with `options`, adding
    /// `environment` to the environment the child inherits.
    ///
    /// The guard runs in its own process group, so a Ctrl-C meant for tenure in a terminal
    /// does not kill it (which would SIGKILL the child with no grace); tenure stops it instead.
    /// The control pipe's write end is non-blocking and close-on-exec: a guard that stops
    /// reading cannot block tenure, and no other process inherits the pipe and keeps it open
    /// after tenure dies.
    pub fn spawn(
        executable: &Path,
        options: &GuardOptions,
        environment: &[(OsString, OsString)],
    ) -> io::Result<GuardHandle> {
        // Refuse here what the guard would refuse, so a bad configuration is an error now
        // rather than a guard that exits with a usage error later.
        GuardOptions::parse(options.to_arguments())
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
        let mut process = Command::new(executable)
            .arg(GUARD_SUBCOMMAND)
            .args(options.to_arguments())
            .envs(environment.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::piped())
            .process_group(0)
            .spawn()?;
        let control = process.stdin.take();
        if let Some(control) = &control {
            let flags = fcntl_getfl(control)?;
            fcntl_setfl(control, flags | OFlags::NONBLOCK)?;
        }
        Ok(GuardHandle {
            process,
            control,
            outcome: None,
        })
    }

    /// The guard's process ID.
    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// Sets the acting deadline to the `CLOCK_BOOTTIME` instant `deadline_nanos`.
    ///
    /// Fails if the guard is gone, was told to stop, or is not reading (its pipe is full);
    /// in every such case the old deadline still stands, so the child stops no later.
    pub fn extend(&mut self, deadline_nanos: u64) -> io::Result<()> {
        self.send(&format!("extend {deadline_nanos}\n"))
    }

    /// Asks the guard to stop the child, and closes the control pipe.
    ///
    /// Even when writing `stop` fails, the pipe is closed, which the guard also treats as a
    /// reason to stop: the child is stopped either way.
    pub fn stop(&mut self) -> io::Result<()> {
        let sent = self.send("stop\n");
        self.control = None;
        sent
    }

    /// The outcome, if the guard has exited; never blocks.
    pub fn try_wait(&mut self) -> io::Result<Option<GuardOutcome>> {
        if self.outcome.is_none() {
            self.outcome = self.process.try_wait()?.map(GuardOutcome::from_exit_status);
        }
        Ok(self.outcome)
    }

    /// Blocks until the guard exits and returns the outcome. The control pipe stays open, so
    /// unless `stop` was called this lasts until the deadline passes or the child exits.
    pub fn wait(&mut self) -> io::Result<GuardOutcome> {
        if let Some(outcome) = self.outcome {
            return Ok(outcome);
        }
        let outcome = GuardOutcome::from_exit_status(self.process.wait()?);
        self.outcome = Some(outcome);
        Ok(outcome)
    }

    fn send(&mut self, line: &str) -> io::Result<()> {
        let control = self.control.as_mut().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotConnected,
                "the guard was already told to stop",
            )
        })?;
        // A pipe write of at most PIPE_BUF bytes is atomic: all of the line or nothing, so
        // the guard never sees half a command.
        let written = control.write(line.as_bytes())?;
        if written != line.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "the control line was only partly written",
            ));
        }
        Ok(())
    }
}

// ---- The guard's internals ----

/// A control command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ControlCommand {
    Extend { deadline_nanos: u64 },
    Stop,
}

/// Splits the control stream into lines and parses them.
#[derive(Debug, Default)]
struct ControlParser {
    line: Vec<u8>,
}

impl ControlParser {
    /// Parses the complete lines in `bytes` (plus what was buffered before). A line that is
    /// not a command, or too long to be one, is an error carrying the offending text.
    fn push(&mut self, bytes: &[u8]) -> Result<Vec<ControlCommand>, String> {
        let mut commands = Vec::new();
        for &byte in bytes {
            if byte != b'\n' {
                if self.line.len() >= MAX_CONTROL_LINE {
                    return Err(format!(
                        "a control line longer than {MAX_CONTROL_LINE} bytes: {:?}...",
                        String::from_utf8_lossy(&self.line)
                    ));
                }
                self.line.push(byte);
                continue;
            }
            let command = parse_control_line(&self.line).ok_or_else(|| {
                format!(
                    "an unknown control line {:?}",
                    String::from_utf8_lossy(&self.line)
                )
            })?;
            commands.push(command);
            self.line.clear();
        }
        Ok(commands)
    }
}

fn parse_control_line(line: &[u8]) -> Option<ControlCommand> {
    let line = std::str::from_utf8(line).ok()?;
    if line == "stop" {
        return Some(ControlCommand::Stop);
    }
    let deadline = line.strip_prefix("extend ")?;
    parse_decimal(OsStr::new(deadline))
        .map(|deadline_nanos| ControlCommand::Extend { deadline_nanos })
}

/// What ended the watch.
enum Watched {
    ChildExited,
    Stop(StopReason),
}

/// Waits until the child exits by itself or a reason to stop it arises.
fn watch(
    child: &mut SupervisedChild,
    initial_deadline_nanos: u64,
    control: BorrowedFd<'_>,
    clock: &BootClock,
) -> io::Result<Watched> {
    let mut deadline_nanos = initial_deadline_nanos;
    let mut parser = ControlParser::default();
    let mut buffer = [0u8; 512];
    loop {
        if child.has_exited()? {
            return Ok(Watched::ChildExited);
        }
        let now = clock.now_nanos();
        if now >= deadline_nanos {
            return Ok(Watched::Stop(StopReason::DeadlinePassed));
        }
        let timeout = poll_timeout(deadline_nanos - now, MAX_POLL_WAIT);
        let mut control_ready = false;
        {
            let mut fds = vec![PollFd::from_borrowed_fd(control, PollFlags::IN)];
            if let Some(pidfd) = &child.pidfd {
                fds.push(PollFd::new(pidfd, PollFlags::IN));
            }
            match poll(&mut fds, Some(&timeout)) {
                Ok(_) => control_ready = !fds[0].revents().is_empty(),
                Err(Errno::INTR) => {}
                Err(error) => return Err(error.into()),
            }
        }
        if !control_ready {
            continue;
        }
        let read = match rustix::io::read(control, &mut buffer) {
            Ok(read) => read,
            Err(Errno::INTR) | Err(Errno::AGAIN) => continue,
            // Any other failure to read the pipe leaves the guard deaf to tenure, which is as
            // good as tenure being gone.
            Err(error) => {
                report(format_args!("cannot read the control pipe: {error}"));
                return Ok(Watched::Stop(StopReason::ControlClosed));
            }
        };
        if read == 0 {
            return Ok(Watched::Stop(StopReason::ControlClosed));
        }
        match parser.push(&buffer[..read]) {
            Ok(commands) => {
                for command in commands {
                    match command {
                        ControlCommand::Extend {
                            deadline_nanos: new,
                        } => deadline_nanos = new,
                        ControlCommand::Stop => {
                            return Ok(Watched::Stop(StopReason::StopRequested))
                        }
                    }
                }
            }
            Err(problem) => {
                report(format_args!("tenure sent {problem}"));
                return Ok(Watched::Stop(StopReason::ProtocolError));
            }
        }
    }
}

/// How stopping the child ended.
enum StopResult {
    /// The child ended and was reaped.
    Ended,
    /// The child had not ended `kill_after` after SIGKILL.
    KillTimedOut,
}

/// The guard's child and the means to watch it without reaping it.
struct SupervisedChild {
    process: Child,
    /// The child's process ID, which is also its process group ID.
    pid: Pid,
    /// Readable once the child has exited; `None` on kernels without `pidfd_open` (before
    /// 5.3), where the guard polls the child instead.
    pidfd: Option<OwnedFd>,
}

impl SupervisedChild {
    fn new(process: Child) -> SupervisedChild {
        let pid = Pid::from_child(&process);
        let pidfd = pidfd_open(pid, PidfdFlags::empty()).ok();
        SupervisedChild {
            process,
            pid,
            pidfd,
        }
    }

    /// Whether the child has exited, leaving it a zombie: as long as it is not reaped its
    /// process ID, and so its process group ID, cannot be reused by another process.
    fn has_exited(&self) -> io::Result<bool> {
        let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
        Ok(waitid(WaitId::Pid(self.pid), options)?.is_some())
    }

    /// Sends `signal` to the child's process group. A group that no longer exists is fine:
    /// there is nobody left to signal.
    fn signal_group(&self, signal: Signal) {
        match kill_process_group(self.pid, signal) {
            Ok(()) | Err(Errno::SRCH) => {}
            Err(error) => report(format_args!(
                "cannot send {signal:?} to process group {}: {error}",
                self.pid.as_raw_nonzero()
            )),
        }
    }

    /// Waits until the child has exited or `until_nanos` has come; true if it exited.
    fn wait_for_exit(&self, until_nanos: u64, clock: &BootClock) -> bool {
        // Bounded: each round waits at most until `until_nanos` or returns.
        loop {
            match self.has_exited() {
                Ok(true) => return true,
                Ok(false) => {}
                Err(error) => {
                    report(format_args!("cannot check on the child: {error}"));
                    return false;
                }
            }
            let now = clock.now_nanos();
            if now >= until_nanos {
                return false;
            }
            let cap = if self.pidfd.is_some() {
                MAX_POLL_WAIT
            } else {
                FALLBACK_CHILD_CHECK
            };
            let timeout = poll_timeout(until_nanos - now, cap);
            let mut fds: Vec<PollFd<'_>> = self
                .pidfd
                .iter()
                .map(|pidfd| PollFd::new(pidfd, PollFlags::IN))
                .collect();
            // With no descriptor, `poll` is a sleep; interruptions just start another round.
            let _ = poll(&mut fds, Some(&timeout));
        }
    }

    /// SIGTERM, grace, SIGKILL, reap: the module docs' steps 2 to 4.
    fn stop(
        &mut self,
        stop_grace: Duration,
        kill_after: Duration,
        clock: &BootClock,
    ) -> StopResult {
        self.signal_group(Signal::TERM);
        self.signal_group(Signal::CONT);
        let grace_end = clock.now_nanos().saturating_add(nanos(stop_grace));
        let exited_in_grace = self.wait_for_exit(grace_end, clock);
        if !exited_in_grace {
            report(format_args!(
                "child {} did not exit within the stop grace of {} ms; sending SIGKILL to its \
                 process group",
                self.pid.as_raw_nonzero(),
                stop_grace.as_millis()
            ));
        }
        // Also after a clean exit: members of the group that outlived the child are killed
        // now, while the unreaped child still holds the group ID.
        self.signal_group(Signal::KILL);
        if !exited_in_grace {
            let kill_end = clock.now_nanos().saturating_add(nanos(kill_after));
            if !self.wait_for_exit(kill_end, clock) {
                report(format_args!(
                    "child {} is still alive {} ms after SIGKILL (stuck in the kernel?); \
                     leaving it behind",
                    self.pid.as_raw_nonzero(),
                    kill_after.as_millis()
                ));
                return StopResult::KillTimedOut;
            }
        }
        self.reap();
        StopResult::Ended
    }

    /// The child exited by itself: kill what is left of its group, reap, pass on its status.
    fn finish_after_own_exit(mut self) -> GuardOutcome {
        self.signal_group(Signal::KILL);
        match self.reap() {
            Some(status) => GuardOutcome::ChildExited {
                code: shell_exit_code(status),
            },
            None => GuardOutcome::GuardFailed,
        }
    }

    fn reap(&mut self) -> Option<ExitStatus> {
        match self.process.wait() {
            Ok(status) => Some(status),
            Err(error) => {
                report(format_args!("cannot reap the child: {error}"));
                None
            }
        }
    }
}

/// Starts the command in a new process group, with the parent-death signal armed.
fn spawn_child(options: &GuardOptions) -> io::Result<Child> {
    let guard_pid = getpid();
    let mut command = Command::new(&options.command);
    command
        .args(&options.arguments)
        .stdin(Stdio::null())
        .process_group(0);
    #[allow(unsafe_code)]
    // SAFETY: the closure runs in the forked child before `exec`, where only async-signal-safe
    // work is allowed. It makes two raw system calls through rustix (prctl and getppid), which
    // neither allocate nor take locks, and converting an errno to `io::Error` does not
    // allocate either.
    unsafe {
        command.pre_exec(move || {
            set_parent_process_death_signal(Some(Signal::KILL))?;
            // If the guard died between fork and prctl, the death signal was armed too late
            // to fire: the child was already reparented. Refuse to exec in that case.
            if getppid() != Some(guard_pid) {
                return Err(io::Error::from(Errno::SRCH));
            }
            Ok(())
        });
    }
    command.spawn()
}

/// The poll timeout for `remaining_nanos` until the next event, capped (see module docs).
fn poll_timeout(remaining_nanos: u64, cap: Duration) -> Timespec {
    let wait = remaining_nanos.min(nanos(cap));
    Timespec {
        tv_sec: (wait / 1_000_000_000) as i64,
        tv_nsec: (wait % 1_000_000_000) as _,
    }
}

/// A shell's view of an exit status: the exit code, or 128 + the signal number.
fn shell_exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => (code & 0xff) as u8,
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(u8::MAX),
        (None, None) => EXIT_GUARD_FAILED,
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

fn whole_milliseconds(duration: Duration) -> u128 {
    duration.as_nanos().div_ceil(1_000_000)
}

/// Parses a canonical decimal `u64`: ASCII digits only, no sign, no leading zeros.
fn parse_decimal(text: &OsStr) -> Option<u64> {
    let text = text.to_str()?;
    let canonical = !text.is_empty()
        && text.bytes().all(|byte| byte.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if !canonical {
        return None;
    }
    text.parse().ok()
}

/// One line on stderr, which the guard shares with tenure and the child, for the operator.
fn report(message: fmt::Arguments<'_>) {
    // Nothing useful can be done if stderr is gone.
    let _ = writeln!(io::stderr(), "tenure guard: {message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arguments(text: &[&str]) -> Vec<OsString> {
        text.iter().map(OsString::from).collect()
    }

    fn parse(text: &[&str]) -> Result<GuardOptions, GuardUsageError> {
        GuardOptions::parse(arguments(text))
    }

    fn sample_options() -> GuardOptions {
        GuardOptions {
            deadline_nanos: 123_456_789_000,
            stop_grace: Duration::from_millis(2500),
            kill_after: Duration::from_millis(1000),
            command: "sh".into(),
            arguments: arguments(&["-c", "exec sleep 1", "--deadline-ns"]),
        }
    }

    // ---- Command line ----

    #[test]
    fn parses_a_full_command_line() {
        let options = parse(&[
            "--stop-grace-ms",
            "2500",
            "--deadline-ns",
            "123456789000",
            "--kill-after-ms",
            "1000",
            "--",
            "sh",
            "-c",
            "exec sleep 1",
            "--deadline-ns",
        ])
        .unwrap();
        assert_eq!(options, sample_options());
    }

    #[test]
    fn round_trips_through_arguments() {
        let options = sample_options();
        assert_eq!(GuardOptions::parse(options.to_arguments()), Ok(options));
        // Sub-millisecond durations round up, never down.
        let odd = GuardOptions {
            stop_grace: Duration::from_micros(1),
            kill_after: Duration::from_micros(1500),
            ..sample_options()
        };
        let parsed = GuardOptions::parse(odd.to_arguments()).unwrap();
        assert_eq!(parsed.stop_grace, Duration::from_millis(1));
        assert_eq!(parsed.kill_after, Duration::from_millis(2));
    }

    #[test]
    fn refuses_bad_command_lines_saying_why() {
        let base = [
            "--deadline-ns",
            "5",
            "--stop-grace-ms",
            "0",
            "--kill-after-ms",
            "1",
        ];
        let with = |extra: &[&'static str]| {
            let mut all: Vec<&str> = base.to_vec();
            all.extend_from_slice(extra);
            all
        };
        let cases: Vec<(Vec<&str>, &str)> = vec![
            (vec![], "missing \"--\""),
            (base.to_vec(), "missing \"--\""),
            (with(&["--"]), "no command"),
            (with(&["--verbose", "--", "x"]), "unknown option"),
            (with(&["--deadline-ns", "6", "--", "x"]), "given twice"),
            (vec!["--deadline-ns"], "needs a value"),
            (
                vec!["--stop-grace-ms", "0", "--kill-after-ms", "1", "--", "x"],
                "--deadline-ns is required",
            ),
            (
                vec!["--deadline-ns", "5", "--kill-after-ms", "1", "--", "x"],
                "--stop-grace-ms is required",
            ),
            (
                vec!["--deadline-ns", "5", "--stop-grace-ms", "1", "--", "x"],
                "--kill-after-ms is required",
            ),
            (
                vec![
                    "--deadline-ns",
                    "-5",
                    "--stop-grace-ms",
                    "0",
                    "--kill-after-ms",
                    "1",
                    "--",
                    "x",
                ],
                "whole number",
            ),
            (
                vec![
                    "--deadline-ns",
                    "5",
                    "--stop-grace-ms",
                    "1.5",
                    "--kill-after-ms",
                    "1",
                    "--",
                    "x",
                ],
                "whole number",
            ),
            (
                vec![
                    "--deadline-ns",
                    "5",
                    "--stop-grace-ms",
                    "0",
                    "--kill-after-ms",
                    "0",
                    "--",
                    "x",
                ],
                "at least 1",
            ),
            (
                vec![
                    "--deadline-ns",
                    "5",
                    "--stop-grace-ms",
                    "3600001",
                    "--kill-after-ms",
                    "1",
                    "--",
                    "x",
                ],
                "at most 3600000",
            ),
        ];
        for (command_line, expected) in cases {
            let error = parse(&command_line).unwrap_err().to_string();
            assert!(error.contains(expected), "{command_line:?}: {error}");
            assert!(error.contains("usage: tenure __guard"), "{error}");
        }
    }

    #[test]
    fn parses_only_canonical_decimals() {
        assert_eq!(parse_decimal(OsStr::new("0")), Some(0));
        assert_eq!(
            parse_decimal(OsStr::new("18446744073709551615")),
            Some(u64::MAX)
        );
        for bad in [
            "",
            "+1",
            "-1",
            "01",
            " 1",
            "1 ",
            "1e3",
            "18446744073709551616",
            "0x10",
        ] {
            assert_eq!(parse_decimal(OsStr::new(bad)), None, "{bad:?}");
        }
    }

    // ---- Control protocol ----

    #[test]
    fn parses_control_lines_across_reads() {
        let mut parser = ControlParser::default();
        assert_eq!(parser.push(b"ext"), Ok(vec![]));
        assert_eq!(
            parser.push(b"end 42\nextend 18446744073709551615\nst"),
            Ok(vec![
                ControlCommand::Extend { deadline_nanos: 42 },
                ControlCommand::Extend {
                    deadline_nanos: u64::MAX
                },
            ])
        );
        assert_eq!(parser.push(b"op\n"), Ok(vec![ControlCommand::Stop]));
        assert_eq!(parser.push(b""), Ok(vec![]));
    }

    #[test]
    fn refuses_malformed_control_lines() {
        for bad in [
            &b"\n"[..],
            b"extend\n",
            b"extend \n",
            b"extend -1\n",
            b"extend 1 2\n",
            b"extend  1\n",
            b"extend 0x10\n",
            b"extend 18446744073709551616\n",
            b"STOP\n",
            b"stop \n",
            b"stop\r\n",
            b"\xff\xfe\n",
            b"kill\n",
        ] {
            let mut parser = ControlParser::default();
            assert!(
                parser.push(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn refuses_an_overlong_line_before_its_end_arrives() {
        let mut parser = ControlParser::default();
        let error = parser.push(&[b'1'; MAX_CONTROL_LINE + 1]).unwrap_err();
        assert!(error.contains("longer than 64 bytes"), "{error}");
        // The longest valid line fits.
        let mut parser = ControlParser::default();
        assert!(parser.push(b"extend 18446744073709551615\n").is_ok());
    }

    // ---- Exit codes ----

    #[test]
    fn exit_codes_round_trip_through_an_exit_status() {
        let outcomes = [
            GuardOutcome::ChildExited { code: 0 },
            GuardOutcome::ChildExited { code: 7 },
            GuardOutcome::ChildExited { code: 137 },
            GuardOutcome::ChildExited { code: 255 },
            GuardOutcome::Stopped(StopReason::DeadlinePassed),
            GuardOutcome::Stopped(StopReason::StopRequested),
            GuardOutcome::Stopped(StopReason::ControlClosed),
            GuardOutcome::Stopped(StopReason::ProtocolError),
            GuardOutcome::KillTimedOut,
            GuardOutcome::GuardFailed,
            GuardOutcome::CannotExecute,
            GuardOutcome::CommandNotFound,
        ];
        for outcome in outcomes {
            // A wait status holds the exit code in bits 8..16.
            let status = ExitStatus::from_raw(i32::from(outcome.exit_code()) << 8);
            assert_eq!(GuardOutcome::from_exit_status(status), outcome);
        }
        let reserved: Vec<u8> = outcomes[4..]
            .iter()
            .map(|outcome| outcome.exit_code())
            .collect();
        assert_eq!(reserved, [120, 121, 122, 123, 124, 125, 126, 127]);
    }

    #[test]
    fn a_guard_killed_by_a_signal_is_reported_as_such() {
        // A wait status of a bare signal number means "killed by that signal".
        let status = ExitStatus::from_raw(9);
        assert_eq!(
            GuardOutcome::from_exit_status(status),
            GuardOutcome::GuardKilled { signal: 9 }
        );
    }

    #[test]
    fn shell_exit_codes() {
        assert_eq!(shell_exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(shell_exit_code(ExitStatus::from_raw(15)), 143);
        assert_eq!(shell_exit_code(ExitStatus::from_raw(9)), 137);
    }

    // ---- Timing helpers ----

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

    #[test]
    fn a_past_deadline_never_starts_the_child() {
        let directory = tempfile::tempdir().unwrap();
        let marker = directory.path().join("started");
        let options = GuardOptions {
            deadline_nanos: BootClock::new().now_nanos(),
            stop_grace: Duration::ZERO,
            kill_after: Duration::from_millis(1),
            command: "touch".into(),
            arguments: vec![marker.clone().into()],
        };
        let (control, _writer) = rustix::pipe::pipe().unwrap();
        assert_eq!(
            run_guard(&options, &control),
            GuardOutcome::Stopped(StopReason::DeadlinePassed)
        );
        assert!(!marker.exists());
    }

    #[test]
    fn a_missing_command_is_reported() {
        let options = GuardOptions {
            deadline_nanos: u64::MAX,
            stop_grace: Duration::ZERO,
            kill_after: Duration::from_millis(1),
            command: "/nonexistent/tenure-test-command".into(),
            arguments: vec![],
        };
        let (control, _writer) = rustix::pipe::pipe().unwrap();
        assert_eq!(run_guard(&options, &control), GuardOutcome::CommandNotFound);
        let directory = tempfile::tempdir().unwrap();
        let not_executable = GuardOptions {
            command: directory.path().as_os_str().to_owned(),
            ..options
        };
        assert_eq!(
            run_guard(&not_executable, &control),
            GuardOutcome::CannotExecute
        );
    }
}
