//! A campaign: many seeds, each a [`run`], spread over worker threads, summed up in a
//! [`Summary`]: how much was simulated how fast, which invariants broke on which seeds, and
//! how long failovers took by fault kind.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tenure_core::{ExpiryJudge, StoreVariant, Variant};

use crate::oracle::{Check, Violation};
use crate::run::{judge_name, run, Core, Setup, Timing};
use crate::schedule::FaultKind;

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub first_seed: u64,
    pub seeds: u64,
    pub nodes: u8,
    pub variant: Variant,
    /// The election core the nodes run (a store run's variant is in it).
    pub core: Core,
    /// Simulated length of each run.
    pub end_ms: u32,
    pub timing: Timing,
    /// Worker threads; each runs whole seeds, one at a time.
    pub jobs: usize,
    /// Stop handing out seeds after the first violation (for teeth tests).
    pub stop_at_first_violation: bool,
    /// ρ for every seed, instead of the seed's own draw.
    pub max_drift: Option<f64>,
}

impl Plan {
    /// The setup of `seed` under this plan.
    pub fn setup(&self, seed: u64) -> Setup {
        let mut setup = match self.core {
            Core::Quorum => Setup::from_seed(seed, self.nodes, self.variant, self.end_ms),
            Core::Store { judge, variant } => {
                Setup::store_from_seed(seed, self.nodes, judge, variant, self.end_ms)
            }
        };
        setup.timing = self.timing;
        if let Some(max_drift) = self.max_drift {
            setup = setup.with_max_drift(max_drift);
        }
        setup
    }

    /// What runs, for reports: the quorum's variant, or the store lease's judge and variant.
    pub fn describe(&self) -> String {
        match self.core {
            Core::Quorum => format!("variant {}", self.variant),
            Core::Store { judge, variant } => format!(
                "store lease judged by the {}, variant {variant}",
                judge_name(judge)
            ),
        }
    }
}

/// Seeds of the CI campaign at 3 nodes (`tenure-sim --ci`).
pub const CI_SEEDS_3_NODES: u64 = 5_000;
/// Seeds of the CI campaign at 5 nodes.
pub const CI_SEEDS_5_NODES: u64 = 1_000;

/// The CI campaign: [`CI_SEEDS_3_NODES`] seeds at 3 nodes, then [`CI_SEEDS_5_NODES`] at 5,
/// each a minute of simulated time with the seed's own ρ, clocks and schedule. Every broken
/// variant of the core must be caught within it (`tests/teeth.rs`).
pub fn ci_plans(variant: Variant, jobs: usize) -> [Plan; 2] {
    let plan = |nodes, seeds| Plan {
        first_seed: 0,
        seeds,
        nodes,
        variant,
        end_ms: crate::run::DEFAULT_RUN_MS,
        timing: Timing::default(),
        jobs,
        stop_at_first_violation: false,
        max_drift: None,
        core: Core::Quorum,
    };
    [plan(3, CI_SEEDS_3_NODES), plan(5, CI_SEEDS_5_NODES)]
}

/// Seeds of the CI campaign's store runs, per judge of expiry.
pub const CI_SEEDS_STORE: u64 = 500;

/// The CI campaign's store runs (protocol: Store leases): [`CI_SEEDS_STORE`] seeds of two
/// nodes and a store, first with the contenders judging expiry, then with the store, each a
/// minute of simulated time with the seed's own ρ, clocks and schedule.
pub fn store_ci_plans(variant: StoreVariant, jobs: usize) -> [Plan; 2] {
    let plan = |judge| Plan {
        first_seed: 0,
        seeds: CI_SEEDS_STORE,
        nodes: 2,
        variant: Variant::Correct,
        end_ms: crate::run::DEFAULT_RUN_MS,
        timing: Timing::default(),
        jobs,
        stop_at_first_violation: false,
        max_drift: None,
        core: Core::store(judge, variant),
    };
    [plan(ExpiryJudge::Contenders), plan(ExpiryJudge::Store)]
}

