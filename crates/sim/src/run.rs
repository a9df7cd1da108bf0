//! One simulated run: a cluster on turmoil hosts, a schedule of faults, the oracle after
//! every step. A run is a pure function of its [`Setup`], and a setup of a seed.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use tenure_core::{
    Config, ConfigParams, ExpiryJudge, Record, ReferenceStore, StoreLeaseConfig, StoreLeaseParams,
    StoreVariant, Variant, PPM,
};
use tenure_driver::Command;
use tokio::sync::oneshot;
use turmoil::Sim;

use crate::bounds::RecoveryBounds;
use crate::host::{node_id, software};
use crate::oracle::{name, Check, Failover, Oracle, Violation};
use crate::rng::Rng;
use crate::schedule::{Due, Fault, Schedule, Target, START};
use crate::store::{store_node_software, store_software, StoreState, STORE_HOST};
use crate::time::{DriftClock, SimTime};
use crate::trace::Trace;
use crate::world::{HostState, Network, Shared, World};

/// The simulated length of a campaign run.
pub const DEFAULT_RUN_MS: u32 = 60_000;

/// How the simulated network and scheduler move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// turmoil's step. Hosts run their timers at the exact instant within a step, but
    /// datagrams move only at step boundaries, and every step costs every host a turn of its
    /// tokio runtime whether it has work or not: the step sets the speed. 20 ms keeps round
    /// trips (40–120 ms) well below the protocol's timers (250 ms heartbeats, 2 s leases) and
    /// runs about twenty times faster than turmoil's default 1 ms (docs/simulation.md has the
    /// measurements).
    pub tick: Duration,
    /// The network's usual latency ceiling; latency is drawn below it, exponentially, so that
    /// most datagrams take one step and some two or three, and arrive out of order.
    pub max_latency: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            tick: Duration::from_millis(20),
            max_latency: Duration::from_millis(40),
        }
    }
}

/// Which election core the nodes of a run drive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Core {
    /// The quorum among the nodes (`tenure_core::Node`); `Setup::variant` selects its variant.
    #[default]
    Quorum,
    /// A store lease (`tenure_core::StoreLease`) against a simulated store that judges expiry
    /// as `judge` says (protocol: Store leases), with the core's `variant`.
    Store {
        judge: ExpiryJudge,
        variant: StoreVariant,
    },
}

impl Core {
    /// The store-lease core with `judge` and `variant`.
    pub fn store(judge: ExpiryJudge, variant: StoreVariant) -> Core {
        Core::Store { judge, variant }
    }
}

/// The command-line name of a judge of expiry (`--judge`).
pub fn judge_name(judge: ExpiryJudge) -> &'static str {
    match judge {
        ExpiryJudge::Contenders => "contenders",
        ExpiryJudge::Store => "store",
    }
}

/// Everything a run depends on.
#[derive(Clone, Debug, PartialEq)]
pub struct Setup {
    pub seed: u64,
    /// The quorum core's variant; `Variant::Correct` in store runs, whose variant is in `core`.
    pub variant: Variant,
    pub core: Core,
    pub schedule: Schedule,
    /// ρ of the configuration, which also bounds every simulated clock's rate.
    pub max_drift: f64,
    pub timing: Timing,
    /// Keep the trace as text (for reports; slower).
    pub keep_trace: bool,
    /// Whether `schedule` was given rather than drawn from the seed (then the reproduce
    /// command must name it).
    pub custom_schedule: bool,
    /// Whether `max_drift` was given rather than drawn from the seed (likewise).
    pub custom_max_drift: bool,
}

/// What came of a run.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub seed: u64,
    pub nodes: u8,
    pub variant: Variant,
    /// The first broken invariant; the run stopped there.
    pub violation: Option<Violation>,
    pub failovers: Vec<Failover>,
    /// How many children were started: one per acting interval.
    pub children_started: u64,
    /// Global time simulated.
    pub simulated: Duration,
    /// The hash of the whole trace: equal for equal runs.
    pub trace_hash: u64,
    /// The trace as text, if the setup asked for it.
    pub trace: Vec<String>,
    /// In a store run, the store's record at the end of the run.
    pub store_record: Option<Record>,
}

