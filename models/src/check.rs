//! Running a check: spawn stateright's checker on the model, watch it, collect the results.

use std::collections::BTreeSet;
use std::fmt;
use std::hash::Hash;
use std::time::{Duration, Instant};

use stateright::{Checker, Expectation, HasDiscoveries, Model, Path};

use crate::model::{ModelSpec, TenureModel};
use crate::trace;

/// A model that `check` can run: the quorum model ([`TenureModel`]) or the store model
/// ([`crate::StoreModel`]).
pub trait Checkable:
    Model<State: Clone + PartialEq + Hash + Send + Sync + 'static, Action: Clone + PartialEq>
    + Send
    + Sync
    + 'static
{
    /// What the model checks, as its report names it.
    type Spec: Clone + fmt::Debug;

    /// What this model checks.
    fn checked_spec(&self) -> &Self::Spec;

    /// The model with its `Sometimes` properties latched (each reports only the first state
    /// it holds in; see [`TenureModel::latch_sometimes`]).
    fn latched(self) -> Self;

    /// A readable trace of `path`, ending with why the last state violates `violated`.
    fn render(path: &Path<Self::State, Self::Action>, violated: Option<&str>) -> String;
}

impl Checkable for TenureModel {
    type Spec = ModelSpec;

    fn checked_spec(&self) -> &ModelSpec {
        self.spec()
    }

    fn latched(self) -> TenureModel {
        self.latch_sometimes()
    }

    fn render(path: &Path<Self::State, Self::Action>, violated: Option<&str>) -> String {
        trace::render(path, violated)
    }
}

/// How the checker walks the state space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Strategy {
    /// Depth first: keeps only fingerprints of visited states, so memory stays small. The
    /// default.
    Dfs,
    /// Breadth first: finds the shortest trace to each discovery (with one thread), but keeps
    /// whole states in its queue and needs far more memory.
    Bfs,
}

/// When the checker may stop before it has visited every state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopWhen {
    /// At the first violated `Always` (or when all states are visited).
    AnyViolation,
    /// Once this property has a discovery (or when all states are visited).
    Discovered(&'static str),
}

/// How to run a check.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// Checker threads.
    pub threads: usize,
    /// Depth or breadth first.
    pub strategy: Strategy,
    /// When to stop early.
    pub stop_when: StopWhen,
    /// How often to report progress.
    pub progress_interval: Duration,
}

impl Default for CheckOptions {
    fn default() -> CheckOptions {
        CheckOptions {
            threads: std::thread::available_parallelism().map_or(1, |count| count.get()),
            strategy: Strategy::Dfs,
            stop_when: StopWhen::AnyViolation,
            progress_interval: Duration::from_secs(5),
        }
    }
}

/// A snapshot of a running check.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub elapsed: Duration,
    pub unique_states: usize,
    pub total_states: usize,
    pub max_depth: usize,
    pub resident_memory: Option<u64>,
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "checking… {:.0} s: {} unique states ({}/s), {} total, depth {}, memory {}",
            self.elapsed.as_secs_f64(),
            self.unique_states,
            per_second(self.unique_states, self.elapsed),
            self.total_states,
            self.max_depth,
            self.resident_memory
                .map_or_else(|| "unknown".to_owned(), format_bytes)
        )
    }
}

/// The outcome of one property.
pub struct PropertyResult<M: Model = TenureModel> {
    pub name: &'static str,
    pub expectation: Expectation,
    /// For an `Always`, a counterexample; for a `Sometimes`, an example.
    pub discovery: Option<Path<M::State, M::Action>>,
}

impl<M: Model> PropertyResult<M> {
    /// An `Always` without counterexample, or a `Sometimes` with an example.
    pub fn passed(&self) -> bool {
        match self.expectation {
            Expectation::Always | Expectation::Eventually => self.discovery.is_none(),
            Expectation::Sometimes => self.discovery.is_some(),
        }
    }
}

/// Everything a check found.
pub struct CheckReport<M: Checkable = TenureModel> {
    pub spec: M::Spec,
    pub strategy: Strategy,
    pub threads: usize,
    pub unique_states: usize,
    pub total_states: usize,
    pub max_depth: usize,
    pub elapsed: Duration,
    /// Peak resident memory of this process (VmHWM), where the OS tells it.
    pub peak_memory: Option<u64>,
    /// Whether the checker stopped early at a discovery rather than visiting every state.
    pub stopped_early: bool,
    pub results: Vec<PropertyResult<M>>,
}

impl<M: Checkable> CheckReport<M> {
    /// Every `Always` holds and every `Sometimes` was reached.
    pub fn passed(&self) -> bool {
        self.results.iter().all(PropertyResult::passed)
    }

    /// The result for `name`.
    pub fn result(&self, name: &str) -> Option<&PropertyResult<M>> {
        self.results.iter().find(|result| result.name == name)
    }

    /// Whether `name` was discovered: a counterexample to an `Always`, an example of a
    /// `Sometimes`.
    pub fn discovered(&self, name: &str) -> bool {
        self.result(name)
            .is_some_and(|result| result.discovery.is_some())
    }
}

