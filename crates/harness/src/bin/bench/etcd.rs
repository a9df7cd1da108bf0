//! etcd 3.4 beside tenure, at a TTL equal to the lease: a 3-member cluster on 127.0.0.1 and 3
//! contenders `etcdctl lock --ttl N tenure-bench -- bench __child ...`; failover after SIGKILL
//! of the holding etcdctl, whether its old child still runs when the new one starts, and the
//! memory and idle CPU of the members and contenders.
//!
//! etcd's TTL is a whole number of seconds, and etcd raises one below its minimum (1.5 election
//! timeouts, rounded up: 2 s at its default Raft timing) to that minimum. So the benchmark asks
//! the cluster for a lease of the TTL first (`etcdctl lease grant`), and measures only where
//! etcd grants what it was asked; the report says why it did not elsewhere.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tenure_harness::ledger_tail::LedgerTail;
use tenure_harness::stats::millis;
use tenure_harness::{free_tcp, monotonic_nanos, procfs, LedgerEntry, Signal};
use tenure_node::cluster::process::{exit_with_parent, is_alive, processes_mentioning, signal};

use crate::results::{EtcdFailovers, EtcdResult, EtcdUnmatched};
use crate::session::Bench;
use crate::{failed, Failure, CHILD_MODE, RUN_PREFIX, STEP_LIMIT};

