//! The `tenure` binary refusing to start: bad configuration (exit status 2) and a state file it
//! cannot trust (exit status 1), each with an error that says what is wrong and what to do.
//! Also the precedence of flags, environment, config file and defaults.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use tenure_harness::{free_tcp, free_udp, run_tenure, Cluster, ClusterSpec, SLACK};

const LEDGER_CHILD: &str = env!("CARGO_BIN_EXE_ledger-child");

#[test]
fn bad_configuration_is_refused_with_a_clear_error_and_status_2() {
    let directory = tempfile::tempdir().unwrap();
    let state = directory.path().display().to_string();
    let key = directory.path().join("key");
    fs::write(&key, "ab".repeat(32)).unwrap();
    let key = key.display().to_string();
    let listen = free_udp("127.0.0.1").expect("a free UDP port").to_string();
    let peer = format!("n2={}", free_udp("127.0.0.2").expect("a free UDP port"));
    let base = [
        "run",
        "--id",
        "n1",
        "--listen",
        &listen,
        "--state-dir",
        &state,
    ];
    let owned = |parts: &[&str]| -> Vec<String> { parts.iter().map(ToString::to_string).collect() };
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(ToString::to_string).collect()
    };
    let config = directory.path().join("tenure.toml");
    fs::write(&config, "id = \"n1\"\nlese = \"2s\"\n").unwrap();
    let config = config.display().to_string();

    let cases: Vec<(Vec<String>, &str)> = vec![
        (owned(&["run"]), "--id is required"),
        (owned(&["run", "--id", "n1"]), "--state-dir is required"),
        (with(&["--peer", &peer]), "needs --cluster-key-file"),
        (
            with(&["--peer", &peer, "--lease", "2x"]),
            "invalid value '2x' for '--lease",
        ),
        (with(&["--peer", "n2"]), "is not NAME=HOST:PORT"),
        (
            with(&["--peer", &peer, "--peer", "n2=127.0.0.1:9"]),
            "is given twice",
        ),
        (
            with(&[
                "--peer",
                &peer,
                "--cluster-key-file",
                &key,
                "--heartbeat",
                "1s",
            ]),
            "--heartbeat 1s must be less than a third of --lease 2s",
        ),
        (
            with(&[
                "--peer",
                &peer,
                "--cluster-key-file",
                &key,
                "--stop-grace",
                "1900ms",
            ]),
            "--stop-grace 1s 900ms leaves the leader no time to act",
        ),
        (
            with(&["--peer", &peer, "--cluster-key-file", "/nonexistent/key"]),
            "cluster key file /nonexistent/key: cannot open it",
        ),
        (owned(&["run", "--config", &config]), "unknown field `lese`"),
        (with(&["--log-format", "xml"]), "invalid value 'xml'"),
    ];
    for (arguments, expected) in cases {
        let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
        let (status, _, stderr) = run_tenure(&arguments, &[]);
        assert_eq!(status.code(), Some(2), "{arguments:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{arguments:?}: {stderr:?} lacks {expected:?}"
        );
    }
}

