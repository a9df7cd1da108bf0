//! The driver around a store lease (protocol: Store leases), on a paused tokio clock, with a
//! transport that answers from a [`ReferenceStore`] at once, or fails every request.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use tenure_core::{
    ExpiryJudge, Record, ReferenceStore, StoreLease, StoreLeaseConfig, StoreLeaseParams, StoreOp,
    StoreOutcome, StoreReply, StoreRequest,
};
use tokio::time::Instant as TokioInstant;

use super::*;

const LEASE: Duration = Duration::from_secs(2);
const STOP_MARGIN: Duration = Duration::from_millis(500);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Request(StoreOp),
    Start(FencingToken),
    Extend,
    Stop,
}

type Log = Rc<RefCell<Vec<Step>>>;

struct TestClock {
    origin: TokioInstant,
}

impl Clock for TestClock {
    fn now(&self) -> Instant {
        let elapsed = TokioInstant::now() - self.origin;
        Instant::from_nanos(1_000_000_000 + elapsed.as_nanos() as u64)
    }

    async fn sleep_until(&self, deadline: Instant) {
        let nanos = deadline.as_nanos().saturating_sub(1_000_000_000);
        tokio::time::sleep_until(self.origin + std::time::Duration::from_nanos(nanos)).await;
    }
}

/// How the test store answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answers {
    /// Applies each request at once.
    AtOnce,
    /// Applies each request after this long, as a store across a network does, and only if the
    /// node is still there to send it: a request still queued when the driver returns is lost,
    /// as it is when the process exits.
    After(std::time::Duration),
    /// Answers every request [`StoreOutcome::Failed`].
    Failing,
    /// Never answers: a store cut off.
    Silent,
}

/// Applies each request to a shared store, as [`Answers`] says.
struct StoreTransport {
    log: Log,
    store: Rc<RefCell<ReferenceStore>>,
    answers: Rc<Cell<Answers>>,
    replies: mpsc::UnboundedSender<StoreReply>,
    inbox: mpsc::UnboundedReceiver<StoreReply>,
}

impl Transport<StoreRequest, StoreReply> for StoreTransport {
    async fn send(&mut self, request: StoreRequest) {
        self.log.borrow_mut().push(Step::Request(request.op));
        let (store, replies) = (self.store.clone(), self.replies.clone());
        let answer = move |outcome: Option<StoreOutcome>| {
            let outcome =
                outcome.unwrap_or_else(|| store.borrow_mut().apply(Instant::ZERO, request));
            let _ = replies.send(StoreReply {
                id: request.id,
                outcome,
            });
        };
        match self.answers.get() {
            Answers::Silent => {}
            Answers::AtOnce => answer(None),
            Answers::Failing => answer(Some(StoreOutcome::Failed)),
            Answers::After(delay) => {
                let replies = self.replies.clone();
                tokio::task::spawn_local(async move {
                    tokio::time::sleep(delay).await;
                    if !replies.is_closed() {
                        answer(None);
                    }
                });
            }
        }
    }

    async fn recv(&mut self) -> StoreReply {
        match self.inbox.recv().await {
            Some(reply) => reply,
            None => std::future::pending().await,
        }
    }
}

/// A child that is gone as soon as it is asked to stop.
struct TestSink {
    log: Log,
    stopping: bool,
}

impl ActingSink for TestSink {
    async fn start(&mut self, fencing_token: FencingToken, _until: Instant) -> io::Result<()> {
        self.log.borrow_mut().push(Step::Start(fencing_token));
        Ok(())
    }

    async fn extend(&mut self, _acting_until: Instant) -> io::Result<()> {
        self.log.borrow_mut().push(Step::Extend);
        Ok(())
    }

    async fn stop(&mut self) -> io::Result<()> {
        self.log.borrow_mut().push(Step::Stop);
        self.stopping = true;
        Ok(())
    }

    async fn stopped(&mut self) {
        if self.stopping {
            self.stopping = false;
        } else {
            std::future::pending::<()>().await;
        }
    }
}

