//! The driver: the async event loop around the election core.
//!
//! [`Driver`] owns one election core, the quorum's [`tenure_core::Node`] or a
//! [`tenure_core::StoreLease`] (any [`tenure_core::Election`]; protocol: Store leases), and
//! connects it to the world through five parts, each a trait so that the `tenure` binary and
//! the simulation (`tenure-sim`) run this very loop with different implementations:
//!
//! | part           | the binary                        | the simulation                       |
//! |----------------|-----------------------------------|--------------------------------------|
//! | [`Transport`]  | authenticated UDP; a store client | turmoil UDP, with loss and duplicates |
//! | [`Clock`]      | `CLOCK_BOOTTIME`                  | a per-host clock drifting within ±ρ   |
//! | [`Storage`]    | the state file; [`Stateless`]     | a cell outside the host              |
//! | [`ActingSink`] | the child supervisor and its guard | a recorder that reports to the oracle |
//! | [`Observer`]   | logs, metrics, the HTTP status    | the trace and the invariant oracle   |
//!
//! plus a source of entropy for the election jitter, a channel of [`Command`]s and, for
//! health-gated acting, a channel of [`HealthCheck`] results ([`Driver::with_health_checks`]).
//!
//! # One turn of the loop
//!
//! ```text
//! loop {
//!     // 1. Drain the core's outputs strictly in order. A Persist is awaited until durable
//!     //    before any later Send leaves (protocol: Persist before send; raft-rs).
//!     // 2. Reconcile the acting sink with `node.leadership(now)`: start, extend or stop the
//!     //    child; hand over (`handle_acting_stopped`) once a resigning leader's child is gone.
//!     // 3. Report the status to the observer; return if a requested shutdown is complete.
//!     // 4. If the next deadline has already passed, handle the timeout now and turn again.
//!     // 5. Otherwise wait, in this order of priority (`select! { biased; … }`):
//!     //    a command, the child having stopped, a health check of the child, a message,
//!     //    the next deadline.
//! }
//! ```
//!
//! The next deadline is the earlier of [`Node::poll_timeout`] and, while acting, the acting
//! deadline, so the driver wakes exactly when something is due and never polls. Every turn
//! handles at most one input, and a timer that is already due is handled before waiting again,
//! so a flood of messages cannot starve the timers.
//!
//! # Safety first
//!
//! A failure to make state durable, or to control the child, ends the loop with an error after
//! asking the sink to stop: the node must not act on state it could not persist. Exiting is
//! safe because the child's deadline guard kills the child when the driver's process dies
//! (protocol: The deadline guard).

mod health;
mod observe;
pub mod replay;

use std::future::Future;
use std::io;
use std::sync::Arc;

use tenure_core::{
    CommandError, Config, Duration, Election, Envelope, FencingToken, Instant, NewNodeError, Node,
    NodeId, Output, PersistentState,
};
use tokio::sync::{mpsc, oneshot};

pub use health::{Health, HealthCheck, HealthPolicy, HealthState, DEFAULT_HEALTH_FAILURES};
pub use observe::{
    ActingState, Counters, Observation, Observer, ReceivedTraffic, SentTraffic, Status,
};

/// How many timeouts the driver handles back to back, without waiting, when the core keeps
/// asking for a deadline that has already passed. The core never asks twice in a row (after
/// `handle_timeout(now)` its next deadline is later than `now`), so this bound only turns a
/// bug into a slow loop instead of a busy spin.
const MAX_IMMEDIATE_TIMEOUTS: u32 = 4;

/// When the bound above is hit, the driver sleeps this long before trying again.
const STUCK_TIMER_BACKOFF: tenure_core::Duration = tenure_core::Duration::from_millis(1);

