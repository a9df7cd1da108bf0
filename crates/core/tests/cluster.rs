//! A small deterministic in-memory cluster, driven by proptest schedules.
//!
//! The world holds a global clock, every node's real core, a per-node clock rate at −ρ, 0 or
//! +ρ, the messages in flight, crashed nodes with their persisted state, and one isolated node
//! at most. A schedule is a list of [`Step`]s: time steps (which fire every due timer), random
//! delivery, drop, duplication, crash, restart, isolation of a node or of the leader, and
//! graceful resignation. After every single event the world checks `election_safety`,
//! `lease_safety`, `acting_safety` and `fencing_monotonic` (DESIGN: Invariants), plus
//! `term_monotonic` and `single_vote` across restarts from the persisted outputs.
//!
//! The clean core must survive thousands of schedules; `no_promise`,
//! `no_drift_compensation` and `act_past_lease` must be caught and shrunk to a short, readable
//! schedule. (`forget_vote_on_restart` needs two simultaneous candidacies and a request delayed
//! past a whole quarantine, which random schedules rarely produce; the exhaustive model checker
//! in `models/` is the one that catches it.)

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestError, TestRunner};
use tenure_core::{
    Config, ConfigParams, Duration, Envelope, FencingToken, Instant, Node, NodeId, Output,
    PersistentState, RoleKind, Term, Variant, PPM,
};

/// ρ for the harness: the largest the config accepts, so drift bugs show within few steps.
const MAX_DRIFT: f64 = 0.1;
const DRIFT_PPM: u64 = 100_000;
/// Abstract time units: the lease is 1000, so a step of 100 is a tenth of a lease.
const LEASE: u64 = 1_000;
/// Bounds every flush of the network, so a step always ends.
const MAX_DELIVERIES_PER_FLUSH: usize = 200;
/// Bounds the timers one tick may fire (a lease of heartbeats on every node, many times over).
const MAX_TIMER_FIRINGS_PER_TICK: usize = 2_000;

fn cluster_config(nodes: u32, variant: Variant) -> Arc<Config> {
    Arc::new(
        Config::new(ConfigParams {
            members: (0..nodes).map(NodeId).collect(),
            lease_duration: Duration::from_nanos(LEASE),
            heartbeat_interval: Duration::from_nanos(200),
            max_drift: MAX_DRIFT,
            stop_margin: Duration::from_nanos(100),
            election_jitter_max: Duration::from_nanos(100),
            variant,
        })
        .expect("the harness config is valid"),
    )
}

/// Which node a fault hits: a fixed one, or whoever leads at that moment (which makes the
/// interesting faults likely without thousands of cases).
#[derive(Clone, Copy, Debug)]
enum Target {
    Node(u32),
    Leader,
}

/// One step of a schedule.
#[derive(Clone, Debug)]
enum Step {
    /// Optionally deliver everything in flight (until quiet), then advance global time and fire
    /// every due timer. Without the flush, messages stay in flight across time: delay.
    Tick {
        advance: u64,
        flush: bool,
        entropy: u64,
    },
    /// Deliver one message in flight, chosen by index: reordering.
    Deliver(usize),
    /// Lose one message in flight.
    Drop(usize),
    /// Copy one message in flight.
    Duplicate(usize),
    Crash(Target),
    Restart(u32),
    /// Cut a node off: what it sends and what is sent to it is lost until `Heal`.
    Isolate(Target),
    Heal,
    /// The leader hands over; its child stops at once.
    Resign,
}

/// Which invariant broke, and how.
#[derive(Clone, Debug)]
struct Violation {
    property: &'static str,
    detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} violated: {}", self.property, self.detail)
    }
}

struct World {
    config: Arc<Config>,
    /// Global time.
    now: u64,
    nodes: Vec<Option<Node>>,
    persisted: Vec<Option<PersistentState>>,
    /// Clock rate deviation of each node in ppm: −ρ, 0 or +ρ.
    drift_ppm: Vec<i64>,
    /// Local clock offset of each node.
    offsets: Vec<u64>,
    in_flight: Vec<Envelope>,
    isolated: Option<NodeId>,
    /// Ghost state for the properties.
    leaders_by_term: BTreeMap<Term, NodeId>,
    acting_token: Vec<Option<FencingToken>>,
    highest_acted_token: Option<FencingToken>,
    max_term: Vec<Term>,
    votes: BTreeMap<(u32, Term), NodeId>,
}

