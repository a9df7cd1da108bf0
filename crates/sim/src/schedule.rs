//! Fault schedules: which faults strike when, drawn from a seed or written by hand.
//!
//! A [`Schedule`] is a list of [`Timed`] faults, then a heal (every fault ends, every host runs
//! again), then a quiet stretch in which the liveness oracle expects a leader to act. Faults
//! may overlap: a crash during a partition during message loss is the point.
//!
//! Targets are resolved when a fault strikes, so a schedule stays meaningful when it is shrunk
//! or replayed against another variant: [`Target::Leader`] is whichever node leads at that
//! moment. A fault's end (a restart, a repair) applies to the nodes its start resolved.
//!
//! Schedules print and parse in one line, which is how a failure names the run to reproduce:
//!
//! ```text
//! nodes=3 heal=45000 end=60000; 2500 crash(leader, 3000); 4100 loss(200, 5000)
//! ```

use std::fmt;
use std::str::FromStr;

use crate::rng::Rng;
pub use crate::world::CrashPoint;

/// The most nodes a simulated cluster has; node sets are bit masks of this width.
pub const MAX_NODES: u8 = 8;

/// The earliest a generated fault strikes: the first leader is normally elected by then
/// (boot quarantine of one lease, jitter, three round trips).
pub const FIRST_FAULT_MS: u32 = 2_500;

/// How long before the end of a run the heal comes: enough for the liveness bound of every
/// configuration the campaign draws (at most about ten seconds) plus a margin.
pub const QUIET_MS: u32 = 15_000;

/// Which node a fault strikes, resolved when it strikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// The node that acts now, or else the last one seen leading.
    Leader,
    /// Node `n + 1` (`n1`, `n2`, …).
    Node(u8),
    /// The `k + 1`-th node in id order that is not the leader (`f1`, `f2`, …).
    Follower(u8),
}

/// One fault and its parameters (durations in milliseconds of global time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The host dies (its child is left to its deadline guard) and restarts after `down_ms`.
    Crash { target: Target, down_ms: u32 },
    /// Every link of `target` is cut both ways for `ms`.
    Isolate { target: Target, ms: u32 },
    /// The nodes in `mask` are cut off from the others, both ways, for `ms`.
    Split { mask: u8, ms: u32 },
    /// A minority of the cluster (⌊N/2⌋ nodes: the leader and the first followers if
    /// `with_leader`, else the first followers) is cut off from the majority for `ms`.
    Minority { with_leader: bool, ms: u32 },
    /// Datagrams from `from` to `to` are lost for `ms`; the other direction works.
    OneWay { from: Target, to: Target, ms: u32 },
    /// `target` hears nobody, yet everybody hears it, for `ms`.
    Asymmetric { target: Target, ms: u32 },
    /// The link between `a` and `b` goes down and up `flaps` times, `period_ms` each way.
    Flapping {
        a: Target,
        b: Target,
        period_ms: u32,
        flaps: u16,
    },
    /// Every datagram is lost with probability `permille`/1000 for `ms`.
    Loss { permille: u16, ms: u32 },
    /// The network's latency ceiling rises to `max_ms` for `ms`.
    Latency { max_ms: u32, ms: u32 },
    /// Every datagram is sent twice with probability `permille`/1000 for `ms`, the copy up
    /// to `delay_max_ms` later.
    Duplication {
        permille: u16,
        delay_max_ms: u32,
        ms: u32,
    },
    /// The process of `target` freezes for `ms` while its clock runs on.
    Pause { target: Target, ms: u32 },
    /// From now on the clock of `slow` runs at `1 − ρ` and every other clock at `1 + ρ`: the
    /// worst case for leases, since a slow leader's lease lasts longest in real time and fast
    /// followers' promises end soonest.
    Drift { slow: Target },
    /// `target` is asked to hand leadership over.
    Resign { target: Target },
    /// `target` shuts down gracefully and starts again after `down_ms`.
    Shutdown { target: Target, down_ms: u32 },
    /// Every node in turn shuts down gracefully for `down_ms`, one every `gap_ms`.
    RollingRestart { gap_ms: u32, down_ms: u32 },
    /// Every host crashes at once and all restart after `down_ms`.
    ClusterRestart { down_ms: u32 },
    /// An adversary on the path from `from` to `to` (every other node if `None`) holds back
    /// each datagram with probability `permille`/1000 for `ms`, and releases it later, normally
    /// once its receiver has moved to a later term: genuine, authenticated, within the replay
    /// window if the sender has not sent too much since (the real wire's rule decides on
    /// receipt).
    Hold {
        from: Target,
        to: Option<Target>,
        permille: u16,
        ms: u32,
    },
    /// `target` dies at the next `point` of its driver's drain (between a `Persist` and the
    /// sends that depend on it), and restarts `down_ms` after it died.
    CrashPoint {
        target: Target,
        point: CrashPoint,
        down_ms: u32,
    },
    /// Every heartbeat `target` sends is lost for `ms`; everything else it sends arrives. A
    /// node that wins pre-votes and votes but can never hold a lease: with ranked elections
    /// it must not starve the cluster (protocol: Election timing).
    MuteHeartbeats { target: Target, ms: u32 },
    /// The daemon that `target` runs now hangs: it runs on, but each of its health checks
    /// fails by its timeout until the daemon is stopped (protocol: Health-gated acting).
    Hang { target: Target },
    /// Every daemon's health checks fail at once, fast, for `ms`: a database they all need is
    /// down (protocol: Campaign holds).
    Outage { ms: u32 },
    /// Store runs only: the store's host dies and starts again after `down_ms`. Its record
    /// survives, as a durable store's would; requests in flight to it and replies it had yet
    /// to send are lost.
    StoreRestart { down_ms: u32 },
}