impl Setup {
    /// The setup of `seed`: ρ, every clock and the schedule are drawn from it.
    pub fn from_seed(seed: u64, nodes: u8, variant: Variant, end_ms: u32) -> Setup {
        let mut rng = Rng::new(seed);
        let schedule = Schedule::random(&mut rng.fork(1), nodes, end_ms);
        // Mostly the default 1 %, often the maximum: wide drift is where leases break first,
        // and the broken drift compensation shows within a round trip only when ρ is large.
        let max_drift = [0.01, 0.05, 0.1][rng.fork(2).weighted(&[2, 1, 1])];
        Setup {
            seed,
            variant,
            core: Core::Quorum,
            schedule,
            max_drift,
            timing: Timing::default(),
            keep_trace: false,
            custom_schedule: false,
            custom_max_drift: false,
        }
    }

    /// The setup of a store run of `seed`: `nodes` nodes (two is the usual deployment) and a
    /// store that judges expiry as `judge` says, with a schedule of the faults that mean
    /// something there ([`Schedule::random_store`]). ρ is drawn as for a quorum run.
    pub fn store_from_seed(
        seed: u64,
        nodes: u8,
        judge: ExpiryJudge,
        variant: StoreVariant,
        end_ms: u32,
    ) -> Setup {
        let mut setup = Setup::from_seed(seed, nodes, Variant::Correct, end_ms);
        setup.schedule = Schedule::random_store(&mut Rng::new(seed).fork(1), nodes, end_ms);
        setup.core = Core::store(judge, variant);
        setup
    }

    /// The store-lease configuration of a store run: the quorum's lease, stop margin and ρ,
    /// with the store lease's default intervals (L/8).
    pub fn store_config(&self) -> Option<StoreLeaseConfig> {
        let Core::Store { judge, variant } = self.core else {
            return None;
        };
        let config = self.config();
        let params = StoreLeaseParams {
            max_drift_ppm: config.max_drift_ppm(),
            variant,
            ..StoreLeaseParams::for_lease(config.lease_duration(), config.stop_margin(), judge)
        };
        Some(StoreLeaseConfig::new(params).expect("the defaults with ρ ≤ 10 % are valid"))
    }

    /// This setup with ρ = `max_drift` instead of the drawn one (every other draw of the seed
    /// stays as it was).
    pub fn with_max_drift(mut self, max_drift: f64) -> Setup {
        self.max_drift = max_drift;
        self.custom_max_drift = true;
        self
    }

    /// This setup with `schedule` instead of the drawn one.
    pub fn with_schedule(mut self, schedule: Schedule) -> Setup {
        self.schedule = schedule;
        self.custom_schedule = true;
        self
    }

    /// The cluster's configuration: the defaults, with ρ and the variant of this setup.
    pub fn config(&self) -> Config {
        Config::new(ConfigParams {
            members: (0..usize::from(self.schedule.nodes)).map(node_id).collect(),
            max_drift: self.max_drift,
            variant: self.variant,
            ..ConfigParams::default()
        })
        .expect("the defaults with ρ ≤ 10 % are valid")
    }

    /// The time bounds of this setup: the quorum's, or the store lease's.
    pub fn bounds(&self) -> RecoveryBounds {
        match self.store_config() {
            None => RecoveryBounds::new(&self.config(), &self.timing),
            Some(config) => RecoveryBounds::for_store(&config, &self.timing),
        }
    }

    /// The one command that reproduces this run.
    pub fn reproduce_command(&self) -> String {
        let mut command = format!(
            "cargo run --release -p tenure-sim -- --reproduce {} --nodes {}",
            self.seed, self.schedule.nodes
        );
        if let Core::Store { judge, variant } = self.core {
            command += &format!(" --core store --judge {}", judge_name(judge));
            if variant != StoreVariant::Correct {
                command += &format!(" --variant {variant}");
            }
        }
        if self.variant != Variant::Correct {
            command += &format!(" --variant {}", self.variant);
        }
        if self.custom_schedule {
            command += &format!(" --schedule '{}'", self.schedule);
        } else if self.schedule.end_ms != DEFAULT_RUN_MS {
            command += &format!(" --duration-ms {}", self.schedule.end_ms);
        }
        if self.timing != Timing::default() {
            command += &format!(" --tick-ms {}", self.timing.tick.as_millis());
        }
        if self.custom_max_drift {
            command += &format!(" --max-drift {}", self.max_drift);
        }
        command
    }
}

