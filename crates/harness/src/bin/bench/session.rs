//! The benchmark's run: the order of the measurements, the state they share (samples, load,
//! results) and the waits they use, each bounded by `STEP_LIMIT` and noticing Ctrl-C.

use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tenure_harness::ledger_tail::LedgerTail;
use tenure_harness::{
    monotonic_nanos, procfs, tenure_binary, Cluster, ClusterSpec, Healthy, LedgerEntry, SplitMix64,
    Timing,
};

use crate::machine::{load_average, machine};
use crate::ranking::first_ranked;
use crate::results::{Results, Takeover};
use crate::store_results::StoreResults;
use crate::tenure::{timing_for, Extent};
use crate::{failed, Args, Failure, CHILD_ALIVE, CHILD_MODE, POLL, RUN_PREFIX, STEP_LIMIT};

/// The benchmark under way.
pub(crate) struct Bench<'a> {
    pub(crate) args: Args,
    interrupted: &'a AtomicBool,
    started: Instant,
    /// The machine and its load when the run started.
    pub(crate) machine: String,
    /// One-minute load averages sampled during the run.
    pub(crate) loads: Vec<f64>,
    /// Lines for samples.csv (see `keep_sample`).
    pub(crate) samples: Vec<String>,
    pub(crate) results: Results,
    /// What `--backends` measured.
    pub(crate) stores: StoreResults,
    /// The random phase of each round against the heartbeats.
    pub(crate) rng: SplitMix64,
}