struct Harness {
    log: Log,
    store: Rc<RefCell<ReferenceStore>>,
    /// How the store answers from now on.
    answers: Rc<Cell<Answers>>,
    commands: mpsc::Sender<Command>,
    run: tokio::task::JoinHandle<Result<(), DriverError>>,
}

/// Spawns a driver around a store lease for node `id` on the current `LocalSet`.
fn spawn(id: u32, store: Rc<RefCell<ReferenceStore>>, answers: Answers) -> Harness {
    let log: Log = Rc::default();
    let answers = Rc::new(Cell::new(answers));
    let params = StoreLeaseParams::for_lease(LEASE, STOP_MARGIN, ExpiryJudge::Contenders);
    let config = StoreLeaseConfig::new(params).expect("valid store-lease config");
    let clock = TestClock {
        origin: TokioInstant::now(),
    };
    let core = StoreLease::new(config, NodeId(id), clock.now());
    let (replies, inbox) = mpsc::unbounded_channel();
    let parts = Parts {
        transport: StoreTransport {
            log: log.clone(),
            store: store.clone(),
            answers: answers.clone(),
            replies,
            inbox,
        },
        clock,
        storage: Stateless,
        sink: TestSink {
            log: log.clone(),
            stopping: false,
        },
        observer: (),
        entropy: || 0_u64,
    };
    let (commands, command_receiver) = mpsc::channel(4);
    let driver = Driver::with_election(core, parts);
    let run = tokio::task::spawn_local(driver.run(command_receiver));
    Harness {
        log,
        store,
        answers,
        commands,
        run,
    }
}

fn new_store() -> Rc<RefCell<ReferenceStore>> {
    Rc::new(RefCell::new(ReferenceStore::new(
        ExpiryJudge::Contenders,
        LEASE,
    )))
}

/// Asks the driver to shut down and waits up to `seconds` (of paused time) for it to return
/// `Ok`.
async fn shut_down(harness: &mut Harness, seconds: u64) {
    harness
        .commands
        .send(Command::Shutdown)
        .await
        .expect("driver alive");
    let run = &mut harness.run;
    let result = tokio::time::timeout(std::time::Duration::from_secs(seconds), run)
        .await
        .expect("the driver returns after a shutdown")
        .expect("the driver task did not panic");
    assert!(result.is_ok(), "{result:?}");
}

async fn advance(millis: u64) {
    tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
}

