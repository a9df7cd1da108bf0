//! Time bounds derived from the configuration and the simulated network, never from the speed
//! of the machine, so that a slow machine cannot fail a test. The scenario tests assert
//! failovers against them, and the liveness oracle expects a leader to act within
//! [`RecoveryBounds::liveness`] of the heal.
//!
//! The building blocks, in global (real) time:
//! - a span that a node measures as `d` on its own clock lasts at most `d / (1 − ρ)`;
//! - a datagram takes at most one `hop`: the network's latency ceiling, plus a tick until the
//!   step boundary at which turmoil delivers it, plus a tick until the receiver runs;
//! - an election after every promise has ended takes one jitter (`J`), then three round trips:
//!   pre-vote, vote, and the first heartbeat whose acknowledgement gives the lease;
//! - an election round that fails (a pre-vote that reached a follower whose promise had not
//!   quite ended, a lost vote) costs at most one round timeout and a fresh jitter.

use std::time::Duration;

use tenure_core::{Config, StoreLeaseConfig, PPM};

use crate::health::HealthTiming;
use crate::run::Timing;

/// How long, at most, until a node acts again after a crash, a resignation or a heal, for one
/// configuration and network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecoveryBounds {
    /// From the crash, isolation or pause of an acting leader until another node acts:
    /// every promise ends within one lease of the last heartbeat (protocol: Crash failover),
    /// then an election, allowing one failed round.
    pub failover: Duration,
    /// From a resignation until the successor acts: the child's exit (at most the stop
    /// margin), `Resign` and `TimeoutNow`, then the successor's vote and first heartbeat
    /// round trips (protocol: Graceful handover). Plus one failed round: the network may
    /// deliver the successor's vote request to a follower before the old leader's `Resign`, and a
    /// follower still promised to the old leader ignores it.
    pub handover: Duration,
    /// From the heal until some node acts: a restarted node's boot quarantine and any promise
    /// end within one lease, then an election, allowing three failed rounds.
    pub liveness: Duration,
}

impl RecoveryBounds {
    /// The bounds of `config` on a network with `timing`.
    pub fn new(config: &Config, timing: &Timing) -> RecoveryBounds {
        let drift = u64::from(config.max_drift_ppm());
        let real =
            |local: tenure_core::Duration| -> Duration { local.mul_ratio(PPM, PPM - drift).into() };
        let hop = timing.max_latency + 2 * timing.tick;
        let round_trip = 2 * hop;
        let lease = config.lease_duration();
        let jitter = config.election_jitter_max();
        let retry = real(config.election_round_timeout() + jitter);
        let election = real(jitter) + 3 * round_trip;
        RecoveryBounds {
            failover: real(lease) + election + retry,
            handover: Duration::from(config.stop_margin()) + hop + 2 * round_trip + retry,
            liveness: real(lease) + election + 3 * retry,
        }
    }
}

impl RecoveryBounds {
    /// The bounds of a store run (protocol: Store-lease timing) on a network with `timing`.
    ///
    /// - failover: the holder's latest applied renewal comes before the fault. A contender
    ///   first sees its version within a poll interval and a round trip (where the contenders
    ///   judge), or the store expires it a lease after it was applied on the store's clock
    ///   (where the store judges), then waits a lease on its own clock, or until its next
    ///   read; then one acquisition round trip. One more poll interval for a read lost to a
    ///   timeout on the way.
    /// - handover: the child's exit (at most the stop margin), the release's round trip, the
    ///   contender's next read and its acquisition; plus one poll interval.
    /// - liveness: as a failover (a node restarted at the heal treats a record naming itself
    ///   like anyone's), plus the two poll intervals a node that released the record waits.
    pub fn for_store(config: &StoreLeaseConfig, timing: &Timing) -> RecoveryBounds {
        let drift = u64::from(config.params().max_drift_ppm);
        let real =
            |local: tenure_core::Duration| -> Duration { local.mul_ratio(PPM, PPM - drift).into() };
        let hop = timing.max_latency + 2 * timing.tick;
        let round_trip = 2 * hop;
        let lease = config.lease_duration();
        let poll = real(config.params().poll_interval);
        let failover = real(lease) + 2 * poll + 2 * round_trip;
        RecoveryBounds {
            failover,
            handover: Duration::from(config.stop_margin()) + 2 * poll + 2 * round_trip + hop,
            liveness: failover + 2 * poll,
        }
    }

    /// From the hang of an acting leader's daemon until another node acts (protocol:
    /// Health-gated acting): its checks fail `failures` times in a row (checks run in global
    /// time, one tick of delivery each), then a handover as for a resignation.
    pub fn unhealthy_handover(&self, health: &HealthTiming, timing: &Timing) -> Duration {
        health.detection_max() + timing.tick + self.handover
    }
}

#[cfg(test)]
mod tests {
    use tenure_core::{ConfigParams, NodeId};

    use super::*;

    #[test]
    fn the_default_configuration_on_the_default_network() {
        let config = Config::new(ConfigParams {
            members: vec![NodeId(1), NodeId(2), NodeId(3)],
            ..ConfigParams::default()
        })
        .expect("valid");
        let bounds = RecoveryBounds::new(&config, &Timing::default());
        // L = 2 s, J = 0.5 s, round timeout 0.5 s, ρ = 1 %, hop = 40 + 2·20 ms:
        // failover = 2.0202 + (0.5051 + 3·0.16) + 1.0101 s, and so on.
        assert_eq!(bounds.failover.as_millis(), 4_015);
        assert_eq!(bounds.handover.as_millis(), 1_910);
        assert_eq!(bounds.liveness.as_millis(), 6_035);
    }

    #[test]
    fn the_default_store_lease_on_the_default_network() {
        let params = tenure_core::StoreLeaseParams::for_lease(
            tenure_core::Duration::from_secs(2),
            tenure_core::Duration::from_millis(500),
            tenure_core::ExpiryJudge::Contenders,
        );
        let config = StoreLeaseConfig::new(params).expect("valid");
        let bounds = RecoveryBounds::for_store(&config, &Timing::default());
        // L = 2 s, polls of 250 ms, ρ = 1 %, hop = 40 + 2·20 ms:
        // failover = 2.0202 + 2·0.2525 + 2·0.16 s, and so on.
        assert_eq!(bounds.failover.as_millis(), 2_845);
        assert_eq!(bounds.handover.as_millis(), 1_405);
        assert_eq!(bounds.liveness.as_millis(), 3_350);
    }
}
