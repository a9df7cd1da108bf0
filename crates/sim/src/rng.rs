//! A small seeded generator (SplitMix64). The simulation draws everything from seeds with it:
//! schedules, clock offsets and rates, loss and duplication, the driver's election entropy.
//! It is written out here, rather than taken from a crate, so that a seed means the same run
//! for as long as this file does not change.

/// SplitMix64 (Steele, Lea and Flood, 2014): one `u64` of state, full period, good enough
/// statistics for choosing faults, and trivially reproducible.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// An independent generator for one purpose, so that drawing more numbers for one purpose
    /// does not shift the numbers of another.
    pub fn fork(&mut self, purpose: u64) -> Rng {
        Rng(self.next_u64() ^ purpose.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    /// The next uniformly random `u64`.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform draw from `[low, high]` (inclusive).
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        debug_assert!(low <= high);
        let span = u128::from(high - low) + 1;
        low + ((u128::from(self.next_u64()) * span) >> 64) as u64
    }

    /// `true` with probability `numerator / denominator`.
    pub fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        self.range(0, denominator - 1) < numerator
    }

    /// An index into a table of weights, drawn in proportion to them.
    pub fn weighted(&mut self, weights: &[u64]) -> usize {
        let total: u64 = weights.iter().sum();
        let mut draw = self.range(0, total - 1);
        for (index, weight) in weights.iter().enumerate() {
            if draw < *weight {
                return index;
            }
            draw -= weight;
        }
        unreachable!("the draw is below the total of the weights")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_numbers() {
        let first: Vec<u64> = {
            let mut rng = Rng::new(7);
            (0..4).map(|_| rng.next_u64()).collect()
        };
        let mut rng = Rng::new(7);
        assert_eq!(first, (0..4).map(|_| rng.next_u64()).collect::<Vec<_>>());
        // Pinned, so that a change of the generator (and so of every seed's run) shows.
        assert_eq!(Rng::new(0).next_u64(), 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn ranges_are_inclusive_and_bounded() {
        let mut rng = Rng::new(1);
        let draws: Vec<u64> = (0..1_000).map(|_| rng.range(3, 5)).collect();
        assert!(draws.iter().all(|draw| (3..=5).contains(draw)));
        assert!(draws.contains(&3) && draws.contains(&5));
    }
}
