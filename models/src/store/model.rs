//! [`StoreModel`]: the stateright model that drives the real `tenure_core::StoreLease`s
//! against the real `tenure_core::ReferenceStore`.

use std::fmt;

use stateright::{Model, Property};
use tenure_core::{
    Duration, ExpiryJudge, FencingToken, NodeId, Output, ReferenceStore, StoreLease,
    StoreLeaseConfig, StoreLeaseParams, StoreOp, StoreOutcome, StoreReply, StoreVariant,
};

use crate::children::supervise;
use crate::clock::{global_instant, local_time, timing, Drift, DriftSpec, GRAIN, TICKS_PER_UNIT};
use crate::latch::SometimesLatch;
use crate::store::action::StoreAction;
use crate::store::bounds::StoreBounds;
use crate::store::properties;
use crate::store::state::{Call, ReplyInFlight, StoreHistory, StoreSlot, StoreState};

/// The store lease's durations in local nanoseconds, each a multiple of [`GRAIN`] as the
/// model's exact time requires (see `clock`). The lease, its hold and the stop margin are the
/// quorum model's (`timing`): L = 33 grains, hold = L·9/11 = 27 grains, stop margin 9 grains.
pub mod store_timing {
    use super::*;

    /// The holder renews this long after sending its latest successful renewal; a contender
    /// reads this often. 12 grains: the acting window (18 grains) leaves room for one
    /// renewal, and a failed renewal's retry (a quarter of it) is 3 grains.
    pub const RENEW_INTERVAL: Duration = Duration::from_nanos(12 * GRAIN);
    /// A contender reads the record this often.
    pub const POLL_INTERVAL: Duration = RENEW_INTERVAL;
    /// A request unanswered for this long is given up.
    pub const REQUEST_TIMEOUT: Duration = RENEW_INTERVAL;
    /// Where the store judges expiry: how long after the latest acquisition or renewal, on
    /// the store's clock, it makes the record vacant (protocol: Who judges expiry: TTL ≥ L).
    pub const TTL: Duration = timing::LEASE_DURATION;

    const _: () = {
        assert!(RENEW_INTERVAL.as_nanos() % (4 * GRAIN) == 0);
        assert!(
            timing::STOP_MARGIN.as_nanos() + RENEW_INTERVAL.as_nanos()
                < timing::LEASE_HOLD.as_nanos()
        );
        assert!(REQUEST_TIMEOUT.as_nanos() <= RENEW_INTERVAL.as_nanos());
        assert!(TTL.as_nanos() % GRAIN == 0);
    };
}

/// What the store model checks: the contenders, the core variant, who judges expiry, the
/// clocks and the bounds.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreSpec {
    /// Contenders: 2 or 3.
    pub nodes: usize,
    /// The store-lease core variant under check.
    pub variant: StoreVariant,
    /// Who judges expiry (protocol: Who judges expiry).
    pub judge: ExpiryJudge,
    /// The clock rates the contenders may have.
    pub drifts: DriftSpec,
    /// The store's clock rates, one initial state each (only the store judge reads it).
    pub store_drifts: Vec<Drift>,
    /// The limits of the state space.
    pub bounds: StoreBounds,
}

impl StoreSpec {
    /// Two contenders, one slow and one fast, the correct core, the first bounds of the suite,
    /// and a fast store clock: the fastest the store judge's rule allows (protocol: Who judges
    /// expiry), so that the store expires a holder as early as it may.
    pub fn default_check(judge: ExpiryJudge) -> StoreSpec {
        StoreSpec {
            nodes: 2,
            variant: StoreVariant::Correct,
            judge,
            drifts: DriftSpec::Fixed(vec![Drift::Slow, Drift::Fast]),
            store_drifts: vec![Drift::Fast],
            bounds: StoreBounds::DEFAULT,
        }
    }
}

impl fmt::Display for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let store: Vec<&str> = self.store_drifts.iter().map(|drift| drift.name()).collect();
        write!(
            f,
            "{} contenders, variant {}, judge {}, drifts {}, store clock {}; bounds: {}",
            self.nodes,
            self.variant,
            judge_name(self.judge),
            self.drifts,
            store.join("|"),
            self.bounds
        )
    }
}

