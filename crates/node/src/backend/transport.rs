//! [`StoreTransport`]: what the driver sends store requests through and receives replies from.
//!
//! A worker task owns the [`StoreClient`] and runs one request at a time, each bounded by the
//! request timeout. A request that times out is answered [`StoreOutcome::Failed`]; its future
//! is dropped midway, so the client starts its next request on a new connection (see
//! [`StoreClient::execute`]).
//!
//! The store-lease core has at most one request outstanding, and it sends a new one only after
//! giving up the previous one. So when the worker finds several requests queued, it runs only
//! the newest and answers the older ones `Failed` unrun ("superseded"): running a request the
//! core no longer waits for would only delay the one it does.
//!
//! Everything is bounded: the request queue, the reply queue, the replies made without the
//! worker, and each request's time.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tenure_core::{StoreOp, StoreOutcome, StoreReply, StoreRequest};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::backend::StoreClient;

/// Requests queued for the worker at most; the core keeps one outstanding.
const REQUEST_QUEUE_CAPACITY: usize = 8;
/// Replies the worker may have waiting for the driver.
const REPLY_QUEUE_CAPACITY: usize = 8;
/// Replies made by [`StoreTransport::send`] itself (to requests it could not queue) kept for
/// [`StoreTransport::recv`]; beyond this the oldest is dropped, its request long given up.
const REFUSED_CAPACITY: usize = 8;

const REQUEST_KINDS: usize = StoreOp::KINDS.len();
const OUTCOME_KINDS: usize = StoreOutcome::KINDS.len();

/// Runs store requests on a worker task. See the module docs.
pub struct StoreTransport<C: StoreClient> {
    requests: mpsc::Sender<StoreRequest>,
    replies: mpsc::Receiver<StoreReply>,
    /// Replies to requests that [`StoreTransport::send`] could not queue.
    refused: VecDeque<StoreReply>,
    counters: Arc<Counters>,
    worker: JoinHandle<()>,
    worker_gone_logged: bool,
    client: PhantomData<fn() -> C>,
}

/// A snapshot of a transport's counters, all monotonic since it started. Take two and
/// subtract ([`StoreCounters::since`]) for a rate, e.g. requests per poll interval
/// ([`StoreCounters::requests_per_interval`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreCounters {
    /// Requests run against the store, by kind (indexed as [`StoreOp::KINDS`]).
    pub requests: [u64; REQUEST_KINDS],
    /// Their outcomes, by request kind then outcome kind (as [`StoreOutcome::KINDS`]).
    pub outcomes: [[u64; OUTCOME_KINDS]; REQUEST_KINDS],
    /// Requests that ran out of the request timeout (also counted as failed outcomes).
    pub timeouts: u64,
    /// Requests answered `Failed` unrun because a newer one was queued behind them.
    pub superseded: u64,
    /// Requests answered `Failed` unrun because the queue was full or the worker gone.
    pub refused: u64,
    /// The time the worker spent running requests.
    pub busy: Duration,
}

/// Reads a transport's counters from anywhere (a metrics endpoint), without the transport.
#[derive(Clone, Debug)]
pub struct StoreCounterReader(Arc<Counters>);

impl<C: StoreClient> StoreTransport<C> {
    /// Starts the worker task on the current tokio runtime (so this must be called inside
    /// one). Each request may take `request_timeout` at most; it should not exceed the
    /// core's own request timeout, so that the worker is free again when the core sends its
    /// next request.
    #[must_use]
    pub fn new(client: C, request_timeout: Duration) -> StoreTransport<C> {
        let (request_sender, request_receiver) = mpsc::channel(REQUEST_QUEUE_CAPACITY);
        let (reply_sender, reply_receiver) = mpsc::channel(REPLY_QUEUE_CAPACITY);
        let counters = Arc::new(Counters::default());
        let worker = tokio::spawn(run_worker(Worker {
            client,
            requests: request_receiver,
            replies: reply_sender,
            counters: Arc::clone(&counters),
            request_timeout,
        }));
        StoreTransport {
            requests: request_sender,
            replies: reply_receiver,
            refused: VecDeque::new(),
            counters,
            worker,
            worker_gone_logged: false,
            client: PhantomData,
        }
    }

    /// Queues `request`. Never blocks and never fails: a request that cannot be queued is
    /// answered [`StoreOutcome::Failed`] through [`StoreTransport::recv`].
    pub fn send(&mut self, request: StoreRequest) {
        if let Err(error) = self.requests.try_send(request) {
            let request = match error {
                mpsc::error::TrySendError::Full(request)
                | mpsc::error::TrySendError::Closed(request) => request,
            };
            Counters::add(&self.counters.refused, 1);
            if self.refused.len() >= REFUSED_CAPACITY {
                self.refused.pop_front();
            }
            self.refused.push_back(StoreReply {
                id: request.id,
                outcome: StoreOutcome::Failed,
            });
        }
    }

