//! The chaos runner's end-of-run checks, as pure functions of what the run left on disk: the
//! ledger the children wrote, the acknowledgements they received and the fenced store's log.
//!
//! # What the ledger check can and cannot see
//!
//! A child's life runs from its `start` line to its `stop` line. Both are written by the
//! child itself, so the interval it records lies *inside* its real life: the process existed
//! a little before `start` (exec, runtime set-up) and a little after `stop` (exit). Two
//! recorded intervals that overlap are therefore a real overlap; recorded intervals that do
//! not overlap leave a gap of the child's own start-up and exit (well under a millisecond
//! each) unchecked. The children do nothing observable outside their recorded interval: they
//! write to the store only between `start` and `stop`, which the store check relies on.
//!
//! A child killed with SIGKILL (its guard's last resort after the stop grace) writes no
//! `stop`. Its life then ends at some instant after its last `alive` stamp: if the next child
//! started before that stamp, the overlap is certain; if it started within two stamp periods
//! after it, the check cannot decide and reports a violation (a safe check must not assume the
//! best); later, the old child was surely dead (it would have written another stamp).
//!
//! A child frozen with its whole machine (SIGSTOP of tenure, its guard and the child) keeps its
//! interval open across the freeze, and its successor starts meanwhile: that overlap is the
//! documented limit of every lease, reported apart from violations, and the fenced store is
//! what must reject the frozen child's writes after it resumes.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::ledger::Interval;
use crate::store::StoreRecord;

/// The result of the ledger check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChildrenReport {
    /// Children in the ledger.
    pub children: usize,
    /// Children whose ledger has no `stop` (killed with SIGKILL, or still running).
    pub without_stop: usize,
    /// Overlaps of a child frozen with its whole node with its successor: expected.
    pub freeze_overlaps: Vec<FreezeOverlap>,
    /// Everything else: overlaps, undecidable cases, tokens that went back.
    pub violations: Vec<String>,
}

/// A frozen child that was still alive when its successor started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FreezeOverlap {
    pub frozen_pid: u32,
    pub frozen_token: u64,
    pub successor_token: u64,
    /// From the successor's start to the frozen child's stop.
    pub overlap: Duration,
}

/// `acting_safety` and `fencing_monotonic` (protocol: Invariants) as seen by the children. See
/// the module docs for what it can decide. `frozen` holds the process IDs of children frozen
/// with their whole node; `alive_period` is the children's `--alive-ms`.
pub fn check_children(
    intervals: &[Interval],
    frozen: &BTreeSet<u32>,
    alive_period: Duration,
) -> ChildrenReport {
    let mut report = ChildrenReport {
        children: intervals.len(),
        without_stop: intervals
            .iter()
            .filter(|child| child.stop.is_none())
            .count(),
        ..ChildrenReport::default()
    };
    let mut sorted: Vec<&Interval> = intervals.iter().collect();
    sorted.sort_by_key(|child| (child.start, child.pid));
    let undecidable_after = u64::try_from(alive_period.as_nanos() * 2).unwrap_or(u64::MAX);
    for (position, before) in sorted.iter().enumerate() {
        for after in &sorted[position + 1..] {
            let overlap = match before.stop {
                Some(stop) => (stop >= after.start).then(|| stop - after.start),
                None => {
                    let last_seen = before.last_alive.unwrap_or(before.start);
                    if after.start <= last_seen {
                        Some(last_seen - after.start)
                    } else if after.start - last_seen < undecidable_after {
                        report.violations.push(format!(
                            "undecidable: child {} of {} (token {}) wrote no stop; its last \
                             stamp was {} ms before child {} of {} (token {}) started",
                            before.pid,
                            before.node,
                            before.token,
                            (after.start - last_seen) / 1_000_000,
                            after.pid,
                            after.node,
                            after.token
                        ));
                        None
                    } else {
                        None
                    }
                }
            };
            let Some(overlap) = overlap else {
                continue;
            };
            if frozen.contains(&before.pid) {
                report.freeze_overlaps.push(FreezeOverlap {
                    frozen_pid: before.pid,
                    frozen_token: before.token,
                    successor_token: after.token,
                    overlap: Duration::from_nanos(overlap),
                });
            } else {
                report.violations.push(format!(
                    "overlap: child {} of {} (token {}) was alive {} ms after child {} of {} \
                     (token {}) started",
                    before.pid,
                    before.node,
                    before.token,
                    overlap / 1_000_000,
                    after.pid,
                    after.node,
                    after.token
                ));
            }
        }
    }
    for pair in sorted.windows(2) {
        let (before, after) = (pair[0], pair[1]);
        let monotonic = after.token > before.token
            || (after.token == before.token && after.node == before.node);
        if !monotonic {
            report.violations.push(format!(
                "fencing tokens went from {} ({}, child {}) to {} ({}, child {})",
                before.token, before.node, before.pid, after.token, after.node, after.pid
            ));
        }
    }
    report
}