/// The name of an expiry judge on the command line and in reports.
pub fn judge_name(judge: ExpiryJudge) -> &'static str {
    match judge {
        ExpiryJudge::Contenders => "contenders",
        ExpiryJudge::Store => "store",
    }
}

/// The model: contenders running the real store-lease core, one linearizable store, requests
/// applied at any instant between send and reply (or later, when held), replies lost or
/// duplicated, clocks that drift within ±ρ, crashes and restarts, children that linger after
/// SIGTERM, and graceful resignation. Time is explicit, as in [`crate::TenureModel`].
#[derive(Clone)]
pub struct StoreModel {
    spec: StoreSpec,
    config: StoreLeaseConfig,
    /// Which `Sometimes` properties were reached, when latching.
    reached: SometimesLatch<{ properties::SOMETIMES.len() }>,
}

impl StoreModel {
    /// Builds the model, or says why `spec` is not one.
    pub fn new(spec: StoreSpec) -> Result<StoreModel, String> {
        if !(1..=3).contains(&spec.nodes) {
            return Err(format!(
                "--nodes {}: the store model runs 1 to 3 contenders",
                spec.nodes
            ));
        }
        if let DriftSpec::Fixed(drifts) = &spec.drifts {
            if drifts.len() != spec.nodes {
                return Err(format!(
                    "--drifts {}: names {} rates for {} contenders",
                    spec.drifts,
                    drifts.len(),
                    spec.nodes
                ));
            }
        }
        if spec.store_drifts.is_empty() {
            return Err("no store clock rate to check".to_owned());
        }
        let config = StoreLeaseConfig::new(StoreLeaseParams {
            lease_duration: timing::LEASE_DURATION,
            max_drift_ppm: u32::from(crate::clock::DRIFT_TICKS) * 1_000_000
                / u32::from(crate::clock::NOMINAL_RATE),
            stop_margin: timing::STOP_MARGIN,
            renew_interval: store_timing::RENEW_INTERVAL,
            poll_interval: store_timing::POLL_INTERVAL,
            request_timeout: store_timing::REQUEST_TIMEOUT,
            judge: spec.judge,
            variant: spec.variant,
        })
        .map_err(|error| format!("the model's timing is not a valid store config: {error}"))?;
        if config.variant() == StoreVariant::Correct && config.lease_hold() != timing::LEASE_HOLD {
            return Err(format!(
                "the store config's lease hold {} is not the model's exact {}",
                config.lease_hold(),
                timing::LEASE_HOLD
            ));
        }
        Ok(StoreModel {
            spec,
            config,
            reached: SometimesLatch::off(),
        })
    }

    /// Makes each `Sometimes` property report only the first state it holds in (see
    /// [`crate::TenureModel::latch_sometimes`]).
    pub fn latch_sometimes(mut self) -> StoreModel {
        self.reached = SometimesLatch::on();
        self
    }

    /// Evaluates `Sometimes` property number `index` through the latch, if any.
    pub(crate) fn sometimes(&self, index: usize, holds: impl FnOnce() -> bool) -> bool {
        self.reached.check(index, holds)
    }

    /// What this model checks.
    pub fn spec(&self) -> &StoreSpec {
        &self.spec
    }

    /// The store-lease configuration every contender runs.
    pub fn config(&self) -> &StoreLeaseConfig {
        &self.config
    }

    /// The last instant of global time, in ticks.
    pub fn horizon_ticks(&self) -> u32 {
        u32::from(self.spec.bounds.horizon) * TICKS_PER_UNIT
    }