impl World {
    fn new(config: Arc<Config>, drift: &[i8], offsets: &[u64]) -> World {
        let count = config.members().len();
        let mut world = World {
            config,
            now: 0,
            nodes: vec![None; count],
            persisted: vec![None; count],
            drift_ppm: drift
                .iter()
                .map(|d| i64::from(*d) * DRIFT_PPM as i64)
                .collect(),
            offsets: offsets.to_vec(),
            in_flight: Vec::new(),
            isolated: None,
            leaders_by_term: BTreeMap::new(),
            acting_token: vec![None; count],
            highest_acted_token: None,
            max_term: vec![Term(0); count],
            votes: BTreeMap::new(),
        };
        for index in 0..count {
            let now = world.local(index);
            let node = Node::new(world.config.clone(), NodeId(index as u32), None, now)
                .expect("members boot");
            world.nodes[index] = Some(node);
        }
        world
    }

    /// The local clock of node `index`: offset + now·(1 + drift), exact integer arithmetic.
    fn local(&self, index: usize) -> Instant {
        let rate = (PPM as i64 + self.drift_ppm[index]) as u128;
        let elapsed = u128::from(self.now) * rate / u128::from(PPM);
        Instant::from_nanos(self.offsets[index] + elapsed as u64)
    }

    fn leader_index(&self) -> Option<usize> {
        (0..self.nodes.len()).find(|&index| {
            self.nodes[index]
                .as_ref()
                .is_some_and(|node| node.role() == RoleKind::Leader)
        })
    }

    fn resolve(&self, target: Target) -> Option<usize> {
        match target {
            Target::Node(index) => Some(index as usize % self.nodes.len()),
            Target::Leader => self.leader_index(),
        }
    }

