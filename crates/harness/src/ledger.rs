//! The ledger the supervised children write (`child`), and what it shows: each child's life
//! as an interval, and the check that no two lives overlapped.
//!
//! ```text
//! <node> <fencing token> start|alive|stop <CLOCK_MONOTONIC nanoseconds> <pid> <leader id>
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// What a ledger line records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LedgerEvent {
    Start,
    Stop,
    /// A periodic stamp of a child that is still running (`ledger-child --alive-ms`).
    Alive,
}

/// One line of the ledger the children write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEntry {
    pub node: String,
    pub token: u64,
    pub event: LedgerEvent,
    /// `CLOCK_MONOTONIC` nanoseconds.
    pub at: u64,
    pub pid: u32,
    pub leader: String,
}

/// Reads the ledger; a missing file is an empty ledger.
pub fn read_ledger(path: &Path) -> Vec<LedgerEntry> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines().filter_map(parse_ledger_line).collect()
}

/// One ledger line, or `None` if it is not one (a torn or foreign line).
pub fn parse_ledger_line(line: &str) -> Option<LedgerEntry> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [node, token, event, at, pid, leader] = fields[..] else {
        return None;
    };
    Some(LedgerEntry {
        node: node.to_string(),
        token: token.parse().ok()?,
        event: match event {
            "start" => LedgerEvent::Start,
            "stop" => LedgerEvent::Stop,
            "alive" => LedgerEvent::Alive,
            _ => return None,
        },
        at: at.parse().ok()?,
        pid: pid.parse().ok()?,
        leader: leader.to_string(),
    })
}

/// One child's life from the ledger.
#[derive(Clone, Debug)]
pub struct Interval {
    pub node: String,
    pub token: u64,
    pub pid: u32,
    pub start: u64,
    pub stop: Option<u64>,
    /// The last alive stamp, for children that write them.
    pub last_alive: Option<u64>,
}

/// The children's lives, ordered by start.
pub fn intervals(entries: &[LedgerEntry]) -> Vec<Interval> {
    let mut by_pid: BTreeMap<u32, Interval> = BTreeMap::new();
    for entry in entries {
        let interval = by_pid.entry(entry.pid).or_insert_with(|| Interval {
            node: entry.node.clone(),
            token: entry.token,
            pid: entry.pid,
            start: entry.at,
            stop: None,
            last_alive: None,
        });
        match entry.event {
            LedgerEvent::Start => interval.start = entry.at,
            LedgerEvent::Stop => interval.stop = Some(entry.at),
            LedgerEvent::Alive => {
                interval.last_alive = interval.last_alive.max(Some(entry.at));
            }
        }
    }
    let mut intervals: Vec<Interval> = by_pid.into_values().collect();
    intervals.sort_by_key(|interval| interval.start);
    intervals
}

/// `acting_safety` and `fencing_monotonic` (protocol: Invariants) as seen by the children: each
/// child stopped before the next one started, and tokens never went back (a repeated token
/// is allowed only for a restart on the same node).
pub fn check_no_overlap(entries: &[LedgerEntry]) -> Result<(), String> {
    let intervals = intervals(entries);
    for pair in intervals.windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        let Some(stop) = before.stop else {
            return Err(format!(
                "child {} of {} (token {}) never recorded a stop, yet child {} of {} (token {}) \
                 started",
                before.pid, before.node, before.token, after.pid, after.node, after.token
            ));
        };
        if stop >= after.start {
            return Err(format!(
                "overlap: child {} of {} (token {}) stopped {} ms after child {} of {} \
                 (token {}) started",
                before.pid,
                before.node,
                before.token,
                (stop - after.start) / 1_000_000,
                after.pid,
                after.node,
                after.token
            ));
        }
        let monotonic = after.token > before.token
            || (after.token == before.token && after.node == before.node);
        if !monotonic {
            return Err(format!(
                "fencing tokens went from {} ({}) to {} ({})",
                before.token, before.node, after.token, after.node
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(node: &str, token: u64, event: LedgerEvent, at: u64, pid: u32) -> LedgerEntry {
        LedgerEntry {
            node: node.to_string(),
            token,
            event,
            at,
            pid,
            leader: node.to_string(),
        }
    }

    #[test]
    fn the_overlap_check_catches_overlaps_open_intervals_and_tokens_going_back() {
        use LedgerEvent::{Start, Stop};
        let good = vec![
            entry("n1", 1, Start, 10, 100),
            entry("n1", 1, Stop, 20, 100),
            entry("n1", 1, Start, 25, 101),
            entry("n1", 1, Stop, 30, 101),
            entry("n2", 2, Start, 40, 102),
        ];
        assert_eq!(check_no_overlap(&good), Ok(()));
        let overlap = vec![
            entry("n1", 1, Start, 10, 100),
            entry("n2", 2, Start, 15, 101),
            entry("n1", 1, Stop, 20, 100),
        ];
        assert!(check_no_overlap(&overlap).unwrap_err().contains("overlap"));
        let open = vec![
            entry("n1", 1, Start, 10, 100),
            entry("n2", 2, Start, 15, 101),
        ];
        assert!(check_no_overlap(&open)
            .unwrap_err()
            .contains("never recorded a stop"));
        let back = vec![
            entry("n1", 2, Start, 10, 100),
            entry("n1", 2, Stop, 12, 100),
            entry("n2", 2, Start, 15, 101),
        ];
        assert!(check_no_overlap(&back).unwrap_err().contains("tokens went"));
    }
}