    /// The next reply. Cancel-safe: a reply is taken only when this returns it, so it may be
    /// a branch of `tokio::select!`. Every request sent gets one reply, in no promised order.
    pub async fn recv(&mut self) -> StoreReply {
        if let Some(reply) = self.refused.pop_front() {
            return reply;
        }
        if let Some(reply) = self.replies.recv().await {
            return reply;
        }
        // The worker is gone, which only a panic in the client does: no reply will come, and
        // every later request is refused through `send`.
        if !self.worker_gone_logged {
            self.worker_gone_logged = true;
            tracing::error!("the store worker stopped; store requests fail from now on");
        }
        std::future::pending().await
    }

    /// The counters now.
    #[must_use]
    pub fn counters(&self) -> StoreCounters {
        self.counters.snapshot()
    }

    /// A reader of the counters that outlives borrows of the transport.
    #[must_use]
    pub fn counter_reader(&self) -> StoreCounterReader {
        StoreCounterReader(Arc::clone(&self.counters))
    }
}

/// The driver's view: the store client is the store-lease core's transport (protocol: Store
/// leases).
impl<C: StoreClient> tenure_driver::Transport<StoreRequest, StoreReply> for StoreTransport<C> {
    async fn send(&mut self, request: StoreRequest) {
        StoreTransport::send(self, request);
    }

    async fn recv(&mut self) -> StoreReply {
        StoreTransport::recv(self).await
    }
}

impl<C: StoreClient> Drop for StoreTransport<C> {
    fn drop(&mut self) {
        self.worker.abort();
    }
}

impl StoreCounterReader {
    /// The counters now.
    #[must_use]
    pub fn snapshot(&self) -> StoreCounters {
        self.0.snapshot()
    }
}

impl StoreCounters {
    /// Requests run against the store, of every kind.
    #[must_use]
    pub fn requests_total(&self) -> u64 {
        self.requests.iter().sum()
    }

    /// Requests that failed: run and failed (timeouts included), superseded or refused.
    #[must_use]
    pub fn failures(&self) -> u64 {
        let failed_index = StoreOutcome::Failed.kind_index();
        let failed: u64 = self.outcomes.iter().map(|kind| kind[failed_index]).sum();
        failed + self.superseded + self.refused
    }

    /// What was counted between `earlier` (a snapshot of the same transport) and this one.
    #[must_use]
    pub fn since(&self, earlier: &StoreCounters) -> StoreCounters {
        let mut difference = StoreCounters::default();
        for kind in 0..REQUEST_KINDS {
            difference.requests[kind] = self.requests[kind].saturating_sub(earlier.requests[kind]);
            for outcome in 0..OUTCOME_KINDS {
                difference.outcomes[kind][outcome] =
                    self.outcomes[kind][outcome].saturating_sub(earlier.outcomes[kind][outcome]);
            }
        }
        difference.timeouts = self.timeouts.saturating_sub(earlier.timeouts);
        difference.superseded = self.superseded.saturating_sub(earlier.superseded);
        difference.refused = self.refused.saturating_sub(earlier.refused);
        difference.busy = self.busy.saturating_sub(earlier.busy);
        difference
    }

    /// Requests run per `interval` between `earlier` and this snapshot, taken `elapsed`
    /// apart: with the poll interval, how many requests a node sends per poll.
    #[must_use]
    pub fn requests_per_interval(
        &self,
        earlier: &StoreCounters,
        elapsed: Duration,
        interval: Duration,
    ) -> f64 {
        if elapsed.is_zero() {
            return 0.0;
        }
        let requests = self.since(earlier).requests_total() as f64;
        requests * interval.as_secs_f64() / elapsed.as_secs_f64()
    }
}

/// The shared counters behind [`StoreCounters`].
#[derive(Debug, Default)]
struct Counters {
    requests: [AtomicU64; REQUEST_KINDS],
    outcomes: [[AtomicU64; OUTCOME_KINDS]; REQUEST_KINDS],
    timeouts: AtomicU64,
    superseded: AtomicU64,
    refused: AtomicU64,
    busy_nanos: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, amount: u64) {
        // Relaxed: each counter is read on its own, for metrics.
        counter.fetch_add(amount, Ordering::Relaxed);
    }

    fn snapshot(&self) -> StoreCounters {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        StoreCounters {
            requests: self.requests.each_ref().map(read),
            outcomes: self.outcomes.each_ref().map(|row| row.each_ref().map(read)),
            timeouts: read(&self.timeouts),
            superseded: read(&self.superseded),
            refused: read(&self.refused),
            busy: Duration::from_nanos(read(&self.busy_nanos)),
        }
    }
}