impl Outcome {
    /// A report of a failed run: the violation, the schedule, the command that reproduces it
    /// and the end of the trace.
    pub fn report(&self, setup: &Setup) -> String {
        let mut report = String::new();
        if let Some(violation) = &self.violation {
            report += &format!("seed {}: {violation}\n", self.seed);
        }
        report += &format!("schedule: {}\n", setup.schedule);
        report += &format!("reproduce: {}\n", setup.reproduce_command());
        let skip = self.trace.len().saturating_sub(200);
        if !self.trace.is_empty() {
            report += &format!(
                "trace (last {} of {} lines):\n",
                self.trace.len() - skip,
                self.trace.len()
            );
            for line in &self.trace[skip..] {
                report += line;
                report.push('\n');
            }
        }
        report
    }
}

/// Runs `setup` to its end or to the first violation. A panic in a host or in the oracle is
/// reported as a [`Check::HostFailure`], never propagated.
pub fn run(setup: &Setup) -> Outcome {
    match catch_unwind(AssertUnwindSafe(|| Runner::new(setup).run())) {
        Ok(outcome) => outcome,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic without a message");
            Outcome {
                seed: setup.seed,
                nodes: setup.schedule.nodes,
                variant: setup.variant,
                violation: Some(Violation {
                    check: Check::HostFailure,
                    at: SimTime::default(),
                    detail: format!("panic: {message}"),
                }),
                failovers: Vec::new(),
                children_started: 0,
                simulated: Duration::ZERO,
                trace_hash: 0,
                trace: Vec::new(),
                store_record: None,
            }
        }
    }
}

/// Draws the clocks of `nodes` nodes with ρ = `drift` ppm. Half the seeds pin every clock at
/// exactly 1 − ρ or 1 + ρ (a random side per node, both sides taken): the extremes are where a
/// lease computed without the drift factor outlasts the promises under it. The other half draw
/// any rate within ±ρ.
fn draw_clocks(clock_rng: &mut Rng, nodes: usize, drift: u64) -> Vec<DriftClock> {
    let pinned = clock_rng.chance(1, 2);
    let mut sides: Vec<bool> = (0..nodes).map(|_| clock_rng.chance(1, 2)).collect();
    if nodes > 1 && sides.iter().all(|fast| *fast == sides[0]) {
        sides[0] = !sides[0];
    }
    (0..nodes)
        .map(|node| {
            // An arbitrary boot offset of up to about two weeks.
            let offset = clock_rng.range(0, 1 << 50);
            let rate = clock_rng.range(PPM - drift, PPM + drift);
            let rate = match (pinned, sides[node]) {
                (false, _) => rate,
                (true, true) => PPM + drift,
                (true, false) => PPM - drift,
            };
            DriftClock::new(offset, rate)
        })
        .collect()
}

/// A store run's hosts: the store, whose clock runs at a rate drawn within ±ρ (pinned at
/// either extreme on half the seeds, where a store that judges expiry is closest to cutting a
/// tenure short), then the nodes; and an oracle without the quorum's own checks.
fn add_store_hosts(
    sim: &mut Sim<'static>,
    world: &Shared,
    config: StoreLeaseConfig,
    rng: &mut Rng,
    drift: u64,
) {
    let rate = match rng.range(0, 3) {
        0 => PPM - drift,
        1 => PPM + drift,
        _ => rng.range(PPM - drift, PPM + drift),
    };
    let clock = DriftClock::new(rng.range(0, 1 << 50), rate);
    let nodes = {
        let mut world = world.borrow_mut();
        world.oracle.for_store();
        world.store = Some(StoreState {
            config,
            reference: ReferenceStore::new(config.judge(), config.lease_duration()),
            clock,
            boots: 0,
            booted_at: SimTime::default(),
        });
        world.hosts.len()
    };
    let store_world = world.clone();
    sim.host(STORE_HOST, move || store_software(store_world.clone()));
    for node in 0..nodes {
        let world = world.clone();
        sim.host(name(node), move || store_node_software(world.clone(), node));
    }
}