    fn apply(&mut self, step: &Step) -> Result<(), Violation> {
        match *step {
            Step::Tick {
                advance,
                flush,
                entropy,
            } => {
                // Timers fire on time, in global time order, until the tick ends; with `flush`
                // the network delivers everything at once after each firing (a fast LAN),
                // without it the messages wait in flight for the whole tick (delay).
                let end = self.now + advance;
                if flush {
                    self.flush()?;
                }
                for _ in 0..MAX_TIMER_FIRINGS_PER_TICK {
                    let Some(next) = self.next_timer().filter(|next| *next <= end) else {
                        break;
                    };
                    self.now = self.now.max(next);
                    self.check()?;
                    self.fire_timers(entropy)?;
                    if flush {
                        self.flush()?;
                    }
                }
                self.now = end;
                self.check()?;
            }
            Step::Deliver(index) => {
                if !self.in_flight.is_empty() {
                    let envelope = self.in_flight.remove(index % self.in_flight.len());
                    self.deliver(envelope)?;
                }
            }
            Step::Drop(index) => {
                if !self.in_flight.is_empty() {
                    let index = index % self.in_flight.len();
                    self.in_flight.remove(index);
                }
            }
            Step::Duplicate(index) => {
                if !self.in_flight.is_empty() {
                    let envelope = self.in_flight[index % self.in_flight.len()];
                    self.in_flight.push(envelope);
                }
            }
            Step::Crash(target) => {
                if let Some(index) = self.resolve(target) {
                    // The child dies with the node (the deadline guard bounds it otherwise).
                    self.nodes[index] = None;
                    self.check()?;
                }
            }
            Step::Restart(index) => {
                let index = index as usize % self.nodes.len();
                if self.nodes[index].is_none() {
                    let now = self.local(index);
                    let node = Node::new(
                        self.config.clone(),
                        NodeId(index as u32),
                        self.persisted[index],
                        now,
                    )
                    .expect("a member restarts from its own persisted state");
                    self.nodes[index] = Some(node);
                    self.check()?;
                }
            }
            Step::Isolate(target) => {
                self.isolated = self.resolve(target).map(|index| NodeId(index as u32));
            }
            Step::Heal => self.isolated = None,
            Step::Resign => {
                if let Some(index) = self.leader_index() {
                    let now = self.local(index);
                    let node = self.nodes[index].as_mut().expect("the leader is alive");
                    if node.handle_resign(now, None).is_ok() {
                        self.drain(index)?;
                        let node = self.nodes[index].as_mut().expect("the leader is alive");
                        // The harness's child stops at once.
                        let _ = node.handle_acting_stopped(now);
                        self.drain(index)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Violation> {
        for _ in 0..MAX_DELIVERIES_PER_FLUSH {
            if self.in_flight.is_empty() {
                break;
            }
            let envelope = self.in_flight.remove(0);
            self.deliver(envelope)?;
        }
        Ok(())
    }

    /// The global instant at which the earliest timer of a live node falls due.
    fn next_timer(&self) -> Option<u64> {
        (0..self.nodes.len())
            .filter_map(|index| {
                let deadline = self.nodes[index].as_ref()?.poll_timeout()?.as_nanos();
                // Invert local(g) = offset + floor(g·rate/PPM): the least g that reaches it.
                let rate = (PPM as i64 + self.drift_ppm[index]) as u128;
                let span = u128::from(deadline.saturating_sub(self.offsets[index]));
                let global = (span * u128::from(PPM)).div_ceil(rate) as u64;
                Some(global.max(self.now))
            })
            .min()
    }

    fn fire_timers(&mut self, entropy: u64) -> Result<(), Violation> {
        for index in 0..self.nodes.len() {
            // A bounded number of rounds: a timer may be due again right after firing (a
            // follower draws its jitter, then campaigns at once when the jitter is zero).
            for round in 0..4u64 {
                let now = self.local(index);
                let Some(node) = self.nodes[index].as_mut() else {
                    break;
                };
                if node.poll_timeout().is_none_or(|at| at > now) {
                    break;
                }
                let entropy = mix(entropy ^ ((index as u64) << 32) ^ round);
                node.handle_timeout(now, entropy);
                self.drain(index)?;
            }
        }
        Ok(())
    }

    fn deliver(&mut self, envelope: Envelope) -> Result<(), Violation> {
        let index = envelope.to.0 as usize;
        if self
            .isolated
            .is_some_and(|id| id == envelope.to || id == envelope.from)
        {
            return Ok(());
        }
        let now = self.local(index);
        let Some(node) = self.nodes[index].as_mut() else {
            return Ok(());
        };
        node.handle_message(now, envelope);
        self.drain(index)
    }

    /// Applies a node's outputs in order: persist, then send.
    fn drain(&mut self, index: usize) -> Result<(), Violation> {
        while let Some(output) = self.nodes[index].as_mut().and_then(Node::poll_output) {
            match output {
                Output::Persist(state) => self.persist(index, state)?,
                Output::Send(envelope) => {
                    if self.isolated != Some(envelope.from) {
                        self.in_flight.push(envelope);
                    }
                }
                Output::Event(_) => {}
            }
        }
        self.check()
    }

    /// `term_monotonic` and `single_vote`, across restarts, from what reached the disk.
    fn persist(&mut self, index: usize, state: PersistentState) -> Result<(), Violation> {
        if state.term < self.max_term[index] {
            return Err(Violation {
                property: "term_monotonic",
                detail: format!(
                    "node {index} persisted term {} after {}",
                    state.term, self.max_term[index]
                ),
            });
        }
        self.max_term[index] = state.term;
        if let Some(vote) = state.voted_for {
            let previous = *self.votes.entry((index as u32, state.term)).or_insert(vote);
            if previous != vote {
                return Err(Violation {
                    property: "single_vote",
                    detail: format!(
                        "node {index} voted for {previous} and then {vote} in term {}",
                        state.term
                    ),
                });
            }
        }
        self.persisted[index] = Some(state);
        Ok(())
    }

    /// Checks the safety properties at the current global instant.
    fn check(&mut self) -> Result<(), Violation> {
        let mut holders = Vec::new();
        let mut acting = Vec::new();
        for index in 0..self.nodes.len() {
            let now = self.local(index);
            let Some(node) = self.nodes[index].as_ref() else {
                self.acting_token[index] = None;
                continue;
            };
            // election_safety: at most one leader per term, ever.
            if node.role() == RoleKind::Leader {
                let id = NodeId(index as u32);
                let leader = *self.leaders_by_term.entry(node.term()).or_insert(id);
                if leader != id {
                    return Err(Violation {
                        property: "election_safety",
                        detail: format!("{leader} and {id} both led term {}", node.term()),
                    });
                }
            }
            let leadership = node.leadership(now);
            if leadership.is_some_and(|l| l.holds_lease(now)) {
                holders.push(index);
            }
            match leadership.filter(|l| l.is_acting(now)) {
                Some(l) => {
                    if !l.holds_lease(now) {
                        return Err(Violation {
                            property: "acting_safety",
                            detail: format!("node {index} acts at {now} without a lease"),
                        });
                    }
                    acting.push(index);
                    if self.acting_token[index] != Some(l.fencing_token) {
                        // fencing_monotonic: a new acting interval carries a token above every
                        // token that acted before it.
                        if self
                            .highest_acted_token
                            .is_some_and(|t| l.fencing_token <= t)
                        {
                            return Err(Violation {
                                property: "fencing_monotonic",
                                detail: format!(
                                    "node {index} acts with token {} after token {:?} acted",
                                    l.fencing_token, self.highest_acted_token
                                ),
                            });
                        }
                        self.highest_acted_token = Some(l.fencing_token);
                        self.acting_token[index] = Some(l.fencing_token);
                    }
                }
                None => self.acting_token[index] = None,
            }
        }
        if holders.len() > 1 {
            return Err(Violation {
                property: "lease_safety",
                detail: format!("nodes {holders:?} hold a lease at global time {}", self.now),
            });
        }
        if acting.len() > 1 {
            return Err(Violation {
                property: "acting_safety",
                detail: format!("nodes {acting:?} act at global time {}", self.now),
            });
        }
        Ok(())
    }
}

/// SplitMix64's finalizer: every node draws a different jitter even from entropy 0, as real
/// nodes with their own RNGs would.
fn mix(mut value: u64) -> u64 {
    value = value.wrapping_add(0x9E37_79B9_7F4A_7C15);
    value = (value ^ (value >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    value ^ (value >> 31)
}

/// A whole schedule: the cluster's drift and offsets, then the steps.
#[derive(Clone, Debug)]
struct Schedule {
    drift: Vec<i8>,
    offsets: Vec<u64>,
    steps: Vec<Step>,
}

fn target(nodes: u32) -> impl Strategy<Value = Target> {
    prop_oneof![(0..nodes).prop_map(Target::Node), Just(Target::Leader)]
}

fn step(nodes: u32) -> impl Strategy<Value = Step> {
    prop_oneof![
        12 => (1..=2_000u64, prop::bool::weighted(0.85), any::<u64>())
            .prop_map(|(advance, flush, entropy)| Step::Tick { advance, flush, entropy }),
        2 => any::<usize>().prop_map(Step::Deliver),
        2 => any::<usize>().prop_map(Step::Drop),
        1 => any::<usize>().prop_map(Step::Duplicate),
        1 => target(nodes).prop_map(Step::Crash),
        2 => (0..nodes).prop_map(Step::Restart),
        1 => target(nodes).prop_map(Step::Isolate),
        1 => Just(Step::Heal),
        1 => Just(Step::Resign),
    ]
}

fn schedule(nodes: u32, max_steps: usize) -> impl Strategy<Value = Schedule> {
    (
        prop::collection::vec(-1i8..=1, nodes as usize),
        prop::collection::vec(0..10_000u64, nodes as usize),
        prop::collection::vec(step(nodes), 1..max_steps),
    )
        .prop_map(|(drift, offsets, steps)| Schedule {
            drift,
            offsets,
            steps,
        })
}

fn run(config: &Arc<Config>, schedule: &Schedule) -> Result<(), Violation> {
    let mut world = World::new(config.clone(), &schedule.drift, &schedule.offsets);
    for step in &schedule.steps {
        world.apply(step)?;
    }
    Ok(())
}

fn run_case(config: &Arc<Config>, schedule: &Schedule) -> Result<(), TestCaseError> {
    run(config, schedule).map_err(|violation| TestCaseError::fail(violation.to_string()))
}

/// Runs `cases` random schedules against `variant` and returns the first failure, shrunk.
fn hunt(variant: Variant, nodes: u32, cases: u32) -> Option<(String, Schedule)> {
    let config = cluster_config(nodes, variant);
    let mut runner = TestRunner::new(RunnerConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: 20_000,
        ..RunnerConfig::default()
    });
    match runner.run(&schedule(nodes, 40), |schedule| {
        run_case(&config, &schedule)
    }) {
        Ok(()) => None,
        Err(TestError::Fail(reason, schedule)) => Some((reason.to_string(), schedule)),
        Err(TestError::Abort(reason)) => panic!("proptest aborted: {reason}"),
    }
}

fn print_schedule(title: &str, reason: &str, schedule: &Schedule) {
    eprintln!("{title}: {reason}");
    eprintln!(
        "  drift (×ρ): {:?}, offsets: {:?}",
        schedule.drift, schedule.offsets
    );
    for (number, step) in schedule.steps.iter().enumerate() {
        eprintln!("  {number:>3}. {step:?}");
    }
}

proptest! {
    #![proptest_config(RunnerConfig { cases: 2_000, failure_persistence: None, ..RunnerConfig::default() })]

    /// The clean core keeps every invariant over 2,000 random three-node schedules.
    #[test]
    fn the_correct_core_keeps_every_invariant(schedule in schedule(3, 40)) {
        run_case(&cluster_config(3, Variant::Correct), &schedule)?;
    }
}

proptest! {
    #![proptest_config(RunnerConfig { cases: 300, failure_persistence: None, ..RunnerConfig::default() })]

    /// And over five-node schedules, where a majority is three.
    #[test]
    fn the_correct_core_keeps_every_invariant_with_five_nodes(schedule in schedule(5, 40)) {
        run_case(&cluster_config(5, Variant::Correct), &schedule)?;
    }
}

#[test]
fn the_correct_core_elects_a_leader_that_acts_in_a_quiet_cluster() {
    // Liveness sanity: the harness is not vacuous — with no faults a leader acts within
    // quarantine (L) + jitter + a step.
    let config = cluster_config(3, Variant::Correct);
    let mut world = World::new(config, &[0, 0, 0], &[0, 0, 0]);
    world
        .apply(&Step::Tick {
            advance: 1_500,
            flush: true,
            entropy: 0,
        })
        .expect("safe");
    let leader = world.leader_index().expect("a leader after 1.5 leases");
    let node = world.nodes[leader].as_ref().expect("alive");
    assert!(node.is_acting(world.local(leader)));
}

/// Shows that the harness catches a broken core, and that the shrunk schedule is short.
fn assert_caught(variant: Variant, property: &str) {
    let (reason, schedule) =
        hunt(variant, 3, 4_000).unwrap_or_else(|| panic!("{variant} was not caught"));
    print_schedule(&format!("{variant} caught"), &reason, &schedule);
    assert!(
        reason.contains(property),
        "{variant}: expected {property}, got {reason}"
    );
    assert!(
        schedule.steps.len() <= 25,
        "{variant}: the shrunk schedule has {} steps",
        schedule.steps.len()
    );
}

#[test]
fn no_promise_is_caught_and_shrunk() {
    assert_caught(Variant::NoPromise, "lease_safety");
}

#[test]
fn no_drift_compensation_is_caught_and_shrunk() {
    assert_caught(Variant::NoDriftCompensation, "lease_safety");
}

#[test]
fn act_past_lease_is_caught() {
    assert_caught(Variant::ActPastLease, "acting_safety");
}