/// One violating seed.
#[derive(Clone, Debug)]
pub struct Found {
    pub seed: u64,
    pub violation: Violation,
    pub reproduce: String,
}

/// Where a campaign stands, for a progress bar.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
    pub simulated: Duration,
    pub wall: Duration,
    pub violations: u64,
}

/// The result of a campaign.
#[derive(Clone, Debug)]
pub struct Summary {
    pub plan: Plan,
    pub seeds_run: u64,
    pub simulated: Duration,
    pub wall: Duration,
    /// Every violating seed, by seed.
    pub found: Vec<Found>,
    /// Failover durations by the kind of the fault that started them.
    pub failovers: BTreeMap<FaultKind, Vec<Duration>>,
}

/// The count, median, 99th percentile and maximum of a set of durations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Distribution {
    pub count: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

/// Runs `plan`, calling `progress` after every seed.
pub fn campaign(plan: &Plan, mut progress: impl FnMut(&Progress)) -> Summary {
    let started = Instant::now();
    let next = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let (sender, receiver) = mpsc::channel();
    let mut summary = Summary {
        plan: plan.clone(),
        seeds_run: 0,
        simulated: Duration::ZERO,
        wall: Duration::ZERO,
        found: Vec::new(),
        failovers: BTreeMap::new(),
    };
    std::thread::scope(|scope| {
        for _ in 0..plan.jobs.max(1) {
            let sender = sender.clone();
            let (next, stop) = (&next, &stop);
            scope.spawn(move || loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= plan.seeds || stop.load(Ordering::Relaxed) {
                    return;
                }
                let setup = plan.setup(plan.first_seed + index);
                let outcome = run(&setup);
                if outcome.violation.is_some() && plan.stop_at_first_violation {
                    stop.store(true, Ordering::Relaxed);
                }
                let reproduce = setup.reproduce_command();
                if sender.send((outcome, reproduce)).is_err() {
                    return;
                }
            });
        }
        drop(sender);
        for (outcome, reproduce) in receiver {
            summary.seeds_run += 1;
            summary.simulated += outcome.simulated;
            for failover in &outcome.failovers {
                summary
                    .failovers
                    .entry(failover.kind)
                    .or_default()
                    .push(failover.duration);
            }
            if let Some(violation) = outcome.violation {
                summary.found.push(Found {
                    seed: outcome.seed,
                    violation,
                    reproduce,
                });
            }
            progress(&Progress {
                done: summary.seeds_run,
                total: plan.seeds,
                simulated: summary.simulated,
                wall: started.elapsed(),
                violations: summary.found.len() as u64,
            });
        }
    });
    summary.wall = started.elapsed();
    summary.found.sort_by_key(|found| found.seed);
    summary
}

impl Summary {
    /// Simulated seconds per wall-clock second, all workers together.
    pub fn speed(&self) -> f64 {
        self.simulated.as_secs_f64() / self.wall.as_secs_f64().max(1e-9)
    }

    /// Violating seeds per check, every check listed.
    pub fn violations_by_check(&self) -> BTreeMap<Check, u64> {
        let mut counts: BTreeMap<Check, u64> = Check::ALL.iter().map(|check| (*check, 0)).collect();
        for found in &self.found {
            *counts.entry(found.violation.check).or_default() += 1;
        }
        counts
    }

    /// The failover distribution of `kind`, if any failover started with it.
    pub fn distribution(&self, kind: FaultKind) -> Option<Distribution> {
        let durations = self.failovers.get(&kind)?;
        let mut sorted = durations.clone();
        sorted.sort();
        // Nearest rank: the smallest value with at least p % of the values at or below it.
        let rank = |percent: usize| sorted[(sorted.len() * percent).div_ceil(100).max(1) - 1];
        Some(Distribution {
            count: sorted.len(),
            p50: rank(50),
            p99: rank(99),
            max: *sorted.last()?,
        })
    }

