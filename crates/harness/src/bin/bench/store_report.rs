//! report.md of a `--backends` run: the section `## Store backends` of docs/benchmarks.md,
//! with the machine and its load, crash failover beside `etcdctl lock`, graceful handover, and
//! the store's load.

use std::fmt::Write as _;
use std::fs;
use std::time::Duration;

use tenure_harness::stats::millis;
use tenure_harness::{tenure_binary, Timing};

use crate::session::Bench;
use crate::store_load::REQUEST_KINDS;
use crate::store_results::{
    failover_target, handover_target, BackendKind, LockSeries, Percentiles, StoreLoad, StoreSeries,
    FAILOVER_ALLOWANCE,
};
use crate::{failed, Failure};

impl Bench<'_> {
    /// Writes report.md and samples.csv of a `--backends` run, and prints the report.
    pub(crate) fn write_store_results(&self) -> Result<(), Failure> {
        let report = self.store_report();
        println!("\n{report}");
        let out = &self.args.out;
        fs::write(out.join("report.md"), &report)
            .and_then(|()| fs::write(out.join("samples.csv"), self.csv()))
            .map_err(|error| failed(format!("cannot write to {}: {error}", out.display())))?;
        println!("wrote {0}/report.md and {0}/samples.csv", out.display());
        Ok(())
    }

    fn store_report(&self) -> String {
        let mut text = String::new();
        let timing = self.stores.series.first().map(|series| series.timing);
        let _ = writeln!(text, "## Store backends\n");
        self.store_machine(&mut text, timing);
        let series = &self.stores.series;
        crash_section(&mut text, series, &self.stores.locks);
        handover_section(&mut text, series);
        load_section(&mut text, series);
        text
    }

    fn store_machine(&self, text: &mut String, timing: Option<Timing>) {
        let loads = self.loads.iter().map(|load| Duration::from_secs_f64(*load));
        let loads = Percentiles::of(&loads.collect::<Vec<_>>());
        let _ = writeln!(text, "```text\n{}", self.machine);
        if let Some(loads) = loads {
            let _ = writeln!(
                text,
                "1-min load average during the run: {:.2} to {:.2}, median {:.2}",
                loads.min.as_secs_f64(),
                loads.max.as_secs_f64(),
                loads.median.as_secs_f64()
            );
        }
        let _ = writeln!(text, "tenure binary: {}", tenure_binary().display());
        if let Some(timing) = timing {
            let _ = writeln!(
                text,
                "lease {} ms, poll interval (--heartbeat) {} ms, stop grace {} ms, rounds {}",
                millis(timing.lease),
                millis(timing.heartbeat),
                millis(timing.stop_grace),
                self.args.store_rounds.max(1)
            );
        }
        let _ = writeln!(text, "```\n");
    }
}

fn yes_no(met: bool) -> &'static str {
    if met {
        "yes"
    } else {
        "**no**"
    }
}

/// `median / p90 / p99 (max)` columns: min, median, p90, p99 = max below 100 samples.
fn spread(summary: &Percentiles) -> String {
    format!(
        "{} | {} ms | {} ms | {} ms | **{} ms**",
        summary.count,
        millis(summary.min),
        millis(summary.median),
        millis(summary.p90),
        millis(summary.p99)
    )
}

fn crash_section(text: &mut String, series: &[StoreSeries], locks: &[LockSeries]) {
    let _ = writeln!(
        text,
        "### Crash failover\n\nSIGKILL of the holder's tenure (tenure) or of the holding \
         `etcdctl lock` (etcdctl) until another node's child starts, from the ledger. Worst \
         case: the effective lease (L for PostgreSQL; etcd's TTL, L rounded up to whole \
         seconds and at least 2 s) + one poll interval, + etcd's lessor check period (500 ms) \
         for etcd. Target: p99 <= L + poll interval + {} ms; effective target: worst case + {} \
         ms. With fewer than 100 rounds p99 is the largest sample.\n",
        millis(FAILOVER_ALLOWANCE),
        millis(FAILOVER_ALLOWANCE)
    );
    let _ = writeln!(
        text,
        "| store | elector | nodes | rounds | min | median | p90 | p99 (max) | target | met | \
         effective target | met | old child still running when the next started |"
    );
    let _ = writeln!(text, "|{}", " --- |".repeat(13));
    for one in series {
        let Some(summary) = Percentiles::of(&one.crashes) else {
            continue;
        };
        let target = failover_target(&one.timing);
        let effective = one.backend.failover_worst(&one.timing) + FAILOVER_ALLOWANCE;
        let _ = writeln!(
            text,
            "| {} | tenure | {} | {} | {} ms | {} | {} ms | {} | {} overlapping children |",
            one.backend.name(),
            one.nodes,
            spread(&summary),
            millis(target),
            yes_no(summary.p99 <= target),
            millis(effective),
            yes_no(summary.p99 <= effective),
            one.overlaps
        );
    }
    for lock in locks {
        lock_row(text, lock, series.first().map(|one| one.timing));
    }
}