#[test]
fn flags_beat_environment_beats_config_file_beats_defaults() {
    let directory = tempfile::tempdir().unwrap();
    let config = directory.path().join("tenure.toml");
    fs::write(
        &config,
        "id = \"solo\"\nstate_dir = \".\"\nlease = \"3s\"\nheartbeat = \"300ms\"\n",
    )
    .unwrap();
    let config = config.display().to_string();
    let dry_run = |extra: &[&str], environment: &[(&str, &str)]| {
        let mut arguments = vec!["run", "--config", &config, "--dry-run"];
        arguments.extend_from_slice(extra);
        let (status, stdout, stderr) = run_tenure(&arguments, environment);
        assert!(status.success(), "{stderr}");
        stdout
    };
    let line = |text: &str, name: &str| -> String {
        text.lines()
            .find(|line| line.trim_start().starts_with(name))
            .unwrap_or_default()
            .to_string()
    };

    // Phase 1: the file beats the default (heartbeat), and the default fills the rest.
    let from_file = dry_run(&[], &[]);
    assert!(line(&from_file, "lease").contains("3s"), "{from_file}");
    assert!(
        line(&from_file, "lease").contains("[config file"),
        "{from_file}"
    );
    assert!(
        line(&from_file, "max drift").contains("0.01   [default]"),
        "{from_file}"
    );

    // Phase 2: the environment beats the file.
    let from_environment = dry_run(&[], &[("TENURE_LEASE", "4s")]);
    assert!(
        line(&from_environment, "lease").contains("4s"),
        "{from_environment}"
    );
    assert!(
        line(&from_environment, "lease").contains("[$TENURE_LEASE]"),
        "{from_environment}"
    );
    assert!(
        line(&from_environment, "heartbeat").contains("300ms"),
        "{from_environment}"
    );

    // Phase 3: the flag beats both.
    let from_flag = dry_run(&["--lease", "5s"], &[("TENURE_LEASE", "4s")]);
    assert!(line(&from_flag, "lease").contains("5s"), "{from_flag}");
    assert!(
        line(&from_flag, "lease").contains("[--lease]"),
        "{from_flag}"
    );
}

#[test]
fn environment_lists_with_blanks_and_boolean_spellings_are_accepted() {
    let directory = tempfile::tempdir().unwrap();
    let state = directory.path().display().to_string();
    let dry_run = |environment: &[(&str, &str)]| {
        let arguments = [
            "run",
            "--id",
            "n1",
            "--listen",
            "127.0.0.1:7101",
            "--dry-run",
        ];
        let mut all = vec![("TENURE_STATE_DIR", state.as_str())];
        all.extend_from_slice(environment);
        run_tenure(&arguments, &all)
    };

    // Phase 1: blanks after the commas of TENURE_PEERS, and TENURE_INSECURE in the usual
    // spellings of true, are read as meant.
    let peers = ("TENURE_PEERS", "n2=127.0.0.1:7102, n3=127.0.0.1:7103");
    for yes in ["1", "true", "TRUE", "yes", "Yes", "on"] {
        let (status, stdout, stderr) = dry_run(&[peers, ("TENURE_INSECURE", yes)]);
        assert!(status.success(), "TENURE_INSECURE={yes}: {stderr}");
        assert!(stdout.contains("n1, n2, n3 (majority 2)"), "{stdout}");
        assert!(stdout.contains("NONE (--insecure"), "{stdout}");
    }

    // Phase 2: the spellings of false leave --insecure off, so a key is required.
    for no in ["0", "false", "No", "off"] {
        let (status, _, stderr) = dry_run(&[peers, ("TENURE_INSECURE", no)]);
        assert_eq!(status.code(), Some(2), "TENURE_INSECURE={no}: {stderr}");
        assert!(stderr.contains("needs --cluster-key-file"), "{stderr}");
    }

    // Phase 3: a cluster of two is warned about on stderr, and still runs.
    let (status, _, stderr) = dry_run(&[
        ("TENURE_PEERS", "n2=127.0.0.1:7102"),
        ("TENURE_INSECURE", "1"),
    ]);
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: a cluster of 2 members tolerates no failure"),
        "{stderr}"
    );
}