#[tokio::test(start_paused = true)]
async fn a_lone_node_takes_a_vacant_store_and_acts_under_its_token() {
    // protocol: Store leases
    tokio::task::LocalSet::new()
        .run_until(async {
            let harness = spawn(1, new_store(), Answers::AtOnce);

            // Phase 1: the first read finds the record vacant; the acquisition follows at once
            // and the child starts under the store's token.
            advance(1).await;
            let steps = harness.log.borrow().clone();
            assert_eq!(
                steps[..3],
                [
                    Step::Request(StoreOp::Read),
                    Step::Request(StoreOp::Acquire { version: 0 }),
                    Step::Start(FencingToken(1)),
                ]
            );

            // Phase 2: renewals every L/8 extend the child's deadline, and nothing stops it.
            harness.log.borrow_mut().clear();
            advance(2_000).await;
            let steps = harness.log.borrow().clone();
            let renewals = steps
                .iter()
                .filter(|step| matches!(step, Step::Request(StoreOp::Renew { .. })))
                .count();
            assert!(
                (7..=9).contains(&renewals),
                "{renewals} renewals in 2 s: {steps:?}"
            );
            assert!(steps.contains(&Step::Extend));
            assert!(!steps.contains(&Step::Stop));
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_stops_the_child_before_releasing_the_record() {
    // protocol: Graceful handover
    tokio::task::LocalSet::new()
        .run_until(async {
            let mut harness = spawn(1, new_store(), Answers::AtOnce);
            advance(500).await;
            harness.log.borrow_mut().clear();

            shut_down(&mut harness, 5).await;

            // The child is stopped first, the release follows, and the record is vacant.
            let steps = harness.log.borrow().clone();
            let stop = steps.iter().position(|step| *step == Step::Stop);
            let release = steps
                .iter()
                .position(|step| matches!(step, Step::Request(StoreOp::Release { .. })));
            assert!(stop.is_some() && release.is_some(), "{steps:?}");
            assert!(stop < release, "stop before release: {steps:?}");
            let record = harness.store.borrow().record(Instant::ZERO);
            assert_eq!(record.holder, None);
            assert_eq!(record.token, FencingToken(1));
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_returns_only_once_a_slow_store_has_applied_the_release() {
    // protocol: Graceful handover
    tokio::task::LocalSet::new()
        .run_until(async {
            let mut harness = spawn(
                1,
                new_store(),
                Answers::After(std::time::Duration::from_millis(40)),
            );
            advance(500).await;
            assert_eq!(
                harness.store.borrow().record(Instant::ZERO).holder,
                Some(NodeId(1))
            );

            shut_down(&mut harness, 5).await;

            // Returning before the release reached the store would leave the record held for
            // a whole lease: the next node would wait for expiry instead of taking it at once.
            let record = harness.store.borrow().record(Instant::ZERO);
            assert_eq!(record.holder, None, "{:?}", harness.log.borrow());
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_gives_up_on_a_store_that_never_answers_the_release() {
    // protocol: Graceful handover
    tokio::task::LocalSet::new()
        .run_until(async {
            let mut harness = spawn(1, new_store(), Answers::AtOnce);
            advance(500).await;
            harness.answers.set(Answers::Silent);

            let asked = TokioInstant::now();
            shut_down(&mut harness, 30).await;

            // The child went first; the release was sent and given up after its timeout.
            let waited = TokioInstant::now() - asked;
            assert!(waited <= LEASE.into(), "waited {waited:?}");
            let steps = harness.log.borrow().clone();
            let stop = steps.iter().position(|step| *step == Step::Stop);
            let release = steps
                .iter()
                .position(|step| matches!(step, Step::Request(StoreOp::Release { .. })));
            assert!(stop.is_some() && stop < release, "{steps:?}");
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn a_store_that_fails_every_request_never_lets_the_node_act() {
    // protocol: The store-lease acting rule
    tokio::task::LocalSet::new()
        .run_until(async {
            let harness = spawn(1, new_store(), Answers::Failing);
            advance(10_000).await;
            let steps = harness.log.borrow().clone();
            assert!(
                steps.iter().all(|step| matches!(step, Step::Request(_))),
                "{steps:?}"
            );
            // One read per poll interval at most: the store is not hammered.
            assert!(steps.len() <= 10_000 / 250 + 1, "{} requests", steps.len());
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn a_second_node_takes_over_only_a_lease_after_the_holder_went_quiet() {
    // protocol: Who judges expiry
    tokio::task::LocalSet::new()
        .run_until(async {
            let store = new_store();
            let first = spawn(1, store.clone(), Answers::AtOnce);
            advance(100).await;
            let second = spawn(2, store.clone(), Answers::AtOnce);

            // Phase 1: while the first renews, the second only reads.
            advance(3_000).await;
            assert!(!second
                .log
                .borrow()
                .iter()
                .any(|s| matches!(s, Step::Start(_))));

            // Phase 2: the first dies silently (its task is gone: no renewal, no release).
            first.run.abort();
            let died = TokioInstant::now();
            let deadline = died + std::time::Duration::from_secs(4);
            while !second.log.borrow().contains(&Step::Start(FencingToken(2))) {
                assert!(TokioInstant::now() < deadline, "no takeover within 4 s");
                advance(10).await;
            }

            // Phase 3: not before a whole lease after its latest sighting of a new version,
            // and at most a lease plus a poll plus a renew interval after the death.
            let took = TokioInstant::now() - died;
            assert!(
                took >= std::time::Duration::from_millis(2_000 - 250),
                "{took:?}"
            );
            assert!(
                took <= std::time::Duration::from_millis(2_000 + 250 + 250 + 20),
                "{took:?}"
            );
            let Record { holder, token, .. } = store.borrow().record(Instant::ZERO);
            assert_eq!((holder, token), (Some(NodeId(2)), FencingToken(2)));
        })
        .await;
}