    /// The next global instant after now at which anything can change: a running node's timer,
    /// lease end or acting end, a child's kill deadline, the store's expiry of its holder.
    pub fn next_event(&self, state: &StoreState) -> Option<u32> {
        let now = u64::from(state.time);
        let mut instants: Vec<u64> = state.expires_at.into_iter().map(u64::from).collect();
        for (index, slot) in state.nodes.iter().enumerate() {
            let rate = slot.rate;
            for child in &slot.children {
                instants.push(global_instant(child.until, rate));
            }
            let Some(core) = &slot.core else {
                continue;
            };
            let leadership = core.leadership(state.local_now(index));
            let deadlines = [
                core.poll_timeout(),
                leadership.map(|leadership| leadership.lease_until),
                leadership.map(|leadership| leadership.acting_until),
            ];
            for deadline in deadlines.into_iter().flatten() {
                instants.push(global_instant(deadline, rate));
            }
        }
        let next = instants
            .into_iter()
            .filter(|instant| *instant > now)
            .min()?;
        Some(u32::try_from(next).unwrap_or(u32::MAX))
    }

    /// Takes the outputs of node `index` from its core: a request goes to the store at once
    /// (a crash before it left is a crash before the input: nothing else was made durable).
    fn drain(&self, state: &mut StoreState, index: usize) {
        let Some(core) = state.nodes[index].core.as_mut() else {
            return;
        };
        while let Some(output) = core.poll_output() {
            if let Output::Send(request) = output {
                insert_sorted(
                    &mut state.calls,
                    Call {
                        request,
                        answered: true,
                        slow: false,
                        held: false,
                    },
                );
            }
        }
    }

    /// Whether `call` must be settled before time passes: it is neither slow nor held, or its
    /// window is over (its sender gave it up: a timeout, a crash, a release that abandoned it).
    /// It is applied, lost, made slow or held first.
    fn due(&self, state: &StoreState, call: &Call) -> bool {
        !call.held && (!call.slow || !awaits(state, call))
    }
}

/// Whether the sender of `call` still awaits its reply.
fn awaits(state: &StoreState, call: &Call) -> bool {
    call.answered
        && state.nodes[index_of(call.request.from)]
            .core
            .as_ref()
            .and_then(StoreLease::outstanding)
            .is_some_and(|outstanding| outstanding.id == call.request.id)
}

impl StoreModel {
    /// What may happen at any instant: faults, crashes, restarts, operators, the store.
    fn free_actions(&self, state: &StoreState, actions: &mut Vec<StoreAction>) {
        let bounds = &self.spec.bounds;
        let can_fault = state.faults < bounds.max_faults;
        let can_hold = state.holds < bounds.max_holds;
        let can_delay = state.delays < bounds.max_delays;
        for (index, slot) in state.nodes.iter().enumerate() {
            let node = NodeId(index as u32);
            if slot.core.is_none() {
                actions.push(StoreAction::Restart(node));
                continue;
            }
            if can_fault && state.crashes < bounds.max_crashes {
                actions.push(StoreAction::Crash(node));
            }
            let may_resign = state.resigns < bounds.max_resigns && !slot.resigning;
            if may_resign && state.is_acting(index) {
                actions.push(StoreAction::Resign(node));
            }
        }
        for call in distinct(&state.calls) {
            if !call.answered || can_fault {
                actions.push(StoreAction::LoseRequest(*call));
            }
            if can_fault && awaits(state, call) {
                actions.push(StoreAction::FailRequest(*call));
            }
            if can_hold && !call.held {
                actions.push(StoreAction::HoldRequest(*call));
            }
            if can_delay && !call.slow && !call.held && awaits(state, call) {
                actions.push(StoreAction::DelayRequest(*call));
            }
        }
        for reply in distinct(&state.replies) {
            if reply.duplicate {
                continue;
            }
            if can_fault {
                actions.push(StoreAction::LoseReply(*reply));
                actions.push(StoreAction::FailReply(*reply));
            }
            if can_hold {
                actions.push(StoreAction::Duplicate(*reply));
            }
            if can_delay && !reply.slow {
                actions.push(StoreAction::DelayReply(*reply));
            }
        }
    }