/// Checks `model` and reports progress through `on_progress` every `progress_interval`.
pub fn check<M: Checkable>(
    model: M,
    options: &CheckOptions,
    on_progress: impl FnMut(&Progress),
) -> CheckReport<M> {
    let spec = model.checked_spec().clone();
    let finish_when = match &options.stop_when {
        StopWhen::AnyViolation => HasDiscoveries::AnyFailures,
        StopWhen::Discovered(name) => HasDiscoveries::AnyOf(BTreeSet::from([*name])),
    };
    let builder = model
        .latched()
        .checker()
        .threads(options.threads.max(1))
        .finish_when(finish_when);
    let started = Instant::now();
    match options.strategy {
        Strategy::Dfs => collect(spec, options, builder.spawn_dfs(), started, on_progress),
        Strategy::Bfs => collect(spec, options, builder.spawn_bfs(), started, on_progress),
    }
}

fn collect<M: Checkable>(
    spec: M::Spec,
    options: &CheckOptions,
    checker: impl Checker<M>,
    started: Instant,
    mut on_progress: impl FnMut(&Progress),
) -> CheckReport<M> {
    let mut next_report = started + options.progress_interval;
    while !checker.is_done() {
        std::thread::sleep(Duration::from_millis(50));
        if Instant::now() >= next_report {
            next_report += options.progress_interval;
            on_progress(&Progress {
                elapsed: started.elapsed(),
                unique_states: checker.unique_state_count(),
                total_states: checker.state_count(),
                max_depth: checker.max_depth(),
                resident_memory: memory_status("VmRSS:"),
            });
        }
    }
    let checker = checker.join();
    let elapsed = started.elapsed();
    let mut discoveries = checker.discoveries();
    let results: Vec<PropertyResult<M>> = checker
        .model()
        .properties()
        .into_iter()
        .map(|property| PropertyResult {
            name: property.name,
            expectation: property.expectation,
            discovery: discoveries.remove(property.name),
        })
        .collect();
    let stopped_early = match &options.stop_when {
        StopWhen::AnyViolation => results
            .iter()
            .any(|result| result.expectation == Expectation::Always && !result.passed()),
        StopWhen::Discovered(name) => results
            .iter()
            .any(|result| result.name == *name && result.discovery.is_some()),
    };
    CheckReport {
        spec,
        strategy: options.strategy,
        threads: options.threads.max(1),
        unique_states: checker.unique_state_count(),
        total_states: checker.state_count(),
        max_depth: checker.max_depth(),
        elapsed,
        peak_memory: memory_status("VmHWM:"),
        stopped_early,
        results,
    }
}

/// A line of /proc/self/status in bytes (Linux only).
fn memory_status(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    let kibibytes: u64 = line
        .trim_start_matches(field)
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kibibytes * 1024)
}

fn per_second(count: usize, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    if seconds <= 0.0 {
        return "–".to_owned();
    }
    format!("{:.0}", count as f64 / seconds)
}

/// Bytes as MiB or GiB.
pub fn format_bytes(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    let mib = bytes as f64 / MIB;
    if mib >= 1024.0 {
        format!("{:.2} GiB", mib / 1024.0)
    } else {
        format!("{mib:.0} MiB")
    }
}

/// The summary the `check` command prints, with a trace for every failed property.
impl<M: Checkable> fmt::Display for CheckReport<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "checked: {}",
            if self.stopped_early {
                "stopped at the first violation (not exhaustive)"
            } else {
                "every state within the bounds"
            }
        )?;
        writeln!(f, "unique states:  {}", self.unique_states)?;
        writeln!(f, "total states:   {}", self.total_states)?;
        writeln!(f, "maximum depth:  {}", self.max_depth)?;
        writeln!(
            f,
            "elapsed:        {:.1} s ({} unique states/s, {} threads, {:?})",
            self.elapsed.as_secs_f64(),
            per_second(self.unique_states, self.elapsed),
            self.threads,
            self.strategy
        )?;
        match self.peak_memory {
            Some(peak) => writeln!(
                f,
                "peak memory:    {} ({} bytes per unique state)",
                format_bytes(peak),
                peak / (self.unique_states.max(1) as u64)
            )?,
            None => writeln!(f, "peak memory:    unknown (no /proc/self/status)")?,
        }
        writeln!(f, "properties:")?;
        for result in &self.results {
            let (kind, outcome) = match (&result.expectation, &result.discovery) {
                (Expectation::Sometimes, Some(path)) => {
                    ("sometimes", format!("reached (depth {})", steps(path)))
                }
                (Expectation::Sometimes, None) if self.stopped_early => {
                    ("sometimes", "not reached before the stop".to_owned())
                }
                (Expectation::Sometimes, None) => ("sometimes", "NOT REACHED".to_owned()),
                (_, None) if self.stopped_early => ("always", "not violated".to_owned()),
                (_, None) => ("always", "holds".to_owned()),
                (_, Some(path)) => ("always", format!("VIOLATED (depth {})", steps(path))),
            };
            writeln!(f, "  {kind:<9} {:<22} {outcome}", result.name)?;
        }
        for result in &self.results {
            match (&result.expectation, &result.discovery) {
                (Expectation::Sometimes, None) if !self.stopped_early => writeln!(
                    f,
                    "\n{} was not reached within these bounds: unless another run reaches it, \
                     widen them (see --help), or the other results prove nothing about those \
                     states.",
                    result.name
                )?,
                (Expectation::Always, Some(path)) => {
                    writeln!(f, "\ncounterexample to {}:", result.name)?;
                    write!(f, "{}", M::render(path, Some(result.name)))?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn steps<S: Clone, A: Clone>(path: &Path<S, A>) -> usize {
    path.clone().into_actions().len()
}
