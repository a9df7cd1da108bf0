//! What each campaign found, and the run's summary: the faults injected, the measured
//! failovers against their bounds, the whole-node freezes, and one line per check.

use std::collections::{BTreeMap, BTreeSet};
use std::iter::Sum;
use std::path::PathBuf;
use std::time::Duration;

use tenure_harness::analysis::{ChildrenReport, StoreReport};
use tenure_harness::stats::{millis, Summary};

use crate::bounds::Bounds;
use crate::fault::Fault;

/// One whole-node freeze, for the summary.
#[derive(Clone, Debug)]
pub(crate) struct Freeze {
    pub(crate) pid: u32,
    pub(crate) token: u64,
    pub(crate) resumed_at: u64,
    /// From the resume to the frozen child's stop line.
    pub(crate) stale_run: Option<Duration>,
}

/// What one cluster's campaign produced.
#[derive(Debug, Default)]
pub(crate) struct CampaignReport {
    pub(crate) size: usize,
    pub(crate) network: String,
    pub(crate) cycles: u32,
    pub(crate) faults: BTreeMap<Fault, u32>,
    pub(crate) crash_failovers: Vec<Duration>,
    pub(crate) handovers: Vec<Duration>,
    pub(crate) failovers_checked: u32,
    pub(crate) guard_stops_checked: u32,
    pub(crate) freezes: Vec<Freeze>,
    pub(crate) leader_changes_on_follower_faults: u32,
    pub(crate) children: ChildrenReport,
    pub(crate) store: StoreReport,
    pub(crate) rejected_after_resume: usize,
    pub(crate) violations: Vec<String>,
    pub(crate) kept: Option<PathBuf>,
}

/// Prints the summary of a run with `seed` over `reports`, partitions made by `partitions`.
pub(crate) fn print_summary(
    seed: u64,
    partitions: Option<&str>,
    reports: &[CampaignReport],
    bounds: &Bounds,
) {
    println!("\n== chaos summary: seed {seed}");
    println!(
        "machine: {} CPUs; load average now {}",
        std::thread::available_parallelism().map_or(0, usize::from),
        load_average()
    );
    if let Some(partitions) = partitions {
        println!("partitions: {partitions}");
    }
    print_fault_table(reports);
    println!();
    print_timing(
        "failover (leader killed, paused, frozen or cut off)",
        &gather(reports, |report| &report.crash_failovers),
        bounds.crash(),
    );
    print_timing(
        "graceful handover (SIGTERM)",
        &gather(reports, |report| &report.handovers),
        bounds.handover(),
    );
    print_freezes(reports, bounds);
    print_checks(reports);
    print_violations(reports);
}

/// The one-minute, five-minute and fifteen-minute load averages.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Fault cycles per fault and cluster size.
fn print_fault_table(reports: &[CampaignReport]) {
    let all_faults: BTreeSet<Fault> = reports
        .iter()
        .flat_map(|report| report.faults.keys().copied())
        .collect();
    let mut header = format!("{:<32}", "fault cycles");
    for report in reports {
        header.push_str(&format!("{:>10}", format!("{} nodes", report.size)));
    }
    header.push_str(&format!("{:>10}", "total"));
    println!("{header}");
    for fault in &all_faults {
        let mut line = format!("  {:<30}", fault.name());
        for report in reports {
            let count = report.faults.get(fault).copied().unwrap_or(0);
            line.push_str(&format!("{count:>10}"));
        }
        let total: u32 = total(reports, |report| {
            report.faults.get(fault).copied().unwrap_or(0)
        });
        line.push_str(&format!("{total:>10}"));
        println!("{line}");
    }
    let mut line = format!("{:<32}", "all");
    for report in reports {
        line.push_str(&format!("{:>10}", report.cycles));
    }
    let cycles: u32 = total(reports, |report| report.cycles);
    line.push_str(&format!("{cycles:>10}"));
    println!("{line}");
}

fn print_timing(name: &str, samples: &[Duration], bound: Duration) {
    match Summary::of(samples) {
        Some(summary) => println!(
            "{name}: n={} min {} median {} p99 {} max {} ms (bound {} ms)",
            summary.count,
            millis(summary.min),
            millis(summary.median),
            millis(summary.p99),
            millis(summary.max),
            millis(bound)
        ),
        None => println!("{name}: none measured"),
    }
}

