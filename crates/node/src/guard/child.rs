//! The guard's child: started in its own process group with the parent-death signal armed,
//! watched without being reaped, and stopped with SIGTERM, grace, SIGKILL.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags};
use rustix::io::Errno;
use rustix::process::{
    getpid, getppid, kill_process_group, pidfd_open, set_parent_process_death_signal, waitid, Pid,
    PidfdFlags, Signal, WaitId, WaitIdOptions,
};

use super::{
    nanos, poll_timeout, report, GuardOptions, GuardOutcome, EXIT_GUARD_FAILED, MAX_POLL_WAIT,
};
use crate::clock::BootClock;

/// How often to look at the child while stopping it when `pidfd_open` is unavailable (Linux
/// before 5.3), so that its exit is noticed promptly even without a descriptor to poll.
const FALLBACK_CHILD_CHECK: Duration = Duration::from_millis(5);

const _: () = assert!(
    FALLBACK_CHILD_CHECK.as_nanos() < MAX_POLL_WAIT.as_nanos(),
    "without a pidfd the guard looks at the child more often, not less"
);

/// How stopping the child ended.
pub(super) enum StopResult {
    /// The child ended and was reaped.
    Ended,
    /// The child had not ended `kill_after` after SIGKILL.
    KillTimedOut,
}

/// The guard's child and the means to watch it without reaping it.
pub(super) struct SupervisedChild {
    process: Child,
    /// The child's process ID, which is also its process group ID.
    pid: Pid,
    /// Readable once the child has exited; `None` on kernels without `pidfd_open` (before
    /// 5.3), where the guard polls the child instead.
    pub(super) pidfd: Option<OwnedFd>,
}

impl SupervisedChild {
    pub(super) fn new(process: Child) -> SupervisedChild {
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
    pub(super) fn has_exited(&self) -> io::Result<bool> {
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
    pub(super) fn stop(
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
    pub(super) fn finish_after_own_exit(mut self) -> GuardOutcome {
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
pub(super) fn spawn_child(options: &GuardOptions) -> io::Result<Child> {
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

/// A shell's view of an exit status: the exit code, or 128 + the signal number.
fn shell_exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => (code & 0xff) as u8,
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(u8::MAX),
        (None, None) => EXIT_GUARD_FAILED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_exit_codes() {
        assert_eq!(shell_exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(shell_exit_code(ExitStatus::from_raw(15)), 143);
        assert_eq!(shell_exit_code(ExitStatus::from_raw(9)), 137);
    }
}