fn lock_row(text: &mut String, lock: &LockSeries, timing: Option<Timing>) {
    let Some(summary) = Percentiles::of(&lock.failovers) else {
        return;
    };
    // etcdctl renews every TTL/3 and is judged by etcd's lessor alone: its worst case is the
    // TTL + the lessor's period, and the watch tells the next waiter at once.
    let (target, effective) = match timing {
        Some(timing) => (
            millis(failover_target(&timing)).to_string(),
            millis(lock.ttl + crate::store_results::ETCD_LESSOR_PERIOD + FAILOVER_ALLOWANCE)
                .to_string(),
        ),
        None => ("—".to_string(), "—".to_string()),
    };
    let _ = writeln!(
        text,
        "| etcd | etcdctl lock --ttl {} | {} | {} | {target} ms | {} | {effective} ms | {} | \
         **{} of {}** |",
        lock.ttl.as_secs(),
        lock.contenders,
        spread(&summary),
        yes_no(timing.is_some_and(|timing| summary.p99 <= failover_target(&timing))),
        yes_no(
            summary.p99 <= lock.ttl + crate::store_results::ETCD_LESSOR_PERIOD + FAILOVER_ALLOWANCE
        ),
        lock.old_child_still_running,
        summary.count
    );
}

fn handover_section(text: &mut String, series: &[StoreSeries]) {
    let _ = writeln!(
        text,
        "\n### Graceful handover\n\nSIGTERM to the holder's tenure until another node's child \
         starts: the time without an actor. The holder stops its child, releases the record, \
         and a contender takes the vacant record at its next read. Target: p99 <= one poll \
         interval + {} ms (the test child stops at once).\n",
        millis(FAILOVER_ALLOWANCE)
    );
    let _ = writeln!(
        text,
        "| store | nodes | rounds | min | median | p90 | p99 (max) | of which the old child's \
         stop, p99 | target | met |"
    );
    let _ = writeln!(text, "|{}", " --- |".repeat(10));
    for one in series {
        let takeovers: Vec<Duration> = one.handovers.takeovers.iter().map(|t| t.took).collect();
        let (Some(summary), Some(stops)) = (
            Percentiles::of(&takeovers),
            Percentiles::of(&one.handovers.child_stops),
        ) else {
            continue;
        };
        let target = handover_target(&one.timing);
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} ms | {} ms | {} |",
            one.backend.name(),
            one.nodes,
            spread(&summary),
            millis(stops.p99),
            millis(target),
            yes_no(summary.p99 <= target)
        );
    }
}

fn load_section(text: &mut String, series: &[StoreSeries]) {
    let _ = writeln!(
        text,
        "\n### Store load\n\nRequests each node sent to the store over a steady window (one \
         holder, the others contending), from its `tenure_store_requests_total`, per poll \
         interval. Target: at most one request per poll interval per contender. Beside it, \
         what the store counted over the same window (whole store: other clients add to it).\n"
    );
    let _ = writeln!(
        text,
        "| store | nodes | window | node | role | {} | per poll interval | target met |",
        REQUEST_KINDS.join(" | ")
    );
    let _ = writeln!(text, "|{}", " --- |".repeat(7 + REQUEST_KINDS.len()));
    for one in series {
        if let Some(load) = &one.load {
            load_rows(text, one.backend, one.nodes, load);
        }
    }
    let _ = writeln!(
        text,
        "\n| store | nodes | counted by the store | per poll interval, whole cluster | \
         tenure's own count, per poll interval |"
    );
    let _ = writeln!(text, "|{}", " --- |".repeat(5));
    for one in series {
        let Some(load) = &one.load else { continue };
        let Some((count, what)) = &load.store_side else {
            continue;
        };
        let own: u64 = load.nodes.iter().map(|node| node.total()).sum();
        let _ = writeln!(
            text,
            "| {} | {} | {count:.0} {what} | {:.2} | {:.2} |",
            one.backend.name(),
            one.nodes,
            count / load.intervals(),
            own as f64 / load.intervals()
        );
    }
}

fn load_rows(text: &mut String, backend: BackendKind, nodes: usize, load: &StoreLoad) {
    for node in &load.nodes {
        let per_interval = load.per_interval(node);
        let counts: Vec<String> = node.requests.iter().map(u64::to_string).collect();
        let met = if node.holds {
            "— (holder)"
        } else {
            yes_no(per_interval <= 1.0)
        };
        let _ = writeln!(
            text,
            "| {} | {nodes} | {:.1} s | {} | {} | {} | {per_interval:.3} | {met} |",
            backend.name(),
            load.window.as_secs_f64(),
            node.name,
            if node.holds { "holder" } else { "contender" },
            counts.join(" | ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::HandoverSeries;
    use crate::store_results::{store_timing, NodeRequests};

    #[test]
    fn the_tables_show_targets_missed() {
        let timing = store_timing(Duration::from_secs(2));
        let series = StoreSeries {
            backend: BackendKind::Etcd,
            nodes: 2,
            timing,
            crashes: [2_100, 2_600].map(Duration::from_millis).to_vec(),
            handovers: HandoverSeries::default(),
            load: Some(StoreLoad {
                window: Duration::from_secs(30),
                poll_interval: timing.heartbeat,
                nodes: vec![NodeRequests {
                    name: "n2".to_string(),
                    holds: false,
                    requests: [130, 0, 0, 0],
                }],
                store_side: None,
            }),
            overlaps: 0,
        };
        let mut text = String::new();
        crash_section(&mut text, std::slice::from_ref(&series), &[]);
        assert!(
            text.contains("| etcd | tenure | 2 | 2 | 2100 ms | 2100 ms | 2600 ms | **2600 ms** | 2350 ms | **no** | 2850 ms | yes |"),
            "{text}"
        );
        let mut text = String::new();
        load_section(&mut text, &[series]);
        assert!(
            text.contains("| n2 | contender | 130 | 0 | 0 | 0 | 1.083 | **no** |"),
            "{text}"
        );
    }
}
