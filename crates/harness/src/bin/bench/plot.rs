//! failover.svg: crash failover against lease. tenure's min-max range, median and p99 per
//! lease, the target line and etcd's point, as hand-written SVG from the measured numbers.

use std::fmt::Write as _;

use tenure_harness::stats::Summary;

use crate::results::Results;
use crate::session::Bench;
use crate::ETCD_TTL_SECONDS;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 440.0;
const LEFT: f64 = 70.0;
/// Room for the legend.
const RIGHT: f64 = 190.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
/// tenure's colour, and etcd's.
const TENURE: &str = "#1f5fbf";
const ETCD: &str = "#e07000";

/// The plot's scales: lease in seconds across, failover in milliseconds up.
struct Frame {
    x_max: f64,
    y_max: f64,
}

impl Frame {
    fn for_results(results: &Results) -> Frame {
        let max_lease = results
            .leases
            .iter()
            .map(|result| result.timing.lease.as_secs_f64())
            .fold(2.0, f64::max);
        let y_max: f64 = results
            .leases
            .iter()
            .flat_map(|result| result.failovers.iter())
            .chain(results.etcd.iter().flat_map(|etcd| etcd.failovers.iter()))
            .map(|sample| sample.as_secs_f64() * 1e3)
            .fold(max_lease * 1.3e3, f64::max);
        Frame {
            x_max: max_lease * 1.12,
            y_max: (y_max / 500.0).ceil() * 500.0,
        }
    }

    fn x(&self, seconds: f64) -> f64 {
        LEFT + seconds / self.x_max * (WIDTH - LEFT - RIGHT)
    }

    fn y(&self, millis: f64) -> f64 {
        HEIGHT - BOTTOM - millis / self.y_max * (HEIGHT - TOP - BOTTOM)
    }
}

impl Bench<'_> {
    /// The whole picture.
    pub(crate) fn svg(&self) -> String {
        let results = &self.results;
        let frame = Frame::for_results(results);
        let mut svg = String::new();
        let _ = writeln!(
            svg,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
             viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"12\">"
        );
        let _ = writeln!(svg, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"22\" font-size=\"14\" text-anchor=\"middle\">Crash failover \
             against lease: SIGKILL of the leader until the next child starts</text>",
            (LEFT + WIDTH - RIGHT) / 2.0
        );
        axes(&mut svg, &frame, results);
        reference_lines(&mut svg, &frame);
        tenure_marks(&mut svg, &frame, results);
        etcd_mark(&mut svg, &frame, results);
        legend(&mut svg);
        let _ = writeln!(svg, "</svg>");
        svg
    }
}

/// Axes, a grid line every 500 ms, the leases measured, and the axis titles.
fn axes(svg: &mut String, frame: &Frame, results: &Results) {
    let x = |seconds: f64| frame.x(seconds);
    let y = |millis: f64| frame.y(millis);
    let _ = writeln!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>",
        y(0.0),
        x(frame.x_max),
        y(0.0)
    );
    let _ = writeln!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{}\" x2=\"{LEFT}\" y2=\"{}\" stroke=\"black\"/>",
        y(0.0),
        y(frame.y_max)
    );
    let mut tick = 0.0;
    while tick <= frame.y_max + 1.0 {
        let _ = writeln!(
            svg,
            "<line x1=\"{LEFT}\" y1=\"{0:.1}\" x2=\"{1:.1}\" y2=\"{0:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{2}\" y=\"{3:.1}\" text-anchor=\"end\">{tick}</text>",
            y(tick),
            x(frame.x_max),
            LEFT - 6.0,
            y(tick) + 4.0
        );
        tick += 500.0;
    }
    for result in &results.leases {
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            x(result.timing.lease.as_secs_f64()),
            y(0.0) + 18.0,
            humantime::format_duration(result.timing.lease)
        );
    }
    let middle = (TOP + HEIGHT - BOTTOM) / 2.0;
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">lease</text>\
         <text x=\"18\" y=\"{middle:.1}\" text-anchor=\"middle\" \
         transform=\"rotate(-90 18 {middle:.1})\">failover (ms)</text>",
        (LEFT + WIDTH - RIGHT) / 2.0,
        HEIGHT - 16.0,
    );
}

/// Reference lines: one lease, and the target 1.2 x lease + 100 ms.
fn reference_lines(svg: &mut String, frame: &Frame) {
    let x = |seconds: f64| frame.x(seconds);
    let y = |millis: f64| frame.y(millis);
    let _ = writeln!(
        svg,
        "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#888\" \
         stroke-dasharray=\"2,3\"/>",
        x(0.0),
        y(0.0),
        x(frame.x_max),
        y(frame.x_max * 1e3)
    );
    let _ = writeln!(
        svg,
        "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#c00\" \
         stroke-dasharray=\"6,4\"/>",
        x(0.0),
        y(100.0),
        x(frame.x_max),
        y(frame.x_max * 1.2e3 + 100.0)
    );
}

