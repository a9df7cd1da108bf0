//! failover.svg: crash failover against lease, as hand-written SVG from the measured numbers,
//! in two panels that share the lease axis (logarithmic, so 250 ms and 5 s get equal room):
//!
//! - above, failover on a logarithmic scale: tenure's min-max range, median and p99 per lease,
//!   etcd's at each TTL it was measured at, the limit line L − h/2 and one lease;
//! - below, what no logarithmic scale shows: how far tenure's median lies above the limit line
//!   and its p99 above one lease, in milliseconds, against the targets (`targets`).

use std::fmt::Write as _;
use std::time::Duration;

use tenure_harness::stats::Summary;

use crate::results::{durations, Results};
use crate::session::Bench;
use crate::targets::{excess_millis, limit, MEDIAN_ALLOWANCE, P99_ALLOWANCE};

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 720.0;
const LEFT: f64 = 70.0;
/// Room for the legend.
const RIGHT: f64 = 210.0;
/// The upper panel's top and bottom edges.
const UPPER: (f64, f64) = (40.0, 400.0);
/// The lower panel's top and bottom edges.
const LOWER: (f64, f64) = (470.0, 670.0);
/// tenure's colour, etcd's, the limit line's, the p99 target's.
const TENURE: &str = "#1f5fbf";
const ETCD: &str = "#e07000";
const LIMIT: &str = "#2a8a2a";
const TARGET: &str = "#c00";
/// How far right of tenure's marks etcd's stand, so that they do not hide each other.
const ETCD_SHIFT: f64 = 14.0;

/// One axis: `low` maps to pixel `start`, `high` to pixel `end`, linearly or logarithmically.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Axis {
    low: f64,
    high: f64,
    logarithmic: bool,
    start: f64,
    end: f64,
}

impl Axis {
    /// The pixel of `value`; on a logarithmic axis, values at or below zero go to `low`.
    fn at(&self, value: f64) -> f64 {
        let fraction = if self.logarithmic {
            let value = value.max(self.low);
            (value.ln() - self.low.ln()) / (self.high.ln() - self.low.ln())
        } else {
            (value - self.low) / (self.high - self.low)
        };
        self.start + fraction * (self.end - self.start)
    }
}

/// The scales of both panels: lease in seconds across, failover in milliseconds up above, and
/// milliseconds above the limit below.
struct Frame {
    lease: Axis,
    failover: Axis,
    excess: Axis,
    /// The lower panel's grid step, in milliseconds.
    excess_step: f64,
}

/// The points of the limit line: (lease in seconds, L − h/2 in milliseconds), by lease.
fn limit_points(results: &Results) -> Vec<(f64, f64)> {
    results
        .leases
        .iter()
        .map(|result| {
            (
                result.timing.lease.as_secs_f64(),
                limit(&result.timing).as_secs_f64() * 1e3,
            )
        })
        .collect()
}

/// Per lease: (lease in seconds, median − (L − h/2), p99 − L), in milliseconds.
fn excess_points(results: &Results) -> Vec<(f64, f64, f64)> {
    results
        .leases
        .iter()
        .filter_map(|result| {
            let summary = Summary::of(&durations(&result.crashes))?;
            Some((
                result.timing.lease.as_secs_f64(),
                excess_millis(summary.median, limit(&result.timing)),
                excess_millis(summary.p99, result.timing.lease),
            ))
        })
        .collect()
}

