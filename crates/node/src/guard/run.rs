//! The guard process itself: [`run_guard`] starts the child and watches the deadline, the
//! control pipe and the child until the child ends or must be stopped.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::io::Errno;

use super::child::{spawn_child, StopResult, SupervisedChild};
use super::control::{ControlCommand, ControlParser};
use super::{
    poll_timeout, report, set_report_format, GuardOptions, GuardOutcome, StopReason, MAX_POLL_WAIT,
};
use crate::clock::BootClock;

/// Runs the guard: starts the child, watches the deadline, the control pipe and the child,
/// and stops the child's process group as the module docs describe.
///
/// `control` is the read end of the control pipe (standard input in guard mode). It is read
/// with raw `read` calls, so nothing else may buffer it (use `stdin().as_fd()`, not `stdin()`).
pub fn run_guard(options: &GuardOptions, control: impl AsFd) -> GuardOutcome {
    set_report_format(options.log_format);
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cli::LogFormat;

    #[test]
    fn a_past_deadline_never_starts_the_child() {
        let directory = tempfile::tempdir().unwrap();
        let marker = directory.path().join("started");
        let options = GuardOptions {
            log_format: LogFormat::Text,
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
            log_format: LogFormat::Text,
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
