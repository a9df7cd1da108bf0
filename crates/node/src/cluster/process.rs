//! Process helpers of the local cluster: tie a started process's life to its starter, signal
//! it, find every process a run left behind, and read the clock all of them share.

use std::fs;
use std::io;
use std::process::Command;

pub use rustix::process::Signal;
use rustix::process::{getpid, getppid, kill_process, set_parent_process_death_signal, Pid};
use rustix::time::{clock_gettime, ClockId};

/// `CLOCK_MONOTONIC` in nanoseconds: one clock for every process of the machine, so a time
/// taken here and a time a child process writes down compare (the tests' ledger uses it).
pub fn monotonic_nanos() -> u64 {
    let time = clock_gettime(ClockId::Monotonic);
    u64::try_from(time.tv_sec).unwrap_or(0) * 1_000_000_000
        + u64::try_from(time.tv_nsec).unwrap_or(0)
}

/// Makes the process `command` starts receive `signal` when the thread that starts it exits
/// (Linux's parent-death signal), so that a demo or a test killed by SIGKILL does not leave its
/// cluster running. Start the process from a thread that lives as long as it should: the
/// signal fires when that *thread* ends, not the whole process.
pub fn exit_with_parent(command: &mut Command, signal: Signal) {
    let parent = getpid();
    #[allow(unsafe_code)]
    // SAFETY: the closure runs in the forked child before `exec`, where only async-signal-safe
    // work is allowed. It makes two raw system calls through rustix (prctl and getppid), which
    // neither allocate nor take locks, and converting an errno to `io::Error` does not allocate
    // either. The same pattern as the deadline guard's `spawn_child`.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(move || {
            set_parent_process_death_signal(Some(signal))?;
            // The parent may have died between fork and prctl: then the signal was armed too
            // late to fire, so refuse to start at all.
            if getppid() != Some(parent) {
                return Err(io::Error::from(rustix::io::Errno::SRCH));
            }
            Ok(())
        });
    }
}

/// The process IDs of every live process whose command line contains `marker` (for example a
/// temporary directory that appears in the arguments of every process a run started), except
/// the calling process. Zombies are skipped: they have ended and only await reaping.
pub fn processes_mentioning(marker: &str) -> Vec<i32> {
    let own = std::process::id();
    command_lines()
        .into_iter()
        .filter(|(pid, command_line)| {
            !u32::try_from(*pid).is_ok_and(|pid| pid == own)
                && command_line.contains(marker)
                && is_alive(*pid)
        })
        .map(|(pid, _)| pid)
        .collect()
}

/// Every process in `/proc` with its command line (arguments joined by NUL, read lossily),
/// zombies included; empty if `/proc` cannot be read.
pub fn command_lines() -> Vec<(i32, String)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<i32>().ok()?;
            let command_line = fs::read(entry.path().join("cmdline")).ok()?;
            Some((pid, String::from_utf8_lossy(&command_line).into_owned()))
        })
        .collect()
}

/// Whether `pid` is a live process (not a zombie).
pub fn is_alive(pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state is the first field after the parenthesised command name.
    !matches!(
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next()),
        Some('Z' | 'X') | None
    )
}

/// Sends `signal` to `pid`, ignoring a process that is already gone.
pub fn signal(pid: i32, signal: Signal) {
    if let Some(pid) = Pid::from_raw(pid) {
        let _ = kill_process(pid, signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_processes_by_a_marker_in_their_command_line() {
        let marker = format!("tenure-process-test-{}", std::process::id());
        let mut child = Command::new("sh")
            .args(["-c", "sleep 30", &marker])
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !processes_mentioning(&marker).contains(&pid) {
            assert!(std::time::Instant::now() < give_up, "not found");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        signal(pid, Signal::KILL);
        child.wait().unwrap();
        assert!(!is_alive(pid));
        assert!(processes_mentioning(&marker).is_empty());
    }
}
