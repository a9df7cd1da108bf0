//! report.md (the tables of docs/benchmarks.md) and samples.csv (every round).

use std::fmt::Write as _;
use std::time::Duration;

use tenure_harness::stats::{millis, Summary};
use tenure_harness::tenure_binary;

use crate::ranking::first_ranked_share;
use crate::results::{burned_terms, durations, EtcdResult, NodeFootprint, Results};
use crate::session::Bench;
use crate::targets::{
    excess_millis, limit, median_target, p99_target, partition_target, MEDIAN_ALLOWANCE,
    P99_ALLOWANCE, PARTITION_ALLOWANCE,
};

impl Bench<'_> {
    /// `measurement,setting,round,milliseconds,from,to,first_ranked,token_step`, one line per
    /// round; the last four are empty where no leadership changed hands (etcd).
    pub(crate) fn csv(&self) -> String {
        let mut text = String::from(
            "measurement,setting,round,milliseconds,from,to,first_ranked,token_step\n",
        );
        for line in &self.samples {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    /// The report: machine, crash failover against the limit line, etcd beside it, partition
    /// failover, cold start, handover, footprint, etcd's footprint.
    pub(crate) fn report(&self) -> String {
        let mut text = String::new();
        self.machine_section(&mut text);
        failover_section(&mut text, &self.results);
        if let Some(etcd) = &self.results.etcd {
            etcd_comparison_section(&mut text, &self.results, etcd);
        }
        partition_section(&mut text, &self.results);
        cold_start_section(&mut text, &self.results);
        handover_section(&mut text, &self.results);
        if !self.results.footprint.is_empty() {
            footprint_section(&mut text, &self.results, self.args.idle);
        }
        if let Some(etcd) = &self.results.etcd {
            etcd_section(&mut text, etcd);
        }
        text
    }

    fn machine_section(&self, text: &mut String) {
        let _ = writeln!(text, "## Machine\n");
        let _ = writeln!(text, "```text\n{}", self.machine);
        let loads: Vec<Duration> = self
            .loads
            .iter()
            .map(|load| Duration::from_secs_f64(*load))
            .collect();
        if let Some(loads) = Summary::of(&loads) {
            let _ = writeln!(
                text,
                "load average (1 min) during the run: {:.2} to {:.2}, median {:.2}",
                loads.min.as_secs_f64(),
                loads.max.as_secs_f64(),
                loads.median.as_secs_f64()
            );
        }
        let _ = writeln!(
            text,
            "tenure binary: {}\nrounds per measurement: {}\n```\n",
            tenure_binary().display(),
            self.args.rounds
        );
    }
}

/// `human` of a lease.
fn lease_text(lease: Duration) -> String {
    humantime::format_duration(lease).to_string()
}

/// `a of b`, with `-` for none.
fn share_text((won, total): (usize, usize)) -> String {
    if total == 0 {
        "-".to_string()
    } else {
        format!("{won} of {total}")
    }
}

fn yes_no(met: bool) -> &'static str {
    if met {
        "yes"
    } else {
        "no"
    }
}

/// One row per lease: crash failover against the limit line L − h/2 and the targets.
fn failover_section(text: &mut String, results: &Results) {
    let _ = writeln!(
        text,
        "## Crash failover against the limit line\n\nSIGKILL of the acting node's tenure until \
         the next node's child starts. The limit line L - h/2 is the median end of the \
         followers' promises after a crash at a random instant (h the heartbeat). Targets: \
         median <= L - h/2 + {} ms, p99 <= L + {} ms. First-ranked: the member after the dead \
         leader in id order, round the ring, took over. Burned: the new token was more than \
         the old + 1.\n",
        millis(MEDIAN_ALLOWANCE),
        millis(P99_ALLOWANCE)
    );
    let _ = writeln!(
        text,
        "| lease | heartbeat | stop grace | rounds | min | median | p99 | max | limit L - h/2 | \
         median - limit | p99 - L | median met | p99 met | first-ranked won | burned | overlaps |"
    );
    let _ = writeln!(text, "|{}", " --- |".repeat(16));
    for result in &results.leases {
        let Some(summary) = Summary::of(&durations(&result.crashes)) else {
            continue;
        };
        let timing = &result.timing;
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} | {} ms | {} ms | **{} ms** | {} ms | {:.1} ms | {:+.0} ms | \
             {:+.0} ms | {} | {} | {} | {} | {} |",
            lease_text(timing.lease),
            lease_text(timing.heartbeat),
            lease_text(timing.stop_grace),
            summary.count,
            millis(summary.min),
            millis(summary.median),
            millis(summary.p99),
            millis(summary.max),
            limit(timing).as_secs_f64() * 1e3,
            excess_millis(summary.median, limit(timing)),
            excess_millis(summary.p99, timing.lease),
            yes_no(summary.median <= median_target(timing)),
            yes_no(summary.p99 <= p99_target(timing)),
            share_text(first_ranked_share(&result.members, &result.crashes)),
            burned_terms(&result.crashes),
            result.overlaps
        );
    }
}