    /// The human-readable summary printed at the end of a campaign.
    pub fn render(&self) -> String {
        let plan = &self.plan;
        let mut text = String::new();
        let _ = writeln!(
            text,
            "tenure-sim: {} seeds ({}..{}), {} nodes, {}, {} s each",
            self.seeds_run,
            plan.first_seed,
            plan.first_seed + plan.seeds,
            plan.nodes,
            plan.describe(),
            plan.end_ms / 1_000
        );
        let _ = writeln!(
            text,
            "  simulated  {:>12.0} s ({})",
            self.simulated.as_secs_f64(),
            human(self.simulated)
        );
        let _ = writeln!(
            text,
            "  wall       {:>12.1} s ({} job{})",
            self.wall.as_secs_f64(),
            plan.jobs,
            if plan.jobs == 1 { "" } else { "s" }
        );
        let _ = writeln!(
            text,
            "  speed      {:>12.0} simulated s per wall s ({:.0} per job)",
            self.speed(),
            self.speed() / plan.jobs.max(1) as f64
        );
        let _ = writeln!(text, "violations by invariant:");
        for (check, count) in self.violations_by_check() {
            let _ = writeln!(text, "  {:<20} {count}", check.name());
        }
        for found in self.found.iter().take(10) {
            let _ = writeln!(text, "  seed {}: {}", found.seed, found.violation);
            let _ = writeln!(text, "    reproduce: {}", found.reproduce);
        }
        if self.found.len() > 10 {
            let _ = writeln!(text, "  … and {} more seeds", self.found.len() - 10);
        }
        let _ = writeln!(
            text,
            "failover time by fault kind (fault to new leader acting, ms):"
        );
        let _ = writeln!(
            text,
            "  {:<16} {:>7} {:>7} {:>7} {:>7}",
            "kind", "count", "p50", "p99", "max"
        );
        for kind in FaultKind::ALL {
            if let Some(distribution) = self.distribution(kind) {
                let _ = writeln!(
                    text,
                    "  {:<16} {:>7} {:>7} {:>7} {:>7}",
                    kind.name(),
                    distribution.count,
                    distribution.p50.as_millis(),
                    distribution.p99.as_millis(),
                    distribution.max.as_millis()
                );
            }
        }
        text
    }

    /// The summary as JSON, for `--json FILE`.
    pub fn to_json(&self) -> String {
        let plan = &self.plan;
        let mut json = String::from("{\n");
        let _ = writeln!(json, "  \"first_seed\": {},", plan.first_seed);
        let _ = writeln!(json, "  \"seeds\": {},", self.seeds_run);
        let _ = writeln!(json, "  \"nodes\": {},", plan.nodes);
        let _ = writeln!(json, "  \"variant\": {},", quote(plan.variant.name()));
        if let Core::Store { judge, variant } = plan.core {
            let _ = writeln!(json, "  \"store_judge\": {},", quote(judge_name(judge)));
            let _ = writeln!(json, "  \"store_variant\": {},", quote(variant.name()));
        }
        let _ = writeln!(json, "  \"run_seconds\": {},", f64::from(plan.end_ms) / 1e3);
        let _ = writeln!(json, "  \"tick_ms\": {},", plan.timing.tick.as_millis());
        let _ = writeln!(json, "  \"jobs\": {},", plan.jobs);
        let _ = writeln!(
            json,
            "  \"simulated_seconds\": {:.3},",
            self.simulated.as_secs_f64()
        );
        let _ = writeln!(json, "  \"wall_seconds\": {:.3},", self.wall.as_secs_f64());
        let _ = writeln!(json, "  \"speed\": {:.1},", self.speed());
        let counts: Vec<String> = self
            .violations_by_check()
            .iter()
            .map(|(check, count)| format!("{}: {count}", quote(check.name())))
            .collect();
        let _ = writeln!(json, "  \"violations\": {{{}}},", counts.join(", "));
        let found: Vec<String> = self
            .found
            .iter()
            .map(|found| {
                format!(
                    "    {{\"seed\": {}, \"invariant\": {}, \"at_seconds\": {:.6}, \"detail\": {}, \"reproduce\": {}}}",
                    found.seed,
                    quote(found.violation.check.name()),
                    found.violation.at.as_secs_f64(),
                    quote(&found.violation.detail),
                    quote(&found.reproduce)
                )
            })
            .collect();
        let _ = writeln!(
            json,
            "  \"violating_seeds\": [\n{}\n  ],",
            found.join(",\n")
        );
        let failovers: Vec<String> = FaultKind::ALL
            .iter()
            .filter_map(|kind| {
                let distribution = self.distribution(*kind)?;
                Some(format!(
                    "    {}: {{\"count\": {}, \"p50_ms\": {}, \"p99_ms\": {}, \"max_ms\": {}}}",
                    quote(kind.name()),
                    distribution.count,
                    distribution.p50.as_millis(),
                    distribution.p99.as_millis(),
                    distribution.max.as_millis()
                ))
            })
            .collect();
        let _ = writeln!(json, "  \"failovers\": {{\n{}\n  }}", failovers.join(",\n"));
        json.push_str("}\n");
        json
    }
}

