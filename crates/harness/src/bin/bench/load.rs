//! Background load for a series of handovers: busy-loop processes (this binary in the hidden
//! `__spin` mode) at the nodes' own priority, one per CPU by default. Each is bounded three
//! ways: it stops by itself after `SPIN_LIMIT`, it gets SIGKILL when the benchmark dies
//! (parent-death signal), and dropping [`BackgroundLoad`] kills and reaps it.

use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use tenure_harness::Signal;
use tenure_node::cluster::process::exit_with_parent;

use crate::{failed, Failure, SPIN_MODE};

/// The longest a busy loop runs by itself: far beyond any handover series it loads.
const SPIN_LIMIT: Duration = Duration::from_secs(600);

/// Busy-loop processes, killed when dropped.
pub(crate) struct BackgroundLoad {
    processes: Vec<Child>,
}

impl BackgroundLoad {
    /// Starts `count` busy loops.
    pub(crate) fn start(count: usize) -> Result<BackgroundLoad, Failure> {
        let executable = std::env::current_exe()
            .map_err(|error| failed(format!("cannot find this program: {error}")))?;
        let mut load = BackgroundLoad {
            processes: Vec::new(),
        };
        for _ in 0..count {
            let mut command = Command::new(&executable);
            command
                .arg(SPIN_MODE)
                .arg(SPIN_LIMIT.as_millis().to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            exit_with_parent(&mut command, Signal::KILL);
            let process = command
                .spawn()
                .map_err(|error| failed(format!("cannot start a busy loop: {error}")))?;
            load.processes.push(process);
        }
        Ok(load)
    }

    /// How many busy loops still run.
    pub(crate) fn running(&mut self) -> usize {
        self.processes
            .iter_mut()
            .map(Child::try_wait)
            .filter(|status| matches!(status, Ok(None)))
            .count()
    }
}

impl Drop for BackgroundLoad {
    fn drop(&mut self) {
        for process in &mut self.processes {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

/// The busy loop itself: `bench __spin MILLISECONDS`, at most `SPIN_LIMIT`.
pub(crate) fn spin(arguments: &[String]) -> ExitCode {
    let asked = arguments
        .first()
        .and_then(|text| text.parse::<u64>().ok())
        .map_or(SPIN_LIMIT, Duration::from_millis);
    let until = Instant::now() + asked.min(SPIN_LIMIT);
    let mut counter: u64 = 0;
    while Instant::now() < until {
        for _ in 0..10_000 {
            counter =
                std::hint::black_box(counter.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
    ExitCode::SUCCESS
}