/// tenure: range, median (circle) and p99 (square) per lease, medians joined.
fn tenure_marks(svg: &mut String, frame: &Frame, results: &Results) {
    let mut medians = Vec::new();
    for result in &results.leases {
        let Some(summary) = Summary::of(&result.failovers) else {
            continue;
        };
        let lease = frame.x(result.timing.lease.as_secs_f64());
        let millis = |duration: std::time::Duration| frame.y(duration.as_secs_f64() * 1e3);
        let _ = writeln!(
            svg,
            "<line x1=\"{lease:.1}\" y1=\"{:.1}\" x2=\"{lease:.1}\" y2=\"{:.1}\" \
             stroke=\"{TENURE}\" stroke-width=\"2\" opacity=\"0.5\"/>",
            millis(summary.min),
            millis(summary.max)
        );
        let _ = writeln!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"8\" height=\"8\" fill=\"white\" \
             stroke=\"{TENURE}\" stroke-width=\"2\"/>",
            lease - 4.0,
            millis(summary.p99) - 4.0
        );
        medians.push((lease, millis(summary.median)));
    }
    let path: Vec<String> = medians
        .iter()
        .map(|(px, py)| format!("{px:.1},{py:.1}"))
        .collect();
    let _ = writeln!(
        svg,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"{TENURE}\"/>",
        path.join(" ")
    );
    for (px, py) in &medians {
        let _ = writeln!(
            svg,
            "<circle cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"4.5\" fill=\"{TENURE}\"/>"
        );
    }
}

/// etcd at its TTL, shifted right a little so it does not hide tenure's 2 s point.
fn etcd_mark(svg: &mut String, frame: &Frame, results: &Results) {
    let Some(summary) = results
        .etcd
        .as_ref()
        .and_then(|etcd| Summary::of(&etcd.failovers))
    else {
        return;
    };
    let ex = frame.x(ETCD_TTL_SECONDS as f64) + 14.0;
    let millis = |duration: std::time::Duration| frame.y(duration.as_secs_f64() * 1e3);
    let _ = writeln!(
        svg,
        "<line x1=\"{ex:.1}\" y1=\"{:.1}\" x2=\"{ex:.1}\" y2=\"{:.1}\" stroke=\"{ETCD}\" \
         stroke-width=\"2\" opacity=\"0.5\"/>\
         <rect x=\"{:.1}\" y=\"{:.1}\" width=\"8\" height=\"8\" fill=\"white\" \
         stroke=\"{ETCD}\" stroke-width=\"2\"/>\
         <circle cx=\"{ex:.1}\" cy=\"{:.1}\" r=\"4.5\" fill=\"{ETCD}\"/>",
        millis(summary.min),
        millis(summary.max),
        ex - 4.0,
        millis(summary.p99) - 4.0,
        millis(summary.median)
    );
}

fn legend(svg: &mut String) {
    let lx = WIDTH - RIGHT + 16.0;
    let entries = [
        "<circle cx=\"8\" cy=\"0\" r=\"4.5\" fill=\"#1f5fbf\"/>|tenure median",
        "<rect x=\"4\" y=\"-4\" width=\"8\" height=\"8\" fill=\"white\" stroke=\"#1f5fbf\" stroke-width=\"2\"/>|tenure p99",
        "<line x1=\"8\" y1=\"-7\" x2=\"8\" y2=\"7\" stroke=\"#1f5fbf\" stroke-width=\"2\" opacity=\"0.5\"/>|tenure min to max",
        "<circle cx=\"8\" cy=\"0\" r=\"4.5\" fill=\"#e07000\"/>|etcd --ttl 2 median",
        "<rect x=\"4\" y=\"-4\" width=\"8\" height=\"8\" fill=\"white\" stroke=\"#e07000\" stroke-width=\"2\"/>|etcd p99",
        "<line x1=\"0\" y1=\"0\" x2=\"16\" y2=\"0\" stroke=\"#c00\" stroke-dasharray=\"6,4\"/>|target 1.2 L + 100 ms",
        "<line x1=\"0\" y1=\"0\" x2=\"16\" y2=\"0\" stroke=\"#888\" stroke-dasharray=\"2,3\"/>|one lease",
    ];
    for (row, entry) in entries.iter().enumerate() {
        let (mark, label) = entry.split_once('|').unwrap_or((entry, ""));
        let ly = TOP + 20.0 + row as f64 * 22.0;
        let _ = writeln!(
            svg,
            "<g transform=\"translate({lx:.1} {ly:.1})\">{mark}<text x=\"24\" y=\"4\">{label}\
             </text></g>"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::results::LeaseResult;
    use crate::tenure::timing_for;

    #[test]
    fn the_frame_holds_every_sample_and_maps_the_origin_to_the_corner() {
        let results = Results {
            leases: vec![LeaseResult {
                timing: timing_for(Duration::from_secs(1)),
                failovers: vec![Duration::from_millis(900), Duration::from_millis(3_100)],
                overlaps: 0,
            }],
            ..Results::default()
        };
        let frame = Frame::for_results(&results);
        assert_eq!(frame.y_max, 3_500.0, "rounded up to the next 500 ms");
        assert_eq!(frame.x(0.0), LEFT);
        assert_eq!(frame.y(0.0), HEIGHT - BOTTOM);
        assert_eq!(frame.y(frame.y_max), TOP);
        assert!(frame.x(1.0) < frame.x(frame.x_max));
    }
}