/// Datagrams between peers, or requests to a store and their replies. Delivery is best
/// effort: loss, duplication and reordering are tolerated by both cores.
///
/// `Out` and `In` are the core's [`Election::Outbound`] and [`Election::Inbound`]: envelopes
/// for the quorum (the default), store requests and replies for a store lease.
pub trait Transport<Out = Envelope, In = Envelope> {
    /// Sends `message` (an envelope to `envelope.to`, or a request to the store). Never fails
    /// from the driver's point of view: a message that cannot be sent is as good as lost, and
    /// counting such losses is the transport's business.
    fn send(&mut self, message: Out) -> impl Future<Output = ()>;

    /// The next message that arrived for this node. Datagrams that fail authentication or
    /// decoding are the transport's to count and drop; they never reach the driver.
    ///
    /// Must be cancel-safe: the driver drops this future whenever another branch of its
    /// `select!` wins, and no message may be lost by that.
    fn recv(&mut self) -> impl Future<Output = In>;
}

/// The node's own monotonic clock (protocol: Time). Instants of different nodes are never
/// compared.
pub trait Clock {
    /// The local time now. Never goes backwards.
    fn now(&self) -> Instant;

    /// Resolves once [`Clock::now`] has reached `deadline` (local time). Must be cancel-safe.
    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()>;
}

/// Durable storage for the node's [`PersistentState`].
pub trait Storage {
    /// The state stored last, or `None` on the very first boot. An error (an unreadable or
    /// corrupt file) stops the node: booting as if fresh could forget a vote.
    fn load(&mut self) -> io::Result<Option<PersistentState>>;

    /// Stores `state`. Resolves only once the state is durable (written and synced): the
    /// driver sends nothing that depends on it before then.
    fn store(&mut self, state: PersistentState) -> impl Future<Output = io::Result<()>>;
}

/// The storage of a core that persists nothing locally: a store lease, whose state lives in
/// the store. It loads nothing, and refuses to store, which would be a programmer error that
/// stops the driver (and so the child) rather than act on state that was not kept.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stateless;

impl Storage for Stateless {
    fn load(&mut self) -> io::Result<Option<PersistentState>> {
        Ok(None)
    }

    async fn store(&mut self, state: PersistentState) -> io::Result<()> {
        Err(io::Error::other(format!(
            "a store lease persists nothing locally, yet {state:?} was to be stored"
        )))
    }
}

/// Where acting happens: the supervised child in the binary, a recorder in the simulation.
///
/// The driver calls `start`, then any number of `extend`s, then `stop`, and waits for
/// [`ActingSink::stopped`] before it starts again. The sink must make sure the child stops at
/// the latest `acting_until` it was given and is gone within the stop margin after it, even if
/// the driver stops calling it (the binary's deadline guard; protocol: The deadline guard).
pub trait ActingSink {
    /// Starts acting with `fencing_token` until `acting_until` (local time).
    fn start(
        &mut self,
        fencing_token: FencingToken,
        acting_until: Instant,
    ) -> impl Future<Output = io::Result<()>>;

    /// Moves the acting deadline to the later `acting_until` (a lease renewal).
    fn extend(&mut self, acting_until: Instant) -> impl Future<Output = io::Result<()>>;

    /// Asks the child to stop now. Returns once the request is made, not once the child is
    /// gone: [`ActingSink::stopped`] reports that.
    fn stop(&mut self) -> impl Future<Output = io::Result<()>>;

    /// Resolves once acting has really ended: after a `stop`, when the child is gone; or
    /// earlier if the child ended on its own and the sink will not restart it. The driver
    /// polls it only between a `start` and the end of that acting. Must be cancel-safe.
    fn stopped(&mut self) -> impl Future<Output = ()>;
}

/// Everything a [`Driver`] runs on besides the core.
pub struct Parts<T, C, S, A, O, E> {
    pub transport: T,
    pub clock: C,
    pub storage: S,
    pub sink: A,
    pub observer: O,
    /// Uniformly random `u64`s for the election jitter (seeded in the simulation).
    pub entropy: E,
}

