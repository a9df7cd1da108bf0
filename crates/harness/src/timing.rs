//! The cluster's timing, and the bounds the tests derive from it.

use std::time::Duration;

/// Added to every upper bound on a duration: process start-up, scheduling and HTTP polling on
/// a busy 2-core machine. Bounds are otherwise derived from the configuration.
pub const SLACK: Duration = Duration::from_secs(5);

/// The cluster's timing, and the bounds the tests derive from it.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub lease: Duration,
    pub heartbeat: Duration,
    pub stop_grace: Duration,
    pub max_drift: f64,
}

impl Timing {
    /// Short timings that keep the suite fast: lease 1 s, heartbeat 100 ms, stop grace 300 ms.
    pub const FAST: Timing = Timing {
        lease: Duration::from_secs(1),
        heartbeat: Duration::from_millis(100),
        stop_grace: Duration::from_millis(300),
        max_drift: 0.01,
    };

    /// How long the leader holds a lease per renewal: L·(1−ρ)/(1+ρ) (protocol: Leases).
    pub fn lease_hold(&self) -> Duration {
        self.lease
            .mul_f64((1.0 - self.max_drift) / (1.0 + self.max_drift))
    }

    /// How long before its lease ends the leader stops acting: stop grace plus the 150 ms
    /// SIGKILL reserve (`tenure_node::settings::STOP_RESERVE`).
    pub fn stop_margin(&self) -> Duration {
        self.stop_grace + tenure_node::settings::STOP_RESERVE
    }

    /// The election jitter bound: a quarter lease.
    pub fn jitter(&self) -> Duration {
        self.lease / 4
    }

    /// Two election rounds (pre-vote, then vote), each bounded by two heartbeats.
    pub fn rounds(&self) -> Duration {
        self.heartbeat * 8
    }

    /// Crash failover: the followers' promise (≤ L) + jitter + election rounds
    /// (protocol: Crash failover), plus `SLACK`.
    pub fn failover_bound(&self) -> Duration {
        self.lease + self.jitter() + self.rounds() + SLACK
    }

    /// The first election of a fresh cluster: boot quarantine (L) + jitter + rounds + `SLACK`.
    pub fn first_election_bound(&self) -> Duration {
        self.failover_bound()
    }

    /// Graceful handover: the child's stop (at most stop grace + reserve) + jitter (the
    /// successor may have to campaign on its own) + rounds + `SLACK`.
    pub fn handover_bound(&self) -> Duration {
        self.stop_margin() + self.jitter() + self.rounds() + SLACK
    }

    /// Command-line flags for this timing.
    pub fn flags(&self) -> Vec<String> {
        vec![
            "--lease".into(),
            format!("{}ms", self.lease.as_millis()),
            "--heartbeat".into(),
            format!("{}ms", self.heartbeat.as_millis()),
            "--stop-grace".into(),
            format!("{}ms", self.stop_grace.as_millis()),
            "--max-drift".into(),
            self.max_drift.to_string(),
        ]
    }
}