/// Drives one run: applies the schedule at step boundaries, steps turmoil, checks the oracle.
struct Runner<'a> {
    setup: &'a Setup,
    sim: Sim<'static>,
    world: Shared,
    nodes: usize,
    timeline: Vec<Due>,
    next: usize,
    /// Per fault: the nodes its start resolved (its end applies to the same ones).
    resolved: Vec<Vec<usize>>,
    /// Per fault: whether it is in force (for the network-wide levels).
    active: Vec<bool>,
    /// Per host: crashed by the runner and not restarted since.
    crashed: Vec<bool>,
    bounds: RecoveryBounds,
    /// The highest latency ceiling in force so far.
    latency_high_water: Duration,
    /// Per host: how long it stays down after reaching an armed crash point.
    crash_point_down: Vec<Duration>,
    /// Restarts due after crash points, (when, node), in no particular order.
    restarts: Vec<(SimTime, usize)>,
}

impl<'a> Runner<'a> {
    fn new(setup: &'a Setup) -> Runner<'a> {
        let config = Arc::new(setup.config());
        let nodes = usize::from(setup.schedule.nodes);
        let mut rng = Rng::new(setup.seed);
        // The same forks as `Setup::from_seed` (1: schedule, 2: ρ), so that a custom schedule
        // leaves every other draw of the seed as it was.
        let _ = (rng.fork(1), rng.fork(2));
        let mut world_rng = rng.fork(3);
        let oracle_rng = rng.fork(4);
        let mut clock_rng = rng.fork(5);
        let turmoil_seed = rng.fork(6).next_u64();

        let drift = u64::from(config.max_drift_ppm());
        let clocks = draw_clocks(&mut clock_rng, nodes, drift);
        // A child exits within the stop margin as the fastest clock measures it, so that one
        // killed at its deadline is gone before its lease ends (protocol: The deadline guard).
        let stop_margin = config.stop_margin().mul_ratio(PPM, PPM + drift);
        let max_exit_delay = Duration::from(stop_margin).saturating_sub(Duration::from_nanos(2));
        let world = Rc::new(RefCell::new(World {
            config,
            hosts: (0..nodes).map(|_| HostState::default()).collect(),
            clocks,
            network: Network::default(),
            rng: world_rng.fork(0),
            oracle: Oracle::new(nodes, max_exit_delay, oracle_rng),
            trace: Trace::new(setup.keep_trace),
            held: std::collections::VecDeque::new(),
            health_checks: setup.schedule.checks_health(),
            hung: Vec::new(),
            outage: false,
            store: None,
        }));

        let mut sim = turmoil::Builder::new()
            .rng_seed(turmoil_seed)
            .epoch(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
            .tick_duration(setup.timing.tick)
            .simulation_duration(Duration::from_millis(u64::from(setup.schedule.end_ms)) * 2)
            .min_message_latency(Duration::ZERO)
            .max_message_latency(setup.timing.max_latency)
            // A fresh order of hosts every step, drawn from the seed: more interleavings.
            .enable_random_order()
            .build();
        match setup.store_config() {
            None => {
                for node in 0..nodes {
                    let world = world.clone();
                    sim.host(name(node), move || software(world.clone(), node));
                }
            }
            Some(config) => add_store_hosts(&mut sim, &world, config, &mut rng.fork(7), drift),
        }
        let timeline = setup.schedule.timeline();
        let faults = setup.schedule.faults.len();
        Runner {
            setup,
            sim,
            world,
            nodes,
            timeline,
            next: 0,
            resolved: vec![Vec::new(); faults],
            active: vec![false; faults],
            crashed: vec![false; nodes],
            bounds: setup.bounds(),
            latency_high_water: setup.timing.max_latency,
            crash_point_down: vec![Duration::ZERO; nodes],
            restarts: Vec::new(),
        }
    }

    fn run(mut self) -> Outcome {
        let end = SimTime::from_millis(u64::from(self.setup.schedule.end_ms));
        let heal = SimTime::from_millis(u64::from(self.setup.schedule.heal_ms));
        let mut healed = false;
        loop {
            let now = self.now();
            while let Some(due) = self.timeline.get(self.next).copied() {
                if SimTime::from_millis(u64::from(due.at_ms)) > now {
                    break;
                }
                self.next += 1;
                self.apply(due, now);
            }
            if !healed && now >= heal {
                healed = true;
                self.heal(now);
            }
            self.restart_after_crash_points(now);
            self.release(now);
            if now >= end {
                break;
            }
            if let Err(error) = self.sim.step() {
                let at = self.now();
                self.world
                    .borrow_mut()
                    .oracle
                    .report(Check::HostFailure, at, error.to_string());
                break;
            }
            let now = self.now();
            self.crash_at_crash_points(now);
            let mut world = self.world.borrow_mut();
            let world = &mut *world;
            world.oracle.check(now, &world.clocks);
            if world.oracle.violation().is_some() {
                break;
            }
        }
        self.finish()
    }

    fn finish(self) -> Outcome {
        let mut world = self.world.borrow_mut();
        let trace = std::mem::replace(&mut world.trace, Trace::new(false));
        let now = self.now();
        Outcome {
            store_record: world.store.as_ref().map(|store| store.record(now)),
            seed: self.setup.seed,
            nodes: self.setup.schedule.nodes,
            variant: self.setup.variant,
            violation: world.oracle.violation().cloned(),
            failovers: world.oracle.failovers().to_vec(),
            children_started: world.oracle.children_started(),
            simulated: self.sim.elapsed(),
            trace_hash: trace.hash(),
            trace: trace.into_lines(),
        }
    }

    fn now(&self) -> SimTime {
        SimTime::from_duration(self.sim.elapsed())
    }

    // ----- Faults ---------------------------------------------------------------------------

    fn apply(&mut self, due: Due, now: SimTime) {
        let fault = self.setup.schedule.faults[due.fault].fault;
        if due.phase == START {
            let mut world = self.world.borrow_mut();
            let world = &mut *world;
            world.oracle.fault(Some(fault.kind()), now, &world.clocks);
            world
                .trace
                .world(now, &format!("fault {fault} (#{})", due.fault));
        }
        match fault {
            Fault::Crash { target, .. } => match due.phase {
                START => {
                    let node = self.resolve(due.fault, &[target], now)[0];
                    self.crash(node, now);
                }
                _ => self.restart_resolved(due.fault, now),
            },
            Fault::Isolate { target, .. } => {
                let node = self.resolve(due.fault, &[target], now)[0];
                self.isolate(node, due.phase == START);
            }
            Fault::StoreRestart { .. } => self.restart_store(due.phase == START, now),
            Fault::Split { mask, .. } => {
                let inside = |node: usize| mask & (1 << node) != 0;
                for a in (0..self.nodes).filter(|node| inside(*node)) {
                    for b in (0..self.nodes).filter(|node| !inside(*node)) {
                        self.link(a, b, due.phase == START);
                    }
                }
            }
            Fault::Minority { with_leader, .. } => {
                let size = (self.nodes / 2).max(1);
                let targets: Vec<Target> = if with_leader {
                    std::iter::once(Target::Leader)
                        .chain((0..size - 1).map(|index| Target::Follower(index as u8)))
                        .collect()
                } else {
                    (0..size)
                        .map(|index| Target::Follower(index as u8))
                        .collect()
                };
                let minority = self.resolve(due.fault, &targets, now);
                for a in minority.iter().copied() {
                    for b in (0..self.nodes).filter(|node| !minority.contains(node)) {
                        self.link(a, b, due.phase == START);
                    }
                }
            }
            Fault::OneWay { from, to, .. } => {
                let pair = self.resolve(due.fault, &[from, to], now);
                self.link_one_way(pair[0], pair[1], due.phase == START);
            }
            Fault::Asymmetric { target, .. } => {
                let node = self.resolve(due.fault, &[target], now)[0];
                for other in (0..self.nodes).filter(|other| *other != node) {
                    self.link_one_way(other, node, due.phase == START);
                }
            }
            Fault::Flapping { a, b, .. } => {
                let pair = self.resolve(due.fault, &[a, b], now);
                // Even phases cut the link, odd ones repair it.
                self.link(pair[0], pair[1], due.phase.0 % 2 == 0);
            }
            Fault::Loss { .. } | Fault::Latency { .. } | Fault::Duplication { .. } => {
                self.active[due.fault] = due.phase == START;
                self.set_network();
            }
            Fault::Pause { target, ms } => {
                let node = self.resolve(due.fault, &[target], now)[0];
                // A pause ends by the heal at the latest, so that the liveness phase starts
                // with every process running.
                let heal = SimTime::from_millis(u64::from(self.setup.schedule.heal_ms));
                let until = now.after(Duration::from_millis(u64::from(ms))).min(heal);
                if self.is_up(node) {
                    self.world.borrow_mut().hosts[node].paused_until = Some(until);
                }
            }
            Fault::Drift { slow } => {
                let slow = self.resolve(due.fault, &[slow], now)[0];
                let mut world = self.world.borrow_mut();
                let drift = u64::from(world.config.max_drift_ppm());
                for (node, clock) in world.clocks.iter_mut().enumerate() {
                    let rate = if node == slow {
                        PPM - drift
                    } else {
                        PPM + drift
                    };
                    clock.set_rate(now, rate);
                }
            }
            Fault::Resign { target } => {
                let node = self.resolve(due.fault, &[target], now)[0];
                let (reply, _) = oneshot::channel();
                self.command(
                    node,
                    now,
                    Command::Resign {
                        successor: None,
                        reply,
                    },
                );
            }
            Fault::Shutdown { target, .. } => match due.phase {
                START => {
                    let node = self.resolve(due.fault, &[target], now)[0];
                    self.command(node, now, Command::Shutdown);
                }
                _ => self.restart_resolved(due.fault, now),
            },
            Fault::RollingRestart { .. } => {
                let node = usize::from(due.phase.0 / 2) % self.nodes;
                if due.phase.0 % 2 == 0 {
                    if due.phase != START {
                        let mut world = self.world.borrow_mut();
                        let world = &mut *world;
                        world.oracle.fault(Some(fault.kind()), now, &world.clocks);
                    }
                    self.command(node, now, Command::Shutdown);
                } else {
                    self.restart(node, now);
                }
            }
            Fault::ClusterRestart { .. } => {
                for node in 0..self.nodes {
                    if due.phase == START {
                        self.crash(node, now);
                    } else {
                        self.restart(node, now);
                    }
                }
            }
            Fault::MuteHeartbeats { target, .. } => {
                self.resolve(due.fault, &[target], now);
                self.active[due.fault] = due.phase == START;
                self.set_network();
            }
            Fault::Hold { from, to, .. } => {
                match to {
                    Some(to) => self.resolve(due.fault, &[from, to], now),
                    None => self.resolve(due.fault, &[from], now),
                };
                self.active[due.fault] = due.phase == START;
                self.set_network();
            }
            Fault::Hang { target } => {
                let node = self.resolve(due.fault, &[target], now)[0];
                let mut world = self.world.borrow_mut();
                let world = &mut *world;
                if let Some(child) = world.oracle.running_child(node, now, &world.clocks) {
                    world.hung.push(child);
                    world
                        .trace
                        .world(now, &format!("{}'s child hangs", name(node)));
                }
            }
            Fault::Outage { .. } => {
                self.active[due.fault] = due.phase == START;
                let outage = self
                    .active
                    .iter()
                    .zip(&self.setup.schedule.faults)
                    .any(|(active, timed)| *active && matches!(timed.fault, Fault::Outage { .. }));
                self.world.borrow_mut().outage = outage;
            }
            Fault::CrashPoint {
                target,
                point,
                down_ms,
            } => {
                let node = self.resolve(due.fault, &[target], now)[0];
                self.crash_point_down[node] = Duration::from_millis(u64::from(down_ms));
                let mut world = self.world.borrow_mut();
                world.hosts[node].crash_point = Some(point);
                world.hosts[node].sends_before_crash = None;
            }
        }
    }

    /// Crashes every host that reached its armed crash point during the step, and schedules
    /// its restart.
    fn crash_at_crash_points(&mut self, now: SimTime) {
        for node in 0..self.nodes {
            let requested =
                std::mem::take(&mut self.world.borrow_mut().hosts[node].crash_requested);
            if requested {
                self.crash(node, now);
                self.restarts
                    .push((now.after(self.crash_point_down[node]), node));
            }
        }
    }

    fn restart_after_crash_points(&mut self, now: SimTime) {
        let due: Vec<usize> = self
            .restarts
            .iter()
            .filter(|(at, _)| *at <= now)
            .map(|(_, node)| *node)
            .collect();
        self.restarts.retain(|(at, _)| *at > now);
        for node in due {
            self.restart(node, now);
        }
    }

    /// The adversary releases held datagrams to receivers that are up, into a later term: a
    /// vote, ack or handover message once its receiver has moved to a later term than the
    /// datagram's. A held heartbeat waits for its sender to send the same `seq` in a later
    /// term, and is delivered in its place (`SimTransport::substitute`). Whatever is still held
    /// after `HOLD_MAX_MS` is released anyway. The adversary reads terms and sequence numbers
    /// off the wire, which authenticates but does not encrypt; the receiver's transport
    /// applies the real wire's replay window.
    fn release(&mut self, now: SimTime) {
        let mut world = self.world.borrow_mut();
        let world = &mut *world;
        if world.held.is_empty() {
            return;
        }
        let mut kept = std::collections::VecDeque::with_capacity(world.held.len());
        while let Some(held) = world.held.pop_front() {
            let term = world.oracle.term(held.to);
            let later_term = term > held.term && held.heartbeat_seq.is_none();
            let due = (now >= held.earliest && later_term) || now >= held.latest;
            if !due {
                kept.push_back(held);
                continue;
            }
            if self.crashed[held.to] {
                continue;
            }
            world.trace.world(
                now,
                &format!(
                    "releases a datagram from {} to {} of term {}",
                    name(held.from),
                    name(held.to),
                    held.term
                ),
            );
            let host = &mut world.hosts[held.to];
            host.inbox.push_back(held.bytes);
            host.inbox_ready.notify_one();
        }
        world.held = kept;
    }

    /// Every fault ends: links mend, the network calms, every host runs again. From here on
    /// a leader must act within the liveness bound.
    fn heal(&mut self, now: SimTime) {
        for a in 0..self.nodes {
            for b in a + 1..self.nodes {
                self.sim.repair(name(a), name(b));
            }
            if self.setup.core != Core::Quorum {
                self.sim.repair(name(a), STORE_HOST);
            }
        }
        self.restart_store(false, now);
        self.active.iter_mut().for_each(|active| *active = false);
        {
            let mut world = self.world.borrow_mut();
            world.network.epoch += 1;
            // The adversary lets go: held datagrams are lost, armed crash points disarmed, hung
            // daemons and a shared database work again.
            world.held.clear();
            world.hung.clear();
            world.outage = false;
            for host in &mut world.hosts {
                host.crash_point = None;
                host.sends_before_crash = None;
            }
        }
        self.restarts.clear();
        self.set_network();
        for node in 0..self.nodes {
            self.restart(node, now);
        }
        let mut world = self.world.borrow_mut();
        let world = &mut *world;
        world.trace.world(now, "heal");
        world.oracle.fault(None, now, &world.clocks);
        // Datagrams sent under a latency spike may still be on their way, and a stale
        // heartbeat renews a promise; the network is calm once the last of them has arrived.
        let calm = now.after(self.latency_high_water);
        world.oracle.arm_liveness(calm, self.bounds.liveness);
    }

    /// The nodes `targets` name now; remembered per fault, so that its later phases apply to
    /// the same nodes.
    fn resolve(&mut self, fault: usize, targets: &[Target], now: SimTime) -> Vec<usize> {
        if self.resolved[fault].is_empty() {
            let leader = {
                let world = self.world.borrow();
                world.oracle.leader(now, &world.clocks).unwrap_or(0)
            };
            let nodes = self.nodes;
            self.resolved[fault] = targets
                .iter()
                .map(|target| match *target {
                    Target::Leader => leader,
                    Target::Node(node) => usize::from(node) % nodes,
                    Target::Follower(index) => (0..nodes)
                        .filter(|node| *node != leader)
                        .nth(usize::from(index) % (nodes - 1).max(1))
                        .unwrap_or(leader),
                })
                .collect();
        }
        self.resolved[fault].clone()
    }

    /// Cuts (or mends) every link of `node`: to the other nodes and, in a store run, to the
    /// store, its only link that carries anything there.
    fn isolate(&mut self, node: usize, cut: bool) {
        for other in (0..self.nodes).filter(|other| *other != node) {
            self.link(node, other, cut);
        }
        if self.setup.core != Core::Quorum {
            if cut {
                self.sim.partition(name(node), STORE_HOST);
            } else {
                self.sim.repair(name(node), STORE_HOST);
            }
        }
    }

    /// The store restart fault: the store's host dies (`down`) or starts again. Its record is
    /// kept in the world; what was in flight to or from it is lost with the host.
    fn restart_store(&mut self, down: bool, now: SimTime) {
        if self.setup.core == Core::Quorum {
            return;
        }
        let running = self.sim.is_host_running(STORE_HOST);
        let what = match (down, running) {
            (true, true) => {
                self.sim.crash(STORE_HOST);
                "store crashes"
            }
            (false, false) => {
                self.sim.bounce(STORE_HOST);
                "store restarts"
            }
            _ => return,
        };
        self.world.borrow_mut().trace.world(now, what);
    }

    fn link(&mut self, a: usize, b: usize, cut: bool) {
        if a == b {
            return;
        }
        if cut {
            self.sim.partition(name(a), name(b));
        } else {
            self.sim.repair(name(a), name(b));
        }
    }

    fn link_one_way(&mut self, from: usize, to: usize, cut: bool) {
        if from == to {
            return;
        }
        if cut {
            self.sim.partition_oneway(name(from), name(to));
        } else {
            self.sim.repair_oneway(name(from), name(to));
        }
    }

    /// Loss, duplication and the latency ceiling: the strongest of the faults in force.
    fn set_network(&mut self) {
        let epoch = self.world.borrow().network.epoch;
        let mut network = Network {
            epoch,
            ..Network::default()
        };
        for (fault, active) in self.active.iter().enumerate() {
            if let (true, Fault::Hold { permille, .. }) =
                (*active, self.setup.schedule.faults[fault].fault)
            {
                let resolved = &self.resolved[fault];
                let from = resolved[0];
                let permille = permille.min(1_000);
                match resolved.get(1) {
                    Some(to) => network.holds.push((from, *to, permille)),
                    None => network.holds.extend(
                        (0..self.nodes)
                            .filter(|to| *to != from)
                            .map(|to| (from, to, permille)),
                    ),
                }
            }
        }
        let mut max_latency = self.setup.timing.max_latency;
        for (fault, (timed, _)) in self
            .setup
            .schedule
            .faults
            .iter()
            .zip(&self.active)
            .enumerate()
            .filter(|(_, (_, active))| **active)
        {
            match timed.fault {
                Fault::Loss { permille, .. } => {
                    network.loss_permille = network.loss_permille.max(permille.min(1_000));
                }
                Fault::Duplication {
                    permille,
                    delay_max_ms,
                    ..
                } => {
                    network.duplicate_permille =
                        network.duplicate_permille.max(permille.min(1_000));
                    network.duplicate_delay_max_ms =
                        network.duplicate_delay_max_ms.max(delay_max_ms);
                }
                Fault::Latency { max_ms, .. } => {
                    max_latency = max_latency.max(Duration::from_millis(u64::from(max_ms)));
                }
                Fault::MuteHeartbeats { .. } => {
                    network.muted_heartbeats.push(self.resolved[fault][0]);
                }
                _ => {}
            }
        }
        self.world.borrow_mut().network = network;
        self.sim.set_max_message_latency(max_latency);
        self.latency_high_water = self.latency_high_water.max(max_latency);
    }

    fn is_up(&mut self, node: usize) -> bool {
        !self.crashed[node] && self.sim.is_host_running(name(node))
    }

    fn crash(&mut self, node: usize, now: SimTime) {
        if self.crashed[node] {
            return;
        }
        self.sim.crash(name(node));
        self.crashed[node] = true;
        let mut world = self.world.borrow_mut();
        world.hosts[node].commands = None;
        world.hosts[node].crash_requested = false;
        world.oracle.stopped_running(node);
        world.trace.world(now, &format!("{} crashes", name(node)));
    }

    fn restart_resolved(&mut self, fault: usize, now: SimTime) {
        for node in self.resolved[fault].clone() {
            self.restart(node, now);
        }
    }

    /// Starts the host's software again if it is not running (crashed, or shut down). A host
    /// still busy shutting down is killed and started afresh.
    fn restart(&mut self, node: usize, now: SimTime) {
        if !self.crashed[node] && self.sim.is_host_running(name(node)) {
            let shutting_down = self.world.borrow().hosts[node].commands.is_none();
            if !shutting_down {
                return;
            }
        }
        self.sim.bounce(name(node));
        self.crashed[node] = false;
        self.world
            .borrow_mut()
            .trace
            .world(now, &format!("{} restarts", name(node)));
    }

    /// Sends `command` to a running, unpaused host; a paused process could not take it.
    fn command(&mut self, node: usize, now: SimTime, command: Command) {
        if !self.is_up(node) {
            return;
        }
        let mut world = self.world.borrow_mut();
        if world.paused(node, now).is_some() {
            return;
        }
        let shutdown = matches!(command, Command::Shutdown);
        let Some(sender) = &world.hosts[node].commands else {
            return;
        };
        if sender.try_send(command).is_ok() && shutdown {
            // A host shutting down takes no more commands; `restart` knows it by this.
            world.hosts[node].commands = None;
        }
    }
}