#[test]
fn one_lease_flag_sets_a_consistent_timing_at_both_ends_of_its_range() {
    let directory = tempfile::tempdir().unwrap();
    let state = directory.path().display().to_string();
    let line = |text: &str, name: &str| -> String {
        text.lines()
            .find(|line| line.trim_start().starts_with(name))
            .unwrap_or_default()
            .to_string()
    };
    // (lease, derived heartbeat, derived stop grace)
    let cases = [("250ms", "31ms", "31ms"), ("60s", "7s 500ms", "15s")];
    for (lease, heartbeat, stop_grace) in cases {
        let arguments = [
            "run",
            "--id",
            "n1",
            "--listen",
            "127.0.0.1:7101",
            "--peer",
            "n2=127.0.0.1:7102",
            "--peer",
            "n3=127.0.0.1:7103",
            "--insecure",
            "--state-dir",
            &state,
            "--lease",
            lease,
            "--dry-run",
        ];
        let (status, stdout, stderr) = run_tenure(&arguments, &[]);
        assert!(status.success(), "--lease {lease}: {stderr}");
        let shown = line(&stdout, "heartbeat");
        assert!(
            shown.contains(&format!("{heartbeat}   [default: lease/8]")),
            "{stdout}"
        );
        let shown = line(&stdout, "stop grace");
        assert!(
            shown.starts_with(&format!("  stop grace      {stop_grace} (")),
            "{stdout}"
        );
        assert!(shown.contains("[default: lease/4"), "{stdout}");
    }
}

#[test]
fn a_corrupt_state_file_stops_the_node_with_the_documented_error_and_is_left_untouched() {
    let directory = tempfile::tempdir().unwrap();
    let state_file = directory.path().join("state");
    let damaged = b"tenure-state 1\nterm 7\nvoted_for n2\nincarnation 3\ncrc32 00000000\n";
    fs::write(&state_file, damaged).unwrap();
    let state = directory.path().display().to_string();
    let http = free_tcp("127.0.0.1").expect("a free TCP port").to_string();
    let (status, _, stderr) = run_tenure(
        &[
            "run",
            "--id",
            "n1",
            "--state-dir",
            &state,
            "--http",
            &http,
            "--",
            "true",
        ],
        &[],
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    let path = state_file.display().to_string();
    for expected in [
        path.as_str(),
        "is damaged",
        "checksum mismatch",
        "tenure refuses to start",
        "Restore the file from a backup",
        "keep this node stopped for at least one full lease",
    ] {
        assert!(stderr.contains(expected), "{stderr:?} lacks {expected:?}");
    }
    assert_eq!(
        fs::read(&state_file).unwrap(),
        damaged,
        "the file was changed"
    );
}

#[test]
fn a_missing_state_directory_is_an_error_not_a_fresh_start() {
    let directory = tempfile::tempdir().unwrap();
    let missing = directory.path().join("missing");
    let missing_text = missing.display().to_string();
    let (status, _, stderr) = run_tenure(&["run", "--id", "n1", "--state-dir", &missing_text], &[]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&missing_text), "{stderr}");
    assert!(stderr.contains("is not usable"), "{stderr}");
    assert!(!missing.exists(), "tenure created the state directory");
}

#[test]
fn a_second_tenure_on_the_same_state_directory_is_refused() {
    let cluster = Cluster::start(ClusterSpec::new(1, LEDGER_CHILD));
    cluster.wait_for_acting(cluster.timing.first_election_bound(), 0);
    let state = cluster.nodes[0].state_dir.display().to_string();
    let (status, _, stderr) = run_tenure(&["run", "--id", "n1", "--state-dir", &state], &[]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("state directory is in use"), "{stderr}");
    // The running node is undisturbed.
    assert_eq!(cluster.acting().len(), 1);
    std::thread::sleep(Duration::from_millis(100).min(SLACK));
}

/// `tenure run` for a cluster of one in `state_dir`, which must refuse to start.
fn refused_start(state_dir: &std::path::Path) -> String {
    let state = state_dir.display().to_string();
    let (status, _, stderr) = run_tenure(&["run", "--id", "n1", "--state-dir", &state], &[]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("state file"))
        .collect();
    assert_eq!(errors.len(), 1, "one error line: {stderr}");
    assert!(errors[0].starts_with("tenure run: state file"), "{stderr}");
    stderr
}