/// The kind of a fault, for reports (failover times are grouped by it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    Crash,
    Isolate,
    Split,
    Minority,
    OneWay,
    Asymmetric,
    Flapping,
    Loss,
    Latency,
    Duplication,
    Pause,
    Drift,
    Resign,
    Shutdown,
    RollingRestart,
    ClusterRestart,
    Hold,
    CrashPoint,
    MuteHeartbeats,
    Hang,
    Outage,
    StoreRestart,
}

/// A fault and when it strikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Timed {
    pub at_ms: u32,
    pub fault: Fault,
}

/// The faults of one run, its heal and its end.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Schedule {
    pub nodes: u8,
    /// In the order they strike.
    pub faults: Vec<Timed>,
    /// Every fault ends here; from here on the liveness oracle expects a leader to act.
    pub heal_ms: u32,
    pub end_ms: u32,
}

/// One step of a fault's life: its start, its end, or a numbered phase in between.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Phase(pub(crate) u16);

pub(crate) const START: Phase = Phase(0);
pub(crate) const END: Phase = Phase(1);

/// A phase of the `fault`-th fault, due at `at_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Due {
    pub(crate) at_ms: u32,
    pub(crate) fault: usize,
    pub(crate) phase: Phase,
}

impl FaultKind {
    /// Every kind, in report order.
    pub const ALL: [FaultKind; 22] = [
        FaultKind::Crash,
        FaultKind::Isolate,
        FaultKind::Split,
        FaultKind::Minority,
        FaultKind::OneWay,
        FaultKind::Asymmetric,
        FaultKind::Flapping,
        FaultKind::Loss,
        FaultKind::Latency,
        FaultKind::Duplication,
        FaultKind::Pause,
        FaultKind::Drift,
        FaultKind::Resign,
        FaultKind::Shutdown,
        FaultKind::RollingRestart,
        FaultKind::ClusterRestart,
        FaultKind::Hold,
        FaultKind::CrashPoint,
        FaultKind::MuteHeartbeats,
        FaultKind::Hang,
        FaultKind::Outage,
        FaultKind::StoreRestart,
    ];

    /// The snake_case name used in schedules and reports.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Crash => "crash",
            FaultKind::Isolate => "isolate",
            FaultKind::Split => "split",
            FaultKind::Minority => "minority",
            FaultKind::OneWay => "one_way",
            FaultKind::Asymmetric => "asymmetric",
            FaultKind::Flapping => "flapping",
            FaultKind::Loss => "loss",
            FaultKind::Latency => "latency",
            FaultKind::Duplication => "duplication",
            FaultKind::Pause => "pause",
            FaultKind::Drift => "drift",
            FaultKind::Resign => "resign",
            FaultKind::Shutdown => "shutdown",
            FaultKind::RollingRestart => "rolling_restart",
            FaultKind::ClusterRestart => "cluster_restart",
            FaultKind::Hold => "hold",
            FaultKind::CrashPoint => "crash_point",
            FaultKind::MuteHeartbeats => "mute_heartbeats",
            FaultKind::Hang => "hang",
            FaultKind::Outage => "outage",
            FaultKind::StoreRestart => "store_restart",
        }
    }
}

