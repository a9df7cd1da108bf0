//! What an operator sees of a running `tenure run` beyond its settings: a log stream that is
//! pure JSON with `--log-format json`, and the exit status (docs/operations.md: Logs; Exit
//! statuses of `tenure run`).

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tenure_harness::{tenure_binary, Signal, SLACK};
use tenure_node::cluster::process::signal;

/// A one-node cluster running `command`, with its stdout and stderr in files of `directory`.
fn start_solo(directory: &Path, extra: &[&str], command: &[&str]) -> Child {
    let state = directory.join("state");
    fs::create_dir(&state).expect("create the state directory");
    let mut process = Command::new(tenure_binary());
    process
        .args(["run", "--id", "solo", "--state-dir"])
        .arg(&state)
        .args(extra)
        .arg("--")
        .args(command)
        .current_dir(directory)
        .stdin(Stdio::null())
        .stdout(File::create(directory.join("stdout")).expect("create the stdout file"))
        .stderr(File::create(directory.join("stderr")).expect("create the stderr file"));
    for (variable, _) in std::env::vars_os() {
        if variable.to_string_lossy().starts_with("TENURE_") {
            process.env_remove(variable);
        }
    }
    process.spawn().expect("start tenure")
}

/// Waits until `path` exists; false after `limit`.
fn wait_for_file(path: &Path, limit: Duration) -> bool {
    let give_up = Instant::now() + limit;
    while Instant::now() < give_up {
        if path.exists() {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    path.exists()
}

/// Waits for `child` to exit; kills it and fails the test after `limit`.
fn wait_for_exit(child: &mut Child, limit: Duration, logs: &Path) -> ExitStatus {
    let give_up = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait for our own child") {
            return status;
        }
        if Instant::now() >= give_up {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "tenure did not exit within {limit:?}:\n{}",
                fs::read_to_string(logs).unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn path(directory: &Path, name: &str) -> PathBuf {
    directory.join(name)
}

#[test]
fn with_json_logs_every_line_on_stderr_parses_guard_lines_included() {
    let directory = tempfile::tempdir().unwrap();
    let stderr = path(directory.path(), "stderr");
    // A daemon that ignores SIGTERM, so that the guard has to SIGKILL it and says so.
    let daemon = "trap '' TERM; touch started; exec sleep 60";
    let extra = ["--log-format", "json", "--stop-grace", "200ms"];
    let mut tenure = start_solo(directory.path(), &extra, &["sh", "-c", daemon]);

    // Phase 1: the node leads and its daemon runs.
    let started = wait_for_file(&path(directory.path(), "started"), SLACK * 2);
    if !started {
        let _ = tenure.kill();
        let _ = tenure.wait();
    }
    assert!(started, "{}", fs::read_to_string(&stderr).unwrap());

    // Phase 2: SIGTERM: the guard stops the daemon, which needs SIGKILL, and tenure exits 0.
    signal(tenure.id() as i32, Signal::TERM);
    let status = wait_for_exit(&mut tenure, SLACK * 2, &stderr);
    let text = fs::read_to_string(&stderr).unwrap();
    assert!(status.success(), "{status}: {text}");

    // Phase 3: every line parses as one JSON object, tenure's and the guard's alike.
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|problem| panic!("not JSON ({problem}): {line:?}\nin:\n{text}"))
        })
        .collect();
    assert!(lines.iter().all(serde_json::Value::is_object), "{text}");
    assert!(
        lines.iter().any(|line| line["source"] == "tenure-guard"
            && line["message"].as_str().unwrap_or("").contains("SIGKILL")),
        "no guard line about the SIGKILL:\n{text}"
    );
    assert!(
        lines.iter().any(|line| line["level"] == "INFO"),
        "no line of tenure's own:\n{text}"
    );
}

#[test]
fn a_daemon_that_fails_for_good_makes_tenure_exit_3_when_asked_to() {
    // docs/operations.md: Exit statuses of `tenure run`. A daemon that always exits 1, with no
    // restarts: the node hands leadership over and, with --exit-on-daemon-failure, exits 3.
    let directory = tempfile::tempdir().expect("a temporary directory");
    let extra = ["--max-child-restarts", "0", "--exit-on-daemon-failure"];
    let mut tenure = start_solo(directory.path(), &extra, &["sh", "-c", "exit 1"]);
    let status = wait_for_exit(
        &mut tenure,
        Duration::from_secs(10) + SLACK,
        directory.path(),
    );
    assert_eq!(
        status.code(),
        Some(3),
        "the exit status says the daemon failed"
    );
    let stderr = fs::read_to_string(directory.path().join("stderr")).expect("read stderr");
    assert!(stderr.contains("the daemon failed for good"), "{stderr}");

    // Without the flag the node stays on as a member: still running after the same failure.
    let directory = tempfile::tempdir().expect("a temporary directory");
    let extra = ["--max-child-restarts", "0"];
    let mut tenure = start_solo(directory.path(), &extra, &["sh", "-c", "exit 1"]);
    thread::sleep(Duration::from_secs(3));
    assert!(
        tenure.try_wait().expect("poll tenure").is_none(),
        "tenure exited without --exit-on-daemon-failure"
    );
    signal(tenure.id() as i32, Signal::TERM);
    let status = wait_for_exit(
        &mut tenure,
        Duration::from_secs(5) + SLACK,
        directory.path(),
    );
    assert_eq!(status.code(), Some(0));
}