/// tenure and etcd at the same lease and TTL, and the leases etcd could not be measured at.
fn etcd_comparison_section(text: &mut String, results: &Results, etcd: &EtcdResult) {
    let _ = writeln!(
        text,
        "\n## tenure and etcd {} at the same lease\n\nCrash failover: SIGKILL of tenure, or of \
         the `etcdctl lock --ttl` holding the lock (its child keeps running), until the next \
         child starts. The ratio is tenure's figure over etcd's (below 1: tenure is faster).\n",
        etcd.version
    );
    let _ = writeln!(
        text,
        "| lease = TTL | tenure median | tenure p99 | etcd rounds | etcd median | etcd p99 | \
         ratio of medians | ratio of p99s | etcd's old child still running |"
    );
    let _ = writeln!(text, "|{}", " --- |".repeat(9));
    for result in &results.leases {
        let lease = result.timing.lease;
        let tenure = Summary::of(&durations(&result.crashes));
        let etcd_run = etcd.at(lease);
        let etcd_summary = etcd_run.and_then(|run| Summary::of(&run.failovers));
        let (Some(tenure), Some(run), Some(other)) = (tenure, etcd_run, etcd_summary) else {
            continue;
        };
        let _ = writeln!(
            text,
            "| {} | {} ms | {} ms | {} | {} ms | {} ms | **{:.2}** | {:.2} | {} of {} |",
            lease_text(lease),
            millis(tenure.median),
            millis(tenure.p99),
            other.count,
            millis(other.median),
            millis(other.p99),
            tenure.median.as_secs_f64() / other.median.as_secs_f64(),
            tenure.p99.as_secs_f64() / other.p99.as_secs_f64(),
            run.old_child_still_running,
            other.count
        );
    }
    for unmatched in &etcd.unmatched {
        let _ = writeln!(
            text,
            "\netcd not measured at {}: {}.",
            lease_text(unmatched.lease),
            unmatched.reason
        );
    }
}

/// One row per lease: the leader cut off instead of killed.
fn partition_section(text: &mut String, results: &Results) {
    if results
        .leases
        .iter()
        .all(|result| result.partitions.is_empty())
    {
        return;
    }
    let _ = writeln!(
        text,
        "\n## Partition failover\n\nThe acting node cut off from the others by a UDP fault \
         proxy (every datagram between nodes passes it), until the next node's child starts; \
         then healed. Target: p99 <= L + {} ms.\n",
        millis(PARTITION_ALLOWANCE)
    );
    let _ = writeln!(
        text,
        "| lease | rounds | min | median | p99 | max | p99 - L | met | first-ranked won | burned |"
    );
    let _ = writeln!(text, "|{}", " --- |".repeat(10));
    for result in &results.leases {
        let Some(summary) = Summary::of(&durations(&result.partitions)) else {
            continue;
        };
        let timing = &result.timing;
        let _ = writeln!(
            text,
            "| {} | {} | {} ms | {} ms | **{} ms** | {} ms | {:+.0} ms | {} | {} | {} |",
            lease_text(timing.lease),
            summary.count,
            millis(summary.min),
            millis(summary.median),
            millis(summary.p99),
            millis(summary.max),
            excess_millis(summary.p99, timing.lease),
            yes_no(summary.p99 <= partition_target(timing)),
            share_text(first_ranked_share(&result.members, &result.partitions)),
            burned_terms(&result.partitions)
        );
    }
}

/// One row per lease: every node started together, no state, until the first child starts.
fn cold_start_section(text: &mut String, results: &Results) {
    if results
        .leases
        .iter()
        .all(|result| result.cold_starts.is_empty())
    {
        return;
    }
    let _ = writeln!(
        text,
        "\n## Cold start\n\nA fresh cluster (no state) whose three nodes are started one right \
         after the other, from the first start until the first child starts. Every node first \
         sits out its boot quarantine (one lease). Target: p99 <= L + {} ms. First-ranked: the \
         lowest id (n1) acted first. Burned: the first token was above 1.\n",
        millis(PARTITION_ALLOWANCE)
    );
    let _ = writeln!(
        text,
        "| lease | rounds | min | median | p99 | max | p99 - L | met | first-ranked won | burned |"
    );
    let _ = writeln!(text, "|{}", " --- |".repeat(10));
    for result in &results.leases {
        let Some(summary) = Summary::of(&durations(&result.cold_starts)) else {
            continue;
        };
        let timing = &result.timing;
        let burned = burned_terms(&result.cold_starts);
        let _ = writeln!(
            text,
            "| {} | {} | {} ms | {} ms | **{} ms** | {} ms | {:+.0} ms | {} | {} | {burned} |",
            lease_text(timing.lease),
            summary.count,
            millis(summary.min),
            millis(summary.median),
            millis(summary.p99),
            millis(summary.max),
            excess_millis(summary.p99, timing.lease),
            yes_no(summary.p99 <= partition_target(timing)),
            share_text(first_ranked_share(&result.members, &result.cold_starts))
        );
    }
}