impl Fault {
    /// The kind of this fault.
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::Crash { .. } => FaultKind::Crash,
            Fault::Isolate { .. } => FaultKind::Isolate,
            Fault::Split { .. } => FaultKind::Split,
            Fault::Minority { .. } => FaultKind::Minority,
            Fault::OneWay { .. } => FaultKind::OneWay,
            Fault::Asymmetric { .. } => FaultKind::Asymmetric,
            Fault::Flapping { .. } => FaultKind::Flapping,
            Fault::Loss { .. } => FaultKind::Loss,
            Fault::Latency { .. } => FaultKind::Latency,
            Fault::Duplication { .. } => FaultKind::Duplication,
            Fault::Pause { .. } => FaultKind::Pause,
            Fault::Drift { .. } => FaultKind::Drift,
            Fault::Resign { .. } => FaultKind::Resign,
            Fault::Shutdown { .. } => FaultKind::Shutdown,
            Fault::RollingRestart { .. } => FaultKind::RollingRestart,
            Fault::ClusterRestart { .. } => FaultKind::ClusterRestart,
            Fault::Hold { .. } => FaultKind::Hold,
            Fault::CrashPoint { .. } => FaultKind::CrashPoint,
            Fault::MuteHeartbeats { .. } => FaultKind::MuteHeartbeats,
            Fault::Hang { .. } => FaultKind::Hang,
            Fault::Outage { .. } => FaultKind::Outage,
            Fault::StoreRestart { .. } => FaultKind::StoreRestart,
        }
    }

    /// A random fault for a cluster of `nodes`. The weights favour what breaks leases:
    /// crashes, pauses, isolation and partitions of the leader, clock drift and restarts.
    ///
    /// Hangs, outages and store restarts are not drawn (the weights cover the first 19 kinds
    /// only; store runs draw from [`Fault::random_store`]). Hangs and outages are not: a run
    /// whose daemons failed their checks just before the heal may have every node holding its
    /// campaigns (protocol: Campaign holds) for longer than the liveness bound allows, which
    /// that bound does not yet account for. They run in schedules written by hand.
    pub fn random(rng: &mut Rng, nodes: u8) -> Fault {
        const WEIGHTS: [u64; 19] = [14, 10, 5, 5, 6, 5, 4, 6, 5, 4, 10, 6, 5, 5, 3, 3, 12, 6, 4];
        const _: () = assert!(
            WEIGHTS.len() + 3 == FaultKind::ALL.len(),
            "every kind but the last three (hang, outage, store_restart) is drawn"
        );
        let leader_or_any = |rng: &mut Rng| {
            if rng.chance(2, 3) {
                Target::Leader
            } else {
                Target::Node(rng.range(0, u64::from(nodes) - 1) as u8)
            }
        };
        let follower = |rng: &mut Rng| Target::Follower(rng.range(0, u64::from(nodes) - 2) as u8);
        let ms = |rng: &mut Rng, low: u64, high: u64| rng.range(low, high) as u32;
        match FaultKind::ALL[rng.weighted(&WEIGHTS)] {
            FaultKind::Crash => Fault::Crash {
                target: leader_or_any(rng),
                down_ms: ms(rng, 100, 8_000),
            },
            FaultKind::Isolate => Fault::Isolate {
                target: leader_or_any(rng),
                ms: ms(rng, 300, 8_000),
            },
            FaultKind::Split => {
                let all = (1u64 << nodes) - 1;
                Fault::Split {
                    mask: rng.range(1, all - 1) as u8,
                    ms: ms(rng, 300, 8_000),
                }
            }
            FaultKind::Minority => Fault::Minority {
                with_leader: rng.chance(2, 3),
                ms: ms(rng, 300, 8_000),
            },
            FaultKind::OneWay => {
                let (from, to) = if rng.chance(1, 2) {
                    (Target::Leader, follower(rng))
                } else {
                    (follower(rng), Target::Leader)
                };
                Fault::OneWay {
                    from,
                    to,
                    ms: ms(rng, 300, 8_000),
                }
            }
            FaultKind::Asymmetric => Fault::Asymmetric {
                target: leader_or_any(rng),
                ms: ms(rng, 300, 8_000),
            },
            FaultKind::Flapping => Fault::Flapping {
                a: Target::Leader,
                b: follower(rng),
                period_ms: ms(rng, 50, 1_500),
                flaps: rng.range(2, 10) as u16,
            },
            FaultKind::Loss => Fault::Loss {
                permille: rng.range(50, 600) as u16,
                ms: ms(rng, 500, 10_000),
            },
            FaultKind::Latency => Fault::Latency {
                max_ms: ms(rng, 100, 3_000),
                ms: ms(rng, 500, 10_000),
            },
            FaultKind::Duplication => Fault::Duplication {
                permille: rng.range(100, 1_000) as u16,
                delay_max_ms: ms(rng, 0, 10_000),
                ms: ms(rng, 500, 20_000),
            },
            FaultKind::Pause => Fault::Pause {
                target: leader_or_any(rng),
                ms: ms(rng, 100, 6_000),
            },
            FaultKind::Drift => Fault::Drift {
                slow: leader_or_any(rng),
            },
            FaultKind::Resign => Fault::Resign {
                target: Target::Leader,
            },
            FaultKind::Shutdown => Fault::Shutdown {
                target: leader_or_any(rng),
                down_ms: ms(rng, 100, 5_000),
            },
            FaultKind::RollingRestart => Fault::RollingRestart {
                gap_ms: ms(rng, 1_000, 5_000),
                down_ms: ms(rng, 100, 2_000),
            },
            FaultKind::ClusterRestart => Fault::ClusterRestart {
                down_ms: ms(rng, 0, 3_000),
            },
            // Mostly what the leader sends (heartbeats, whose stale acks must count for
            // nothing), sometimes what a follower sends (votes and acks of an old term).
            FaultKind::Hold => {
                let (from, to) = match rng.range(0, 3) {
                    0 | 1 => (Target::Leader, None),
                    2 => (Target::Leader, Some(follower(rng))),
                    _ => (follower(rng), Some(Target::Leader)),
                };
                Fault::Hold {
                    from,
                    to,
                    permille: rng.range(50, 1_000) as u16,
                    ms: ms(rng, 300, 8_000),
                }
            }
            FaultKind::CrashPoint => Fault::CrashPoint {
                target: Target::Node(rng.range(0, u64::from(nodes) - 1) as u8),
                point: [
                    CrashPoint::BeforeWrite,
                    CrashPoint::AfterWrite,
                    CrashPoint::AfterFirstSend,
                ][rng.range(0, 2) as usize],
                down_ms: ms(rng, 100, 5_000),
            },
            FaultKind::MuteHeartbeats => Fault::MuteHeartbeats {
                target: leader_or_any(rng),
                ms: ms(rng, 300, 8_000),
            },
            // The draw indexes the weights, which stop before these three kinds.
            FaultKind::Hang | FaultKind::Outage | FaultKind::StoreRestart => {
                unreachable!("hangs, outages and store restarts are not drawn")
            }
        }
    }

    /// A random fault for a store run of `nodes` nodes (protocol: Store leases). Only the
    /// faults that mean something there are drawn: a node's only link is to the store, so an
    /// isolation cuts a node off from the store, and partitions among the nodes change nothing.
    /// The weights favour what threatens the acting rule: a holder cut off from the store, a
    /// paused holder whose child runs on, slow replies, drift and store restarts.
    pub fn random_store(rng: &mut Rng, nodes: u8) -> Fault {
        const KINDS: [FaultKind; 10] = [
            FaultKind::Crash,
            FaultKind::Isolate,
            FaultKind::Loss,
            FaultKind::Latency,
            FaultKind::Pause,
            FaultKind::Drift,
            FaultKind::Resign,
            FaultKind::Shutdown,
            FaultKind::StoreRestart,
            FaultKind::RollingRestart,
        ];
        const WEIGHTS: [u64; 10] = [10, 14, 6, 10, 12, 6, 5, 5, 8, 2];
        let leader_or_any = |rng: &mut Rng| {
            if rng.chance(2, 3) {
                Target::Leader
            } else {
                Target::Node(rng.range(0, u64::from(nodes) - 1) as u8)
            }
        };
        let ms = |rng: &mut Rng, low: u64, high: u64| rng.range(low, high) as u32;
        match KINDS[rng.weighted(&WEIGHTS)] {
            FaultKind::Crash => Fault::Crash {
                target: leader_or_any(rng),
                down_ms: ms(rng, 100, 8_000),
            },
            FaultKind::Isolate => Fault::Isolate {
                target: leader_or_any(rng),
                ms: ms(rng, 100, 8_000),
            },
            FaultKind::Loss => Fault::Loss {
                permille: rng.range(50, 600) as u16,
                ms: ms(rng, 500, 10_000),
            },
            // Mostly spikes around the request timeout (L/8), where a reply comes late but
            // is still taken; sometimes far beyond it.
            FaultKind::Latency => Fault::Latency {
                max_ms: if rng.chance(2, 3) {
                    ms(rng, 100, 400)
                } else {
                    ms(rng, 400, 3_000)
                },
                ms: ms(rng, 500, 10_000),
            },
            FaultKind::Pause => Fault::Pause {
                target: leader_or_any(rng),
                ms: ms(rng, 100, 6_000),
            },
            FaultKind::Drift => Fault::Drift {
                slow: leader_or_any(rng),
            },
            FaultKind::Resign => Fault::Resign {
                target: Target::Leader,
            },
            FaultKind::Shutdown => Fault::Shutdown {
                target: leader_or_any(rng),
                down_ms: ms(rng, 100, 5_000),
            },
            FaultKind::StoreRestart => Fault::StoreRestart {
                down_ms: ms(rng, 0, 4_000),
            },
            _ => Fault::RollingRestart {
                gap_ms: ms(rng, 1_000, 5_000),
                down_ms: ms(rng, 100, 2_000),
            },
        }
    }

    /// Whether this fault needs the daemons' health checks to run.
    pub fn checks_health(&self) -> bool {
        matches!(self, Fault::Hang { .. } | Fault::Outage { .. })
    }

    /// The phases of this fault in a cluster of `nodes`, as offsets from its start.
    pub(crate) fn phases(&self, nodes: u8) -> Vec<(u32, Phase)> {
        match *self {
            Fault::Crash { down_ms: ms, .. }
            | Fault::Isolate { ms, .. }
            | Fault::Split { ms, .. }
            | Fault::Minority { ms, .. }
            | Fault::OneWay { ms, .. }
            | Fault::Asymmetric { ms, .. }
            | Fault::Loss { ms, .. }
            | Fault::Latency { ms, .. }
            | Fault::Duplication { ms, .. }
            | Fault::Shutdown { down_ms: ms, .. }
            | Fault::Hold { ms, .. }
            | Fault::MuteHeartbeats { ms, .. }
            | Fault::Outage { ms }
            | Fault::StoreRestart { down_ms: ms }
            | Fault::ClusterRestart { down_ms: ms } => vec![(0, START), (ms, END)],
            // The crash-point fault's restart follows the crash, whenever that comes.
            Fault::Pause { .. }
            | Fault::Drift { .. }
            | Fault::Resign { .. }
            | Fault::Hang { .. }
            | Fault::CrashPoint { .. } => vec![(0, START)],
            // Phase 2k cuts the link, 2k + 1 repairs it.
            Fault::Flapping {
                period_ms, flaps, ..
            } => (0..flaps)
                .flat_map(|flap| {
                    let cut = u32::from(flap) * 2 * period_ms;
                    [
                        (cut, Phase(2 * flap)),
                        (cut + period_ms, Phase(2 * flap + 1)),
                    ]
                })
                .collect(),
            // Phase 2n shuts node n down, 2n + 1 starts it again.
            Fault::RollingRestart { gap_ms, down_ms } => (0..u16::from(nodes))
                .flat_map(|node| {
                    let down = u32::from(node) * gap_ms;
                    [
                        (down, Phase(2 * node)),
                        (down + down_ms, Phase(2 * node + 1)),
                    ]
                })
                .collect(),
        }
    }
}

