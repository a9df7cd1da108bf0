//! tenure-sim: long, messy, deterministic runs of whole tenure clusters.
//!
//! The model checker (`tenure-models`) covers small bounded worlds exhaustively; this crate
//! covers long ones statistically: 3 and 5 nodes, a minute of simulated time per seed, many
//! faults at once, running the node library's real driver loop
//! ([`tenure_driver::Driver`]) rather than a copy of it.
//!
//! # How a run works
//!
//! ```text
//! Setup::from_seed(seed)            ρ, clocks, schedule: all drawn from the seed
//!   └─ run(&setup)
//!        ├─ turmoil hosts n1…nN     each runs Driver::run on simulated UDP, a drifting clock,
//!        │                          storage kept outside the host, an acting recorder
//!        ├─ every step (20 ms)      apply due faults → sim.step() → oracle.check(now)
//!        └─ Outcome                 first violation, failovers, trace hash
//! ```
//!
//! A run is a pure function of its [`Setup`]: turmoil is seeded through `Builder::rng_seed`
//! with a fixed epoch, every host's tokio runtime is seeded too (which needs
//! `--cfg tokio_unstable`, set in the workspace's `.cargo/config.toml`), and everything the
//! simulation draws comes from [`rng::Rng`] forks of the seed.
//!
//! The pieces: [`schedule`] (the faults), [`health`] (the daemons' health checks), [`time`]
//! (global time and drifting clocks), [`oracle`] (the invariants), [`bounds`] (time bounds
//! from the configuration), [`run`] (one run), [`campaign`] (many seeds, the summary) and the `tenure-sim` binary (the CLI).
//! docs/simulation.md has the fault model, the invariants and measured figures.
//!
//! Store runs ([`Core::Store`], `--core store`) drive the store-lease core instead
//! (protocol: Store leases): the nodes' drivers talk to a simulated store on a host of its own
//! (`store`), which serves `tenure_core::ReferenceStore` with either judge of expiry, and the
//! same oracle judges them without the quorum's own checks ([`oracle::Oracle::for_store`]).

// Without tokio_unstable turmoil cannot seed the hosts' runtimes, and a seed would no longer
// determine a run.
#[cfg(not(tokio_unstable))]
compile_error!(
    "tenure-sim needs `--cfg tokio_unstable` so that every simulated host's tokio runtime is \
     seeded; build from the workspace root (its .cargo/config.toml sets it) or add it to \
     RUSTFLAGS"
);

pub mod bounds;
pub mod campaign;
pub mod health;
mod host;
pub mod oracle;
pub mod rng;
pub mod run;
pub mod schedule;
mod store;
pub mod time;
mod trace;
mod world;

pub use bounds::RecoveryBounds;
pub use health::HealthTiming;
pub use oracle::{Check, Failover, Violation};
pub use run::{judge_name, run, Core, Outcome, Setup, Timing, DEFAULT_RUN_MS};
pub use schedule::{Fault, FaultKind, Schedule, Target, Timed};
pub use store::STORE_HOST;
pub use tenure_core::{ExpiryJudge, Invariant, StoreVariant, Variant};