impl Bench<'_> {
    /// etcd's failover with `etcdctl lock --ttl` equal to `lease` if etcd can set it, then (at
    /// `--lease`) its footprint at idle.
    pub(crate) fn etcd_at(&mut self, lease: Duration, rounds: u32) -> Result<(), Failure> {
        let mut result = match self.results.etcd.take() {
            Some(result) => result,
            None => EtcdResult {
                version: etcd_version()?,
                ..EtcdResult::default()
            },
        };
        let measured = self.etcd_failovers(lease, rounds, &mut result);
        self.results.etcd = Some(result);
        measured
    }

    fn etcd_failovers(
        &mut self,
        lease: Duration,
        rounds: u32,
        result: &mut EtcdResult,
    ) -> Result<(), Failure> {
        let unmatched = |reason: String| EtcdUnmatched { lease, reason };
        let ttl = match ttl_seconds(lease) {
            Ok(ttl) => ttl,
            Err(reason) => {
                self.say(&format!(
                    "etcd: not measured at {}: {reason}",
                    humantime::format_duration(lease)
                ));
                result.unmatched.push(unmatched(reason));
                return Ok(());
            }
        };
        self.say(&format!(
            "etcd {}: starting 3 members and 3 `etcdctl lock --ttl {ttl}` contenders on \
             127.0.0.1",
            result.version
        ));
        let mut etcd = Etcd::start(ttl)?;
        if let Some(reason) = self.refused_ttl(&etcd, ttl)? {
            self.say(&format!("etcd: not measured at {ttl} s: {reason}"));
            result.unmatched.push(unmatched(reason));
            return Ok(());
        }
        let executable = std::env::current_exe()
            .map_err(|error| failed(format!("cannot find this program: {error}")))?;
        for index in 0..3 {
            etcd.start_contender(index, &executable)?;
        }
        let mut failovers = EtcdFailovers {
            ttl: lease,
            ..EtcdFailovers::default()
        };
        let mut tail = LedgerTail::new(&etcd.ledger);
        for round in 1..=rounds {
            let (took, still_running) = self.etcd_round(&mut etcd, &mut tail, &executable)?;
            self.say(&format!(
                "etcd --ttl {ttl}: failover {round:>2}/{rounds}: {} ms; old child {}",
                millis(took),
                if still_running {
                    "still running"
                } else {
                    "gone"
                }
            ));
            self.keep_sample("etcd crash failover", &format!("{ttl}s"), round, took, None);
            failovers.failovers.push(took);
            if still_running {
                failovers.old_child_still_running += 1;
            }
        }
        result.failovers.push(failovers);
        self.sample_load();
        if lease == self.args.lease {
            result.footprint_ttl = Some(lease);
            self.etcd_idle(&etcd, result)?;
            self.sample_load();
        }
        Ok(())
    }

    /// Once `etcd` is healthy: why it does not grant a lease of `ttl` seconds, if it does not.
    fn refused_ttl(&self, etcd: &Etcd, ttl: u64) -> Result<Option<String>, Failure> {
        let endpoints = etcd.endpoints();
        self.wait_for(STEP_LIMIT, "etcd to become healthy", || {
            let status = etcdctl(&endpoints, &["endpoint", "health"]).ok()?;
            status.status.success().then_some(())
        })?;
        let granted = etcdctl(&endpoints, &["lease", "grant", &ttl.to_string()])
            .ok()
            .and_then(|output| parse_granted_ttl(&String::from_utf8_lossy(&output.stdout)));
        Ok(match granted {
            Some(granted) if granted == ttl => None,
            Some(granted) => Some(format!(
                "etcd grants TTL({granted}s) when asked for {ttl} s: at its default Raft \
                 timing (election timeout 1 s) its shortest lease is 1.5 election timeouts, \
                 rounded up to whole seconds"
            )),
            None => Some(format!(
                "`etcdctl lease grant {ttl}` did not answer with a TTL"
            )),
        })
    }

    /// One failover: SIGKILL of the holding etcdctl until another contender's child starts.
    /// Returns how long it took and whether the old child still ran then; the orphan is then
    /// stopped (nothing else ever would) and its contender started again.
    pub(crate) fn etcd_round(
        &mut self,
        etcd: &mut Etcd,
        tail: &mut LedgerTail,
        executable: &Path,
    ) -> Result<(Duration, bool), Failure> {
        let (holder, child) = self.wait_for(STEP_LIMIT, "a contender to hold the lock", || {
            tail.poll();
            holder(tail)
        })?;
        // A random phase against etcdctl's keep-alives (every TTL/3).
        let phase = self.rng.duration(Duration::from_secs(etcd.ttl) / 3);
        self.sleep(phase)?;
        let killed_at = etcd.kill_contender(holder);
        let next = self.wait_for(STEP_LIMIT, "the next contender's child", || {
            tail.poll();
            tail.starts()
                .iter()
                .find(|start| start.at > killed_at && start.pid != child.pid)
                .cloned()
        })?;
        let still_running = is_alive(child.pid as i32);
        let took = Duration::from_nanos(next.at.saturating_sub(killed_at));
        signal(child.pid as i32, Signal::TERM);
        self.wait_for(STEP_LIMIT, "the orphaned child to stop", || {
            (!is_alive(child.pid as i32)).then_some(())
        })?;
        etcd.start_contender(holder, executable)?;
        Ok((took, still_running))
    }

    /// Memory and CPU of the members and contenders over `--idle`.
    fn etcd_idle(&self, etcd: &Etcd, result: &mut EtcdResult) -> Result<(), Failure> {
        self.say(&format!(
            "etcd: watching the idle cluster for {} s",
            self.args.idle.as_secs()
        ));
        let members: Vec<i32> = etcd.members.iter().map(|child| child.id() as i32).collect();
        let contenders: Vec<i32> = etcd
            .contenders
            .iter()
            .flatten()
            .map(|child| child.id() as i32)
            .collect();
        let ticks = |pid: &i32| procfs::stat(*pid).map_or(0, |stat| stat.cpu_ticks);
        let members_before: Vec<u64> = members.iter().map(ticks).collect();
        let contenders_before: Vec<u64> = contenders.iter().map(ticks).collect();
        let window_start = Instant::now();
        self.sleep(self.args.idle)?;
        let window = window_start.elapsed().as_secs_f64();
        let per_second = procfs::ticks_per_second() as f64;
        let cpu = |pids: &[i32], before: &[u64]| -> Vec<f64> {
            pids.iter()
                .zip(before)
                .map(|(pid, before)| {
                    ticks(pid).saturating_sub(*before) as f64 / per_second / window * 100.0
                })
                .collect()
        };
        result.member_cpu = cpu(&members, &members_before);
        result.contender_cpu = cpu(&contenders, &contenders_before);
        result.member_kib = members
            .iter()
            .filter_map(|pid| procfs::resident_kib(*pid))
            .collect();
        result.contender_kib = contenders
            .iter()
            .filter_map(|pid| procfs::resident_kib(*pid))
            .collect();
        Ok(())
    }
}

/// The contender whose child runs (`cN` is contender N-1), and that child's start.
fn holder(tail: &LedgerTail) -> Option<(usize, LedgerEntry)> {
    let running = tail.running();
    let [child] = running[..] else {
        return None;
    };
    let index = child
        .node
        .strip_prefix('c')?
        .parse::<usize>()
        .ok()?
        .checked_sub(1)?;
    Some((index, child.clone()))
}