/// What the worker task owns.
struct Worker<C> {
    client: C,
    requests: mpsc::Receiver<StoreRequest>,
    replies: mpsc::Sender<StoreReply>,
    counters: Arc<Counters>,
    request_timeout: Duration,
}

/// Runs the requests until the transport is dropped.
async fn run_worker<C: StoreClient>(mut worker: Worker<C>) {
    while let Some(mut request) = worker.requests.recv().await {
        while let Ok(newer) = worker.requests.try_recv() {
            Counters::add(&worker.counters.superseded, 1);
            if !worker.reply(request, StoreOutcome::Failed).await {
                return;
            }
            request = newer;
        }
        let kind = request.op.kind_index();
        Counters::add(&worker.counters.requests[kind], 1);
        let started = Instant::now();
        let executed =
            tokio::time::timeout(worker.request_timeout, worker.client.execute(request)).await;
        let outcome = executed.unwrap_or_else(|_| {
            Counters::add(&worker.counters.timeouts, 1);
            StoreOutcome::Failed
        });
        let busy = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        Counters::add(&worker.counters.busy_nanos, busy);
        Counters::add(&worker.counters.outcomes[kind][outcome.kind_index()], 1);
        if !worker.reply(request, outcome).await {
            return;
        }
    }
}

impl<C> Worker<C> {
    /// Queues the reply; `false` when the transport is gone.
    async fn reply(&mut self, request: StoreRequest, outcome: StoreOutcome) -> bool {
        let reply = StoreReply {
            id: request.id,
            outcome,
        };
        self.replies.send(reply).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tenure_core::{
        Duration as CoreDuration, ExpiryJudge, FencingToken, Instant as CoreInstant, NodeId,
        ReferenceStore,
    };

    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(500);

    /// A client on a [`ReferenceStore`] that takes the given time per request, and records
    /// whether a request was abandoned midway (as the real clients' reconnection does).
    #[derive(Clone)]
    struct SlowReference {
        state: Arc<Mutex<SlowState>>,
    }

    struct SlowState {
        store: ReferenceStore,
        delays: VecDeque<Duration>,
        running: bool,
        interruptions: u32,
        executed: Vec<u64>,
    }

    impl SlowReference {
        fn new(delays: &[Duration]) -> SlowReference {
            let store = ReferenceStore::new(ExpiryJudge::Contenders, CoreDuration::from_secs(10));
            SlowReference {
                state: Arc::new(Mutex::new(SlowState {
                    store,
                    delays: delays.iter().copied().collect(),
                    running: false,
                    interruptions: 0,
                    executed: Vec::new(),
                })),
            }
        }

        fn interruptions(&self) -> u32 {
            self.state.lock().unwrap().interruptions
        }

        fn executed(&self) -> Vec<u64> {
            self.state.lock().unwrap().executed.clone()
        }
    }

    impl StoreClient for SlowReference {
        async fn execute(&mut self, request: StoreRequest) -> StoreOutcome {
            let delay = {
                let mut state = self.state.lock().unwrap();
                if std::mem::replace(&mut state.running, true) {
                    state.interruptions += 1;
                }
                state.executed.push(request.id);
                state.delays.pop_front().unwrap_or_default()
            };
            tokio::time::sleep(delay).await;
            let mut state = self.state.lock().unwrap();
            state.running = false;
            state.store.apply(CoreInstant::ZERO, request)
        }
    }

    fn request(id: u64, from: u32, op: StoreOp) -> StoreRequest {
        StoreRequest {
            id,
            from: NodeId(from),
            op,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_is_answered_as_the_store_answers_and_counted() {
        let client = SlowReference::new(&[]);
        let mut transport = StoreTransport::new(client, TIMEOUT);

        // An acquisition of the fresh record applies, a renewal with a stale token conflicts.
        transport.send(request(1, 7, StoreOp::Acquire { version: 0 }));
        let reply = transport.recv().await;
        assert_eq!(reply.id, 1);
        let StoreOutcome::Applied(record) = reply.outcome else {
            panic!("not applied: {reply:?}");
        };
        assert_eq!(record.holder, Some(NodeId(7)));
        transport.send(request(
            2,
            7,
            StoreOp::Renew {
                token: FencingToken(9),
            },
        ));
        assert!(matches!(
            transport.recv().await.outcome,
            StoreOutcome::Conflict(_)
        ));

        let counters = transport.counters();
        assert_eq!(counters.requests, [0, 1, 1, 0]);
        assert_eq!(counters.outcomes[1], [1, 0, 0]);
        assert_eq!(counters.outcomes[2], [0, 1, 0]);
        assert_eq!(counters.failures(), 0);
        assert_eq!(transport.counter_reader().snapshot(), counters);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_past_the_timeout_fails_and_the_next_starts_anew() {
        let client = SlowReference::new(&[TIMEOUT * 3]);
        let mut transport = StoreTransport::new(client.clone(), TIMEOUT);
        let started = tokio::time::Instant::now();

        // The first request hangs: it is answered Failed when the timeout runs out.
        transport.send(request(1, 1, StoreOp::Read));
        let reply = transport.recv().await;
        assert_eq!(
            reply,
            StoreReply {
                id: 1,
                outcome: StoreOutcome::Failed
            }
        );
        assert_eq!(started.elapsed(), TIMEOUT);

        // The next one runs, and the client saw that the first was abandoned midway.
        transport.send(request(2, 1, StoreOp::Read));
        assert!(matches!(
            transport.recv().await.outcome,
            StoreOutcome::Applied(_)
        ));
        assert_eq!(client.interruptions(), 1);
        let counters = transport.counters();
        assert_eq!((counters.timeouts, counters.failures()), (1, 1));
        assert_eq!(counters.busy, TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn recv_is_cancel_safe_in_select() {
        let delay = Duration::from_millis(30);
        let client = SlowReference::new(&[delay; 20]);
        let mut transport = StoreTransport::new(client, TIMEOUT);

        // Each request takes longer than the select's other branch, which fires first again
        // and again: no reply is lost for it.
        let mut cancelled = 0;
        for id in 1..=20 {
            transport.send(request(id, 1, StoreOp::Read));
            let reply = loop {
                tokio::select! {
                    reply = transport.recv() => break reply,
                    () = tokio::time::sleep(Duration::from_millis(7)) => cancelled += 1,
                }
            };
            assert_eq!(reply.id, id);
        }
        assert!(
            cancelled >= 20 * 4,
            "the select cancelled recv only {cancelled} times"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_queued_request_is_superseded_by_a_newer_one() {
        let client = SlowReference::new(&[Duration::from_millis(100)]);
        let mut transport = StoreTransport::new(client.clone(), TIMEOUT);

        // Request 1 runs; 2 and 3 queue behind it, and only 3 (the newest) runs after it.
        transport.send(request(1, 1, StoreOp::Read));
        tokio::task::yield_now().await;
        transport.send(request(2, 1, StoreOp::Read));
        transport.send(request(3, 1, StoreOp::Read));
        let mut replies = Vec::new();
        for _ in 0..3 {
            replies.push(transport.recv().await);
        }
        replies.sort();
        assert!(matches!(replies[0].outcome, StoreOutcome::Applied(_)));
        assert_eq!(
            replies[1],
            StoreReply {
                id: 2,
                outcome: StoreOutcome::Failed
            }
        );
        assert!(matches!(replies[2].outcome, StoreOutcome::Applied(_)));
        assert_eq!(client.executed(), [1, 3]);
        assert_eq!(transport.counters().superseded, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_beyond_a_full_queue_is_refused_at_once() {
        let client = SlowReference::new(&[TIMEOUT * 2]);
        let mut transport = StoreTransport::new(client, TIMEOUT);

        // The worker is busy with request 1 and the queue fills; the next request is answered
        // Failed without waiting for the worker.
        transport.send(request(1, 1, StoreOp::Read));
        tokio::task::yield_now().await;
        for id in 2..(2 + REQUEST_QUEUE_CAPACITY as u64) {
            transport.send(request(id, 1, StoreOp::Read));
        }
        let overflow = 2 + REQUEST_QUEUE_CAPACITY as u64;
        transport.send(request(overflow, 1, StoreOp::Read));
        let started = tokio::time::Instant::now();
        let reply = transport.recv().await;
        assert_eq!(
            reply,
            StoreReply {
                id: overflow,
                outcome: StoreOutcome::Failed
            }
        );
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert_eq!(transport.counters().refused, 1);
    }

    #[test]
    fn counters_give_requests_per_interval() {
        let earlier = StoreCounters {
            requests: [10, 1, 0, 0],
            ..StoreCounters::default()
        };
        let later = StoreCounters {
            requests: [30, 1, 8, 1],
            superseded: 2,
            ..StoreCounters::default()
        };
        let since = later.since(&earlier);
        assert_eq!(since.requests, [20, 0, 8, 1]);
        assert_eq!(since.failures(), 2);
        // 29 requests in 10 s is 3.625 per 1.25 s poll interval.
        let rate = later.requests_per_interval(
            &earlier,
            Duration::from_secs(10),
            Duration::from_millis(1250),
        );
        assert!((rate - 3.625).abs() < 1e-9, "{rate}");
    }
}