impl Schedule {
    /// A schedule without faults: the cluster runs undisturbed until `end_ms`.
    pub fn quiet(nodes: u8, end_ms: u32) -> Schedule {
        Schedule {
            nodes,
            faults: Vec::new(),
            heal_ms: end_ms.saturating_sub(QUIET_MS),
            end_ms,
        }
    }

    /// A random schedule: faults strike from [`FIRST_FAULT_MS`] on, every 0.3–6 s, until a
    /// second before the heal, which comes [`QUIET_MS`] before the end.
    pub fn random(rng: &mut Rng, nodes: u8, end_ms: u32) -> Schedule {
        let heal_ms = end_ms.saturating_sub(QUIET_MS);
        let mut faults = Vec::new();
        let mut at_ms = FIRST_FAULT_MS + rng.range(0, 1_000) as u32;
        while at_ms + 1_000 < heal_ms {
            faults.push(Timed {
                at_ms,
                fault: Fault::random(rng, nodes),
            });
            at_ms += rng.range(300, 6_000) as u32;
        }
        Schedule {
            nodes,
            faults,
            heal_ms,
            end_ms,
        }
    }

    /// A random schedule for a store run: as [`Schedule::random`], with faults drawn by
    /// [`Fault::random_store`].
    pub fn random_store(rng: &mut Rng, nodes: u8, end_ms: u32) -> Schedule {
        let heal_ms = end_ms.saturating_sub(QUIET_MS);
        let mut faults = Vec::new();
        let mut at_ms = FIRST_FAULT_MS + rng.range(0, 1_000) as u32;
        while at_ms + 1_000 < heal_ms {
            faults.push(Timed {
                at_ms,
                fault: Fault::random_store(rng, nodes),
            });
            at_ms += rng.range(300, 6_000) as u32;
        }
        Schedule {
            nodes,
            faults,
            heal_ms,
            end_ms,
        }
    }