fn etcd_version() -> Result<String, Failure> {
    let output = Command::new("etcd")
        .arg("--version")
        .output()
        .map_err(|error| {
            failed(format!(
                "etcd is not installed ({error}); scripts/bench.sh installs it, or pass --etcd \
                 false"
            ))
        })?;
    let text = String::from_utf8_lossy(&output.stdout);
    let version = text
        .lines()
        .find_map(|line| line.strip_prefix("etcd Version:"))
        .map(|version| version.trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    if !version.starts_with("3.4") {
        println!("note: etcd {version} is not the 3.4 the comparison was written for");
    }
    Ok(version)
}

/// etcd's `--ttl` for `lease`, in whole seconds, or why there is none.
fn ttl_seconds(lease: Duration) -> Result<u64, String> {
    if lease.subsec_nanos() != 0 || lease.is_zero() {
        return Err(format!(
            "etcd's TTL is a whole number of seconds, and {} is not",
            humantime::format_duration(lease)
        ));
    }
    Ok(lease.as_secs())
}

/// The TTL in `etcdctl lease grant`'s answer, `lease 694d… granted with TTL(2s)`.
fn parse_granted_ttl(answer: &str) -> Option<u64> {
    let (_, rest) = answer.split_once("TTL(")?;
    let (seconds, _) = rest.split_once("s)")?;
    seconds.trim().parse().ok()
}

/// The benchmark's temporary directory for one etcd run (ledger, logs, data).
fn run_directory() -> Result<tempfile::TempDir, Failure> {
    tempfile::Builder::new()
        .prefix(&format!("{RUN_PREFIX}{}-etcd-", std::process::id()))
        .tempdir()
        .map_err(|error| failed(format!("no temporary directory: {error}")))
}

/// Runs `etcdctl --endpoints ENDPOINTS ARGUMENTS` (API 3) to completion.
fn etcdctl(endpoints: &str, arguments: &[&str]) -> std::io::Result<std::process::Output> {
    Command::new("etcdctl")
        .args(["--endpoints", endpoints])
        .args(arguments)
        .env("ETCDCTL_API", "3")
        .stdin(Stdio::null())
        .output()
}

/// A 3-member etcd cluster on 127.0.0.1 and 3 lock contenders, or contenders on an etcd
/// running already ([`Etcd::external`]). Dropping it kills every process it started,
/// including the children that killed contenders orphaned.
pub(crate) struct Etcd {
    /// The contenders' `--ttl`, in seconds.
    ttl: u64,
    /// The lock's name (`etcdctl lock NAME`).
    lock_name: String,
    directory: tempfile::TempDir,
    marker: String,
    members: Vec<Child>,
    client_urls: Vec<String>,
    contenders: Vec<Option<Child>>,
    pub(crate) ledger: PathBuf,
}

impl Etcd {
    /// `contenders` lock contenders (none started yet) on the etcd at `endpoints`
    /// (`HOST:PORT,…`), for the lock `lock_name`, which no one else may use.
    pub(crate) fn external(
        ttl: u64,
        endpoints: &str,
        lock_name: &str,
        contenders: usize,
    ) -> Result<Etcd, Failure> {
        let directory = run_directory()?;
        Ok(Etcd {
            ttl,
            lock_name: lock_name.to_string(),
            ledger: directory.path().join("ledger"),
            marker: directory.path().display().to_string(),
            directory,
            members: Vec::new(),
            client_urls: endpoints
                .split(',')
                .map(|endpoint| format!("http://{endpoint}"))
                .collect(),
            contenders: (0..contenders).map(|_| None).collect(),
        })
    }

    fn start(ttl: u64) -> Result<Etcd, Failure> {
        let directory = run_directory()?;
        let marker = directory.path().display().to_string();
        let port = || {
            free_tcp("127.0.0.1")
                .map(|address| address.port())
                .map_err(|error| failed(format!("no free port: {error}")))
        };
        let clients = (0..3)
            .map(|_| port())
            .collect::<Result<Vec<u16>, Failure>>()?;
        let peers = (0..3)
            .map(|_| port())
            .collect::<Result<Vec<u16>, Failure>>()?;
        let initial: Vec<String> = peers
            .iter()
            .enumerate()
            .map(|(index, port)| format!("e{}=http://127.0.0.1:{port}", index + 1))
            .collect();
        let mut etcd = Etcd {
            ttl,
            lock_name: "tenure-bench".to_string(),
            ledger: directory.path().join("ledger"),
            directory,
            marker,
            members: Vec::new(),
            client_urls: clients
                .iter()
                .map(|port| format!("http://127.0.0.1:{port}"))
                .collect(),
            contenders: vec![None, None, None],
        };
        for (index, peer) in peers.iter().enumerate() {
            etcd.start_member(index, *peer, &initial.join(","))?;
        }
        Ok(etcd)
    }

    /// Starts member `index` (`eN`), its peer URL on `peer`, into the cluster `initial`.
    fn start_member(&mut self, index: usize, peer: u16, initial: &str) -> Result<(), Failure> {
        let name = format!("e{}", index + 1);
        let log = fs::File::create(self.directory.path().join(format!("{name}.log")))
            .map_err(|error| failed(format!("cannot create etcd's log: {error}")))?;
        let peer_url = format!("http://127.0.0.1:{peer}");
        let mut command = Command::new("etcd");
        command
            .args(["--name", &name])
            .arg("--data-dir")
            .arg(self.directory.path().join(&name))
            .args(["--listen-client-urls", &self.client_urls[index]])
            .args(["--advertise-client-urls", &self.client_urls[index]])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", initial])
            .args(["--initial-cluster-state", "new"])
            .args([
                "--initial-cluster-token",
                &format!("tenure-bench-{}", std::process::id()),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0);
        exit_with_parent(&mut command, Signal::KILL);
        self.members.push(
            command
                .spawn()
                .map_err(|error| failed(format!("cannot start etcd: {error}")))?,
        );
        Ok(())
    }

    fn endpoints(&self) -> String {
        self.client_urls.join(",")
    }

    /// Starts (again) contender `index`: `etcdctl lock --ttl TTL tenure-bench -- CHILD`. Its
    /// stderr goes to `cN.log` in the directory.
    pub(crate) fn start_contender(
        &mut self,
        index: usize,
        executable: &Path,
    ) -> Result<(), Failure> {
        if let Some(mut old) = self.contenders[index].take() {
            let _ = old.kill();
            let _ = old.wait();
        }
        let log = fs::File::options()
            .create(true)
            .append(true)
            .open(self.directory.path().join(format!("c{}.log", index + 1)))
            .map_err(|error| failed(format!("cannot create etcdctl's log: {error}")))?;
        let mut command = Command::new("etcdctl");
        command
            .env("ETCDCTL_API", "3")
            .env("TENURE_NODE_ID", format!("c{}", index + 1))
            .env("TENURE_LEADER_ID", format!("c{}", index + 1))
            .args(["--endpoints", &self.endpoints()])
            .args([
                "lock",
                "--ttl",
                &self.ttl.to_string(),
                &self.lock_name,
                "--",
            ])
            .arg(executable)
            .arg(CHILD_MODE)
            .arg(&self.ledger)
            .args(["--token-env", "ETCD_LOCK_REV"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0);
        exit_with_parent(&mut command, Signal::KILL);
        self.contenders[index] = Some(
            command
                .spawn()
                .map_err(|error| failed(format!("cannot start etcdctl: {error}")))?,
        );
        Ok(())
    }

    /// SIGKILL of contender `index`'s etcdctl (not its child); returns when it was sent.
    fn kill_contender(&mut self, index: usize) -> u64 {
        let at = monotonic_nanos();
        if let Some(mut contender) = self.contenders[index].take() {
            let _ = contender.kill();
            let _ = contender.wait();
        }
        at
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for child in self.contenders.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for child in &mut self.members {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The orphaned children of killed contenders, and anything else of this run.
        let give_up = Instant::now() + Duration::from_secs(5);
        while Instant::now() < give_up && !processes_mentioning(&self.marker).is_empty() {
            for pid in processes_mentioning(&self.marker) {
                signal(pid, Signal::KILL);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_seconds_are_etcd_ttls() {
        assert_eq!(ttl_seconds(Duration::from_secs(2)), Ok(2));
        assert_eq!(ttl_seconds(Duration::from_secs(5)), Ok(5));
        let refused = ttl_seconds(Duration::from_millis(250)).unwrap_err();
        assert!(refused.contains("250ms"), "{refused}");
        assert!(ttl_seconds(Duration::from_millis(1_500)).is_err());
        assert!(ttl_seconds(Duration::ZERO).is_err());
    }

    #[test]
    fn the_granted_ttl_is_read_from_etcdctls_answer() {
        assert_eq!(
            parse_granted_ttl("lease 694d8a7c5c8b8f0a granted with TTL(2s)\n"),
            Some(2)
        );
        assert_eq!(parse_granted_ttl("lease 1 granted with TTL(15s)"), Some(15));
        assert_eq!(parse_granted_ttl("Error: context deadline exceeded"), None);
    }
}
