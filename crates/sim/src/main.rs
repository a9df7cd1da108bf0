//! The campaign CLI.
//!
//! ```text
//! cargo run --release -p tenure-sim -- --seeds 10000 [--nodes 3|5] [--variant NAME]
//!                                      [--jobs J] [--json FILE]
//! cargo run --release -p tenure-sim -- --reproduce SEED [--nodes N] [--variant NAME]
//!                                      [--schedule 'TEXT'] [--trace FILE]
//! cargo run --release -p tenure-sim -- --core store [--judge contenders|store] [--nodes 2]
//!                                      [--variant NAME] (--seeds N | --reproduce SEED)
//! ```
//!
//! A campaign shows a progress bar on stderr, prints a summary and exits non-zero if any seed
//! broke an invariant. `--reproduce` runs one seed with its trace kept, prints the outcome and
//! the end of the trace, and exits non-zero if it broke an invariant.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use tenure_sim::campaign::{campaign, progress_line, Plan};
use tenure_sim::{
    run, Core, ExpiryJudge, Schedule, Setup, StoreVariant, Timing, Variant, DEFAULT_RUN_MS,
};

/// The election core of `--core`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum CoreName {
    /// The quorum among tenure nodes.
    Quorum,
    /// A store lease against a simulated coordination store (protocol: Store leases).
    Store,
}

/// Who judges expiry in a store run (`--judge`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum JudgeName {
    /// The contenders, on their own clocks (the PostgreSQL backend).
    Contenders,
    /// The store, on its clock (etcd's lease TTL).
    Store,
}

#[derive(Parser, Debug)]
#[command(
    name = "tenure-sim",
    about = "Deterministic simulation campaigns of tenure clusters, checked by an invariant oracle."
)]
struct Cli {
    /// How many seeds to run.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// The first seed; the campaign runs first_seed..first_seed+seeds.
    #[arg(long, default_value_t = 0)]
    first_seed: u64,
    /// Cluster size: 3 to 5 for the quorum (default 3), 2 to 5 for a store lease (default 2).
    #[arg(long, value_parser = clap::value_parser!(u8).range(2..=5))]
    nodes: Option<u8>,
    /// Which election core the nodes run.
    #[arg(long, value_enum, default_value = "quorum")]
    core: CoreName,
    /// With --core store: who judges that a holder's tenure is over.
    #[arg(long, value_enum, default_value = "contenders")]
    judge: JudgeName,
    /// Which variant of the core to run: correct, or a deliberately broken one (the quorum's
    /// variants, or with --core store the store lease's).
    #[arg(long, default_value = "correct")]
    variant: String,
    /// Run the CI campaign (5,000 seeds at 3 nodes, then 1,000 at 5, then 500 store runs per
    /// judge) instead of --seeds and --nodes; with --variant, against that variant only (with
    /// --core store, the store runs only).
    #[arg(long, conflicts_with_all = ["reproduce", "seeds", "nodes", "first_seed", "max_drift"])]
    ci: bool,
    /// Stop a campaign at its first violation (the exit status is the same).
    #[arg(long)]
    fail_fast: bool,
    /// Run this one seed with its trace kept, instead of a campaign.
    #[arg(long)]
    reproduce: Option<u64>,
    /// With --reproduce: the schedule to run instead of the seed's own (as printed by a
    /// failure).
    #[arg(long, requires = "reproduce")]
    schedule: Option<Schedule>,
    /// Simulated length of each run, in milliseconds.
    #[arg(long, default_value_t = DEFAULT_RUN_MS)]
    duration_ms: u32,
    /// turmoil's step, in milliseconds.
    #[arg(long, default_value_t = 20)]
    tick_ms: u64,
    /// ρ for every seed (0 to 0.1), instead of each seed's own draw (1 %, 5 % or 10 %).
    #[arg(long)]
    max_drift: Option<f64>,
    /// Worker threads for a campaign.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Also write the campaign's summary as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// With --reproduce: write the whole trace to this file.
    #[arg(long, requires = "reproduce")]
    trace: Option<PathBuf>,
}

/// What `--core`, `--judge`, `--variant` and `--nodes` select: the core, the quorum's
/// variant (correct in store runs) and the cluster size.
fn selection(cli: &Cli) -> Result<(Core, Variant, u8), String> {
    match cli.core {
        CoreName::Quorum => {
            let nodes = cli.nodes.unwrap_or(3);
            if nodes < 3 {
                return Err("the quorum needs --nodes 3 to 5".into());
            }
            let variant = cli.variant.parse().map_err(|error| format!("{error}"))?;
            Ok((Core::Quorum, variant, nodes))
        }
        CoreName::Store => {
            let judge = match cli.judge {
                JudgeName::Contenders => ExpiryJudge::Contenders,
                JudgeName::Store => ExpiryJudge::Store,
            };
            let variant: StoreVariant = cli.variant.parse()?;
            Ok((
                Core::store(judge, variant),
                Variant::Correct,
                cli.nodes.unwrap_or(2),
            ))
        }
    }
}