    /// The store applies `call` at this instant of its clock; the reply goes back if its
    /// sender still awaits it (a reply it could not match would be dropped anyway).
    fn apply(&self, state: &mut StoreState, call: Call) {
        let now = state.store_now();
        if state
            .expires_at
            .is_some_and(|expires_at| expires_at <= state.time)
        {
            state.expires_at = None;
        }
        let outcome = state.store.apply(now, call.request);
        if self.spec.judge == ExpiryJudge::Store {
            if let StoreOutcome::Applied(_) = outcome {
                match call.request.op {
                    StoreOp::Acquire { .. } | StoreOp::Renew { .. } => {
                        let expires_at = global_instant(now + store_timing::TTL, state.store_rate);
                        state.expires_at = Some(u32::try_from(expires_at).unwrap_or(u32::MAX));
                    }
                    StoreOp::Release { .. } => state.expires_at = None,
                    StoreOp::Read => {}
                }
            }
        }
        if awaits(state, &call) {
            let reply = StoreReply {
                id: call.request.id,
                outcome,
            };
            insert_sorted(
                &mut state.replies,
                ReplyInFlight {
                    to: call.request.from,
                    reply,
                    slow: false,
                    duplicate: false,
                },
            );
        }
    }

    /// Hands `reply` to the core of node `to` at its local time.
    fn deliver(&self, state: &mut StoreState, to: NodeId, reply: StoreReply) -> Option<()> {
        let index = index_of(to);
        let now = state.local_now(index);
        let core = state.nodes[index].core.as_mut()?;
        core.handle_reply(now, reply);
        self.drain(state, index);
        Some(())
    }

    /// Node `index` crashes: its core and its connections are gone (a request it sent may
    /// still be applied, unanswered); its children run on under their guard.
    fn crash(&self, state: &mut StoreState, index: usize) -> Option<()> {
        let node = NodeId(index as u32);
        if state.is_acting(index) {
            state.history.crashed_while_acting = true;
        }
        state.nodes[index].core.take()?;
        state.nodes[index].resigning = false;
        for call in &mut state.calls {
            if call.request.from == node {
                call.answered = false;
            }
        }
        state.calls.sort_unstable();
        state.replies.retain(|reply| reply.to != node);
        state.crashes += 1;
        state.faults += 1;
        Some(())
    }

    /// Updates the children and the ghost history after a step, and forgets replies nobody
    /// can take any more.
    fn observe(&self, next: &mut StoreState) {
        let StoreState {
            time,
            nodes,
            history,
            ..
        } = next;
        for slot in nodes.iter_mut() {
            let now = local_time(*time, slot.rate);
            let acting = slot.core.as_ref().and_then(|core| {
                core.leadership(now)
                    .filter(|leadership| leadership.is_acting(now))
            });
            if slot
                .core
                .as_ref()
                .is_some_and(|core| core.leadership(now).is_none())
            {
                // A resigning holder whose lease ended has lapsed: nothing to report.
                slot.resigning = false;
            }
            supervise(&mut slot.children, acting, now, &mut history.acting);
        }
        let stale: Vec<usize> = (0..next.replies.len())
            .filter(|&position| {
                let reply = next.replies[position];
                !reply.duplicate
                    && next.nodes[index_of(reply.to)]
                        .core
                        .as_ref()
                        .and_then(StoreLease::outstanding)
                        .is_none_or(|outstanding| outstanding.id != reply.reply.id)
            })
            .collect();
        for position in stale.into_iter().rev() {
            next.replies.remove(position);
        }
        self.forget_tokens(next);
    }

    /// Forgets the highest token that acted once every token that could still start an acting
    /// interval is above it: a holder's own token, or one the store has yet to hand out.
    fn forget_tokens(&self, state: &mut StoreState) {
        let next_token = FencingToken(state.store.record(state.store_now()).token.0 + 1);
        let lowest = (0..state.nodes.len())
            .filter_map(|index| state.leadership(index))
            .map(|leadership| leadership.fencing_token)
            .fold(next_token, FencingToken::min);
        state.history.acting.forget_below(lowest);
    }
}

impl Model for StoreModel {
    type State = StoreState;
    type Action = StoreAction;

