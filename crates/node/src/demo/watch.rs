//! Waiting on the demo's cluster while printing what its nodes say: every wait is bounded by
//! `STEP_LIMIT` and notices Ctrl-C.

use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::Ordering;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use super::child::{self, ChildLine, ChildStart};
use super::{Demo, Failure, STEP_LIMIT};
use crate::cluster::{OutputLine, Stream};
use crate::settings::human;

impl Demo {
    /// Handles the lines arriving until `until`, printing what should be printed.
    pub(super) fn pump_until(&mut self, until: Instant) -> Result<(), Failure> {
        loop {
            if self.interrupted.load(Ordering::SeqCst) {
                return Err(Failure::Interrupted);
            }
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            let slice = (until - now).min(Duration::from_millis(50));
            match self.lines.recv_timeout(slice) {
                Ok(line) => self.handle(line),
                Err(RecvTimeoutError::Timeout) => {}
                // The cluster's spec holds a sender, so the channel never disconnects while
                // the cluster lives.
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
        }
    }

    pub(super) fn pump_for(&mut self, duration: Duration) -> Result<(), Failure> {
        self.pump_until(Instant::now() + duration)
    }

    fn handle(&mut self, line: OutputLine) {
        let name = self.name(line.node);
        if line.stream == Stream::Log {
            self.note(&format!("{name} | log: {}", line.text));
            return;
        }
        match child::parse(&line.text) {
            ChildLine::Started { token } => {
                self.note(&format!(
                    "{name} | child started with TENURE_FENCING_TOKEN={token}"
                ));
                self.starts.push(ChildStart {
                    node: line.node,
                    token,
                    at: line.at,
                });
            }
            ChildLine::Stopping { token } => {
                self.note(&format!(
                    "{name} | child got SIGTERM, stopping (fencing token {token})"
                ));
                self.stops.push((line.node, token, line.at));
            }
            ChildLine::Other(text) => self.note(&format!("{name} | {text}")),
        }
    }

    /// Waits for a child to start with a token above `above`.
    pub(super) fn wait_for_start(&mut self, above: u64) -> Result<ChildStart, Failure> {
        let give_up = Instant::now() + STEP_LIMIT;
        loop {
            if let Some(start) = self.starts.iter().find(|start| start.token > above) {
                return Ok(*start);
            }
            if Instant::now() >= give_up {
                return Err(Failure::Failed(format!(
                    "no child started with a fencing token above {above} within {}; see the \
                     node logs in {}",
                    human(STEP_LIMIT),
                    self.cluster.directory().display()
                )));
            }
            self.pump_until((Instant::now() + Duration::from_millis(20)).min(give_up))?;
        }
    }

    /// When `node`'s child with `token` printed its stop line, if it did.
    pub(super) fn stopped_at(&self, node: usize, token: u64) -> Option<Instant> {
        self.stops
            .iter()
            .find(|(stopped, stopped_token, _)| *stopped == node && *stopped_token == token)
            .map(|(_, _, at)| *at)
    }

    /// Waits until `node` has left its boot quarantine and follows `leader`, so that it can
    /// vote in the next election.
    pub(super) fn wait_until_follower(
        &mut self,
        node: usize,
        leader: usize,
    ) -> Result<(), Failure> {
        let give_up = Instant::now() + STEP_LIMIT;
        loop {
            if self.cluster.follows(node, leader) {
                return Ok(());
            }
            if Instant::now() >= give_up {
                return Err(Failure::Failed(format!(
                    "{} did not rejoin as a follower of {} within {}",
                    self.name(node),
                    self.name(leader),
                    human(STEP_LIMIT)
                )));
            }
            self.pump_for(Duration::from_millis(50))?;
        }
    }

    /// Waits for `node`'s tenure to exit and describes its exit status.
    pub(super) fn wait_for_exit(&mut self, node: usize) -> Result<String, Failure> {
        let give_up = Instant::now() + STEP_LIMIT;
        loop {
            if !self.cluster.is_running(node) {
                return Ok("(already reaped)".to_string());
            }
            if let Some(status) = self.cluster.try_wait_for_exit(node, Duration::ZERO) {
                return Ok(match (status.code(), status.signal()) {
                    (Some(code), _) => format!("status {code}"),
                    (None, Some(signal)) => format!("signal {signal}"),
                    _ => status.to_string(),
                });
            }
            if Instant::now() >= give_up {
                return Err(Failure::Failed(format!(
                    "{} did not exit within {}",
                    self.name(node),
                    human(STEP_LIMIT)
                )));
            }
            self.pump_for(Duration::from_millis(20))?;
        }
    }
}