/// Whole-node freezes: how many overlapped their successor, how long the frozen children ran
/// on after the resume, and their stale writes.
fn print_freezes(reports: &[CampaignReport], bounds: &Bounds) {
    let freezes: Vec<&Freeze> = reports
        .iter()
        .flat_map(|report| report.freezes.iter())
        .collect();
    let overlaps: Vec<Duration> = reports
        .iter()
        .flat_map(|report| report.children.freeze_overlaps.iter())
        .map(|overlap| overlap.overlap)
        .collect();
    let longest_stale_run = freezes
        .iter()
        .filter_map(|freeze| freeze.stale_run)
        .max()
        .map_or(0, millis);
    let rejected_after_resume: usize = total(reports, |report| report.rejected_after_resume);
    println!(
        "\nwhole-node freezes (tenure, guard and child stopped together; the documented \
         limit of leases):"
    );
    println!(
        "  {} freezes; {} of them overlapped their successor in the ledger (longest {} ms, \
         the freeze itself included)",
        freezes.len(),
        overlaps.len(),
        overlaps.iter().max().map_or(0, |longest| millis(*longest))
    );
    println!(
        "  after the resume the frozen child ran on for at most {longest_stale_run} ms (bound {} \
         ms: guard poll + stop grace + kill allowance + slack)",
        millis(bounds.stale_run())
    );
    println!(
        "  stale writes the frozen children tried after their resume: {rejected_after_resume}, \
         all rejected by the fenced store"
    );
}

/// One line per check, `[ ok ]` or `[FAIL]` by the kind of violation it names.
fn print_checks(reports: &[CampaignReport]) {
    let mark = |kind: &str| {
        let failed = reports
            .iter()
            .flat_map(|report| report.violations.iter())
            .any(|violation| violation.starts_with(kind));
        if failed {
            "FAIL"
        } else {
            " ok "
        }
    };
    let children: usize = total(reports, |report| report.children.children);
    let without_stop: usize = total(reports, |report| report.children.without_stop);
    let accepted: usize = total(reports, |report| report.store.accepted);
    let rejected: usize = total(reports, |report| report.store.rejected);
    let rejected_frozen: usize = total(reports, |report| report.store.rejected_frozen);
    let acknowledged: usize = total(reports, |report| report.store.acknowledged);
    let failovers_checked: u32 = total(reports, |report| report.failovers_checked);
    let guard_stops: u32 = total(reports, |report| report.guard_stops_checked);
    let follower_changes: u32 = total(reports, |report| report.leader_changes_on_follower_faults);
    println!("\nchecks:");
    println!(
        "  [{}] no two children alive at once, whole-node freezes apart ({children} children; \
         {without_stop} ended without a stop line)",
        mark("ledger")
    );
    println!(
        "  [{}] the fenced store accepted no stale write and rejected no live child \
         ({accepted} accepted, {rejected} rejected, {rejected_frozen} of them from children \
         frozen with their node)",
        mark("store")
    );
    println!(
        "  [{}] no acknowledged write lost ({acknowledged} acknowledged)",
        mark("acks")
    );
    println!(
        "  [{}] every failover and handover within its bound ({failovers_checked} measured)",
        mark("bound")
    );
    println!(
        "  [{}] every guard stopped its child before the lease could end ({guard_stops} \
         checked)",
        mark("guard")
    );
    println!(
        "  [{}] the cluster recovered after every fault",
        mark("recovery")
    );
    println!(
        "  (for information: {follower_changes} leadership changes while a follower was \
         faulted)"
    );
}

/// The directories kept, and the violations (the first 50).
fn print_violations(reports: &[CampaignReport]) {
    for report in reports {
        if let Some(kept) = &report.kept {
            println!(
                "  {} nodes: directory kept at {}",
                report.size,
                kept.display()
            );
        }
    }
    let violations: Vec<&String> = reports
        .iter()
        .flat_map(|report| report.violations.iter())
        .collect();
    if violations.is_empty() {
        println!("\nviolations: none");
    } else {
        println!("\nviolations ({}):", violations.len());
        for violation in violations.iter().take(50) {
            println!("  - {violation}");
        }
    }
}

/// Every campaign's samples of one kind, in one list.
fn gather(
    reports: &[CampaignReport],
    samples: impl Fn(&CampaignReport) -> &Vec<Duration>,
) -> Vec<Duration> {
    reports
        .iter()
        .flat_map(|report| samples(report).iter().copied())
        .collect()
}

/// The sum of one count over every campaign.
fn total<T: Sum>(reports: &[CampaignReport], count: impl Fn(&CampaignReport) -> T) -> T {
    reports.iter().map(count).sum()
}
