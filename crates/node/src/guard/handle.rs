//! [`GuardHandle`]: tenure's side of a running guard. It starts the guard process and writes
//! the control lines that move or end the child's deadline.

use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};

use super::{GuardOptions, GuardOutcome, GUARD_PROCESS_NAME, GUARD_SUBCOMMAND};

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
            .arg0(GUARD_PROCESS_NAME)
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