impl Frame {
    fn for_results(results: &Results) -> Frame {
        let leases: Vec<f64> = results
            .leases
            .iter()
            .map(|result| result.timing.lease.as_secs_f64())
            .chain(
                results
                    .etcd
                    .iter()
                    .flat_map(|etcd| etcd.failovers.iter().map(|run| run.ttl.as_secs_f64())),
            )
            .collect();
        let lease_low = leases.iter().copied().fold(f64::INFINITY, f64::min);
        let lease_high = leases.iter().copied().fold(0.0, f64::max);
        let (lease_low, lease_high) = if lease_low.is_finite() && lease_high > 0.0 {
            (lease_low, lease_high)
        } else {
            (1.0, 2.0)
        };
        let millis: Vec<f64> = results
            .leases
            .iter()
            .flat_map(|result| result.crashes.iter().map(|takeover| takeover.took))
            .chain(results.etcd.iter().flat_map(|etcd| {
                etcd.failovers
                    .iter()
                    .flat_map(|run| run.failovers.iter().copied())
            }))
            .map(|took| took.as_secs_f64() * 1e3)
            .chain(limit_points(results).into_iter().map(|(_, limit)| limit))
            .chain([lease_low * 1e3, lease_high * 1e3])
            .filter(|value| *value > 0.0)
            .collect();
        let millis_low = millis.iter().copied().fold(f64::INFINITY, f64::min);
        let millis_high = millis.iter().copied().fold(0.0, f64::max);
        let excess: Vec<f64> = excess_points(results)
            .into_iter()
            .flat_map(|(_, median, p99)| [median, p99])
            .chain([0.0, P99_ALLOWANCE.as_secs_f64() * 1e3])
            .collect();
        let excess_low = excess.iter().copied().fold(f64::INFINITY, f64::min);
        let excess_high = excess.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let excess_step = linear_step(excess_high - excess_low);
        Frame {
            lease: Axis {
                low: lease_low / 1.4,
                high: lease_high * 1.4,
                logarithmic: true,
                start: LEFT,
                end: WIDTH - RIGHT,
            },
            failover: Axis {
                low: millis_low / 1.25,
                high: millis_high * 1.25,
                logarithmic: true,
                start: UPPER.1,
                end: UPPER.0,
            },
            excess: Axis {
                low: ((excess_low - excess_step / 2.0) / excess_step).floor() * excess_step,
                high: ((excess_high + excess_step / 2.0) / excess_step).ceil() * excess_step,
                logarithmic: false,
                start: LOWER.1,
                end: LOWER.0,
            },
            excess_step,
        }
    }
}

/// The grid step of a linear axis that spans `span`: the first of 10, 20, 50, 100, … ms that
/// divides it into at most eight parts.
fn linear_step(span: f64) -> f64 {
    let mut step = 10.0;
    loop {
        for factor in [1.0, 2.0, 5.0] {
            if span / (step * factor) <= 8.0 {
                return step * factor;
            }
        }
        step *= 10.0;
    }
}

/// The grid values of a logarithmic axis from `low` to `high`: 1, 2 and 5 times powers of ten.
fn logarithmic_ticks(low: f64, high: f64) -> Vec<f64> {
    let mut ticks = Vec::new();
    if low <= 0.0 || high <= low {
        return ticks;
    }
    let mut decade = 10f64.powf(low.log10().floor());
    while decade <= high {
        for factor in [1.0, 2.0, 5.0] {
            let tick = decade * factor;
            if tick >= low && tick <= high {
                ticks.push(tick);
            }
        }
        decade *= 10.0;
    }
    ticks
}

impl Bench<'_> {
    /// The whole picture.
    pub(crate) fn svg(&self) -> String {
        render(&self.results)
    }
}

