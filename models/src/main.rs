//! `tenure-models`: model-check the real tenure core, or explore the model in a browser.
//!
//! ```text
//! cargo run --release -p tenure-models -- check [--nodes N] [--threads T] [--variant NAME] [bounds…]
//! cargo run --release -p tenure-models -- explore [--addr 127.0.0.1:PORT]
//! ```

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use stateright::{Checker, Model};
use tenure_core::{ElectionOrder, Variant};

use tenure_models::{
    check, order_name, render_trace, timing, CheckOptions, DriftSpec, ModelSpec, SearchBounds,
    StopWhen, Strategy, TenureModel, NOMINAL_RATE,
};

/// Model-check tenure's election core (the real tenure-core, with its broken variants) with
/// stateright. See docs/verification.md.
#[derive(Parser)]
#[command(name = "tenure-models", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check every property over every state within the bounds. Exits non-zero, with a trace,
    /// if an Always property is violated or a Sometimes property is not reached.
    Check(CheckArgs),
    /// Serve stateright's Explorer web UI on the same model.
    Explore(ExploreArgs),
}

/// The model: cluster, core variant, clocks and bounds. Without any bound, `check` runs the
/// default suite (four runs, see docs/verification.md); with any, one run whose other bounds
/// are those of the suite's first run, `faults`.
#[derive(Args)]
struct ModelArgs {
    /// Cluster size.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// The core variant: correct, no_drift_compensation, no_boot_quarantine, no_promise,
    /// forget_vote_on_restart, act_past_lease, stale_ack.
    #[arg(long, default_value_t = Variant::Correct)]
    variant: Variant,
    /// Clock rates: `extremes` (every assignment of slow/fast), `all` (slow/nominal/fast), or
    /// one rate per node such as `slow,nominal,fast`. `extremes` and `all` take each multiset
    /// of rates once (symmetry over node ids).
    #[arg(long, default_value = "slow,nominal,fast")]
    drifts: DriftSpec,
    /// How followers time the first election after a leader (protocol: Election timing):
    /// `ranked` (production), `random` (the adversary picks every delay), or `both`, which
    /// runs each check once per order. Safety must hold whatever the timing.
    #[arg(long, value_enum, default_value_t = Elections::Both)]
    elections: Elections,
    /// Highest term any node may reach.
    #[arg(long)]
    max_term: Option<u64>,
    /// Last instant of global time, in units of a third of the lease at the nominal rate
    /// (heartbeat = 0.91 unit). Time stops at every instant in between at which anything can
    /// change.
    #[arg(long)]
    horizon: Option<u8>,
    /// Faults per run: lost messages, cut links and crashes.
    #[arg(long)]
    max_faults: Option<u8>,
    /// How many of the faults may be crashes.
    #[arg(long)]
    max_crashes: Option<u8>,
    /// Graceful resignations per run.
    #[arg(long)]
    max_resigns: Option<u8>,
    /// Messages in flight or held at once.
    #[arg(long)]
    max_in_flight: Option<u8>,
    /// Messages held back (or duplicated) per run: they arrive at any later instant, across
    /// term changes, or never.
    #[arg(long)]
    max_holds: Option<u8>,
    /// A message's delivery window, in global ticks (1 unit = 1089 ticks).
    #[arg(long)]
    max_latency: Option<u32>,
}

#[derive(Args)]
struct CheckArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Checker threads (default: every core).
    #[arg(long)]
    threads: Option<usize>,
    /// Depth first (small memory) or breadth first (shortest traces).
    #[arg(long, value_enum, default_value_t = Strategy::Dfs)]
    strategy: Strategy,
    /// Seconds between progress lines.
    #[arg(long, default_value_t = 5)]
    progress_seconds: u64,
    /// Also print the example trace of every Sometimes property.
    #[arg(long)]
    examples: bool,
}

#[derive(Args)]
struct ExploreArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Where to serve the Explorer.
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => run_check(args),
        Command::Explore(args) => run_explore(args),
    }
}

/// The bounds the arguments ask for: `None` if they name none (then `check` runs the default
/// suite), else `SearchBounds::DEFAULT` with the named ones replaced.
fn bounds(args: &ModelArgs) -> Option<SearchBounds> {
    let named = args.max_term.is_some()
        || args.horizon.is_some()
        || args.max_faults.is_some()
        || args.max_crashes.is_some()
        || args.max_resigns.is_some()
        || args.max_in_flight.is_some()
        || args.max_holds.is_some()
        || args.max_latency.is_some();
    let base = SearchBounds::DEFAULT;
    named.then(|| SearchBounds {
        max_term: args.max_term.unwrap_or(base.max_term),
        horizon: args.horizon.unwrap_or(base.horizon),
        max_faults: args.max_faults.unwrap_or(base.max_faults),
        max_crashes: args.max_crashes.unwrap_or(base.max_crashes),
        max_resigns: args.max_resigns.unwrap_or(base.max_resigns),
        max_in_flight: args.max_in_flight.unwrap_or(base.max_in_flight),
        max_holds: args.max_holds.unwrap_or(base.max_holds),
        max_latency: args.max_latency.unwrap_or(base.max_latency),
    })
}

/// Which election orders a command checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Elections {
    Ranked,
    Random,
    Both,
}

impl Elections {
    fn orders(self) -> &'static [ElectionOrder] {
        match self {
            Elections::Ranked => &[ElectionOrder::Ranked],
            Elections::Random => &[ElectionOrder::Random],
            Elections::Both => &[ElectionOrder::Ranked, ElectionOrder::Random],
        }
    }
}