/// A one-line progress bar: `[#####.....] 512/1000 seeds, 8.5 h simulated, 1043×, 0 violations`.
pub fn progress_line(progress: &Progress) -> String {
    const WIDTH: u64 = 30;
    let filled = (progress.done * WIDTH)
        .checked_div(progress.total)
        .unwrap_or(WIDTH);
    let bar: String = (0..WIDTH)
        .map(|cell| if cell < filled { '#' } else { '.' })
        .collect();
    let speed = progress.simulated.as_secs_f64() / progress.wall.as_secs_f64().max(1e-9);
    format!(
        "[{bar}] {}/{} seeds, {} simulated in {}, {speed:.0}×, {} violation{}",
        progress.done,
        progress.total,
        human(progress.simulated),
        human(progress.wall),
        progress.violations,
        if progress.violations == 1 { "" } else { "s" }
    )
}

/// `1h 02m 03s`-style durations.
fn human(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let (hours, minutes, seconds) = (seconds / 3_600, seconds / 60 % 60, seconds % 60);
    if hours > 0 {
        format!("{hours}h {minutes:02}m {seconds:02}s")
    } else if minutes > 0 {
        format!("{minutes}m {seconds:02}s")
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

/// A JSON string literal.
fn quote(text: &str) -> String {
    let mut quoted = String::from("\"");
    for character in text.chars() {
        match character {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            character if character.is_control() => {
                let _ = write!(quoted, "\\u{:04x}", u32::from(character));
            }
            character => quoted.push(character),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut summary = Summary {
            plan: Plan {
                first_seed: 0,
                seeds: 0,
                nodes: 3,
                variant: Variant::Correct,
                end_ms: 1,
                timing: Timing::default(),
                jobs: 1,
                stop_at_first_violation: false,
                max_drift: None,
                core: Core::Quorum,
            },
            seeds_run: 0,
            simulated: Duration::ZERO,
            wall: Duration::ZERO,
            found: Vec::new(),
            failovers: BTreeMap::new(),
        };
        summary.failovers.insert(
            FaultKind::Crash,
            (1..=200).rev().map(Duration::from_millis).collect(),
        );
        let distribution = summary.distribution(FaultKind::Crash).expect("measured");
        assert_eq!(distribution.count, 200);
        assert_eq!(distribution.p50, Duration::from_millis(100));
        assert_eq!(distribution.p99, Duration::from_millis(198));
        assert_eq!(distribution.max, Duration::from_millis(200));
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(quote("a \"b\"\n\\"), "\"a \\\"b\\\"\\n\\\\\"");
    }
}