/// One acknowledged write, as the child recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    pub node: String,
    pub token: u64,
    pub pid: u32,
    pub seq: u64,
    pub at: u64,
}

/// Reads the children's acknowledgements; torn lines are skipped.
pub fn read_acks(path: &Path) -> Vec<Ack> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [node, token, pid, seq, at] = fields[..] else {
                return None;
            };
            Some(Ack {
                node: node.to_string(),
                token: token.parse().ok()?,
                pid: pid.parse().ok()?,
                seq: seq.parse().ok()?,
                at: at.parse().ok()?,
            })
        })
        .collect()
}

/// The result of the store check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreReport {
    pub accepted: usize,
    pub rejected: usize,
    /// Rejected writes by process ID.
    pub rejected_by_pid: BTreeMap<u32, usize>,
    /// Rejected writes of children frozen with their whole node: fencing at work.
    pub rejected_frozen: usize,
    /// Acknowledgements the children recorded.
    pub acknowledged: usize,
    pub violations: Vec<String>,
}

/// The fenced store's guarantees, checked from its log and the children's acknowledgements:
///
/// - no stale write accepted: the accepted tokens never go down, in the store's order;
/// - no acknowledged write lost: every write a child saw acknowledged is in the log as
///   accepted;
/// - no live child fenced off: a rejected write means a child wrote after a child with a higher
///   token had written. For a child frozen with its whole node that is fencing doing its job;
///   for any other child it means two children acted at once, or tokens went back
///   (protocol: acting_safety; protocol: fencing_monotonic).
pub fn check_store(records: &[StoreRecord], acks: &[Ack], frozen: &BTreeSet<u32>) -> StoreReport {
    let mut report = StoreReport {
        acknowledged: acks.len(),
        ..StoreReport::default()
    };
    let mut highest = 0u64;
    let mut accepted_writes: BTreeSet<(u32, u64)> = BTreeSet::new();
    for record in records {
        if record.accepted {
            report.accepted += 1;
            if record.token < highest {
                report.violations.push(format!(
                    "stale write accepted: token {} from {} (child {}, write {}) after token {}",
                    record.token, record.node, record.pid, record.seq, highest
                ));
            }
            highest = highest.max(record.token);
            accepted_writes.insert((record.pid, record.seq));
        } else {
            report.rejected += 1;
            *report.rejected_by_pid.entry(record.pid).or_default() += 1;
            if frozen.contains(&record.pid) {
                report.rejected_frozen += 1;
            } else {
                report.violations.push(format!(
                    "a write of child {} of {} (token {}) was rejected: token {} had already \
                     been written by another child while it ran",
                    record.pid, record.node, record.token, record.highest_before
                ));
            }
        }
    }
    for ack in acks {
        if !accepted_writes.contains(&(ack.pid, ack.seq)) {
            report.violations.push(format!(
                "acknowledged write lost: write {} of child {} of {} (token {})",
                ack.seq, ack.pid, ack.node, ack.token
            ));
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn child(
        pid: u32,
        node: &str,
        token: u64,
        start: u64,
        stop: Option<u64>,
        alive: Option<u64>,
    ) -> Interval {
        Interval {
            node: node.to_string(),
            token,
            pid,
            start: start * MS,
            stop: stop.map(|at| at * MS),
            last_alive: alive.map(|at| at * MS),
        }
    }

    fn record(accepted: bool, token: u64, highest: u64, pid: u32, seq: u64) -> StoreRecord {
        StoreRecord {
            accepted,
            token,
            highest_before: highest,
            node: "n".to_string(),
            pid,
            seq,
            at: 0,
        }
    }

    #[test]
    fn sequential_children_pass() {
        let children = [
            child(1, "n1", 1, 0, Some(100), Some(90)),
            child(2, "n1", 1, 150, Some(200), None),
            child(3, "n2", 2, 1000, Some(2000), Some(1990)),
        ];
        let report = check_children(&children, &BTreeSet::new(), Duration::from_millis(50));
        assert_eq!(report.violations, Vec::<String>::new());
        assert_eq!(report.children, 3);
    }

    #[test]
    fn an_overlap_is_a_violation_unless_the_older_child_was_frozen() {
        let children = [
            child(1, "n1", 1, 0, Some(1500), None),
            child(2, "n2", 2, 1000, Some(2000), None),
        ];
        let report = check_children(&children, &BTreeSet::new(), Duration::from_millis(50));
        assert_eq!(report.violations.len(), 1);
        assert!(report.violations[0].contains("was alive 500 ms after"));
        let frozen = BTreeSet::from([1]);
        let report = check_children(&children, &frozen, Duration::from_millis(50));
        assert!(report.violations.is_empty());
        assert_eq!(report.freeze_overlaps.len(), 1);
        assert_eq!(
            report.freeze_overlaps[0].overlap,
            Duration::from_millis(500)
        );
    }

    #[test]
    fn a_child_without_a_stop_ends_at_its_last_stamp_and_close_calls_are_undecidable() {
        let alive = Duration::from_millis(50);
        let certain = [
            child(1, "n1", 1, 0, None, Some(900)),
            child(2, "n2", 2, 800, Some(2000), None),
        ];
        let report = check_children(&certain, &BTreeSet::new(), alive);
        assert!(report.violations[0].starts_with("overlap"), "{report:?}");
        let close = [
            child(1, "n1", 1, 0, None, Some(900)),
            child(2, "n2", 2, 950, Some(2000), None),
        ];
        let report = check_children(&close, &BTreeSet::new(), alive);
        assert!(
            report.violations[0].starts_with("undecidable"),
            "{report:?}"
        );
        let clear = [
            child(1, "n1", 1, 0, None, Some(900)),
            child(2, "n2", 2, 1200, Some(2000), None),
        ];
        let report = check_children(&clear, &BTreeSet::new(), alive);
        assert!(report.violations.is_empty(), "{report:?}");
        assert_eq!(report.without_stop, 1);
    }

    #[test]
    fn tokens_must_rise_between_nodes() {
        let children = [
            child(1, "n1", 2, 0, Some(100), None),
            child(2, "n2", 2, 200, Some(300), None),
        ];
        let report = check_children(&children, &BTreeSet::new(), Duration::from_millis(50));
        assert!(report.violations[0].contains("fencing tokens went"));
    }

    #[test]
    fn the_store_check_finds_stale_accepts_live_rejections_and_lost_acks() {
        let ack = |pid, seq| Ack {
            node: "n".to_string(),
            token: 1,
            pid,
            seq,
            at: 0,
        };
        let good = [
            record(true, 1, 0, 10, 1),
            record(true, 2, 1, 11, 1),
            record(false, 1, 2, 10, 2),
        ];
        let frozen = BTreeSet::from([10]);
        let report = check_store(&good, &[ack(10, 1), ack(11, 1)], &frozen);
        assert!(report.violations.is_empty(), "{report:?}");
        assert_eq!(report.rejected_frozen, 1);

        let report = check_store(&good, &[ack(10, 2)], &BTreeSet::new());
        assert_eq!(report.violations.len(), 2, "{report:?}");
        assert!(report.violations[0].contains("rejected"));
        assert!(report.violations[1].contains("acknowledged write lost"));

        let stale = [record(true, 2, 0, 11, 1), record(true, 1, 2, 10, 1)];
        let report = check_store(&stale, &[], &BTreeSet::new());
        assert!(report.violations[0].contains("stale write accepted"));
    }
}