/// The plans to run: the CI campaign's, or one of `--seeds`.
fn plans(cli: &Cli, core: Core, variant: Variant, nodes: u8, timing: Timing) -> Vec<Plan> {
    let jobs = cli.jobs.max(1);
    if cli.ci {
        return match core {
            Core::Quorum if variant != Variant::Correct => {
                tenure_sim::campaign::ci_plans(variant, jobs).to_vec()
            }
            Core::Quorum => {
                let mut plans = tenure_sim::campaign::ci_plans(variant, jobs).to_vec();
                plans.extend(tenure_sim::campaign::store_ci_plans(
                    StoreVariant::Correct,
                    jobs,
                ));
                plans
            }
            Core::Store { variant, .. } => {
                tenure_sim::campaign::store_ci_plans(variant, jobs).to_vec()
            }
        };
    }
    vec![Plan {
        first_seed: cli.first_seed,
        seeds: cli.seeds,
        nodes,
        variant,
        core,
        end_ms: cli.duration_ms,
        timing,
        jobs,
        stop_at_first_violation: false,
        max_drift: cli.max_drift,
    }]
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (core, variant, nodes) = match selection(&cli) {
        Ok(selection) => selection,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    if cli
        .max_drift
        .is_some_and(|max_drift| !(0.0..=0.1).contains(&max_drift))
    {
        eprintln!("--max-drift must be within 0 and 0.1 (the core's limit for ρ)");
        return ExitCode::from(2);
    }
    if cli.duration_ms < tenure_sim::schedule::QUIET_MS + 5_000 {
        eprintln!(
            "--duration-ms must be at least {} ms: the faults need some time before the quiet \
             stretch in which liveness is checked",
            tenure_sim::schedule::QUIET_MS + 5_000
        );
        return ExitCode::from(2);
    }
    let timing = Timing {
        tick: Duration::from_millis(cli.tick_ms.max(1)),
        ..Timing::default()
    };
    if let Some(seed) = cli.reproduce {
        let plan = &plans(&cli, core, variant, nodes, timing)[0];
        return reproduce(&cli, plan.setup(seed));
    }
    let plans = plans(&cli, core, variant, nodes, timing);
    let started = Instant::now();
    let mut failed = false;
    for mut plan in plans {
        plan.timing = timing;
        plan.end_ms = cli.duration_ms;
        plan.stop_at_first_violation = cli.fail_fast;
        failed |= !run_campaign(&cli, &plan);
        if failed && cli.fail_fast {
            break;
        }
    }
    if cli.ci {
        println!(
            "\nCI campaign: {} in {:.1} s wall",
            if failed { "FAILED" } else { "passed" },
            started.elapsed().as_secs_f64()
        );
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn reproduce(cli: &Cli, mut setup: Setup) -> ExitCode {
    let seed = setup.seed;
    if let Some(schedule) = &cli.schedule {
        setup = setup.with_schedule(schedule.clone());
    }
    setup.keep_trace = true;
    let started = Instant::now();
    let outcome = run(&setup);
    let wall = started.elapsed();
    if let Some(path) = &cli.trace {
        if let Err(error) = std::fs::write(path, outcome.trace.join("\n") + "\n") {
            eprintln!("cannot write {}: {error}", path.display());
        }
    }
    print!("{}", outcome.report(&setup));
    println!(
        "seed {seed}: {} simulated in {:.2} s wall, trace hash {:016x}, {} failover{}",
        tenure_sim::time::SimTime::from_duration(outcome.simulated),
        wall.as_secs_f64(),
        outcome.trace_hash,
        outcome.failovers.len(),
        if outcome.failovers.len() == 1 {
            ""
        } else {
            "s"
        }
    );
    for failover in &outcome.failovers {
        println!(
            "  failover after {} at {}: {} ms (token {} -> {})",
            failover.kind.name(),
            failover.fault_at,
            failover.duration.as_millis(),
            failover.from,
            failover.to
        );
    }
    match outcome.violation {
        Some(_) => ExitCode::FAILURE,
        None => {
            println!("no violation");
            ExitCode::SUCCESS
        }
    }
}

/// Runs one campaign, prints its summary (and the first violation in full); returns whether
/// every seed passed.
fn run_campaign(cli: &Cli, plan: &Plan) -> bool {
    let timing = plan.timing;
    let interactive = std::io::stderr().is_terminal();
    let mut last_drawn = Instant::now();
    let summary = campaign(plan, |progress| {
        // Redraw at most five times a second on a terminal, and every 5 % into a log.
        let step = (progress.total / 20).max(1);
        let due = if interactive {
            last_drawn.elapsed() >= Duration::from_millis(200) || progress.done == progress.total
        } else {
            progress.done % step == 0 || progress.done == progress.total
        };
        if due {
            last_drawn = Instant::now();
            let line = progress_line(progress);
            let mut stderr = std::io::stderr().lock();
            let _ = if interactive {
                write!(stderr, "\r{line}")
            } else {
                writeln!(stderr, "{line}")
            };
        }
    });
    if interactive {
        eprintln!();
    }
    print!("{}", summary.render());
    if let Some(found) = summary.found.first() {
        // The first violation in full: its run again, this time with the trace kept.
        let mut setup = plan.setup(found.seed);
        setup.timing = timing;
        setup.keep_trace = true;
        println!("\nfirst violation in full:");
        print!("{}", run(&setup).report(&setup));
    }
    if let Some(path) = &cli.json {
        // With --ci, one file per cluster size, and per judge for the store runs.
        let path = if cli.ci {
            let core = match plan.core {
                Core::Quorum => String::new(),
                Core::Store { judge, .. } => {
                    format!("store-{}-", tenure_sim::judge_name(judge))
                }
            };
            path.with_extension(format!("{core}{}-nodes.json", plan.nodes))
        } else {
            path.clone()
        };
        if let Err(error) = std::fs::write(&path, summary.to_json()) {
            eprintln!("cannot write {}: {error}", path.display());
            return false;
        }
    }
    summary.found.is_empty()
}