/// The handover series, quiet and under load, and their two parts: the old child's stop, then
/// the successor's election.
fn handover_section(text: &mut String, results: &Results) {
    if results.handovers.is_empty() {
        return;
    }
    let lease = results
        .full
        .map_or("?".to_string(), |timing| lease_text(timing.lease));
    let _ = writeln!(
        text,
        "\n## Graceful handover (lease {lease})\n\nSIGTERM to the acting node's tenure until the \
         next node's child starts. Its first part is the old child's stop (tenure tells its \
         guard, the guard sends SIGTERM, the child records its stop), the second the election \
         of the successor. Under load, busy-loop processes (one per CPU unless set otherwise) \
         run at the nodes' priority throughout the series. Target: p99 <= 100 ms + the \
         child's stop time, no term burned (new token = old + 1).\n"
    );
    let _ = writeln!(
        text,
        "| load | part | rounds | min | median | p99 | max | burned |"
    );
    let _ = writeln!(text, "|{}", " --- |".repeat(8));
    for series in &results.handovers {
        let load = if series.load_processes == 0 {
            "none".to_string()
        } else {
            format!("{} busy loops", series.load_processes)
        };
        let burned = burned_terms(&series.takeovers).to_string();
        for (name, samples, burned) in [
            (
                "SIGTERM until the next child starts",
                durations(&series.takeovers),
                burned.as_str(),
            ),
            (
                "SIGTERM until the old child stopped",
                series.child_stops.clone(),
                "",
            ),
            (
                "old child stopped until the next child starts",
                series.after_child_stop.clone(),
                "",
            ),
        ] {
            if let Some(summary) = Summary::of(&samples) {
                let _ = writeln!(
                    text,
                    "| {load} | {name} | {} | {} ms | {} ms | **{} ms** | {} ms | {burned} |",
                    summary.count,
                    millis(summary.min),
                    millis(summary.median),
                    millis(summary.p99),
                    millis(summary.max)
                );
            }
        }
    }
}

/// Memory, CPU and datagrams per node at idle.
fn footprint_section(text: &mut String, results: &Results, idle: Duration) {
    let timing = results.full.map_or("?".to_string(), |timing| {
        format!(
            "lease {}, heartbeat {}",
            humantime::format_duration(timing.lease),
            humantime::format_duration(timing.heartbeat)
        )
    });
    let _ = writeln!(
        text,
        "\n## Footprint at {timing}, idle for {} s\n",
        idle.as_secs()
    );
    let _ = writeln!(
        text,
        "| node | role | tenure RSS | tenure CPU | guard RSS | guard CPU | datagrams sent/s |"
    );
    let _ = writeln!(text, "| --- | --- | --- | --- | --- | --- | --- |");
    for node in &results.footprint {
        let _ = writeln!(text, "{}", footprint_row(node));
    }
    let total_sent: f64 = results
        .footprint
        .iter()
        .map(|node| node.sent_per_second)
        .sum();
    let _ = writeln!(
        text,
        "\nDatagrams per second, the whole cluster: {total_sent:.1}. CPU is user + system time \
         from /proc/PID/stat over the window, as % of one core."
    );
}

fn footprint_row(node: &NodeFootprint) -> String {
    format!(
        "| {} | {} | {:.1} MiB | {:.3} % | {} | {} | {:.1} |",
        node.name,
        if node.leads { "leader" } else { "follower" },
        node.tenure_kib as f64 / 1024.0,
        node.tenure_cpu,
        node.guard_kib.map_or("-".to_string(), |kib| format!(
            "{:.1} MiB",
            kib as f64 / 1024.0
        )),
        node.guard_cpu
            .map_or("-".to_string(), |cpu| format!("{cpu:.3} %")),
        node.sent_per_second
    )
}

/// etcd's members and contenders at idle.
fn etcd_section(text: &mut String, etcd: &EtcdResult) {
    let Some(ttl) = etcd.footprint_ttl else {
        return;
    };
    let _ = writeln!(
        text,
        "\n## etcd {} at idle (`etcdctl lock --ttl {}`)\n",
        etcd.version,
        ttl.as_secs()
    );
    let _ = writeln!(text, "| process | RSS | CPU at idle |");
    let _ = writeln!(text, "| --- | --- | --- |");
    for (index, (kib, cpu)) in etcd.member_kib.iter().zip(&etcd.member_cpu).enumerate() {
        let _ = writeln!(
            text,
            "| etcd member e{} | {:.1} MiB | {cpu:.3} % |",
            index + 1,
            *kib as f64 / 1024.0
        );
    }
    let contenders = etcd.contender_kib.iter().zip(&etcd.contender_cpu);
    for (index, (kib, cpu)) in contenders.enumerate() {
        let _ = writeln!(
            text,
            "| etcdctl lock contender {} | {:.1} MiB | {cpu:.3} % |",
            index + 1,
            *kib as f64 / 1024.0
        );
    }
}
