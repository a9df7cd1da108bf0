//! The deadline guard, run for real: the `tenure` binary in guard mode supervising shell
//! scripts whose process IDs the tests watch.
//!
//! Every wait is bounded, every child sleeps at most 30 s, and a test that fails part-way
//! SIGKILLs the processes it started. Timing is asserted against bounds derived from the
//! configured deadline, stop grace and kill allowance, with generous slack for a loaded
//! machine; lower bounds (the guard waited as long as it should) are exact.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rustix::process::{kill_process, test_kill_process, Pid, Signal};
use tenure_node::cli::LogFormat;
use tenure_node::clock::BootClock;
use tenure_node::guard::{GuardHandle, GuardOptions, GuardOutcome, StopReason};

/// Added to every upper bound: covers process start-up and scheduling on a busy machine.
const SLACK: Duration = Duration::from_secs(3);
/// The longest any test waits for anything.
const PATIENCE: Duration = Duration::from_secs(20);
const MILLISECOND: u64 = 1_000_000;

/// A child that ignores SIGTERM, as does its grandchild (`trap ''` is inherited); both write
/// their process IDs and then wait, so only SIGKILL ends them.
const IGNORES_TERM: &str = "trap '' TERM; sleep 30 & echo $$ $! > pids.tmp; mv pids.tmp pids; wait";
/// A child and grandchild that both end on SIGTERM; the child records that it got it.
const HONOURS_TERM: &str = "trap 'echo term > got_term; exit 0' TERM; sleep 30 & \
                            echo $$ $! > pids.tmp; mv pids.tmp pids; wait";

fn tenure() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tenure"))
}

fn now() -> u64 {
    BootClock::new().now_nanos()
}

fn millis(duration: Duration) -> u64 {
    duration.as_millis() as u64 * MILLISECOND
}

/// Options running `sh -c script` in `directory`.
fn shell(directory: &Path, script: &str, deadline_nanos: u64, stop_grace_ms: u64) -> GuardOptions {
    GuardOptions {
        log_format: LogFormat::Text,
        deadline_nanos,
        stop_grace: Duration::from_millis(stop_grace_ms),
        kill_after: Duration::from_millis(1000),
        command: "sh".into(),
        arguments: vec![
            "-c".into(),
            format!("cd '{}' && {script}", directory.display()).into(),
        ],
    }
}

/// SIGKILLs the processes a test started if it fails before they are gone.
#[derive(Default)]
struct Cleanup {
    pids: Vec<i32>,
}

impl Cleanup {
    fn watch(&mut self, pid: i32) {
        self.pids.push(pid);
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for &pid in &self.pids {
            if let Some(pid) = Pid::from_raw(pid) {
                let _ = kill_process(pid, Signal::KILL);
            }
        }
    }
}

/// Whether `pid` is a live process. A zombie is not: it has ended and only awaits reaping
/// (orphans are reaped by init, which in a container may never happen).
fn is_running(pid: i32) -> bool {
    let Some(raw) = Pid::from_raw(pid) else {
        return false;
    };
    if test_kill_process(raw).is_err() {
        return false;
    }
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name.
        Ok(stat) => !matches!(
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next()),
            Some('Z' | 'X')
        ),
        Err(_) => false,
    }
}