    /// Whether any fault of this schedule needs the daemons' health checks to run.
    pub fn checks_health(&self) -> bool {
        self.faults.iter().any(|timed| timed.fault.checks_health())
    }

    /// Adds `fault` at `at_ms`, keeping the faults in time order.
    pub fn with(mut self, at_ms: u32, fault: Fault) -> Schedule {
        let index = self.faults.partition_point(|timed| timed.at_ms <= at_ms);
        self.faults.insert(index, Timed { at_ms, fault });
        self
    }

    /// Every phase of every fault that comes before the heal, in the order they are due.
    pub(crate) fn timeline(&self) -> Vec<Due> {
        let mut timeline: Vec<Due> = self
            .faults
            .iter()
            .enumerate()
            .flat_map(|(fault, timed)| {
                timed
                    .fault
                    .phases(self.nodes)
                    .into_iter()
                    .map(move |(offset, phase)| Due {
                        at_ms: timed.at_ms.saturating_add(offset),
                        fault,
                        phase,
                    })
            })
            .filter(|due| due.at_ms < self.heal_ms)
            .collect();
        timeline.sort();
        timeline
    }
}

// ----- Text form --------------------------------------------------------------------------

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Leader => write!(f, "leader"),
            Target::Node(index) => write!(f, "n{}", u32::from(*index) + 1),
            Target::Follower(index) => write!(f, "f{}", u32::from(*index) + 1),
        }
    }
}

