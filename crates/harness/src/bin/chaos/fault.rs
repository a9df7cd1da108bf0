//! The faults, and the plan that picks one per cycle: a weighted choice drawn from the
//! campaign's seed, so that the fault order is a pure function of the seed.

use tenure_harness::SplitMix64;

/// The faults; see the table in the crate docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Fault {
    KillLeader,
    CrashRestartLeader,
    TermLeader,
    PauseLeader,
    FreezeLeaderNode,
    PartitionLeader,
    PartitionLeaderAndFollower,
    KillFollower,
    PauseFollower,
    PartitionFollower,
    RestartFollower,
}

impl Fault {
    /// Every fault with its weight in the random choice.
    pub(crate) const WEIGHTS: [(Fault, u64); 11] = [
        (Fault::KillLeader, 3),
        (Fault::CrashRestartLeader, 1),
        (Fault::TermLeader, 2),
        (Fault::PauseLeader, 2),
        (Fault::FreezeLeaderNode, 2),
        (Fault::PartitionLeader, 2),
        (Fault::PartitionLeaderAndFollower, 1),
        (Fault::KillFollower, 1),
        (Fault::PauseFollower, 1),
        (Fault::PartitionFollower, 1),
        (Fault::RestartFollower, 1),
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Fault::KillLeader => "kill-leader",
            Fault::CrashRestartLeader => "crash-restart-leader",
            Fault::TermLeader => "term-leader",
            Fault::PauseLeader => "pause-leader",
            Fault::FreezeLeaderNode => "freeze-leader-node",
            Fault::PartitionLeader => "partition-leader",
            Fault::PartitionLeaderAndFollower => "partition-leader-and-follower",
            Fault::KillFollower => "kill-follower",
            Fault::PauseFollower => "pause-follower",
            Fault::PartitionFollower => "partition-follower",
            Fault::RestartFollower => "restart-follower",
        }
    }

    pub(crate) fn is_available(self, size: usize) -> bool {
        match self {
            // Cutting off two of three would leave no majority anywhere.
            Fault::PartitionLeaderAndFollower => size >= 5,
            _ => true,
        }
    }

    /// Whether the fault hits a follower (the leader should carry on) rather than the leader.
    pub(crate) fn hits_a_follower(self) -> bool {
        matches!(
            self,
            Fault::KillFollower
                | Fault::PauseFollower
                | Fault::PartitionFollower
                | Fault::RestartFollower
        )
    }

    /// Whether the fault leaves the leader's lease to run out, so that its guard must stop the
    /// child before the lease could end.
    pub(crate) fn lets_the_lease_run_out(self) -> bool {
        matches!(
            self,
            Fault::KillLeader
                | Fault::CrashRestartLeader
                | Fault::PauseLeader
                | Fault::PartitionLeader
                | Fault::PartitionLeaderAndFollower
        )
    }
}

/// The faults one campaign chooses from, with their weights.
#[derive(Clone, Debug)]
pub(crate) struct FaultPlan {
    choices: Vec<(Fault, u64)>,
    total_weight: u64,
}

impl FaultPlan {
    /// The faults available to a cluster of `size`, restricted to `only` (fault names) unless
    /// it is empty; `None` when no fault is left.
    pub(crate) fn new(size: usize, only: &[String]) -> Option<FaultPlan> {
        let choices: Vec<(Fault, u64)> = Fault::WEIGHTS
            .iter()
            .copied()
            .filter(|(fault, _)| fault.is_available(size))
            .filter(|(fault, _)| only.is_empty() || only.iter().any(|name| name == fault.name()))
            .collect();
        let total_weight = choices.iter().map(|(_, weight)| weight).sum();
        (!choices.is_empty()).then_some(FaultPlan {
            choices,
            total_weight,
        })
    }

    /// The next fault, in proportion to the weights.
    pub(crate) fn pick(&self, rng: &mut SplitMix64) -> Fault {
        let mut pick = rng.below(self.total_weight);
        for (candidate, weight) in &self.choices {
            if pick < *weight {
                return *candidate;
            }
            pick -= weight;
        }
        unreachable!("the draw is below the total of the weights")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_keeps_to_the_size_and_the_faults_asked_for() {
        let plan = FaultPlan::new(3, &[]).unwrap();
        let mut rng = SplitMix64::new(1);
        let picks: Vec<Fault> = (0..2_000).map(|_| plan.pick(&mut rng)).collect();
        assert!(!picks.contains(&Fault::PartitionLeaderAndFollower));
        let available = Fault::WEIGHTS
            .iter()
            .filter(|(fault, _)| fault.is_available(3))
            .count();
        let distinct: std::collections::BTreeSet<Fault> = picks.iter().copied().collect();
        assert_eq!(distinct.len(), available, "every available fault is drawn");

        let only = vec!["kill-leader".to_string(), "term-leader".to_string()];
        let plan = FaultPlan::new(5, &only).unwrap();
        assert!((0..200)
            .all(|_| { matches!(plan.pick(&mut rng), Fault::KillLeader | Fault::TermLeader) }));
        let none = vec!["partition-leader-and-follower".to_string()];
        assert!(FaultPlan::new(3, &none).is_none());
    }

    #[test]
    fn one_seed_gives_one_fault_order() {
        let plan = FaultPlan::new(5, &[]).unwrap();
        let order = |seed| {
            let mut rng = SplitMix64::new(seed);
            (0..50).map(|_| plan.pick(&mut rng)).collect::<Vec<Fault>>()
        };
        assert_eq!(order(7), order(7));
        assert_ne!(order(7), order(8));
    }
}