#[test]
fn a_dangling_state_symlink_is_refused_and_left_untouched() {
    // Hardening item 3: the state volume is not mounted, so `state` links to nothing. Before
    // the fix the node took itself for a fresh one, replaced the link with a new file and
    // forgot its term and vote.
    let directory = tempfile::tempdir().unwrap();
    let state_file = directory.path().join("state");
    let target = directory.path().join("volume").join("state");
    std::os::unix::fs::symlink(&target, &state_file).unwrap();

    let stderr = refused_start(directory.path());
    for expected in [
        state_file.display().to_string(),
        format!("is a symbolic link to {}", target.display()),
        "cannot be followed".to_string(),
        "is the volume mounted?".to_string(),
        "tenure refuses to start".to_string(),
    ] {
        assert!(stderr.contains(&expected), "{stderr:?} lacks {expected:?}");
    }
    assert_eq!(
        fs::read_link(&state_file).unwrap(),
        target,
        "the link changed"
    );
    assert!(!target.exists(), "something was created behind the link");
}

#[test]
fn a_fifo_in_place_of_the_state_file_is_refused_at_once() {
    // Hardening item 4: before the fix, startup blocked forever in open() after "tenure
    // starting". `run_tenure` fails the test if tenure does not exit within its bound.
    let directory = tempfile::tempdir().unwrap();
    let state_file = directory.path().join("state");
    let made = std::process::Command::new("mkfifo")
        .arg(&state_file)
        .status()
        .unwrap();
    assert!(made.success());

    let stderr = refused_start(directory.path());
    for expected in [
        state_file.display().to_string(),
        "is a named pipe (FIFO), not a regular file".to_string(),
    ] {
        assert!(stderr.contains(&expected), "{stderr:?} lacks {expected:?}");
    }
    let still = fs::symlink_metadata(&state_file).unwrap().file_type();
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&still));
}

#[test]
fn unbounded_or_blocking_files_are_refused_at_once() {
    // Hardening item 6: `--config /dev/zero` never returned and grew to 1.7 GB in 3 s. Every
    // file the settings name is now read with a size bound and an open that cannot block.
    let directory = tempfile::tempdir().unwrap();
    let state = directory.path().display().to_string();
    let listen = free_udp("127.0.0.1").expect("a free UDP port").to_string();
    let peer = format!("n2={}", free_udp("127.0.0.2").expect("a free UDP port"));
    let big = directory.path().join("big.toml");
    fs::write(&big, format!("# {}\n", "x".repeat(100 * 1024))).unwrap();
    let big = big.display().to_string();
    let fifo = directory.path().join("key.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let fifo = fifo.display().to_string();
    let node = |extra: &[&str]| -> Vec<String> {
        [
            "run",
            "--id",
            "n1",
            "--listen",
            &listen,
            "--state-dir",
            &state,
            "--peer",
            &peer,
        ]
        .iter()
        .chain(extra)
        .map(ToString::to_string)
        .collect()
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["run".into(), "--config".into(), "/dev/zero".into()],
            "config file /dev/zero: it is a character device, not a regular file",
        ),
        (
            vec!["run".into(), "--config".into(), big.clone()],
            "it is longer than 65536 bytes",
        ),
        (
            node(&["--cluster-key-file", "/dev/zero"]),
            "cluster key file /dev/zero: it is a character device",
        ),
        // A FIFO nobody writes to reads as empty, at once.
        (node(&["--cluster-key-file", &fifo]), "it is empty"),
        (
            node(&["--insecure", "--admin-token-file", "/dev/urandom"]),
            "admin token file /dev/urandom: it is a character device",
        ),
    ];
    for (arguments, expected) in cases {
        let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
        // `run_tenure` fails the test if tenure does not exit within its bound.
        let (status, _, stderr) = run_tenure(&arguments, &[]);
        assert_eq!(status.code(), Some(2), "{arguments:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{arguments:?}: {stderr:?} lacks {expected:?}"
        );
        assert_eq!(
            stderr.lines().filter(|line| line.contains("error")).count(),
            1,
            "one error line: {stderr}"
        );
    }
}

