//! What the chaos runner and the benchmark read about processes from `/proc`: parents and
//! process groups (to find a node's deadline guard and child for a whole-node freeze), resident
//! memory and CPU time (for the footprint).

use std::fs;

/// The fields of `/proc/PID/stat` the runner uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessStat {
    pub state: char,
    pub parent: i32,
    pub process_group: i32,
    /// User plus system CPU time, in clock ticks.
    pub cpu_ticks: u64,
}

/// `/proc/PID/stat` of a live process (not a zombie).
pub fn stat(pid: i32) -> Option<ProcessStat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text).filter(|stat| !matches!(stat.state, 'Z' | 'X'))
}

fn parse_stat(text: &str) -> Option<ProcessStat> {
    // The command name is in parentheses and may itself contain spaces or parentheses; the
    // fields start after the last ')'.
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 3, 4, 5, 14 and 15 of proc(5), counted from 1 with the pid as field 1.
    let state = fields.first()?.chars().next()?;
    let parent = fields.get(1)?.parse().ok()?;
    let process_group = fields.get(2)?.parse().ok()?;
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(ProcessStat {
        state,
        parent,
        process_group,
        cpu_ticks: user + system,
    })
}

/// The live children of `parent`.
pub fn children_of(parent: i32) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| stat(*pid).is_some_and(|stat| stat.parent == parent))
        .collect()
}

/// The resident set size of `pid` in KiB (`VmRSS` of `/proc/PID/status`).
pub fn resident_kib(pid: i32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Clock ticks per second of the CPU times in `/proc/PID/stat`.
pub fn ticks_per_second() -> u64 {
    rustix::param::clock_ticks_per_second()
}

/// The command line of `pid`, arguments joined by spaces.
pub fn command_line(pid: i32) -> Option<String> {
    let bytes = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        bytes
            .split(|byte| *byte == 0)
            .map(|part| String::from_utf8_lossy(part).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
            .trim_end()
            .to_string(),
    )
}

/// Cleans up after runs that were killed outright. Their directories are named
/// `PREFIX<pid>-...` after the process ID of the run, and every process a run starts mentions
/// its directory; for every such run whose process is gone, this kills those processes
/// (SIGKILL, then SIGCONT in case they were stopped) and removes the directories.
pub fn remove_stale_runs(prefix: &str) {
    let dead_run = |text: &str| -> Option<String> {
        let start = text.find(prefix)? + prefix.len();
        let pid: String = text[start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let alive = pid.is_empty() || std::path::Path::new(&format!("/proc/{pid}")).exists();
        (!alive).then(|| format!("{prefix}{pid}-"))
    };
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<i32>().ok())
            else {
                continue;
            };
            let Some(marker) = command_line(pid).and_then(|line| dead_run(&line)) else {
                continue;
            };
            eprintln!("killing process {pid}, left by a dead run ({marker}...)");
            tenure_node::cluster::process::signal(pid, rustix::process::Signal::KILL);
            tenure_node::cluster::process::signal(pid, rustix::process::Signal::CONT);
        }
    }
    if let Ok(entries) = fs::read_dir(std::env::temp_dir()) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(prefix) && dead_run(&name).is_some() {
                eprintln!("removing {}, left by a dead run", entry.path().display());
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_lines_with_awkward_command_names() {
        let line = "4242 (a (b) c) S 17 4242 4242 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 1 0 99";
        assert_eq!(
            parse_stat(line),
            Some(ProcessStat {
                state: 'S',
                parent: 17,
                process_group: 4242,
                cpu_ticks: 12,
            })
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn reads_its_own_process() {
        let own = std::process::id() as i32;
        let stat = stat(own).unwrap();
        assert!(stat.parent > 0);
        assert!(resident_kib(own).unwrap() > 0);
        assert!(ticks_per_second() > 0);
        assert!(command_line(own).is_some());
    }
}
