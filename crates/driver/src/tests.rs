//! The driver on a paused tokio clock, with parts that record what they are asked to do.
//! The simulation (`tenure-sim`) exercises the same loop under faults; these tests pin the
//! rules of the loop itself, one per test.

use std::cell::RefCell;
use std::rc::Rc;

use tenure_core::{ConfigParams, Message, MessageKind, Term};
use tokio::time::Instant as TokioInstant;

use super::*;

/// Everything the parts were asked to do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Store(PersistentState),
    Send(Envelope),
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

struct TestTransport {
    log: Log,
    inbox: mpsc::UnboundedReceiver<Envelope>,
}

impl Transport for TestTransport {
    async fn send(&mut self, envelope: Envelope) {
        self.log.borrow_mut().push(Step::Send(envelope));
    }

    async fn recv(&mut self) -> Envelope {
        match self.inbox.recv().await {
            Some(envelope) => envelope,
            None => std::future::pending().await,
        }
    }
}

struct TestStorage {
    log: Log,
    fail: bool,
}

impl Storage for TestStorage {
    fn load(&mut self) -> io::Result<Option<PersistentState>> {
        Ok(None)
    }

    async fn store(&mut self, state: PersistentState) -> io::Result<()> {
        if self.fail {
            return Err(io::Error::other("disk full"));
        }
        self.log.borrow_mut().push(Step::Store(state));
        Ok(())
    }
}

/// A child that is gone only when the test says so (`die`), whether it was asked to stop or
/// not.
struct TestSink {
    log: Log,
    running: bool,
    die: mpsc::UnboundedReceiver<()>,
}

impl ActingSink for TestSink {
    async fn start(
        &mut self,
        fencing_token: FencingToken,
        _acting_until: Instant,
    ) -> io::Result<()> {
        self.running = true;
        self.log.borrow_mut().push(Step::Start(fencing_token));
        Ok(())
    }

    async fn extend(&mut self, _acting_until: Instant) -> io::Result<()> {
        self.log.borrow_mut().push(Step::Extend);
        Ok(())
    }

    async fn stop(&mut self) -> io::Result<()> {
        self.log.borrow_mut().push(Step::Stop);
        Ok(())
    }

    async fn stopped(&mut self) {
        if self.running {
            let _ = self.die.recv().await;
            self.running = false;
        }
    }
}

#[derive(Default)]
struct Recorded {
    observations: Vec<Observation>,
    last_status_timeouts: u64,
}

struct TestObserver(Rc<RefCell<Recorded>>);

impl Observer for TestObserver {
    fn observe(&mut self, _now: Instant, observation: &Observation) {
        self.0.borrow_mut().observations.push(observation.clone());
    }

    fn status(&mut self, status: &Status<'_>) {
        self.0.borrow_mut().last_status_timeouts = status.counters.timeouts;
    }
}

struct Harness {
    log: Log,
    recorded: Rc<RefCell<Recorded>>,
    inbox: mpsc::UnboundedSender<Envelope>,
    die: mpsc::UnboundedSender<()>,
    commands: mpsc::Sender<Command>,
    /// Health check results, for a driver built with them.
    health: mpsc::Sender<HealthCheck>,
    driver: Option<TestDriver>,
    command_receiver: Option<mpsc::Receiver<Command>>,
}

type TestDriver =
    Driver<TestTransport, TestClock, TestStorage, TestSink, TestObserver, Box<dyn FnMut() -> u64>>;

/// The failed health checks in a row after which the tests' driver gives up.
const HEALTH_FAILURES: u32 = 3;