/// The picture of `results`.
fn render(results: &Results) -> String {
    let frame = Frame::for_results(results);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(svg, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
    let middle = (LEFT + WIDTH - RIGHT) / 2.0;
    let _ = writeln!(
        svg,
        "<text x=\"{middle}\" y=\"22\" font-size=\"14\" text-anchor=\"middle\">Crash \
         failover against lease: SIGKILL of the leader until the next child starts</text>\
         <text x=\"{middle}\" y=\"{:.1}\" font-size=\"14\" text-anchor=\"middle\">Above the \
         limit: median - (L - h/2), and p99 - L</text>",
        LOWER.0 - 14.0
    );
    upper_axes(&mut svg, &frame, results);
    lower_axes(&mut svg, &frame, results);
    reference_lines(&mut svg, &frame, results);
    tenure_marks(&mut svg, &frame, results);
    etcd_marks(&mut svg, &frame, results);
    excess_marks(&mut svg, &frame, results);
    legend(&mut svg);
    let _ = writeln!(svg, "</svg>");
    svg
}

/// The upper panel's axes, a grid line at every 1-2-5 value, and the axis title.
fn upper_axes(svg: &mut String, frame: &Frame, results: &Results) {
    let (left, right) = (frame.lease.start, frame.lease.end);
    let _ = writeln!(
        svg,
        "<line x1=\"{left}\" y1=\"{0}\" x2=\"{right}\" y2=\"{0}\" stroke=\"black\"/>\
         <line x1=\"{left}\" y1=\"{0}\" x2=\"{left}\" y2=\"{1}\" stroke=\"black\"/>",
        UPPER.1, UPPER.0
    );
    for tick in logarithmic_ticks(frame.failover.low, frame.failover.high) {
        let y = frame.failover.at(tick);
        let _ = writeln!(
            svg,
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{right}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{tick}</text>",
            left - 6.0,
            y + 4.0
        );
    }
    lease_labels(svg, frame, results, UPPER.1);
    let middle = (UPPER.0 + UPPER.1) / 2.0;
    let _ = writeln!(
        svg,
        "<text x=\"18\" y=\"{middle:.1}\" text-anchor=\"middle\" \
         transform=\"rotate(-90 18 {middle:.1})\">failover (ms, log scale)</text>"
    );
}

/// The lower panel's axes, its grid, the zero line and the axis titles.
fn lower_axes(svg: &mut String, frame: &Frame, results: &Results) {
    let (left, right) = (frame.lease.start, frame.lease.end);
    let _ = writeln!(
        svg,
        "<line x1=\"{left}\" y1=\"{0}\" x2=\"{right}\" y2=\"{0}\" stroke=\"black\"/>\
         <line x1=\"{left}\" y1=\"{0}\" x2=\"{left}\" y2=\"{1}\" stroke=\"black\"/>",
        LOWER.1, LOWER.0
    );
    let mut tick = frame.excess.low;
    while tick <= frame.excess.high + 0.5 {
        let y = frame.excess.at(tick);
        let (stroke, label) = if tick == 0.0 {
            ("#888", "0".to_string())
        } else {
            ("#ddd", format!("{tick:+}"))
        };
        let _ = writeln!(
            svg,
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{right}\" y2=\"{y:.1}\" stroke=\"{stroke}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>",
            left - 6.0,
            y + 4.0
        );
        tick += frame.excess_step;
    }
    lease_labels(svg, frame, results, LOWER.1);
    let middle = (LOWER.0 + LOWER.1) / 2.0;
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">lease (log scale)</text>\
         <text x=\"18\" y=\"{middle:.1}\" text-anchor=\"middle\" \
         transform=\"rotate(-90 18 {middle:.1})\">above the limit (ms)</text>",
        (left + right) / 2.0,
        HEIGHT - 14.0,
    );
}

/// The measured leases under a panel whose bottom edge is `bottom`.
fn lease_labels(svg: &mut String, frame: &Frame, results: &Results, bottom: f64) {
    for result in &results.leases {
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            frame.lease.at(result.timing.lease.as_secs_f64()),
            bottom + 18.0,
            humantime::format_duration(result.timing.lease)
        );
    }
}

/// Above: one lease, and the limit line L − h/2 through every measured lease. Below: the
/// targets, 40 ms above the limit line for the median and 60 ms above one lease for the p99.
fn reference_lines(svg: &mut String, frame: &Frame, results: &Results) {
    let (low, high) = (frame.lease.low, frame.lease.high);
    let _ = writeln!(
        svg,
        "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#888\" \
         stroke-dasharray=\"2,3\"/>",
        frame.lease.at(low),
        frame.failover.at(low * 1e3),
        frame.lease.at(high),
        frame.failover.at(high * 1e3)
    );
    let path: Vec<String> = limit_points(results)
        .iter()
        .map(|(lease, millis)| {
            format!(
                "{:.1},{:.1}",
                frame.lease.at(*lease),
                frame.failover.at(*millis)
            )
        })
        .collect();
    let _ = writeln!(
        svg,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"{LIMIT}\" stroke-width=\"1.5\" \
         stroke-dasharray=\"6,4\"/>",
        path.join(" ")
    );
    for (allowance, colour) in [(MEDIAN_ALLOWANCE, LIMIT), (P99_ALLOWANCE, TARGET)] {
        let y = frame.excess.at(allowance.as_secs_f64() * 1e3);
        let _ = writeln!(
            svg,
            "<line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{colour}\" \
             stroke-dasharray=\"6,4\"/>",
            frame.lease.start, frame.lease.end
        );
    }
}

