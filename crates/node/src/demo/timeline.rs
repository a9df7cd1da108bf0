//! The moments worth a line in the demo's final summary.

use std::time::{Duration, Instant};

/// Moments and what happened, printed in the order they happened.
#[derive(Default)]
pub(super) struct Timeline {
    entries: Vec<(Instant, String)>,
}

impl Timeline {
    pub(super) fn add(&mut self, at: Instant, text: &str) {
        self.entries.push((at, text.to_string()));
    }

    /// One line per moment, as seconds since `origin`.
    pub(super) fn render(&mut self, origin: Instant) -> String {
        self.entries.sort_by_key(|(at, _)| *at);
        self.entries
            .iter()
            .map(|(at, text)| {
                format!(
                    "  {:>7}  {text}\n",
                    seconds(at.saturating_duration_since(origin))
                )
            })
            .collect()
    }
}

/// `2.19s`.
pub(super) fn seconds(duration: Duration) -> String {
    format!("{:.2}s", duration.as_secs_f64())
}

/// `12 ms`.
pub(super) fn millis(duration: Duration) -> String {
    format!("{} ms", duration.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_in_time_order_from_the_origin() {
        let origin = Instant::now();
        let mut timeline = Timeline::default();
        timeline.add(origin + Duration::from_millis(2500), "later");
        timeline.add(origin + Duration::from_millis(50), "first");
        assert_eq!(
            timeline.render(origin),
            "    0.05s  first\n    2.50s  later\n"
        );
        assert_eq!(millis(Duration::from_micros(12_900)), "12 ms");
    }
}