struct Mask(u8);

impl fmt::Display for Mask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = (0..MAX_NODES)
            .filter(|node| self.0 & (1 << node) != 0)
            .map(|node| Target::Node(node).to_string())
            .collect();
        write!(f, "{}", names.join("+"))
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.kind().name();
        match *self {
            Fault::Crash { target, down_ms } => write!(f, "{name}({target}, {down_ms})"),
            Fault::Isolate { target, ms } => write!(f, "{name}({target}, {ms})"),
            Fault::Split { mask, ms } => write!(f, "{name}({}, {ms})", Mask(mask)),
            Fault::Minority { with_leader, ms } => write!(
                f,
                "{name}({}, {ms})",
                if with_leader {
                    "with_leader"
                } else {
                    "without_leader"
                }
            ),
            Fault::OneWay { from, to, ms } => write!(f, "{name}({from}, {to}, {ms})"),
            Fault::Asymmetric { target, ms } => write!(f, "{name}({target}, {ms})"),
            Fault::Flapping {
                a,
                b,
                period_ms,
                flaps,
            } => write!(f, "{name}({a}, {b}, {period_ms}, {flaps})"),
            Fault::Loss { permille, ms } => write!(f, "{name}({permille}, {ms})"),
            Fault::Latency { max_ms, ms } => write!(f, "{name}({max_ms}, {ms})"),
            Fault::Duplication {
                permille,
                delay_max_ms,
                ms,
            } => write!(f, "{name}({permille}, {delay_max_ms}, {ms})"),
            Fault::Pause { target, ms } => write!(f, "{name}({target}, {ms})"),
            Fault::Drift { slow } => write!(f, "{name}({slow})"),
            Fault::Resign { target } => write!(f, "{name}({target})"),
            Fault::Shutdown { target, down_ms } => write!(f, "{name}({target}, {down_ms})"),
            Fault::RollingRestart { gap_ms, down_ms } => {
                write!(f, "{name}({gap_ms}, {down_ms})")
            }
            Fault::ClusterRestart { down_ms } => write!(f, "{name}({down_ms})"),
            Fault::Hold {
                from,
                to,
                permille,
                ms,
            } => match to {
                Some(to) => write!(f, "{name}({from}, {to}, {permille}, {ms})"),
                None => write!(f, "{name}({from}, all, {permille}, {ms})"),
            },
            Fault::CrashPoint {
                target,
                point,
                down_ms,
            } => write!(f, "{name}({target}, {}, {down_ms})", point.name()),
            Fault::MuteHeartbeats { target, ms } => write!(f, "{name}({target}, {ms})"),
            Fault::Hang { target } => write!(f, "{name}({target})"),
            Fault::Outage { ms } => write!(f, "{name}({ms})"),
            Fault::StoreRestart { down_ms } => write!(f, "{name}({down_ms})"),
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "nodes={} heal={} end={}",
            self.nodes, self.heal_ms, self.end_ms
        )?;
        for timed in &self.faults {
            write!(f, "; {} {}", timed.at_ms, timed.fault)?;
        }
        Ok(())
    }
}

/// Why a schedule's text did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleError(pub String);

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad schedule: {}", self.0)
    }
}