/// An operator's request to a running driver.
#[derive(Debug)]
pub enum Command {
    /// Hand leadership over gracefully (protocol: Graceful handover): stop acting, wait for the
    /// child to be gone, then send `Resign` and `TimeoutNow` to `successor` (or the core's
    /// pick). `reply` tells whether this node was the leader.
    Resign {
        successor: Option<NodeId>,
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    /// Resign if leading, wait until acting has stopped and the handover has been sent, then
    /// return `Ok(())` from [`Driver::run`].
    Shutdown,
    /// Maintenance mode: never campaign (a campaign hold renewed before every timer, protocol:
    /// Campaign holds) but keep voting, so the node still counts towards every quorum; and
    /// hand leadership over if leading. `reply` tells whether this node was the leader.
    Pause { reply: oneshot::Sender<bool> },
    /// Leave maintenance mode: every campaign hold ends, including one from lost children.
    Resume,
}

/// Why the driver stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The persisted state could not be read.
    #[error("cannot load the persisted state: {0}")]
    Load(#[source] io::Error),
    /// The core refused to boot (a configuration that does not match the persisted state).
    #[error("cannot boot the election core: {0}")]
    Boot(#[source] NewNodeError),
    /// The state could not be made durable. The node stopped acting and gave up.
    #[error("cannot persist the state; stopped acting: {0}")]
    Store(#[source] io::Error),
    /// The acting sink failed (the child could not be started, extended or stopped).
    #[error("cannot control the child; stopped acting: {0}")]
    Acting(#[source] io::Error),
}

/// The event loop of one node, around either election core (`N`: the quorum [`Node`] by
/// default, or a [`tenure_core::StoreLease`]). See the module docs.
pub struct Driver<T, C, S, A, O, E, N = Node> {
    node: N,
    transport: T,
    clock: C,
    storage: S,
    sink: A,
    observer: O,
    entropy: E,
    acting: ActingState,
    /// The core asked for a handover (`Event::ResignRequested`) and waits for the sink to be
    /// idle before [`Node::handle_acting_stopped`].
    resign_pending: bool,
    shutting_down: bool,
    /// The latest a shutdown waits for the core's handover request to be answered: a lease
    /// after the child was gone (set then).
    shutdown_wait_until: Option<Instant>,
    /// In maintenance mode ([`Command::Pause`]).
    paused: bool,
    counters: Counters,
    /// When the current acting period began (a child started from idle).
    acting_since: Option<Instant>,
    /// Leaderships in a row whose child ended for good or failed its health checks
    /// (protocol: Campaign holds).
    lost_leaderships: u32,
    /// The state this driver last made durable; `None` until its first store. Each store is
    /// checked against the core's state ([`Driver::assert_stored`]).
    stored: Option<PersistentState>,
    /// The child's health as its checks reported it (protocol: Health-gated acting).
    health: Health,
    health_policy: HealthPolicy,
    /// Results of the child's health checks, sent by whatever runs them beside the sink
    /// ([`Driver::with_health_checks`]); `None` without checks.
    health_checks: Option<mpsc::Receiver<HealthCheck>>,
}

/// The first campaign hold after a lost leadership, in leases; each further one in a row
/// doubles, up to [`CAMPAIGN_HOLD_MAX_LEASES`] (protocol: Campaign holds).
pub const CAMPAIGN_HOLD_FIRST_LEASES: u32 = 1;
/// The longest campaign hold, in leases: 64 s at the default 2 s lease.
pub const CAMPAIGN_HOLD_MAX_LEASES: u32 = 32;
/// A leadership that acted this many leases before its child ended for good clears the
/// record of earlier losses: a daemon that fails once a day is not held off for long.
pub const CAMPAIGN_HOLD_RESET_LEASES: u32 = 30;

const _: () = assert!(
    CAMPAIGN_HOLD_FIRST_LEASES >= 1,
    "a hold lasts at least one lease"
);
const _: () = assert!(
    CAMPAIGN_HOLD_MAX_LEASES.is_power_of_two()
        && CAMPAIGN_HOLD_FIRST_LEASES <= CAMPAIGN_HOLD_MAX_LEASES,
    "holds double from the first up to exactly the longest"
);
const _: () = assert!(
    MAX_IMMEDIATE_TIMEOUTS >= 1,
    "a timer that is due is handled at once"
);

impl<T, C, S, A, O, E> Driver<T, C, S, A, O, E, Node>
where
    T: Transport,
    C: Clock,
    S: Storage,
    A: ActingSink,
    O: Observer,
    E: FnMut() -> u64,
{
    /// Loads the persisted state and boots the core at the clock's current time (which starts
    /// the boot quarantine; protocol: Boot quarantine).
    pub fn new(
        config: Arc<Config>,
        id: NodeId,
        mut parts: Parts<T, C, S, A, O, E>,
    ) -> Result<Self, DriverError> {
        let persisted = parts.storage.load().map_err(DriverError::Load)?;
        let node =
            Node::new(config, id, persisted, parts.clock.now()).map_err(DriverError::Boot)?;
        // The core boots from what storage held: its term, and its vote unless the
        // `forget_vote_on_restart` variant drops it on purpose.
        let loaded = persisted.unwrap_or_default();
        assert_eq!(
            node.term(),
            loaded.term,
            "the core boots in the stored term"
        );
        assert!(
            node.voted_for()
                .is_none_or(|vote| Some(vote) == loaded.voted_for),
            "the core boots with the stored vote or none"
        );
        Ok(Driver::with_election(node, parts))
    }
}

impl<T, C, S, A, O, E, N> Driver<T, C, S, A, O, E, N>
where
    N: Election,
    N::Outbound: SentTraffic,
    N::Inbound: ReceivedTraffic,
    T: Transport<N::Outbound, N::Inbound>,
    C: Clock,
    S: Storage,
    A: ActingSink,
    O: Observer<N::Outbound, N::Inbound>,
    E: FnMut() -> u64,
{
    /// A driver around an election core that is already booted: a
    /// [`tenure_core::StoreLease`], whose state lives in the store (its storage is never
    /// written), or a [`Node`] built by the caller.
    #[must_use]
    pub fn with_election(node: N, parts: Parts<T, C, S, A, O, E>) -> Self {
        Driver {
            node,
            transport: parts.transport,
            clock: parts.clock,
            storage: parts.storage,
            sink: parts.sink,
            observer: parts.observer,
            entropy: parts.entropy,
            acting: ActingState::Idle,
            resign_pending: false,
            shutting_down: false,
            shutdown_wait_until: None,
            paused: false,
            counters: Counters::default(),
            acting_since: None,
            lost_leaderships: 0,
            stored: None,
            health: Health::default(),
            health_policy: HealthPolicy::default(),
            health_checks: None,
        }
    }

    /// This driver with health-gated acting (protocol: Health-gated acting): `checks` carries
    /// the result of every health check of the acting child, and `policy` says when to give
    /// up. Whoever runs the checks (beside the acting sink: only it knows when its child
    /// started or restarted, and in which environment) sends a result per check, with
    /// `try_send` so that a driver that does not act drops them rather than blocks it. The
    /// driver reads results only while it acts and not while its child stops, and drops those
    /// left from an earlier acting period when it starts acting again.
    #[must_use]
    pub fn with_health_checks(
        mut self,
        checks: mpsc::Receiver<HealthCheck>,
        policy: HealthPolicy,
    ) -> Self {
        self.health_checks = Some(checks);
        self.health_policy = policy;
        self
    }

    /// The election core, for inspection.
    #[must_use]
    pub fn node(&self) -> &N {
        &self.node
    }

    /// Runs until a [`Command::Shutdown`] completes (`Ok`) or a part fails (`Err`). A closed
    /// command channel only means that no more commands will come.
    pub async fn run(mut self, mut commands: mpsc::Receiver<Command>) -> Result<(), DriverError> {
        let mut commands_open = true;
        let mut immediate_timeouts = 0;
        loop {
            if let Err(error) = self.settle().await {
                return Err(self.fail(error).await);
            }
            let now = self.clock.now();
            let mut status = status(&self.node, self.acting, &self.counters, &self.health, now);
            status.paused = self.paused;
            self.observer.status(&status);
            if self.shutdown_complete(now) {
                return Ok(());
            }

            let deadline = self.deadline();
            let wake = if deadline > now {
                immediate_timeouts = 0;
                deadline
            } else if immediate_timeouts < MAX_IMMEDIATE_TIMEOUTS {
                // Due already (the previous turn took time, or a message arrived exactly at
                // the deadline): handle it without a round through the runtime.
                immediate_timeouts += 1;
                self.timeout(now);
                continue;
            } else {
                debug_assert!(
                    deadline > now,
                    "the core keeps asking for a deadline in the past"
                );
                now + STUCK_TIMER_BACKOFF
            };

            tokio::select! {
                biased;
                command = commands.recv(), if commands_open => match command {
                    Some(command) => self.command(command),
                    None => commands_open = false,
                },
                () = self.sink.stopped(), if self.acting != ActingState::Idle => {
                    self.acting_stopped();
                }
                Some(check) = next_health_check(&mut self.health_checks),
                    if matches!(self.acting, ActingState::Acting { .. }) =>
                {
                    self.health_checked(check);
                }
                envelope = self.transport.recv() => self.message(envelope),
                () = self.clock.sleep_until(wake) => {
                    let now = self.clock.now();
                    self.timeout(now);
                }
            }
        }
    }

    /// Whether a requested shutdown is complete: the child is gone, the handover done, and the
    /// request that hands the tenure over (a store release) answered or given up, or a lease
    /// has passed waiting for it (protocol: Graceful handover). Waiting risks nothing: this
    /// node no longer acts, and without the release the next holder waits a whole lease.
    fn shutdown_complete(&mut self, now: Instant) -> bool {
        if !self.shutting_down || self.acting != ActingState::Idle || self.resign_pending {
            return false;
        }
        if !self.node.handover_in_flight() {
            return true;
        }
        let lease = self.node.lease_duration();
        now >= *self.shutdown_wait_until.get_or_insert(now + lease)
    }

    // ----- Inputs ---------------------------------------------------------------------------

    fn message(&mut self, envelope: N::Inbound) {
        let now = self.clock.now();
        if self.paused {
            // Renewed before every input that could start a campaign: a TimeoutNow too.
            self.hold_for_pause(now);
        }
        let received = self.node.handle_inbound(now, envelope);
        envelope.count_received(received, &mut self.counters);
        self.observer
            .observe(now, &Observation::Received(envelope, received));
    }

    fn timeout(&mut self, now: Instant) {
        if self.paused {
            // Renewed before every timer, so the hold never runs out while paused.
            self.hold_for_pause(now);
        }
        let entropy = (self.entropy)();
        self.node.handle_timeout(now, entropy);
        self.counters.timeouts += 1;
    }

    fn command(&mut self, command: Command) {
        let now = self.clock.now();
        match command {
            Command::Resign { successor, reply } => {
                let result = self.node.handle_resign(now, successor);
                self.observer
                    .observe(now, &Observation::ResignCommand(successor, result));
                // The requester may have given up waiting; the resignation stands regardless.
                let _ = reply.send(result);
            }
            Command::Shutdown => {
                self.shutting_down = true;
                // Not leading is fine: then there is nothing to hand over.
                let result = self.node.handle_resign(now, None);
                self.observer.observe(now, &Observation::Shutdown(result));
            }
            Command::Pause { reply } => {
                self.paused = true;
                self.hold_for_pause(now);
                let leading = self.node.handle_resign(now, None).is_ok();
                self.observer.observe(now, &Observation::Paused { leading });
                let _ = reply.send(leading);
            }
            Command::Resume => {
                self.paused = false;
                self.lost_leaderships = 0;
                self.node.handle_campaign_release(now);
                self.observer.observe(now, &Observation::Resumed);
            }
        }
    }

    /// Holds campaigns for one lease from `now`. While paused the driver renews the hold
    /// before every timer and every message, the only inputs that can start a campaign (an
    /// election timer, a `TimeoutNow`), so it never runs out however long a healthy leader
    /// keeps this follower's timer from firing.
    fn hold_for_pause(&mut self, now: Instant) {
        let lease = self.node.lease_duration();
        self.node.handle_campaign_hold(now, now + lease);
    }

    fn acting_stopped(&mut self) {
        let now = self.clock.now();
        let expected = match self.acting {
            ActingState::Stopping => true,
            // The sink's deadline passed: the child was stopped by its guard, as designed.
            ActingState::Acting { acting_until, .. } => now >= acting_until,
            ActingState::Idle => true,
        };
        self.acting = ActingState::Idle;
        let acted = self
            .acting_since
            .take()
            .map(|since| now.saturating_duration_since(since));
        self.health.acting_stopped();
        self.observer.observe(now, &Observation::ActingStopped);
        if !expected && self.node.is_acting(now) {
            // The child ended on its own while the lease still ran. Another node may fare
            // better, so hand leadership over rather than act without a child.
            let (result, hold) = self.give_leadership_up(now, acted);
            self.observer.observe(now, &Observation::ChildLost(result));
            self.observe_hold(now, hold);
        }
    }

    /// A health check of the acting child reported (protocol: Health-gated acting).
    fn health_checked(&mut self, check: HealthCheck) {
        let now = self.clock.now();
        match self.health.record(&check, self.health_policy) {
            health::Verdict::Carry => {}
            health::Verdict::Recovered { after_failures } => {
                self.observer
                    .observe(now, &Observation::HealthRecovered { after_failures });
            }
            health::Verdict::Failed | health::Verdict::GiveUp => {
                let reason = match check {
                    HealthCheck::Failed(reason) => reason,
                    HealthCheck::Passed => String::new(),
                };
                self.observer.observe(
                    now,
                    &Observation::HealthCheckFailed {
                        consecutive_failures: self.health.consecutive_failures,
                        failures: self.health_policy.failures.get(),
                        reason,
                    },
                );
            }
        }
        if self.health.state == HealthState::Unhealthy && self.node.is_acting(now) {
            // The child runs but does not work (hung, or cut off from what it needs). Stop it
            // and hand leadership over, exactly as for a child that ended for good: the
            // resignation stops acting at once, the sink stops the child, and only once it
            // is gone do Resign and TimeoutNow leave (protocol: Graceful handover).
            let acted = self
                .acting_since
                .map(|since| now.saturating_duration_since(since));
            let (result, hold) = self.give_leadership_up(now, acted);
            self.observer.observe(now, &Observation::Unhealthy(result));
            self.observe_hold(now, hold);
        }
    }

    /// Gives leadership up after its child failed for good, having `acted` this long: holds
    /// our own campaigns for a backoff that doubles with every loss in a row, so that
    /// leadership goes round the others and a cluster-wide outage does not spin (protocol:
    /// Campaign holds), and resigns. Returns the resignation's result and the hold.
    fn give_leadership_up(
        &mut self,
        now: Instant,
        acted: Option<Duration>,
    ) -> (Result<(), CommandError>, Duration) {
        let lease = self.node.lease_duration();
        if acted.is_some_and(|acted| acted >= lease.mul_ratio(CAMPAIGN_HOLD_RESET_LEASES.into(), 1))
        {
            self.lost_leaderships = 0;
        }
        self.lost_leaderships = self.lost_leaderships.saturating_add(1);
        let hold = lease.mul_ratio(campaign_hold_leases(self.lost_leaderships).into(), 1);
        self.node.handle_campaign_hold(now, now + hold);
        (self.node.handle_resign(now, None), hold)
    }

    fn observe_hold(&mut self, now: Instant, hold: Duration) {
        self.observer.observe(
            now,
            &Observation::CampaignHeld {
                losses: self.lost_leaderships,
                hold,
            },
        );
    }

    // ----- One turn -------------------------------------------------------------------------

    /// Drains outputs and reconciles the sink until both are quiet. A handover feeds the core
    /// one more input, whose outputs need draining too; it happens at most once per
    /// resignation, so two rounds suffice.
    async fn settle(&mut self) -> Result<(), DriverError> {
        for _ in 0..2 {
            self.drain().await?;
            if !self.reconcile().await? {
                return Ok(());
            }
        }
        self.drain().await
    }

    /// Handles the core's outputs strictly in order: a `Persist` is durable before any later
    /// `Send` leaves (persist-before-send).
    async fn drain(&mut self) -> Result<(), DriverError> {
        while let Some(output) = self.node.poll_output() {
            match output {
                Output::Persist(state) => {
                    self.storage
                        .store(state)
                        .await
                        .map_err(DriverError::Store)?;
                    self.assert_stored(state);
                    self.counters.persisted += 1;
                    let now = self.clock.now();
                    self.observer.observe(now, &Observation::Persisted(state));
                }
                Output::Send(envelope) => {
                    self.transport.send(envelope).await;
                    envelope.count_sent(&mut self.counters);
                    let now = self.clock.now();
                    self.observer.observe(now, &Observation::Sent(envelope));
                }
                Output::Event(event) => {
                    if let tenure_core::Event::ResignRequested { .. } = event {
                        self.resign_pending = true;
                    }
                    let now = self.clock.now();
                    self.observer.observe(now, &Observation::Event(event));
                }
            }
        }
        // Drained: the last store was the core's last Persist, and every change of term or
        // vote queues one, so storage now holds exactly what the core holds.
        if let Some(stored) = self.stored {
            assert_eq!(
                stored,
                self.node.persistent_state(),
                "storage holds what the core holds once its outputs are drained"
            );
        }
        Ok(())
    }

    /// Paired persist assertions, after `state` became durable. Storage never moves back: a
    /// later store has a newer term, or the same term with a vote where there was none. And it
    /// never runs ahead of the core. It may lag behind it in the middle of a drain, when
    /// another Persist is still queued, so equality is asserted only once drained.
    fn assert_stored(&mut self, state: PersistentState) {
        let core = self.node.persistent_state();
        assert!(
            not_after(state, core),
            "stored {state:?}, ahead of the core's {core:?}"
        );
        if let Some(previous) = self.stored {
            assert!(
                not_after(previous, state),
                "stored {state:?} after {previous:?}: a term went back or a vote changed"
            );
        }
        self.stored = Some(state);
    }

    /// Brings the sink in line with the core's leadership (protocol: Acting). Returns whether it
    /// fed the core an input (a handover), whose outputs then need draining.
    async fn reconcile(&mut self) -> Result<bool, DriverError> {
        let now = self.clock.now();
        let leadership = self.node.leadership(now).filter(|l| l.is_acting(now));
        match (self.acting, leadership) {
            (ActingState::Idle, Some(leadership)) => self.start_acting(now, leadership).await?,
            (
                ActingState::Acting {
                    fencing_token,
                    acting_until,
                },
                Some(leadership),
            ) if leadership.fencing_token == fencing_token => {
                if leadership.acting_until > acting_until {
                    self.sink
                        .extend(leadership.acting_until)
                        .await
                        .map_err(DriverError::Acting)?;
                    self.acting = ActingState::Acting {
                        fencing_token,
                        acting_until: leadership.acting_until,
                    };
                    self.observer.observe(
                        now,
                        &Observation::ActingExtended {
                            acting_until: leadership.acting_until,
                        },
                    );
                }
            }
            // Not acting any more, or acting under another token: the old child goes first.
            (ActingState::Acting { .. }, _) => {
                self.sink.stop().await.map_err(DriverError::Acting)?;
                self.acting = ActingState::Stopping;
                self.observer
                    .observe(now, &Observation::ActingStopRequested);
            }
            // Idle and not acting, or still stopping: a new child waits for the old one.
            (ActingState::Idle, None) | (ActingState::Stopping, _) => {}
        }
        if self.resign_pending && self.acting == ActingState::Idle {
            self.resign_pending = false;
            // Phase two of the handover: the child is gone, so Resign and TimeoutNow may leave.
            // It fails only if the leadership ended meanwhile, which leaves nothing to hand over.
            let result = self.node.handle_acting_stopped(now);
            self.observer.observe(now, &Observation::HandedOver(result));
            return Ok(true);
        }
        Ok(false)
    }

    /// Starts a child under the leadership's token and deadline.
    async fn start_acting(
        &mut self,
        now: Instant,
        leadership: tenure_core::Leadership,
    ) -> Result<(), DriverError> {
        self.sink
            .start(leadership.fencing_token, leadership.acting_until)
            .await
            .map_err(DriverError::Acting)?;
        self.acting = ActingState::Acting {
            fencing_token: leadership.fencing_token,
            acting_until: leadership.acting_until,
        };
        self.acting_since = Some(now);
        self.health.acting_started();
        if let Some(checks) = &mut self.health_checks {
            // Results of an earlier child's checks say nothing about this one.
            while checks.try_recv().is_ok() {}
        }
        self.observer.observe(
            now,
            &Observation::ActingStarted {
                fencing_token: leadership.fencing_token,
                acting_until: leadership.acting_until,
            },
        );
        Ok(())
    }

    /// The next instant the loop must wake without an input.
    #[must_use]
    fn deadline(&self) -> Instant {
        let timer = self
            .node
            .poll_timeout()
            .unwrap_or(Instant::from_nanos(u64::MAX));
        match self.acting {
            ActingState::Acting { acting_until, .. } => timer.min(acting_until),
            ActingState::Idle | ActingState::Stopping => timer,
        }
    }

    /// Safety first: asks the sink to stop before giving up. Its own failure cannot make
    /// anything worse, since exiting closes the guard's pipe and the guard kills the child.
    async fn fail(&mut self, error: DriverError) -> DriverError {
        if self.acting != ActingState::Idle {
            let _ = self.sink.stop().await;
            self.acting = ActingState::Stopping;
        }
        let now = self.clock.now();
        self.observer.observe(now, &Observation::Failed);
        error
    }
}

/// Whether persistent state `earlier` may precede `later` in one node's history: terms only
/// grow, and within a term the vote is only ever cast, once.
fn not_after(earlier: PersistentState, later: PersistentState) -> bool {
    earlier.term < later.term
        || (earlier.term == later.term
            && earlier
                .voted_for
                .is_none_or(|vote| later.voted_for == Some(vote)))
}

/// The next health check result, or never without checks or once every sender is gone.
async fn next_health_check(
    checks: &mut Option<mpsc::Receiver<HealthCheck>>,
) -> Option<HealthCheck> {
    match checks {
        Some(checks) => match checks.recv().await {
            Some(check) => Some(check),
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// The campaign hold after `losses` lost leaderships in a row, in leases: 1, 2, 4, … up to
/// [`CAMPAIGN_HOLD_MAX_LEASES`].
#[must_use]
fn campaign_hold_leases(losses: u32) -> u32 {
    let doublings = losses
        .saturating_sub(1)
        .min(CAMPAIGN_HOLD_MAX_LEASES.ilog2());
    (CAMPAIGN_HOLD_FIRST_LEASES << doublings).min(CAMPAIGN_HOLD_MAX_LEASES)
}

/// The node's status at `now`. A free function so that the driver can hand the status, which
/// borrows the counters, to its own observer.
#[must_use]
fn status<'a, N: Election>(
    node: &N,
    acting: ActingState,
    counters: &'a Counters,
    health: &'a Health,
    now: Instant,
) -> Status<'a> {
    let summary = node.summary();
    Status {
        now,
        id: summary.id,
        role: summary.role,
        term: summary.term,
        voted_for: summary.voted_for,
        leader: summary.leader,
        leadership: node.leadership(now),
        promise_until: summary.promise_until,
        quarantine_until: summary.quarantine_until,
        acting,
        counters,
        health,
        paused: false,
    }
}

#[cfg(test)]
mod store_tests;
#[cfg(test)]
mod tests;
