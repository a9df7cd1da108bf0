//! [`GuardOutcome`]: how a guard run ended, and the exit code that carries it to tenure.

use std::fmt;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use super::{
    EXIT_CANNOT_EXECUTE, EXIT_COMMAND_NOT_FOUND, EXIT_CONTROL_CLOSED, EXIT_DEADLINE_PASSED,
    EXIT_GUARD_FAILED, EXIT_KILL_TIMED_OUT, EXIT_PROTOCOL_ERROR, EXIT_STOP_REQUESTED,
};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