fn model(
    args: &ModelArgs,
    bounds: SearchBounds,
    election_order: ElectionOrder,
) -> Result<TenureModel, String> {
    TenureModel::new(ModelSpec {
        nodes: args.nodes,
        variant: args.variant,
        drifts: args.drifts.clone(),
        bounds,
        election_order,
    })
}

fn describe(model: &TenureModel) {
    let spec = model.spec();
    println!(
        "model: {} nodes, variant {}, clocks {} (ρ = {}: {}/{}/{} ns per tick), {} initial \
         states",
        spec.nodes,
        spec.variant,
        spec.drifts,
        model.config().max_drift_ppm() as f64 / 1e6,
        NOMINAL_RATE - tenure_models::DRIFT_TICKS,
        NOMINAL_RATE,
        NOMINAL_RATE + tenure_models::DRIFT_TICKS,
        model.init_states().len()
    );
    println!(
        "timing (local ns): lease {}, lease hold {}, heartbeat {}, stop margin {}, child exit \
         ≤ {}, jitter 0 or {}",
        timing::LEASE_DURATION.as_nanos(),
        model.config().lease_hold().as_nanos(),
        timing::HEARTBEAT_INTERVAL.as_nanos(),
        timing::STOP_MARGIN.as_nanos(),
        timing::CHILD_EXIT_MAX.as_nanos(),
        timing::ELECTION_JITTER_MAX.as_nanos(),
    );
    println!("bounds: {}", spec.bounds);
}

fn run_check(args: CheckArgs) -> ExitCode {
    let members: Vec<(&str, SearchBounds)> = match bounds(&args.model) {
        Some(bounds) => vec![("custom", bounds)],
        None => {
            println!(
                "the default suite: {} exhaustive runs (see docs/verification.md)",
                SearchBounds::SUITE.len()
            );
            for member in &SearchBounds::SUITE {
                println!("  {:<9} {}: {}", member.name, member.covers, member.bounds);
            }
            SearchBounds::SUITE
                .iter()
                .map(|member| (member.name, member.bounds))
                .collect()
        }
    };
    let options = CheckOptions {
        threads: args.threads.unwrap_or(CheckOptions::default().threads),
        strategy: args.strategy,
        stop_when: StopWhen::AnyViolation,
        progress_interval: Duration::from_secs(args.progress_seconds.max(1)),
    };
    let mut reached: Vec<&str> = Vec::new();
    let mut sometimes: Vec<&str> = Vec::new();
    let mut violated = false;
    let mut unique_states = 0;
    let mut elapsed = Duration::ZERO;
    let runs = members.iter().flat_map(|(name, bounds)| {
        let orders = args.model.elections.orders();
        orders.iter().map(move |order| (*name, *bounds, *order))
    });
    for (name, bounds, order) in runs {
        let model = match model(&args.model, bounds, order) {
            Ok(model) => model,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(2);
            }
        };
        println!("\n=== run {name}, {} elections ===", order_name(order));
        describe(&model);
        println!(
            "checking with {} threads, {:?}…",
            options.threads, options.strategy
        );
        let report = check(model, &options, |progress| eprintln!("{progress}"));
        print!("{report}");
        if args.examples {
            for result in &report.results {
                if let (stateright::Expectation::Sometimes, Some(path)) =
                    (&result.expectation, &result.discovery)
                {
                    println!("\nexample of {}:", result.name);
                    print!("{}", render_trace(path, None));
                }
            }
        }
        unique_states += report.unique_states;
        elapsed += report.elapsed;
        for result in &report.results {
            match result.expectation {
                stateright::Expectation::Sometimes => {
                    if !sometimes.contains(&result.name) {
                        sometimes.push(result.name);
                    }
                    if result.discovery.is_some() && !reached.contains(&result.name) {
                        reached.push(result.name);
                    }
                }
                _ => violated |= result.discovery.is_some(),
            }
        }
        if violated {
            break;
        }
    }
    let unreached: Vec<&str> = sometimes
        .iter()
        .copied()
        .filter(|name| !reached.contains(name))
        .collect();
    let passed = !violated && unreached.is_empty();
    println!(
        "\nresult: {} ({} run(s), {} unique states in all, {:.1} s{}{})",
        if passed { "PASS" } else { "FAIL" },
        members.len() * args.model.elections.orders().len(),
        unique_states,
        elapsed.as_secs_f64(),
        if violated {
            "; an Always property is violated"
        } else {
            ""
        },
        if !violated && !unreached.is_empty() {
            format!("; not reached by any run: {}", unreached.join(", "))
        } else {
            String::new()
        }
    );
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run_explore(args: ExploreArgs) -> ExitCode {
    // One model to explore: the first order asked for (ranked for `both`).
    let order = args.model.elections.orders()[0];
    let bounds = bounds(&args.model).unwrap_or(SearchBounds::DEFAULT);
    let model = match model(&args.model, bounds, order) {
        Ok(model) => model,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    // stateright panics if it cannot bind; find out first and say why.
    if let Err(error) = std::net::TcpListener::bind(&args.addr) {
        eprintln!("error: cannot serve on {}: {error}", args.addr);
        return ExitCode::from(2);
    }
    describe(&model);
    println!("Explorer: http://{}/ (Ctrl-C to stop)", args.addr);
    let checker = model.checker().serve(args.addr.as_str());
    // `serve` returns only if the web server stops.
    println!(
        "Explorer stopped after {} states",
        checker.unique_state_count()
    );
    ExitCode::SUCCESS
}
