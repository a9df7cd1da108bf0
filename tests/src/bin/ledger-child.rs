//! The supervised child of the end-to-end tests. It appends one line to a ledger file when it
//! starts and one when it gets SIGTERM, so a test can check afterwards that no two children
//! ever ran at once:
//!
//! ```text
//! <node> <fencing token> start <CLOCK_MONOTONIC nanoseconds> <pid> <leader id>
//! <node> <fencing token> stop <CLOCK_MONOTONIC nanoseconds> <pid> <leader id>
//! ```
//!
//! Each line is one `write` to a file opened with `O_APPEND`, so lines of concurrent children
//! never interleave. Usage: `ledger-child LEDGER [--exit-after-ms N]`; with `--exit-after-ms`
//! the child exits by itself (status 3) after N ms, to exercise restarts.

use std::fs::OpenOptions;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use tenure_tests::monotonic_nanos;

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let Some(ledger) = arguments.first().cloned() else {
        eprintln!("usage: ledger-child LEDGER [--exit-after-ms N]");
        return ExitCode::from(2);
    };
    let exit_after = match arguments.get(1).map(String::as_str) {
        Some("--exit-after-ms") => arguments
            .get(2)
            .and_then(|millis| millis.parse().ok())
            .map(Duration::from_millis),
        _ => None,
    };
    let node = std::env::var("TENURE_NODE_ID").unwrap_or_else(|_| "?".to_string());
    let token = std::env::var("TENURE_FENCING_TOKEN").unwrap_or_else(|_| "?".to_string());
    let leader = std::env::var("TENURE_LEADER_ID").unwrap_or_else(|_| "?".to_string());
    let record = |event: &str| {
        let line = format!(
            "{node} {token} {event} {} {} {leader}\n",
            monotonic_nanos(),
            std::process::id()
        );
        let written = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&ledger)
            .and_then(|mut file| file.write_all(line.as_bytes()));
        if let Err(error) = written {
            eprintln!("ledger-child: cannot write {ledger}: {error}");
        }
    };

    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return ExitCode::FAILURE;
    };
    runtime.block_on(async {
        // Install the handler before announcing the start, so a SIGTERM right after the start
        // line is recorded rather than killing the child silently.
        let Ok(mut terminate) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return ExitCode::FAILURE;
        };
        record("start");
        let exit_after = exit_after.unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            _ = terminate.recv() => {
                record("stop");
                ExitCode::SUCCESS
            }
            () = tokio::time::sleep(exit_after) => {
                record("stop");
                ExitCode::from(3)
            }
        }
    })
}