fn harness(members: &[u32], fail_store: bool) -> Harness {
    let config = Arc::new(
        Config::new(ConfigParams {
            members: members.iter().copied().map(NodeId).collect(),
            ..ConfigParams::default()
        })
        .expect("valid config"),
    );
    let log: Log = Rc::default();
    let recorded = Rc::new(RefCell::new(Recorded::default()));
    let (inbox, inbox_receiver) = mpsc::unbounded_channel();
    let (die, die_receiver) = mpsc::unbounded_channel();
    let (commands, command_receiver) = mpsc::channel(4);
    let parts = Parts {
        transport: TestTransport {
            log: log.clone(),
            inbox: inbox_receiver,
        },
        clock: TestClock {
            origin: TokioInstant::now(),
        },
        storage: TestStorage {
            log: log.clone(),
            fail: fail_store,
        },
        sink: TestSink {
            log: log.clone(),
            running: false,
            die: die_receiver,
        },
        observer: TestObserver(recorded.clone()),
        entropy: Box::new(|| 0_u64) as Box<dyn FnMut() -> u64>,
    };
    let (health, health_receiver) = mpsc::channel(4);
    let policy = HealthPolicy {
        failures: std::num::NonZeroU32::new(HEALTH_FAILURES).expect("positive"),
    };
    let driver = Driver::new(config, NodeId(1), parts)
        .expect("boots")
        .with_health_checks(health_receiver, policy);
    Harness {
        log,
        recorded,
        inbox,
        die,
        commands,
        health,
        driver: Some(driver),
        command_receiver: Some(command_receiver),
    }
}

impl Harness {
    /// Spawns the driver on the current `LocalSet`.
    fn spawn(&mut self) -> tokio::task::JoinHandle<Result<(), DriverError>> {
        let driver = self.driver.take().expect("spawned once");
        let commands = self.command_receiver.take().expect("spawned once");
        tokio::task::spawn_local(driver.run(commands))
    }

    fn steps(&self) -> Vec<Step> {
        self.log.borrow().clone()
    }
}

async fn advance(millis: u64) {
    tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
}

fn local() -> tokio::task::LocalSet {
    tokio::task::LocalSet::new()
}