/// tenure: range, median (circle) and p99 (square) per lease, medians joined.
fn tenure_marks(svg: &mut String, frame: &Frame, results: &Results) {
    let mut medians = Vec::new();
    for result in &results.leases {
        let Some(summary) = Summary::of(&durations(&result.crashes)) else {
            continue;
        };
        let x = frame.lease.at(result.timing.lease.as_secs_f64());
        range_marks(svg, frame, x, &summary, TENURE);
        medians.push((x, frame.failover.at(millis(summary.median))));
    }
    let path: Vec<String> = medians
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect();
    let _ = writeln!(
        svg,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"{TENURE}\"/>",
        path.join(" ")
    );
}

/// etcd at each TTL it was measured at, shifted right a little.
fn etcd_marks(svg: &mut String, frame: &Frame, results: &Results) {
    let Some(etcd) = &results.etcd else {
        return;
    };
    for run in &etcd.failovers {
        let Some(summary) = Summary::of(&run.failovers) else {
            continue;
        };
        let x = frame.lease.at(run.ttl.as_secs_f64()) + ETCD_SHIFT;
        range_marks(svg, frame, x, &summary, ETCD);
    }
}

/// A min-max line, a p99 square and a median circle at pixel column `x`.
fn range_marks(svg: &mut String, frame: &Frame, x: f64, summary: &Summary, colour: &str) {
    let y = |duration: Duration| frame.failover.at(millis(duration));
    let _ = writeln!(
        svg,
        "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"{colour}\" \
         stroke-width=\"2\" opacity=\"0.5\"/>\
         <rect x=\"{:.1}\" y=\"{:.1}\" width=\"8\" height=\"8\" fill=\"white\" \
         stroke=\"{colour}\" stroke-width=\"2\"/>\
         <circle cx=\"{x:.1}\" cy=\"{:.1}\" r=\"4.5\" fill=\"{colour}\"/>",
        y(summary.min),
        y(summary.max),
        x - 4.0,
        y(summary.p99) - 4.0,
        y(summary.median)
    );
}

