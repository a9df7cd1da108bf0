//! [`Outage`]: logs a store's failures once per outage, not once per request. A contender
//! polls every few hundred milliseconds, so an unreachable store would otherwise fill the log.

use std::fmt;
use std::time::Instant;

/// Whether the store is failing, since when, and how often it failed since.
#[derive(Debug)]
pub(crate) struct Outage {
    /// `postgres` or `etcd`, for the log.
    store: &'static str,
    failing_since: Option<Instant>,
    failures: u64,
}

impl Outage {
    pub(crate) fn new(store: &'static str) -> Outage {
        Outage {
            store,
            failing_since: None,
            failures: 0,
        }
    }

    /// A request or a connection attempt failed: the first failure of an outage is a warning,
    /// the others are debug lines.
    pub(crate) fn handle_failure(&mut self, doing: &str, error: &dyn fmt::Display) {
        self.failures += 1;
        if self.failing_since.is_none() {
            self.failing_since = Some(Instant::now());
            tracing::warn!(
                store = self.store,
                "{doing} failed, and requests to the store fail until it answers again: {error}"
            );
        } else {
            tracing::debug!(
                store = self.store,
                failures = self.failures,
                "{doing} failed: {error}"
            );
        }
    }

    /// A request got an answer: an outage, if there was one, is over.
    pub(crate) fn handle_success(&mut self) {
        if let Some(since) = self.failing_since.take() {
            tracing::info!(
                store = self.store,
                failures = self.failures,
                "the store answers again after {:.1} s",
                since.elapsed().as_secs_f64()
            );
        }
        self.failures = 0;
    }
}
