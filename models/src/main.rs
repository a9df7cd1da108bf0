//! `tenure-models`: model-check the real tenure core, or explore the model in a browser.
//!
//! ```text
//! cargo run --release -p tenure-models -- check [--core quorum|store|both] [--nodes N] [--threads T] [--variant NAME] [bounds…]
//! cargo run --release -p tenure-models -- check --core store [--judge contenders|store|both] [--store-drift]
//! cargo run --release -p tenure-models -- explore [--addr 127.0.0.1:PORT]
//! ```

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use stateright::{Checker, Expectation, Model};
use tenure_core::{ElectionOrder, ExpiryJudge, StoreVariant, Variant};

use tenure_models::{
    check, judge_name, order_name, store_timing, timing, CheckOptions, CheckReport, Checkable,
    Drift, DriftSpec, ModelSpec, SearchBounds, StopWhen, StoreBounds, StoreModel, StoreSpec,
    Strategy, TenureModel, NOMINAL_RATE,
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

/// The model: which core, cluster, core variant, clocks and bounds. Without any bound, `check`
/// runs the default suite of each core (see docs/verification.md); with any, one run whose
/// other bounds are those of the suite's first run.
#[derive(Args)]
struct ModelArgs {
    /// Which election core to check: the quorum (`tenure_core::Node`), the store lease
    /// (`tenure_core::StoreLease` against `tenure_core::ReferenceStore`), or both (the store
    /// suite adds seconds to the quorum's minutes). With `both`, a broken `--variant` checks
    /// the quorum's variant of that name if there is one, else the store lease's.
    #[arg(long, value_enum, default_value_t = Core::Both)]
    core: Core,
    /// Cluster size (quorum, default 3) or contenders (store, default 2, at most 3).
    #[arg(long)]
    nodes: Option<usize>,
    /// The core variant. Quorum: correct, no_drift_compensation, no_boot_quarantine,
    /// no_promise, forget_vote_on_restart, act_past_lease, stale_ack. Store: correct,
    /// deadline_from_reply, extend_on_ambiguous, no_drift_compensation.
    #[arg(long, default_value = "correct")]
    variant: String,
    /// Clock rates: `extremes` (every assignment of slow/fast), `all` (slow/nominal/fast), or
    /// one rate per node such as `slow,nominal,fast`. `extremes` and `all` take each multiset
    /// of rates once (symmetry over node ids). Default: `slow,nominal,fast` for the quorum,
    /// `slow,fast` for the store.
    #[arg(long)]
    drifts: Option<DriftSpec>,
    /// Store lease: who judges expiry (protocol: Who judges expiry), or both, which runs each
    /// check once per judge.
    #[arg(long, value_enum, default_value_t = Judges::Both)]
    judge: Judges,
    /// Store lease, store judge: the store's clock may run slow, nominal or fast (within ±ρ),
    /// each an initial state. Without it the store's clock is fast, the worst case the rule
    /// allows.
    #[arg(long)]
    store_drift: bool,
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
    /// Store lease: slow requests and replies per run, applied or delivered at any later
    /// instant until their node gives the request up.
    #[arg(long)]
    max_delays: Option<u8>,
}

/// Which election cores a command checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Core {
    Quorum,
    Store,
    Both,
}

/// Which expiry judges a store check runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Judges {
    Contenders,
    Store,
    Both,
}

impl Judges {
    fn judges(self) -> &'static [ExpiryJudge] {
        match self {
            Judges::Contenders => &[ExpiryJudge::Contenders],
            Judges::Store => &[ExpiryJudge::Store],
            Judges::Both => &[ExpiryJudge::Contenders, ExpiryJudge::Store],
        }
    }
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

fn quorum_model(
    args: &ModelArgs,
    bounds: SearchBounds,
    election_order: ElectionOrder,
) -> Result<TenureModel, String> {
    let variant: Variant = args.variant.parse().map_err(|error| format!("{error}"))?;
    TenureModel::new(ModelSpec {
        nodes: args.nodes.unwrap_or(3),
        variant,
        drifts: args.drifts.clone().unwrap_or(DriftSpec::Fixed(vec![
            Drift::Slow,
            Drift::Nominal,
            Drift::Fast,
        ])),
        bounds,
        election_order,
    })
}

