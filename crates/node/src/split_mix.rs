//! SplitMix64 (Steele, Lea and Flood, 2014), the one small generator of tenure-node and the
//! harness: `tenure run` draws its election jitter with it, seeded from the operating system,
//! and the chaos runner its faults, seeded from its command line, so that a seed names one
//! fault order. (The simulation has its own copy in tenure-sim, which depends on no part of
//! tenure-node.) It is written out rather than taken from a crate so that a seed keeps its
//! meaning for as long as this file does not change.

use std::time::Duration;

/// One `u64` of state, full period, statistics good enough for jitter and fault choices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// The next uniformly random `u64`.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, bound)` (by remainder: the bias is far below what a fault choice can
    /// notice); 0, without drawing, when `bound` is 0.
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            0
        } else {
            self.next_u64() % bound
        }
    }

    /// Uniform in `[0, limit)`, to the nanosecond.
    pub fn duration(&mut self, limit: Duration) -> Duration {
        Duration::from_nanos(self.below(u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_published_sequence() {
        // Pinned, so that a change of the generator (and so of every chaos seed's fault order)
        // shows; the first output for seed 0 is SplitMix64's well-known 0xe220a8397b1dcdaf.
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn draws_stay_below_their_bound() {
        let mut rng = SplitMix64::new(7);
        assert!((0..1_000).all(|_| rng.below(3) < 3));
        let limit = Duration::from_millis(5);
        assert!((0..1_000).all(|_| rng.duration(limit) < limit));
        let before = rng.clone();
        assert_eq!(rng.below(0), 0);
        assert_eq!(rng.duration(Duration::ZERO), Duration::ZERO);
        assert_eq!(rng, before, "a zero bound draws nothing");
    }
}