fn wait_until_gone(pid: i32, limit: Duration) -> bool {
    let give_up = now() + millis(limit);
    while now() < give_up {
        if !is_running(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    !is_running(pid)
}

/// Reads the process IDs a script wrote to `name` once the file appears.
fn read_pids(directory: &Path, name: &str) -> Vec<i32> {
    let path = directory.join(name);
    let give_up = now() + millis(PATIENCE);
    while now() < give_up {
        if let Ok(text) = fs::read_to_string(&path) {
            return text
                .split_whitespace()
                .map(|pid| pid.parse().expect("the script writes numbers"))
                .collect();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("{} did not appear within {PATIENCE:?}", path.display());
}

/// Waits for the guard to exit; returns its outcome and the boot-clock time it was seen.
fn wait_for_guard(guard: &mut GuardHandle) -> (GuardOutcome, u64) {
    let give_up = now() + millis(PATIENCE);
    while now() < give_up {
        if let Some(outcome) = guard.try_wait().expect("waitpid on our own child works") {
            return (outcome, now());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("the guard did not exit within {PATIENCE:?}");
}

fn wait_for_raw_guard(guard: &mut Child) -> i32 {
    let give_up = now() + millis(PATIENCE);
    while now() < give_up {
        if let Some(status) = guard.try_wait().expect("waitpid on our own child works") {
            return status.code().expect("the guard exits, it is not killed");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("the guard did not exit within {PATIENCE:?}");
}

/// Starts the guard directly, holding its control pipe raw.
fn spawn_raw(options: &GuardOptions) -> Child {
    Command::new(tenure())
        .arg("__guard")
        .args(options.to_arguments())
        .stdin(Stdio::piped())
        .spawn()
        .expect("the tenure binary built for this test starts")
}

#[test]
fn a_passed_deadline_kills_the_whole_group_within_grace_plus_kill_after() {
    let directory = tempfile::tempdir().unwrap();
    let mut cleanup = Cleanup::default();
    let deadline = now() + 800 * MILLISECOND;
    let options = shell(directory.path(), IGNORES_TERM, deadline, 300);
    let mut guard = GuardHandle::spawn(&tenure(), &options, &[]).unwrap();
    cleanup.watch(guard.pid() as i32);

    // Phase 1: the child and its grandchild run until the deadline.
    let pids = read_pids(directory.path(), "pids");
    let [child, grandchild] = pids[..] else {
        panic!("expected two process IDs, got {pids:?}");
    };
    cleanup.watch(child);
    cleanup.watch(grandchild);
    assert!(is_running(child) && is_running(grandchild));

    // Phase 2: nobody extends the deadline. The group ignores SIGTERM, so the guard must
    // wait out the whole grace before SIGKILL, and be done by the kill allowance.
    let (outcome, exited_at) = wait_for_guard(&mut guard);
    assert_eq!(outcome, GuardOutcome::Stopped(StopReason::DeadlinePassed));
    let earliest = deadline + millis(options.stop_grace);
    let latest = deadline + millis(options.stop_grace + options.kill_after + SLACK);
    assert!(
        exited_at >= earliest,
        "guard exited {} ms early",
        (earliest - exited_at) / MILLISECOND
    );
    assert!(
        exited_at <= latest,
        "guard exited {} ms late",
        (exited_at - latest) / MILLISECOND
    );

    // Phase 3: the child was reaped by the guard, and the grandchild was killed with it.
    assert!(!is_running(child), "the child outlived its guard");
    assert!(
        wait_until_gone(grandchild, SLACK),
        "the grandchild survived"
    );
}

#[test]
fn the_guard_is_named_tenure_guard_in_ps() {
    let directory = tempfile::tempdir().unwrap();
    let mut cleanup = Cleanup::default();
    let options = shell(
        directory.path(),
        HONOURS_TERM,
        now() + 60_000 * MILLISECOND,
        1_000,
    );
    let mut guard = GuardHandle::spawn(&tenure(), &options, &[]).unwrap();
    let pid = guard.pid() as i32;
    cleanup.watch(pid);
    // The guard names itself before it starts the child, so once the child runs, it is named.
    for child in read_pids(directory.path(), "pids") {
        cleanup.watch(child);
    }

    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm, "tenure-guard\n");
    let command_line = fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        command_line.starts_with(b"tenure-guard\0__guard\0"),
        "{:?}",
        String::from_utf8_lossy(&command_line)
    );

    guard.stop().unwrap();
    let (outcome, _) = wait_for_guard(&mut guard);
    assert_eq!(outcome, GuardOutcome::Stopped(StopReason::StopRequested));
}

#[test]
fn stop_gives_a_term_honouring_child_a_clean_exit() {
    let directory = tempfile::tempdir().unwrap();
    let mut cleanup = Cleanup::default();
    let stop_grace = Duration::from_secs(10);
    let options = shell(
        directory.path(),
        HONOURS_TERM,
        now() + 60_000 * MILLISECOND,
        stop_grace.as_millis() as u64,
    );
    let mut guard = GuardHandle::spawn(&tenure(), &options, &[]).unwrap();
    cleanup.watch(guard.pid() as i32);
    let pids = read_pids(directory.path(), "pids");
    for &pid in &pids {
        cleanup.watch(pid);
    }

    // Phase 1: tenure asks for a stop long before the deadline.
    let stopped_at = now();
    guard.stop().unwrap();
    let (outcome, exited_at) = wait_for_guard(&mut guard);

    // Phase 2: the child ran its SIGTERM handler, and the guard noticed the exit instead of
    // waiting out the grace.
    assert_eq!(outcome, GuardOutcome::Stopped(StopReason::StopRequested));
    assert_eq!(
        fs::read_to_string(directory.path().join("got_term")).unwrap(),
        "term\n"
    );
    assert!(
        exited_at < stopped_at + millis(stop_grace),
        "the guard waited out the grace"
    );
    for pid in pids {
        assert!(wait_until_gone(pid, SLACK), "process {pid} survived");
    }

    // Phase 3: the handle refuses further commands.
    assert!(guard.extend(now()).is_err());
    assert!(guard.stop().is_err());
}

#[test]
fn a_closed_control_pipe_kills_the_group() {
    let directory = tempfile::tempdir().unwrap();
    let mut cleanup = Cleanup::default();
    let options = shell(
        directory.path(),
        IGNORES_TERM,
        now() + 60_000 * MILLISECOND,
        200,
    );
    let mut guard = spawn_raw(&options);
    cleanup.watch(guard.id() as i32);
    let pids = read_pids(directory.path(), "pids");
    for &pid in &pids {
        cleanup.watch(pid);
    }

    // Phase 1: "tenure" dies: its end of the pipe closes without a word.
    let closed_at = now();
    drop(guard.stdin.take());

    // Phase 2: the guard stops the group as for a passed deadline.
    assert_eq!(wait_for_raw_guard(&mut guard), 122);
    let latest = closed_at + millis(options.stop_grace + options.kill_after + SLACK);
    assert!(now() <= latest);
    for pid in pids {
        assert!(wait_until_gone(pid, SLACK), "process {pid} survived");
    }
}

#[test]
fn extensions_keep_the_child_running_past_the_first_deadline() {
    let directory = tempfile::tempdir().unwrap();
    let mut cleanup = Cleanup::default();
    let start = now();
    let first_deadline = start + 500 * MILLISECOND;
    let options = shell(directory.path(), HONOURS_TERM, first_deadline, 100);
    let mut guard = GuardHandle::spawn(&tenure(), &options, &[]).unwrap();
    cleanup.watch(guard.pid() as i32);
    let pids = read_pids(directory.path(), "pids");
    for &pid in &pids {
        cleanup.watch(pid);
    }

    // Phase 1: renew every 50 ms, each time to 1.5 s ahead, until well past the moment the
    // first deadline would have ended everything.
    let first_end = first_deadline + millis(options.stop_grace + options.kill_after);
    let keep_going_until = first_end + 1000 * MILLISECOND;
    while now() < keep_going_until {
        guard.extend(now() + 1500 * MILLISECOND).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }

    // Phase 2: everything still runs.
    assert_eq!(guard.try_wait().unwrap(), None);
    for &pid in &pids {
        assert!(
            is_running(pid),
            "process {pid} was stopped despite extensions"
        );
    }

    // Phase 3: an extension may also bring the deadline closer; it is then obeyed.
    let new_deadline = now() + 200 * MILLISECOND;
    guard.extend(new_deadline).unwrap();
    let (outcome, exited_at) = wait_for_guard(&mut guard);
    assert_eq!(outcome, GuardOutcome::Stopped(StopReason::DeadlinePassed));
    assert!(exited_at >= new_deadline);
    assert!(exited_at <= new_deadline + millis(options.stop_grace + options.kill_after + SLACK));
    for pid in pids {
        assert!(wait_until_gone(pid, SLACK), "process {pid} survived");
    }
}

#[test]
fn a_child_that_exits_by_itself_passes_on_its_status_and_leaves_nothing_behind() {
    let directory = tempfile::tempdir().unwrap();
    let mut cleanup = Cleanup::default();
    let far = now() + 60_000 * MILLISECOND;

    // Phase 1: a plain exit code comes back as it is.
    let mut guard =
        GuardHandle::spawn(&tenure(), &shell(directory.path(), "exit 7", far, 100), &[]).unwrap();
    cleanup.watch(guard.pid() as i32);
    assert_eq!(
        wait_for_guard(&mut guard).0,
        GuardOutcome::ChildExited { code: 7 }
    );

    // Phase 2: a child killed by a signal is reported as a shell would (128 + 9).
    let mut guard = GuardHandle::spawn(
        &tenure(),
        &shell(directory.path(), "kill -9 $$", far, 100),
        &[],
    )
    .unwrap();
    cleanup.watch(guard.pid() as i32);
    assert_eq!(
        wait_for_guard(&mut guard).0,
        GuardOutcome::ChildExited { code: 137 }
    );

    // Phase 3: a background helper the child forgot is killed when the child exits.
    let script = "trap '' TERM; sleep 30 & echo $! > pids.tmp; mv pids.tmp helper; exit 3";
    let mut guard =
        GuardHandle::spawn(&tenure(), &shell(directory.path(), script, far, 100), &[]).unwrap();
    cleanup.watch(guard.pid() as i32);
    let helper = read_pids(directory.path(), "helper")[0];
    cleanup.watch(helper);
    assert_eq!(
        wait_for_guard(&mut guard).0,
        GuardOutcome::ChildExited { code: 3 }
    );
    assert!(
        wait_until_gone(helper, SLACK),
        "the helper outlived the child"
    );
}

#[test]
fn a_sigkilled_guard_takes_its_child_with_it() {
    let directory = tempfile::tempdir().unwrap();
    let mut cleanup = Cleanup::default();
    let script = "echo $$ > pids.tmp; mv pids.tmp pids; exec sleep 30";
    let options = shell(directory.path(), script, now() + 60_000 * MILLISECOND, 100);
    let mut guard = GuardHandle::spawn(&tenure(), &options, &[]).unwrap();
    cleanup.watch(guard.pid() as i32);
    let child = read_pids(directory.path(), "pids")[0];
    cleanup.watch(child);

    // The guard gets no chance to act; the parent-death signal must do its work.
    let guard_pid = Pid::from_raw(guard.pid() as i32).unwrap();
    kill_process(guard_pid, Signal::KILL).unwrap();
    assert_eq!(
        wait_for_guard(&mut guard).0,
        GuardOutcome::GuardKilled { signal: 9 }
    );
    assert!(
        wait_until_gone(child, SLACK),
        "the child outlived its SIGKILLed guard"
    );
}

#[test]
fn the_child_never_reads_the_control_pipe_and_gets_the_environment() {
    let directory = tempfile::tempdir().unwrap();
    let mut cleanup = Cleanup::default();
    // If the child's stdin were the control pipe, `cat` would swallow the extend line or
    // block until the deadline; with /dev/null it sees end of file at once.
    let script = "cat > input; printf %s \"$TENURE_FENCING_TOKEN\" > token";
    let options = shell(directory.path(), script, now() + 60_000 * MILLISECOND, 100);
    let environment = [("TENURE_FENCING_TOKEN".into(), "42".into())];
    let mut guard = GuardHandle::spawn(&tenure(), &options, &environment).unwrap();
    cleanup.watch(guard.pid() as i32);
    // The guard may already be gone by now; a refused line is fine, a swallowed one is not.
    let _ = guard.extend(now() + 60_000 * MILLISECOND);
    assert_eq!(
        wait_for_guard(&mut guard).0,
        GuardOutcome::ChildExited { code: 0 }
    );
    assert_eq!(
        fs::read_to_string(directory.path().join("input")).unwrap(),
        ""
    );
    assert_eq!(
        fs::read_to_string(directory.path().join("token")).unwrap(),
        "42"
    );
}

#[test]
fn a_malformed_control_line_stops_the_child() {
    let directory = tempfile::tempdir().unwrap();
    let mut cleanup = Cleanup::default();
    let options = shell(
        directory.path(),
        HONOURS_TERM,
        now() + 60_000 * MILLISECOND,
        5000,
    );
    let mut guard = spawn_raw(&options);
    cleanup.watch(guard.id() as i32);
    let pids = read_pids(directory.path(), "pids");
    for &pid in &pids {
        cleanup.watch(pid);
    }
    let mut control = guard.stdin.take().unwrap();
    control.write_all(b"extend soon\n").unwrap();
    assert_eq!(wait_for_raw_guard(&mut guard), 123);
    for pid in pids {
        assert!(wait_until_gone(pid, SLACK), "process {pid} survived");
    }
}

#[test]
fn reports_commands_that_cannot_run_and_bad_usage() {
    let far = now() + 60_000 * MILLISECOND;
    let missing = GuardOptions {
        command: "/nonexistent/tenure-test-command".into(),
        arguments: vec![],
        ..shell(Path::new("/"), "true", far, 100)
    };
    let mut guard = GuardHandle::spawn(&tenure(), &missing, &[]).unwrap();
    assert_eq!(wait_for_guard(&mut guard).0, GuardOutcome::CommandNotFound);

    // Options the guard would refuse are refused before any process starts.
    let no_kill_allowance = GuardOptions {
        kill_after: Duration::ZERO,
        ..shell(Path::new("/"), "true", far, 100)
    };
    let error = GuardHandle::spawn(&tenure(), &no_kill_allowance, &[]).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert!(
        error
            .to_string()
            .contains("--kill-after-ms must be at least 1"),
        "{error}"
    );

    let status = Command::new(tenure())
        .args(["__guard", "--deadline-ns", "1", "--", "true"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(125));
    let message = String::from_utf8_lossy(&status.stderr);
    assert!(message.contains("--stop-grace-ms is required"), "{message}");
}