impl std::error::Error for ScheduleError {}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Schedule, ScheduleError> {
        let mut parts = text.split(';').map(str::trim);
        let header = parts.next().unwrap_or_default();
        let mut nodes = None;
        let mut heal_ms = None;
        let mut end_ms = None;
        for field in header.split_whitespace() {
            let (key, value) = field
                .split_once('=')
                .ok_or_else(|| ScheduleError(format!("expected key=value, got {field:?}")))?;
            match key {
                "nodes" => nodes = Some(number(value)?),
                "heal" => heal_ms = Some(number(value)?),
                "end" => end_ms = Some(number(value)?),
                _ => return Err(ScheduleError(format!("unknown field {key:?}"))),
            }
        }
        let missing = |name: &str| ScheduleError(format!("the header lacks {name}="));
        let nodes: u8 = nodes.ok_or_else(|| missing("nodes"))?;
        if !(1..=MAX_NODES).contains(&nodes) {
            return Err(ScheduleError(format!(
                "nodes={nodes} is outside 1..={MAX_NODES}"
            )));
        }
        let mut faults = Vec::new();
        for part in parts.filter(|part| !part.is_empty()) {
            let (at, fault) = part
                .split_once(' ')
                .ok_or_else(|| ScheduleError(format!("expected `<ms> <fault>`, got {part:?}")))?;
            faults.push(Timed {
                at_ms: number(at)?,
                fault: fault.trim().parse()?,
            });
        }
        faults.sort_by_key(|timed| timed.at_ms);
        Ok(Schedule {
            nodes,
            faults,
            heal_ms: heal_ms.ok_or_else(|| missing("heal"))?,
            end_ms: end_ms.ok_or_else(|| missing("end"))?,
        })
    }
}

impl FromStr for Fault {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Fault, ScheduleError> {
        let bad = || ScheduleError(format!("cannot read the fault {text:?}"));
        let (name, rest) = text.split_once('(').ok_or_else(bad)?;
        let arguments: Vec<&str> = rest
            .strip_suffix(')')
            .ok_or_else(bad)?
            .split(',')
            .map(str::trim)
            .filter(|argument| !argument.is_empty())
            .collect();
        let kind = FaultKind::ALL
            .into_iter()
            .find(|kind| kind.name() == name.trim())
            .ok_or_else(|| ScheduleError(format!("unknown fault {name:?}")))?;
        let argument = |index: usize| arguments.get(index).copied().ok_or_else(bad);
        let fault = match kind {
            FaultKind::Crash => Fault::Crash {
                target: target(argument(0)?)?,
                down_ms: number(argument(1)?)?,
            },
            FaultKind::Isolate => Fault::Isolate {
                target: target(argument(0)?)?,
                ms: number(argument(1)?)?,
            },
            FaultKind::Split => Fault::Split {
                mask: mask(argument(0)?)?,
                ms: number(argument(1)?)?,
            },
            FaultKind::Minority => Fault::Minority {
                with_leader: match argument(0)? {
                    "with_leader" => true,
                    "without_leader" => false,
                    _ => return Err(bad()),
                },
                ms: number(argument(1)?)?,
            },
            FaultKind::OneWay => Fault::OneWay {
                from: target(argument(0)?)?,
                to: target(argument(1)?)?,
                ms: number(argument(2)?)?,
            },
            FaultKind::Asymmetric => Fault::Asymmetric {
                target: target(argument(0)?)?,
                ms: number(argument(1)?)?,
            },
            FaultKind::Flapping => Fault::Flapping {
                a: target(argument(0)?)?,
                b: target(argument(1)?)?,
                period_ms: number(argument(2)?)?,
                flaps: number(argument(3)?)?,
            },
            FaultKind::Loss => Fault::Loss {
                permille: number(argument(0)?)?,
                ms: number(argument(1)?)?,
            },
            FaultKind::Latency => Fault::Latency {
                max_ms: number(argument(0)?)?,
                ms: number(argument(1)?)?,
            },
            FaultKind::Duplication => Fault::Duplication {
                permille: number(argument(0)?)?,
                delay_max_ms: number(argument(1)?)?,
                ms: number(argument(2)?)?,
            },
            FaultKind::Pause => Fault::Pause {
                target: target(argument(0)?)?,
                ms: number(argument(1)?)?,
            },
            FaultKind::Drift => Fault::Drift {
                slow: target(argument(0)?)?,
            },
            FaultKind::Resign => Fault::Resign {
                target: target(argument(0)?)?,
            },
            FaultKind::Shutdown => Fault::Shutdown {
                target: target(argument(0)?)?,
                down_ms: number(argument(1)?)?,
            },
            FaultKind::RollingRestart => Fault::RollingRestart {
                gap_ms: number(argument(0)?)?,
                down_ms: number(argument(1)?)?,
            },
            FaultKind::ClusterRestart => Fault::ClusterRestart {
                down_ms: number(argument(0)?)?,
            },
            FaultKind::Hold => Fault::Hold {
                from: target(argument(0)?)?,
                to: match argument(1)? {
                    "all" => None,
                    to => Some(target(to)?),
                },
                permille: number(argument(2)?)?,
                ms: number(argument(3)?)?,
            },
            FaultKind::CrashPoint => Fault::CrashPoint {
                target: target(argument(0)?)?,
                point: CrashPoint::ALL
                    .into_iter()
                    .find(|point| point.name() == argument(1).unwrap_or_default())
                    .ok_or_else(bad)?,
                down_ms: number(argument(2)?)?,
            },
            FaultKind::MuteHeartbeats => Fault::MuteHeartbeats {
                target: target(argument(0)?)?,
                ms: number(argument(1)?)?,
            },
            FaultKind::Hang => Fault::Hang {
                target: target(argument(0)?)?,
            },
            FaultKind::Outage => Fault::Outage {
                ms: number(argument(0)?)?,
            },
            FaultKind::StoreRestart => Fault::StoreRestart {
                down_ms: number(argument(0)?)?,
            },
        };
        Ok(fault)
    }
}