impl<'a> Bench<'a> {
    pub(crate) fn new(args: Args, interrupted: &'a AtomicBool) -> Bench<'a> {
        Bench {
            args,
            interrupted,
            started: Instant::now(),
            machine: String::new(),
            loads: Vec::new(),
            samples: Vec::new(),
            results: Results::default(),
            stores: StoreResults::default(),
            rng: SplitMix64::new(monotonic_nanos()),
        }
    }

    /// Every measurement the arguments ask for, then the report, the samples and the plot.
    pub(crate) fn run(&mut self) -> Result<(), Failure> {
        fs::create_dir_all(&self.args.out).map_err(|error| {
            failed(format!(
                "cannot create {}: {error}",
                self.args.out.display()
            ))
        })?;
        procfs::remove_stale_runs(RUN_PREFIX);
        if !self.args.backends.is_empty() {
            self.introduce(self.args.store_rounds.max(1));
            self.store_backends()?;
            self.sample_load();
            return self.write_store_results();
        }
        let rounds = self.args.rounds.max(1);
        self.introduce(rounds);
        self.measure(rounds)?;
        self.sample_load();
        self.write_results()
    }

    fn introduce(&mut self, rounds: u32) {
        let binary = tenure_binary();
        println!(
            "bench: {rounds} rounds each; tenure binary {}{}",
            binary.display(),
            if binary.components().any(|part| part.as_os_str() == "debug") {
                " (a DEBUG build: timings are not representative; use --release)"
            } else {
                ""
            }
        );
        self.machine = machine();
        println!("{}", self.machine.replace('\n', "\n  "));
        self.sample_load();
    }

    /// The sweep from the shortest lease up: at each, tenure's crash failover (and at
    /// `--lease` its handovers and footprint), partition failover, cold start, then etcd at the
    /// same TTL, so that each pair is measured under the same load of the machine.
    fn measure(&mut self, rounds: u32) -> Result<(), Failure> {
        let full = timing_for(self.args.lease);
        self.results.full = Some(full);
        for lease in sweep(self.args.lease, &self.args.leases, self.args.quick) {
            let timing = timing_for(lease);
            let extent = match (lease == self.args.lease, self.args.quick) {
                (true, true) => Extent::Handover,
                (true, false) => Extent::Full,
                (false, _) => Extent::Failover,
            };
            let mut result = self.tenure(timing, rounds, extent)?;
            if !self.args.quick {
                self.partition_rounds(&mut result, rounds)?;
                self.cold_starts(&mut result, rounds)?;
            }
            self.results.leases.push(result);
            if self.args.etcd && !self.args.quick {
                self.etcd_at(lease, rounds)?;
            }
        }
        Ok(())
    }

    /// Keeps one round for samples.csv: `measurement,setting,round,milliseconds` and, for a
    /// change of leadership, `from,to,first_ranked,token_step`.
    pub(crate) fn keep_sample(
        &mut self,
        measurement: &str,
        setting: &str,
        round: u32,
        took: Duration,
        takeover: Option<(&Takeover, &[String])>,
    ) {
        let details = takeover.map_or(",,,".to_string(), |(takeover, members)| {
            format!(
                "{},{},{},{}",
                takeover.from.as_deref().unwrap_or(""),
                takeover.to,
                first_ranked(members, takeover.from.as_deref()).unwrap_or(""),
                takeover.token_step
            )
        });
        self.samples.push(format!(
            "{measurement},{setting},{round},{:.3},{details}",
            took.as_secs_f64() * 1e3
        ));
    }

    fn write_results(&self) -> Result<(), Failure> {
        let report = self.report();
        println!("\n{report}");
        let out = &self.args.out;
        let written = fs::write(out.join("report.md"), &report)
            .and_then(|()| fs::write(out.join("samples.csv"), self.csv()))
            .and_then(|()| fs::write(out.join("failover.svg"), self.svg()));
        written.map_err(|error| failed(format!("cannot write to {}: {error}", out.display())))?;
        println!(
            "wrote {0}/report.md, {0}/samples.csv and {0}/failover.svg",
            out.display()
        );
        Ok(())
    }

    /// A progress line, on standard error (standard output carries the report).
    pub(crate) fn say(&self, text: &str) {
        eprintln!("[{:>7.1}s] {text}", self.started.elapsed().as_secs_f64());
    }

    /// Keeps the one-minute load average, for the report.
    pub(crate) fn sample_load(&mut self) {
        if let Some(load) = load_average() {
            self.loads.push(load);
        }
    }

    fn check_interrupt(&self) -> Result<(), Failure> {
        if self.interrupted.load(Ordering::SeqCst) {
            Err(Failure::Interrupted)
        } else {
            Ok(())
        }
    }

    /// Polls `check` until it returns `Some`, for at most `limit`.
    pub(crate) fn wait_for<T>(
        &self,
        limit: Duration,
        what: &str,
        mut check: impl FnMut() -> Option<T>,
    ) -> Result<T, Failure> {
        let give_up = Instant::now() + limit;
        loop {
            self.check_interrupt()?;
            if let Some(value) = check() {
                return Ok(value);
            }
            if Instant::now() >= give_up {
                return Err(failed(format!(
                    "timed out after {} s waiting for {what}",
                    limit.as_secs()
                )));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Sleeps `duration`, waking to notice Ctrl-C.
    pub(crate) fn sleep(&self, duration: Duration) -> Result<(), Failure> {
        let until = Instant::now() + duration;
        while Instant::now() < until {
            self.check_interrupt()?;
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
        }
        Ok(())
    }

    /// Three nodes at `timing`, each supervising this binary as the ledger child.
    pub(crate) fn child_spec(&self, timing: Timing) -> Result<ClusterSpec, Failure> {
        let executable = std::env::current_exe()
            .map_err(|error| failed(format!("cannot find this program: {error}")))?;
        Ok(ClusterSpec {
            timing,
            child_leading_arguments: vec![CHILD_MODE.to_string()],
            child_arguments: vec![
                "--alive-ms".to_string(),
                CHILD_ALIVE.as_millis().to_string(),
            ],
            log_level: "info".to_string(),
            directory_prefix: format!("{RUN_PREFIX}{}-", std::process::id()),
            ..ClusterSpec::new(3, &executable.display().to_string())
        })
    }

    pub(crate) fn wait_healthy(
        &self,
        cluster: &Cluster,
        tail: &mut LedgerTail,
    ) -> Result<Healthy, Failure> {
        self.wait_for(STEP_LIMIT, "a healthy cluster", || cluster.healthy(tail))
    }

    /// Waits for a child start with a token above `above`.
    pub(crate) fn wait_start(
        &self,
        tail: &mut LedgerTail,
        above: u64,
        what: &str,
    ) -> Result<LedgerEntry, Failure> {
        self.wait_for(STEP_LIMIT, what, || {
            tail.poll();
            tail.start_above(above).cloned()
        })
    }
}

/// The leases to measure, ascending and each once: `--leases` and `--lease`, or only `--lease`
/// with `--quick`.
fn sweep(full: Duration, leases: &[Duration], quick: bool) -> Vec<Duration> {
    let mut sweep = vec![full];
    if !quick {
        sweep.extend_from_slice(leases);
    }
    sweep.sort();
    sweep.dedup();
    sweep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_adds_the_full_lease_and_runs_from_the_shortest() {
        let millis = |list: &[u64]| list.iter().map(|ms| Duration::from_millis(*ms)).collect();
        let leases: Vec<Duration> = millis(&[1_000, 250, 5_000]);
        assert_eq!(
            sweep(Duration::from_secs(2), &leases, false),
            millis(&[250, 1_000, 2_000, 5_000]) as Vec<Duration>
        );
        assert_eq!(
            sweep(Duration::from_secs(1), &leases, false),
            millis(&[250, 1_000, 5_000]) as Vec<Duration>
        );
        assert_eq!(
            sweep(Duration::from_secs(2), &leases, true),
            millis(&[2_000]) as Vec<Duration>
        );
    }
}
