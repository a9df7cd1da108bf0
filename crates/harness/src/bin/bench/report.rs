//! report.md (the tables of docs/benchmarks.md) and samples.csv (every round).

use std::fmt::Write as _;
use std::time::Duration;

use tenure_harness::stats::{millis, Summary};
use tenure_harness::tenure_binary;

use crate::results::{EtcdResult, NodeFootprint, Results};
use crate::session::Bench;
use crate::ETCD_TTL_SECONDS;

impl Bench<'_> {
    /// `measurement,setting,round,milliseconds`, one line per round.
    pub(crate) fn csv(&self) -> String {
        let mut text = String::from("measurement,setting,round,milliseconds\n");
        for line in &self.samples {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    /// The report: machine, failover against lease, handover, footprint, etcd.
    pub(crate) fn report(&self) -> String {
        let mut text = String::new();
        self.machine_section(&mut text);
        failover_section(&mut text, &self.results);
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

/// One row per lease, and etcd's row.
fn failover_section(text: &mut String, results: &Results) {
    let _ = writeln!(
        text,
        "## Crash failover against lease\n\nSIGKILL of the acting node's tenure until the next \
         node's child starts. Target: p99 <= 1.2 x lease + 100 ms.\n"
    );
    let _ = writeln!(
        text,
        "| lease | heartbeat | stop grace | rounds | min | median | p99 | max | p99 / lease | \
         target | met | overlaps |"
    );
    let _ = writeln!(
        text,
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for result in &results.leases {
        let Some(summary) = Summary::of(&result.failovers) else {
            continue;
        };
        let target = result.timing.lease.mul_f64(1.2) + Duration::from_millis(100);
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} | {} ms | {} ms | **{} ms** | {} ms | {:.2} | {} ms | {} | {} |",
            humantime::format_duration(result.timing.lease),
            humantime::format_duration(result.timing.heartbeat),
            humantime::format_duration(result.timing.stop_grace),
            summary.count,
            millis(summary.min),
            millis(summary.median),
            millis(summary.p99),
            millis(summary.max),
            summary.p99.as_secs_f64() / result.timing.lease.as_secs_f64(),
            millis(target),
            if summary.p99 <= target { "yes" } else { "no" },
            result.overlaps
        );
    }
    let etcd = results.etcd.as_ref();
    if let Some((etcd, summary)) = etcd.and_then(|etcd| Some((etcd, Summary::of(&etcd.failovers)?)))
    {
        let _ = writeln!(
            text,
            "| etcd `--ttl {ETCD_TTL_SECONDS}` | (keep-alive TTL/3) | none | {} | {} ms | {} ms \
             | **{} ms** | {} ms | {:.2} | | | {} of {} rounds: old child still running |",
            summary.count,
            millis(summary.min),
            millis(summary.median),
            millis(summary.p99),
            millis(summary.max),
            summary.p99.as_secs_f64() / ETCD_TTL_SECONDS as f64,
            etcd.old_child_still_running,
            summary.count
        );
    }
}

/// The handover and its two parts: the old child's stop, then the successor's election.
fn handover_section(text: &mut String, results: &Results) {
    let lease = results.full.map_or("?".to_string(), |timing| {
        humantime::format_duration(timing.lease).to_string()
    });
    let _ = writeln!(
        text,
        "\n## Graceful handover (lease {lease})\n\nSIGTERM to the acting node's tenure until the \
         next node's child starts; the first part is the old child's stop (tenure tells its \
         guard, the guard sends SIGTERM, the child records its stop), the second is the \
         election of the successor. Target: p99 <= 100 ms + the child's stop time.\n"
    );
    let _ = writeln!(text, "| part | rounds | min | median | p99 | max |");
    let _ = writeln!(text, "| --- | --- | --- | --- | --- | --- |");
    for (name, samples) in [
        ("SIGTERM until the next child starts", &results.handovers),
        ("SIGTERM until the old child stopped", &results.child_stops),
        (
            "old child stopped until the next child starts",
            &results.after_child_stop,
        ),
    ] {
        if let Some(summary) = Summary::of(samples) {
            let _ = writeln!(
                text,
                "| {name} | {} | {} ms | {} ms | **{} ms** | {} ms |",
                summary.count,
                millis(summary.min),
                millis(summary.median),
                millis(summary.p99),
                millis(summary.max)
            );
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

/// etcd's members and contenders at idle, and how often the old child outlived the lock.
fn etcd_section(text: &mut String, etcd: &EtcdResult) {
    let _ = writeln!(
        text,
        "\n## etcd {} (`etcdctl lock --ttl {ETCD_TTL_SECONDS}`)\n",
        etcd.version
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
    let _ = writeln!(
        text,
        "\nOld child still running after the new one started: {} of {} rounds.",
        etcd.old_child_still_running,
        etcd.failovers.len()
    );
}