fn store_model(
    args: &ModelArgs,
    bounds: StoreBounds,
    judge: ExpiryJudge,
) -> Result<StoreModel, String> {
    let variant: StoreVariant = args.variant.parse()?;
    let default = StoreSpec::default_check(judge);
    StoreModel::new(StoreSpec {
        nodes: args.nodes.unwrap_or(default.nodes),
        variant,
        judge,
        drifts: args.drifts.clone().unwrap_or(default.drifts),
        store_drifts: if args.store_drift && judge == ExpiryJudge::Store {
            Drift::ALL.to_vec()
        } else {
            default.store_drifts
        },
        bounds,
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

fn describe_store(model: &StoreModel) {
    let spec = model.spec();
    let store: Vec<&str> = spec.store_drifts.iter().map(|drift| drift.name()).collect();
    println!(
        "store model: {} contenders, variant {}, judge {}, clocks {}, store clock {} (ρ = {}), \
         {} initial states",
        spec.nodes,
        spec.variant,
        judge_name(spec.judge),
        spec.drifts,
        store.join("|"),
        f64::from(model.config().params().max_drift_ppm) / 1e6,
        model.init_states().len()
    );
    println!(
        "timing (local ns): lease {}, lease hold {}, renew and poll {}, request timeout {}, \
         stop margin {}, child exit ≤ {}, store TTL {}",
        model.config().lease_duration().as_nanos(),
        model.config().lease_hold().as_nanos(),
        store_timing::RENEW_INTERVAL.as_nanos(),
        store_timing::REQUEST_TIMEOUT.as_nanos(),
        timing::STOP_MARGIN.as_nanos(),
        timing::CHILD_EXIT_MAX.as_nanos(),
        store_timing::TTL.as_nanos(),
    );
    println!("bounds: {}", spec.bounds);
}

/// What a series of runs found, for the result line.
#[derive(Default)]
struct Totals {
    runs: usize,
    unique_states: usize,
    elapsed: Duration,
    violated: bool,
    sometimes: Vec<&'static str>,
    reached: Vec<&'static str>,
}

impl Totals {
    fn add<M: Checkable>(&mut self, report: &CheckReport<M>) {
        self.runs += 1;
        self.unique_states += report.unique_states;
        self.elapsed += report.elapsed;
        for result in &report.results {
            match result.expectation {
                Expectation::Sometimes => {
                    if !self.sometimes.contains(&result.name) {
                        self.sometimes.push(result.name);
                    }
                    if result.discovery.is_some() && !self.reached.contains(&result.name) {
                        self.reached.push(result.name);
                    }
                }
                _ => self.violated |= result.discovery.is_some(),
            }
        }
    }

    fn unreached(&self) -> Vec<&'static str> {
        self.sometimes
            .iter()
            .copied()
            .filter(|name| !self.reached.contains(name))
            .collect()
    }
}

/// Checks one model, prints its report (and with `examples` every `Sometimes` example), and
/// adds it to `totals`.
fn run_one<M: Checkable>(model: M, args: &CheckArgs, options: &CheckOptions, totals: &mut Totals) {
    println!(
        "checking with {} threads, {:?}…",
        options.threads, options.strategy
    );
    let report = check(model, options, |progress| eprintln!("{progress}"));
    print!("{report}");
    if args.examples {
        for result in &report.results {
            if let (Expectation::Sometimes, Some(path)) = (&result.expectation, &result.discovery) {
                println!("\nexample of {}:", result.name);
                print!("{}", M::render(path, None));
            }
        }
    }
    totals.add(&report);
}

fn run_quorum(args: &CheckArgs, options: &CheckOptions, totals: &mut Totals) -> Result<(), String> {
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
    for (name, bounds) in members {
        for &order in args.model.elections.orders() {
            let model = quorum_model(&args.model, bounds, order)?;
            println!("\n=== run {name}, {} elections ===", order_name(order));
            describe(&model);
            run_one(model, args, options, totals);
            if totals.violated {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The store bounds the arguments ask for: `None` if they name none (then `check` runs the
/// store suite), else `StoreBounds::DEFAULT` with the named ones replaced.
fn store_bounds(args: &ModelArgs) -> Option<StoreBounds> {
    let named = args.horizon.is_some()
        || args.max_faults.is_some()
        || args.max_crashes.is_some()
        || args.max_resigns.is_some()
        || args.max_holds.is_some()
        || args.max_delays.is_some();
    let base = StoreBounds::DEFAULT;
    named.then(|| StoreBounds {
        horizon: args.horizon.unwrap_or(base.horizon),
        max_faults: args.max_faults.unwrap_or(base.max_faults),
        max_crashes: args.max_crashes.unwrap_or(base.max_crashes),
        max_resigns: args.max_resigns.unwrap_or(base.max_resigns),
        max_holds: args.max_holds.unwrap_or(base.max_holds),
        max_delays: args.max_delays.unwrap_or(base.max_delays),
    })
}

fn run_store(args: &CheckArgs, options: &CheckOptions, totals: &mut Totals) -> Result<(), String> {
    let members: Vec<(&str, StoreBounds)> = match store_bounds(&args.model) {
        Some(bounds) => vec![("store-custom", bounds)],
        None => {
            println!(
                "\nthe store suite: {} exhaustive runs per judge (see docs/verification.md)",
                StoreBounds::SUITE.len()
            );
            for member in &StoreBounds::SUITE {
                println!("  {:<14} {}: {}", member.name, member.covers, member.bounds);
            }
            StoreBounds::SUITE
                .iter()
                .map(|member| (member.name, member.bounds))
                .collect()
        }
    };
    for (name, bounds) in members {
        for &judge in args.model.judge.judges() {
            let model = store_model(&args.model, bounds, judge)?;
            println!("\n=== run {name}, {} judge ===", judge_name(judge));
            describe_store(&model);
            run_one(model, args, options, totals);
            if totals.violated {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The cores to check. A broken variant belongs to one core: with `--core both` it picks the
/// quorum's variant of that name if there is one (as `check --variant NAME` always did), else
/// the store lease's.
fn checked_core(args: &ModelArgs) -> Core {
    if args.core != Core::Both || args.variant == "correct" {
        return args.core;
    }
    if args.variant.parse::<Variant>().is_ok() {
        Core::Quorum
    } else {
        Core::Store
    }
}

fn run_check(args: CheckArgs) -> ExitCode {
    let options = CheckOptions {
        threads: args.threads.unwrap_or(CheckOptions::default().threads),
        strategy: args.strategy,
        stop_when: StopWhen::AnyViolation,
        progress_interval: Duration::from_secs(args.progress_seconds.max(1)),
    };
    let core = checked_core(&args.model);
    let mut totals = Totals::default();
    let mut outcome = Ok(());
    if matches!(core, Core::Quorum | Core::Both) {
        outcome = run_quorum(&args, &options, &mut totals);
    }
    if outcome.is_ok() && !totals.violated && matches!(core, Core::Store | Core::Both) {
        outcome = run_store(&args, &options, &mut totals);
    }
    if let Err(error) = outcome {
        eprintln!("error: {error}");
        return ExitCode::from(2);
    }
    let unreached = totals.unreached();
    let passed = !totals.violated && unreached.is_empty();
    println!(
        "\nresult: {} ({} run(s), {} unique states in all, {:.1} s{}{})",
        if passed { "PASS" } else { "FAIL" },
        totals.runs,
        totals.unique_states,
        totals.elapsed.as_secs_f64(),
        if totals.violated {
            "; an Always property is violated"
        } else {
            ""
        },
        if !totals.violated && !unreached.is_empty() {
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
    // stateright panics if it cannot bind; find out first and say why.
    if let Err(error) = std::net::TcpListener::bind(&args.addr) {
        eprintln!("error: cannot serve on {}: {error}", args.addr);
        return ExitCode::from(2);
    }
    let served = match args.model.core {
        Core::Store => explore_store(&args),
        Core::Quorum | Core::Both => explore_quorum(&args),
    };
    match served {
        Ok(states) => {
            // `serve` returns only if the web server stops.
            println!("Explorer stopped after {states} states");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

fn explore_quorum(args: &ExploreArgs) -> Result<usize, String> {
    // One model to explore: the first order asked for (ranked for `both`).
    let order = args.model.elections.orders()[0];
    let bounds = bounds(&args.model).unwrap_or(SearchBounds::DEFAULT);
    let model = quorum_model(&args.model, bounds, order)?;
    describe(&model);
    println!("Explorer: http://{}/ (Ctrl-C to stop)", args.addr);
    Ok(model
        .checker()
        .serve(args.addr.as_str())
        .unique_state_count())
}

fn explore_store(args: &ExploreArgs) -> Result<usize, String> {
    // One model to explore: the first judge asked for (contenders for `both`).
    let judge = args.model.judge.judges()[0];
    let bounds = store_bounds(&args.model).unwrap_or(StoreBounds::DEFAULT);
    let model = store_model(&args.model, bounds, judge)?;
    describe_store(&model);
    println!("Explorer: http://{}/ (Ctrl-C to stop)", args.addr);
    Ok(model
        .checker()
        .serve(args.addr.as_str())
        .unique_state_count())
}