#[tokio::test(start_paused = true)]
async fn a_vote_is_durable_before_the_reply_leaves() {
    local()
        .run_until(async {
            let mut harness = harness(&[1, 2, 3], false);
            let _driver = harness.spawn();

            // Phase 1: out of boot quarantine (one lease), a vote request arrives.
            advance(2_100).await;
            harness.log.borrow_mut().clear();
            let request = Envelope {
                from: NodeId(2),
                to: NodeId(1),
                message: Message::RequestVote { term: Term(1) },
            };
            harness.inbox.send(request).expect("driver alive");
            advance(1).await;

            // Phase 2: the store comes first, the reply after it (persist-before-send).
            let steps = harness.steps();
            let vote = PersistentState {
                term: Term(1),
                voted_for: Some(NodeId(2)),
            };
            let reply = Envelope {
                from: NodeId(1),
                to: NodeId(2),
                message: Message::VoteReply {
                    term: Term(1),
                    granted: true,
                },
            };
            assert_eq!(steps, vec![Step::Store(vote), Step::Send(reply)]);
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn a_single_node_acts_extends_and_hands_over_on_shutdown() {
    local()
        .run_until(async {
            let mut harness = harness(&[1], false);
            let driver = harness.spawn();

            // Phase 1: a fresh single node elects itself and starts acting with token 1.
            advance(1).await;
            assert_eq!(
                harness.steps()[..2],
                [
                    Step::Store(PersistentState {
                        term: Term(1),
                        voted_for: Some(NodeId(1))
                    }),
                    Step::Start(FencingToken(1)),
                ]
            );

            // Phase 2: every heartbeat renews the lease and extends the acting deadline.
            advance(1_000).await;
            let extends = harness
                .steps()
                .iter()
                .filter(|step| **step == Step::Extend)
                .count();
            assert_eq!(extends, 4, "one extension per 250 ms heartbeat");

            // Phase 3: shutdown stops the child, waits for it, hands over and exits cleanly.
            harness
                .commands
                .send(Command::Shutdown)
                .await
                .expect("alive");
            advance(1).await;
            assert_eq!(harness.steps().last(), Some(&Step::Stop));
            assert!(!driver.is_finished(), "waits for the child to be gone");
            harness.die.send(()).expect("sink alive");
            let result = driver.await.expect("no panic");
            assert!(result.is_ok(), "{result:?}");
            let observations = harness.recorded.borrow().observations.clone();
            assert!(observations.contains(&Observation::HandedOver(Ok(()))));
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn a_store_failure_stops_acting_and_ends_the_loop() {
    local()
        .run_until(async {
            let mut harness = harness(&[1], true);
            let driver = harness.spawn();

            // The first election must persist the vote for itself, which fails.
            advance(1).await;
            let result = driver.await.expect("no panic");
            assert!(matches!(result, Err(DriverError::Store(_))), "{result:?}");
            assert!(
                !harness
                    .steps()
                    .iter()
                    .any(|step| matches!(step, Step::Send(_) | Step::Start(_))),
                "nothing is sent or started on state that is not durable"
            );
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn a_child_lost_while_leading_hands_leadership_over() {
    local()
        .run_until(async {
            let mut harness = harness(&[1], false);
            let _driver = harness.spawn();
            advance(1).await;

            // The child dies on its own while the lease still runs.
            harness.die.send(()).expect("sink alive");
            advance(1).await;

            let observations = harness.recorded.borrow().observations.clone();
            assert!(observations.contains(&Observation::ChildLost(Ok(()))));
            assert!(observations.contains(&Observation::HandedOver(Ok(()))));
            // protocol: Campaign holds. The first loss holds campaigns for one lease.
            let lease = ConfigParams::default().lease_duration;
            assert!(observations.contains(&Observation::CampaignHeld {
                losses: 1,
                hold: lease
            }));
        })
        .await;
}

#[test]
fn campaign_holds_double_with_every_loss_in_a_row_up_to_the_cap() {
    let holds: Vec<u32> = (1..=8).map(super::campaign_hold_leases).collect();
    assert_eq!(holds, [1, 2, 4, 8, 16, 32, 32, 32]);
    assert_eq!(super::campaign_hold_leases(u32::MAX), 32);
}

#[test]
fn stored_states_only_move_forward() {
    // The order behind the driver's paired persist assertions: a term never goes back, and
    // within a term a vote is cast once and never changed or withdrawn.
    let state = |term: u64, voted_for: Option<u32>| PersistentState {
        term: Term(term),
        voted_for: voted_for.map(NodeId),
    };
    let forward = [
        (state(1, None), state(1, None)),
        (state(1, None), state(1, Some(2))),
        (state(1, Some(2)), state(1, Some(2))),
        (state(1, Some(2)), state(2, None)),
        (state(1, Some(2)), state(3, Some(1))),
    ];
    for (earlier, later) in forward {
        assert!(
            super::not_after(earlier, later),
            "{earlier:?} then {later:?}"
        );
    }
    let backward = [
        (state(2, None), state(1, None)),
        (state(2, None), state(1, Some(2))),
        (state(1, Some(2)), state(1, None)),
        (state(1, Some(2)), state(1, Some(3))),
    ];
    for (earlier, later) in backward {
        assert!(
            !super::not_after(earlier, later),
            "{earlier:?} then {later:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn an_isolated_follower_wakes_only_when_a_timer_is_due() {
    local()
        .run_until(async {
            let mut harness = harness(&[1, 2, 3], false);
            let _driver = harness.spawn();

            // Ten seconds alone: quarantine, then pre-vote rounds that time out every
            // election_round_timeout (500 ms) plus jitter (0 here). No busy loop: per round,
            // the bounded resends (protocol: Election timing) and the round's end.
            advance(10_000).await;
            let timeouts = harness.recorded.borrow().last_status_timeouts;
            let rounds = (10_000 - 2_000) / 500;
            let per_round = 1 + tenure_core::MAX_ELECTION_RESENDS;
            assert!(
                timeouts <= per_round * rounds + 2,
                "{timeouts} timeouts for {rounds} rounds"
            );
            let pre_votes = harness
                .steps()
                .iter()
                .filter(|step| {
                    matches!(step, Step::Send(envelope) if envelope.message.kind() == MessageKind::PreVote)
                })
                .count() as u64;
            assert!(pre_votes >= rounds, "it keeps trying: {pre_votes} pre-votes");
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn an_unhealthy_child_is_stopped_before_leadership_is_handed_over() {
    local()
        .run_until(async {
            let mut harness = harness(&[1], false);
            let driver = harness.spawn();
            advance(1).await;
            assert!(harness.steps().contains(&Step::Start(FencingToken(1))));

            // Phase 1: failures short of the policy change nothing but the count.
            let failed = || HealthCheck::Failed("exit status 1".to_string());
            for _ in 1..HEALTH_FAILURES {
                harness.health.send(failed()).await.expect("driver alive");
                advance(1).await;
            }
            assert!(!harness.steps().contains(&Step::Stop));

            // Phase 2: the last failure in a row stops the child; nothing is handed over while
            // it still runs (protocol: Health-gated acting; protocol: Graceful handover).
            harness.health.send(failed()).await.expect("driver alive");
            advance(1).await;
            assert_eq!(harness.steps().last(), Some(&Step::Stop));
            let observations = harness.recorded.borrow().observations.clone();
            assert!(observations.contains(&Observation::Unhealthy(Ok(()))));
            assert!(!observations
                .iter()
                .any(|observation| matches!(observation, Observation::HandedOver(_))));
            // protocol: Campaign holds. A health give-up counts as a lost leadership.
            let lease = ConfigParams::default().lease_duration;
            assert!(observations.contains(&Observation::CampaignHeld {
                losses: 1,
                hold: lease
            }));
            assert!(observations.contains(&Observation::HealthCheckFailed {
                consecutive_failures: HEALTH_FAILURES,
                failures: HEALTH_FAILURES,
                reason: "exit status 1".to_string(),
            }));

            // Phase 3: once the child is gone, the handover goes out; no ChildLost, since the
            // driver stopped the child itself.
            harness.die.send(()).expect("sink alive");
            advance(1).await;
            let observations = harness.recorded.borrow().observations.clone();
            assert!(observations.contains(&Observation::HandedOver(Ok(()))));
            assert!(!observations
                .iter()
                .any(|observation| matches!(observation, Observation::ChildLost(_))));
            assert!(!driver.is_finished());
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn a_passing_check_starts_the_count_over() {
    local()
        .run_until(async {
            let mut harness = harness(&[1], false);
            let _driver = harness.spawn();
            advance(1).await;

            // Failures with a pass in between never reach the policy's count in a row.
            let failed = || HealthCheck::Failed("timed out after 5s".to_string());
            for check in [failed(), failed(), HealthCheck::Passed, failed(), failed()] {
                harness.health.send(check).await.expect("driver alive");
                advance(1).await;
            }
            assert!(!harness.steps().contains(&Step::Stop));
            let observations = harness.recorded.borrow().observations.clone();
            assert!(observations.contains(&Observation::HealthRecovered { after_failures: 2 }));
            assert!(!observations
                .iter()
                .any(|observation| matches!(observation, Observation::Unhealthy(_))));
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn a_paused_follower_of_a_healthy_leader_refuses_its_timeout_now_leases_later() {
    // protocol: Campaign holds. A healthy leader's heartbeats keep the follower's election
    // timer from firing, so a pause renewed only at timers would lapse after one lease and a
    // later TimeoutNow would make the paused node lead.
    local()
        .run_until(async {
            let mut harness = harness(&[1, 2, 3], false);
            let _driver = harness.spawn();
            advance(2_100).await;
            let (reply, answer) = oneshot::channel();
            harness
                .commands
                .send(Command::Pause { reply })
                .await
                .expect("driver alive");
            assert!(
                !answer.await.expect("an answer"),
                "a follower was not leading"
            );
            // Five leases of heartbeats from leader 2, one every 250 ms.
            for seq in 1..=40 {
                let heartbeat = Envelope {
                    from: NodeId(2),
                    to: NodeId(1),
                    message: Message::Heartbeat { term: Term(1), seq },
                };
                harness.inbox.send(heartbeat).expect("driver alive");
                advance(250).await;
            }
            harness.log.borrow_mut().clear();
            let timeout_now = Envelope {
                from: NodeId(2),
                to: NodeId(1),
                message: Message::TimeoutNow { term: Term(1) },
            };
            harness.inbox.send(timeout_now).expect("driver alive");
            advance(1).await;
            let campaigned = harness.steps().iter().any(|step| {
                matches!(step, Step::Send(envelope)
                    if envelope.message.kind() == MessageKind::RequestVote)
            });
            assert!(
                !campaigned,
                "a paused node campaigned: {:?}",
                harness.steps()
            );
        })
        .await;
}
