//! Summaries of measured durations: nearest-rank percentiles, for the benchmark and the chaos
//! runner.

use std::time::Duration;

/// Minimum, median, p99, maximum and mean of a sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub min: Duration,
    pub median: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub mean: Duration,
}

impl Summary {
    /// The summary of `samples`; `None` when there are none.
    pub fn of(samples: &[Duration]) -> Option<Summary> {
        let mut sorted = samples.to_vec();
        sorted.sort();
        let count = sorted.len();
        let total: Duration = sorted.iter().sum();
        Some(Summary {
            count,
            min: *sorted.first()?,
            median: nearest_rank(&sorted, 0.5)?,
            p99: nearest_rank(&sorted, 0.99)?,
            max: *sorted.last()?,
            mean: total / u32::try_from(count).ok()?,
        })
    }
}

/// The nearest-rank percentile of sorted samples: the smallest sample with at least `fraction`
/// of the samples at or below it. With fewer than 100 samples, p99 is the maximum.
pub fn nearest_rank(sorted: &[Duration], fraction: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (fraction * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Whole milliseconds, for tables.
pub fn millis(duration: Duration) -> u128 {
    duration.as_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=20).rev().map(Duration::from_millis).collect();
        let summary = Summary::of(&samples).unwrap();
        assert_eq!(summary.min, Duration::from_millis(1));
        assert_eq!(summary.median, Duration::from_millis(10));
        assert_eq!(summary.p99, Duration::from_millis(20));
        assert_eq!(summary.max, Duration::from_millis(20));
        assert_eq!(summary.count, 20);
        let hundred: Vec<Duration> = (1..=200).map(Duration::from_millis).collect();
        assert_eq!(
            Summary::of(&hundred).unwrap().p99,
            Duration::from_millis(198)
        );
        assert_eq!(Summary::of(&[]), None);
    }
}