fn number<T: FromStr>(text: &str) -> Result<T, ScheduleError> {
    text.trim()
        .parse()
        .map_err(|_| ScheduleError(format!("{text:?} is not a number in range")))
}

fn target(text: &str) -> Result<Target, ScheduleError> {
    let index = |digits: &str| -> Result<u8, ScheduleError> {
        let number: u8 = number(digits)?;
        if (1..=MAX_NODES).contains(&number) {
            Ok(number - 1)
        } else {
            Err(ScheduleError(format!("{text:?} names no node")))
        }
    };
    match text {
        "leader" => Ok(Target::Leader),
        _ if text.starts_with('n') => Ok(Target::Node(index(&text[1..])?)),
        _ if text.starts_with('f') => Ok(Target::Follower(index(&text[1..])?)),
        _ => Err(ScheduleError(format!("{text:?} is not leader, nN or fN"))),
    }
}

fn mask(text: &str) -> Result<u8, ScheduleError> {
    text.split('+')
        .try_fold(0u8, |mask, name| match target(name.trim())? {
            Target::Node(index) => Ok(mask | 1 << index),
            _ => Err(ScheduleError(format!("{text:?} must list nodes as n1+n2"))),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_prints_and_parses_back() {
        let mut rng = Rng::new(3);
        for nodes in [3, 5] {
            for _ in 0..20 {
                let schedule = Schedule::random(&mut rng, nodes, 60_000);
                let text = schedule.to_string();
                assert_eq!(text.parse::<Schedule>(), Ok(schedule), "{text}");
                assert!(
                    !schedule_checks_health(&text),
                    "random schedules draw no hangs"
                );
            }
        }
        let health = Schedule::quiet(3, 30_000)
            .with(
                4_000,
                Fault::Hang {
                    target: Target::Leader,
                },
            )
            .with(9_000, Fault::Outage { ms: 5_000 });
        let text = health.to_string();
        assert_eq!(text.parse::<Schedule>(), Ok(health.clone()), "{text}");
        assert!(health.checks_health());
    }

    fn schedule_checks_health(text: &str) -> bool {
        text.parse::<Schedule>().expect("parses").checks_health()
    }

    #[test]
    fn the_timeline_orders_phases_and_drops_those_after_the_heal() {
        let schedule = Schedule::quiet(3, 30_000)
            .with(
                2_000,
                Fault::Crash {
                    target: Target::Leader,
                    down_ms: 20_000,
                },
            )
            .with(
                3_000,
                Fault::RollingRestart {
                    gap_ms: 1_000,
                    down_ms: 500,
                },
            );
        let timeline: Vec<(u32, usize, u16)> = schedule
            .timeline()
            .iter()
            .map(|due| (due.at_ms, due.fault, due.phase.0))
            .collect();
        assert_eq!(
            timeline,
            vec![
                (2_000, 0, 0),
                (3_000, 1, 0),
                (3_500, 1, 1),
                (4_000, 1, 2),
                (4_500, 1, 3),
                (5_000, 1, 4),
                (5_500, 1, 5),
            ],
            "the crash's restart at 22 s is after the heal at 15 s"
        );
    }
}