    fn init_states(&self) -> Vec<StoreState> {
        let mut states = Vec::new();
        for drifts in self.spec.drifts.assignments(self.spec.nodes) {
            for store_drift in &self.spec.store_drifts {
                let nodes = drifts
                    .iter()
                    .enumerate()
                    .map(|(index, drift)| StoreSlot {
                        rate: drift.rate(),
                        core: Some(StoreLease::new(
                            self.config,
                            NodeId(index as u32),
                            local_time(0, drift.rate()),
                        )),
                        resigning: false,
                        children: Vec::new(),
                    })
                    .collect();
                states.push(StoreState {
                    time: 0,
                    faults: 0,
                    crashes: 0,
                    resigns: 0,
                    holds: 0,
                    delays: 0,
                    nodes,
                    store: ReferenceStore::new(self.spec.judge, store_timing::TTL),
                    store_rate: store_drift.rate(),
                    expires_at: None,
                    calls: Vec::new(),
                    replies: Vec::new(),
                    history: StoreHistory::default(),
                });
            }
        }
        states
    }

    /// The enabled actions, in a fixed order: faults and external events first, the run's own
    /// progress last (the depth-first search takes the last first). Due timers are urgent:
    /// time advances only when no timer is due, no request has outlived its window, and no
    /// stopped child is left to report.
    fn actions(&self, state: &StoreState, actions: &mut Vec<StoreAction>) {
        self.free_actions(state, actions);
        let mut urgent = false;
        for (index, slot) in state.nodes.iter().enumerate() {
            if slot.resigning && slot.children.is_empty() {
                actions.push(StoreAction::ActingStopped(NodeId(index as u32)));
                urgent = true;
            }
        }
        for (index, slot) in state.nodes.iter().enumerate() {
            let Some(core) = &slot.core else {
                continue;
            };
            if core
                .poll_timeout()
                .is_some_and(|at| at <= state.local_now(index))
            {
                actions.push(StoreAction::Timeout(NodeId(index as u32)));
                urgent = true;
            }
        }
        for call in distinct(&state.calls) {
            actions.push(StoreAction::Apply(*call));
            urgent |= self.due(state, call);
        }
        for reply in distinct(&state.replies) {
            actions.push(StoreAction::Deliver(*reply));
            urgent |= !reply.slow && !reply.duplicate;
        }
        if !urgent {
            if let Some(next) = self.next_event(state) {
                if next <= self.horizon_ticks() {
                    actions.push(StoreAction::AdvanceTime);
                }
            }
        }
    }

    fn next_state(&self, last: &StoreState, action: StoreAction) -> Option<StoreState> {
        let mut next = last.clone();
        match action {
            StoreAction::AdvanceTime => next.time = self.next_event(last)?,
            StoreAction::Timeout(node) => {
                let index = index_of(node);
                let now = next.local_now(index);
                next.nodes[index].core.as_mut()?.handle_timeout(now);
                self.drain(&mut next, index);
            }
            StoreAction::Apply(call) => {
                take(&mut next.calls, &call)?;
                self.apply(&mut next, call);
            }
            StoreAction::Deliver(reply) => {
                take(&mut next.replies, &reply)?;
                self.deliver(&mut next, reply.to, reply.reply)?;
            }
            StoreAction::LoseRequest(_)
            | StoreAction::FailRequest(_)
            | StoreAction::DelayRequest(_)
            | StoreAction::HoldRequest(_) => self.request_fault(&mut next, action)?,
            StoreAction::LoseReply(_)
            | StoreAction::FailReply(_)
            | StoreAction::DelayReply(_)
            | StoreAction::Duplicate(_) => self.reply_fault(&mut next, action)?,
            action => self.operate(&mut next, action)?,
        }
        self.observe(&mut next);
        Some(next)
    }

    fn format_action(&self, action: &StoreAction) -> String {
        action.to_string()
    }

    fn properties(&self) -> Vec<Property<Self>> {
        properties::all()
    }
}