/// Waits (bounded) until node `index`'s log has a line containing every one of `parts`.
fn wait_for_log_line(cluster: &Cluster, index: usize, parts: &[&str]) -> String {
    cluster.wait_for(SLACK, &format!("a log line with {parts:?}"), |cluster| {
        fs::read_to_string(&cluster.nodes[index].log)
            .unwrap_or_default()
            .lines()
            .find(|line| parts.iter().all(|part| line.contains(part)))
            .map(str::to_string)
    })
}

#[test]
fn a_world_readable_key_and_an_open_step_down_are_warned_about() {
    // Hardening items 7 and 9: a cluster key readable by every user was used without a word,
    // and an HTTP API without an admin token got only an INFO line.
    let mut cluster = Cluster::prepare(ClusterSpec::new(3, LEDGER_CHILD));
    let key = cluster.key_file.clone();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    cluster.spawn(0);
    let key_text = key.display().to_string();
    let chmod = format!("`chmod o-rwx {key_text}`");
    wait_for_log_line(
        &cluster,
        0,
        &["WARN", &key_text, "has mode 0644", "every user", &chmod],
    );
    let http = cluster.nodes[0].http.to_string();
    wait_for_log_line(
        &cluster,
        0,
        &[
            "WARN",
            "POST /step-down is open to anyone",
            &http,
            "127.0.0.1",
        ],
    );
    cluster.shutdown();

    // With a private key and an admin token file that is world-readable: only the token is
    // warned about, and the open step-down warning is gone.
    let mut spec = ClusterSpec::new(3, LEDGER_CHILD);
    spec.admin_token = true;
    let mut cluster = Cluster::prepare(spec);
    fs::set_permissions(&cluster.key_file, fs::Permissions::from_mode(0o640)).unwrap();
    let token = cluster.directory().join("admin.token");
    fs::set_permissions(&token, fs::Permissions::from_mode(0o604)).unwrap();
    cluster.spawn(0);
    let token_text = token.display().to_string();
    wait_for_log_line(&cluster, 0, &["WARN", &token_text, "has mode 0604"]);
    wait_for_log_line(&cluster, 0, &["tenure starting"]);
    let log = fs::read_to_string(&cluster.nodes[0].log).unwrap();
    assert!(!log.contains("is open to anyone"), "{log}");
    assert!(
        !log.contains(&cluster.key_file.display().to_string()),
        "{log}"
    );
}

#[test]
fn a_command_that_does_not_exist_is_refused_by_dry_run_and_at_start_and_nothing_happens() {
    let directory = tempfile::tempdir().unwrap();
    let state = directory.path().display().to_string();
    let http = free_tcp("127.0.0.1").expect("a free TCP port").to_string();
    let base = ["run", "--id", "n1", "--state-dir", &state, "--http", &http];
    let missing = "tenure-test-no-such-command";
    let not_executable = directory.path().join("script.sh");
    fs::write(&not_executable, "#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(&not_executable, fs::Permissions::from_mode(0o644)).unwrap();
    let not_executable = not_executable.display().to_string();

    for (command, expected) in [
        (missing, "is not found, or not executable, in PATH"),
        (not_executable.as_str(), "is not an executable file"),
    ] {
        for dry_run in [true, false] {
            // Phase: one error line naming the command, status 2, and no trace left behind:
            // no state file, no lock, the HTTP port never bound.
            let mut arguments = base.to_vec();
            if dry_run {
                arguments.push("--dry-run");
            }
            arguments.extend(["--", command, "--flag"]);
            let (status, stdout, stderr) = run_tenure(&arguments, &[]);
            assert_eq!(status.code(), Some(2), "{stderr}");
            let first = stderr.lines().next().unwrap_or_default();
            assert!(
                first.starts_with("tenure run: configuration error: ")
                    && first.contains(&format!("{command:?}"))
                    && first.contains(expected),
                "{stderr}"
            );
            assert_eq!(
                stderr.lines().count(),
                2,
                "one error and the --help hint: {stderr}"
            );
            assert!(stdout.is_empty(), "{stdout}");
            assert!(!directory.path().join("state").exists());
            assert!(!directory.path().join("lock").exists());
        }
    }
}