/// Below: tenure's median above the limit line (circle) and p99 above one lease (square).
fn excess_marks(svg: &mut String, frame: &Frame, results: &Results) {
    for (lease, median, p99) in excess_points(results) {
        let x = frame.lease.at(lease);
        let _ = writeln!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"8\" height=\"8\" fill=\"white\" \
             stroke=\"{TENURE}\" stroke-width=\"2\"/>\
             <circle cx=\"{x:.1}\" cy=\"{:.1}\" r=\"4.5\" fill=\"{TENURE}\"/>",
            x - 4.0,
            frame.excess.at(p99) - 4.0,
            frame.excess.at(median)
        );
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn legend(svg: &mut String) {
    let lx = WIDTH - RIGHT + 16.0;
    let entries = [
        "<circle cx=\"8\" cy=\"0\" r=\"4.5\" fill=\"#1f5fbf\"/>|tenure median",
        "<rect x=\"4\" y=\"-4\" width=\"8\" height=\"8\" fill=\"white\" stroke=\"#1f5fbf\" stroke-width=\"2\"/>|tenure p99",
        "<line x1=\"8\" y1=\"-7\" x2=\"8\" y2=\"7\" stroke=\"#1f5fbf\" stroke-width=\"2\" opacity=\"0.5\"/>|tenure min to max",
        "<circle cx=\"8\" cy=\"0\" r=\"4.5\" fill=\"#e07000\"/>|etcd median, TTL = lease",
        "<rect x=\"4\" y=\"-4\" width=\"8\" height=\"8\" fill=\"white\" stroke=\"#e07000\" stroke-width=\"2\"/>|etcd p99",
        "<line x1=\"0\" y1=\"0\" x2=\"16\" y2=\"0\" stroke=\"#2a8a2a\" stroke-width=\"1.5\" stroke-dasharray=\"6,4\"/>|limit L - h/2",
        "<line x1=\"0\" y1=\"0\" x2=\"16\" y2=\"0\" stroke=\"#888\" stroke-dasharray=\"2,3\"/>|one lease",
    ];
    let below = [
        "<circle cx=\"8\" cy=\"0\" r=\"4.5\" fill=\"#1f5fbf\"/>|median - (L - h/2)",
        "<rect x=\"4\" y=\"-4\" width=\"8\" height=\"8\" fill=\"white\" stroke=\"#1f5fbf\" stroke-width=\"2\"/>|p99 - L",
        "<line x1=\"0\" y1=\"0\" x2=\"16\" y2=\"0\" stroke=\"#2a8a2a\" stroke-dasharray=\"6,4\"/>|median target +40 ms",
        "<line x1=\"0\" y1=\"0\" x2=\"16\" y2=\"0\" stroke=\"#c00\" stroke-dasharray=\"6,4\"/>|p99 target +60 ms",
    ];
    for (top, entries) in [(UPPER.0, &entries[..]), (LOWER.0, &below[..])] {
        for (row, entry) in entries.iter().enumerate() {
            let (mark, label) = entry.split_once('|').unwrap_or((entry, ""));
            let ly = top + 20.0 + row as f64 * 22.0;
            let _ = writeln!(
                svg,
                "<g transform=\"translate({lx:.1} {ly:.1})\">{mark}<text x=\"24\" y=\"4\">\
                 {label}</text></g>"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{LeaseResult, Takeover};
    use crate::tenure::timing_for;

    fn lease_result(lease_millis: u64, failover_millis: &[u64]) -> LeaseResult {
        let mut result = LeaseResult::new(timing_for(Duration::from_millis(lease_millis)));
        result.crashes = failover_millis
            .iter()
            .map(|millis| Takeover {
                took: Duration::from_millis(*millis),
                from: Some("n1".to_string()),
                to: "n2".to_string(),
                token_step: 1,
            })
            .collect();
        result
    }

    #[test]
    fn a_logarithmic_axis_puts_the_geometric_middle_in_the_middle() {
        let axis = Axis {
            low: 100.0,
            high: 10_000.0,
            logarithmic: true,
            start: 400.0,
            end: 0.0,
        };
        assert_eq!(axis.at(100.0), 400.0);
        assert_eq!(axis.at(10_000.0), 0.0);
        assert!((axis.at(1_000.0) - 200.0).abs() < 1e-9);
        assert_eq!(axis.at(0.0), 400.0, "zero goes to the low end");
    }

    #[test]
    fn the_limit_line_runs_through_a_lease_less_half_a_heartbeat() {
        let results = Results {
            leases: vec![lease_result(250, &[260]), lease_result(2_000, &[1_900])],
            ..Results::default()
        };
        assert_eq!(limit_points(&results), vec![(0.25, 237.5), (2.0, 1_875.0)]);
        let frame = Frame::for_results(&results);
        for (lease, millis) in limit_points(&results) {
            assert!(frame.lease.low < lease && lease < frame.lease.high);
            assert!(frame.failover.low < millis && millis < frame.failover.high);
        }
        let svg = render(&results);
        let first = format!(
            "{:.1},{:.1}",
            frame.lease.at(0.25),
            frame.failover.at(237.5)
        );
        assert!(svg.contains(&first), "the limit line's first point {first}");
    }

    #[test]
    fn the_lower_panel_holds_every_excess_and_both_targets() {
        let results = Results {
            leases: vec![
                lease_result(1_000, &[900, 960, 1_400]),
                lease_result(2_000, &[1_850, 1_880]),
            ],
            ..Results::default()
        };
        // 1 s: median 960 − 950 = +10, p99 1400 − 1000 = +400. 2 s: median 1850 − 1875 = −25
        // (nearest rank of two), p99 1880 − 2000 = −120.
        assert_eq!(
            excess_points(&results),
            vec![(1.0, 10.0, 400.0), (2.0, -25.0, -120.0)]
        );
        let frame = Frame::for_results(&results);
        assert_eq!(frame.excess_step, 100.0);
        assert!(frame.excess.low <= -120.0 && frame.excess.high >= 400.0);
        assert_eq!(frame.excess.at(frame.excess.low), LOWER.1);
        assert_eq!(frame.excess.at(frame.excess.high), LOWER.0);
    }

    #[test]
    fn grid_steps_and_ticks() {
        assert_eq!(linear_step(60.0), 10.0);
        assert_eq!(linear_step(150.0), 20.0);
        assert_eq!(linear_step(520.0), 100.0);
        assert_eq!(linear_step(3_000.0), 500.0);
        assert_eq!(
            logarithmic_ticks(150.0, 7_000.0),
            vec![200.0, 500.0, 1_000.0, 2_000.0, 5_000.0]
        );
        assert!(logarithmic_ticks(0.0, 10.0).is_empty());
    }
}