impl StoreModel {
    /// What befalls a request on its way: it is lost, fails unapplied, is slow or is held.
    fn request_fault(&self, next: &mut StoreState, action: StoreAction) -> Option<()> {
        match action {
            StoreAction::LoseRequest(call) => {
                take(&mut next.calls, &call)?;
                if call.answered {
                    next.faults += 1;
                }
            }
            StoreAction::DelayRequest(call) => {
                take(&mut next.calls, &call)?;
                insert_sorted(&mut next.calls, Call { slow: true, ..call });
                next.delays += 1;
            }
            StoreAction::HoldRequest(call) => {
                take(&mut next.calls, &call)?;
                insert_sorted(&mut next.calls, Call { held: true, ..call });
                next.holds += 1;
            }
            StoreAction::FailRequest(call) => {
                take(&mut next.calls, &call)?;
                next.faults += 1;
                let failed = StoreReply {
                    id: call.request.id,
                    outcome: StoreOutcome::Failed,
                };
                self.deliver(next, call.request.from, failed)?;
            }
            _ => unreachable!("next_state passes only these"),
        }
        Some(())
    }

    /// What befalls a reply on its way: it is lost, turns into a failure, is slow, or is
    /// delivered and duplicated.
    fn reply_fault(&self, next: &mut StoreState, action: StoreAction) -> Option<()> {
        match action {
            StoreAction::DelayReply(reply) => {
                take(&mut next.replies, &reply)?;
                insert_sorted(
                    &mut next.replies,
                    ReplyInFlight {
                        slow: true,
                        ..reply
                    },
                );
                next.delays += 1;
            }
            StoreAction::Duplicate(reply) => {
                take(&mut next.replies, &reply)?;
                let copy = ReplyInFlight {
                    duplicate: true,
                    ..reply
                };
                insert_sorted(&mut next.replies, copy);
                next.holds += 1;
                self.deliver(next, reply.to, reply.reply)?;
            }
            StoreAction::LoseReply(reply) => {
                take(&mut next.replies, &reply)?;
                next.faults += 1;
            }
            StoreAction::FailReply(reply) => {
                take(&mut next.replies, &reply)?;
                next.faults += 1;
                let failed = StoreReply {
                    id: reply.reply.id,
                    outcome: StoreOutcome::Failed,
                };
                self.deliver(next, reply.to, failed)?;
            }
            _ => unreachable!("next_state passes only these"),
        }
        Some(())
    }

    /// Crashes, restarts and the operator's resignation.
    fn operate(&self, next: &mut StoreState, action: StoreAction) -> Option<()> {
        match action {
            StoreAction::Crash(node) => self.crash(next, index_of(node))?,
            StoreAction::Restart(node) => {
                let index = index_of(node);
                if next.nodes[index].core.is_some() {
                    return None;
                }
                let now = next.local_now(index);
                next.nodes[index].core = Some(StoreLease::new(self.config, node, now));
            }
            StoreAction::Resign(node) => {
                let index = index_of(node);
                let now = next.local_now(index);
                next.nodes[index].core.as_mut()?.handle_resign(now).ok()?;
                next.resigns += 1;
                next.nodes[index].resigning = true;
                self.drain(next, index);
            }
            StoreAction::ActingStopped(node) => {
                let index = index_of(node);
                let now = next.local_now(index);
                next.nodes[index].resigning = false;
                let core = next.nodes[index].core.as_mut()?;
                // If the tenure lapsed meanwhile, there is nothing left to release.
                if core.handle_acting_stopped(now).is_ok() {
                    next.history.released = true;
                }
                self.drain(next, index);
            }
            _ => unreachable!("next_state handles the store's and the network's actions"),
        }
        Some(())
    }
}

/// Each distinct element of a sorted multiset once.
fn distinct<T: PartialEq>(sorted: &[T]) -> impl Iterator<Item = &T> + '_ {
    sorted
        .iter()
        .enumerate()
        .filter(|(position, item)| *position == 0 || sorted[position - 1] != **item)
        .map(|(_, item)| item)
}

fn insert_sorted<T: Ord>(sorted: &mut Vec<T>, item: T) {
    let position = sorted.partition_point(|other| *other < item);
    sorted.insert(position, item);
}

/// Removes one copy of `item` from a sorted multiset, if it is there.
fn take<T: Ord>(sorted: &mut Vec<T>, item: &T) -> Option<T> {
    let position = sorted.binary_search(item).ok()?;
    Some(sorted.remove(position))
}

/// Node ids are 0..n, so an id is its index.
fn index_of(node: NodeId) -> usize {
    node.0 as usize
}
