//! The supervised child of the end-to-end tests, the chaos runner and the benchmark. It
//! appends one line to a ledger file when it starts and one when it gets SIGTERM, so a test
//! can check afterwards that no two children ever ran at once:
//!
//! ```text
//! <node> <fencing token> start <CLOCK_MONOTONIC nanoseconds> <pid> <leader id>
//! <node> <fencing token> alive <CLOCK_MONOTONIC nanoseconds> <pid> <leader id>
//! <node> <fencing token> stop <CLOCK_MONOTONIC nanoseconds> <pid> <leader id>
//! ```
//!
//! Each line is one `write` to a file opened with `O_APPEND`, so lines of concurrent children
//! never interleave.
//!
//! Usage: `ledger-child LEDGER [OPTIONS]` (the chaos runner and the benchmark run the same code
//! as `chaos __child LEDGER [OPTIONS]`):
//!
//! - `--exit-after-ms N`: exit by itself (status 3) after N ms, to exercise restarts;
//! - `--alive-ms N`: append an `alive` line every N ms. A child that its guard kills with
//!   SIGKILL (after it ignored SIGTERM for the stop grace) cannot write `stop`; its life then
//!   ends, as far as the ledger can tell, at its last alive stamp;
//! - `--store SOCKET --write-ms N --acks FILE`: write to the fenced store (`store`) every N ms
//!   with its token, and append every acknowledged write to FILE as
//!   `<node> <token> <pid> <seq> <CLOCK_MONOTONIC nanoseconds>`. On SIGTERM the child makes one
//!   last write before it records `stop`, as a daemon flushes its work when told to stop; a
//!   child that was frozen with its whole machine therefore tries a stale write on resume,
//!   which the store must reject;
//! - `--token-env NAME`: read the token from the variable NAME instead of
//!   `TENURE_FENCING_TOKEN` (the benchmark's etcd contenders pass `ETCD_LOCK_REV`).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::time::MissedTickBehavior;

use crate::store::{parse_reply, Verdict, MAX_REQUEST};
use tenure_node::cluster::monotonic_nanos;

/// How long one store write may take before the child gives up on it.
const WRITE_TIMEOUT: Duration = Duration::from_millis(200);
/// How long the last write on SIGTERM may take: well inside any stop grace in use.
const FLUSH_TIMEOUT: Duration = Duration::from_millis(100);

/// The child's command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChildOptions {
    pub ledger: PathBuf,
    pub exit_after: Option<Duration>,
    pub alive_every: Option<Duration>,
    pub store: Option<PathBuf>,
    pub write_every: Option<Duration>,
    pub acks: Option<PathBuf>,
    pub token_variable: Option<String>,
}

impl ChildOptions {
    /// Parses the arguments after the program name (or after the mode switch).
    pub fn parse(arguments: &[String]) -> Result<ChildOptions, String> {
        let mut arguments = arguments.iter();
        let ledger = arguments
            .next()
            .ok_or("usage: ledger-child LEDGER [OPTIONS]")?;
        let mut options = ChildOptions {
            ledger: PathBuf::from(ledger),
            ..ChildOptions::default()
        };
        while let Some(flag) = arguments.next() {
            let value = arguments
                .next()
                .ok_or_else(|| format!("{flag} needs a value"))?;
            let millis = || {
                value
                    .parse::<u64>()
                    .map(Duration::from_millis)
                    .map_err(|_| format!("{flag} needs milliseconds, not {value:?}"))
            };
            match flag.as_str() {
                "--exit-after-ms" => options.exit_after = Some(millis()?),
                "--alive-ms" => options.alive_every = Some(millis()?.max(Duration::from_millis(1))),
                "--write-ms" => options.write_every = Some(millis()?.max(Duration::from_millis(1))),
                "--store" => options.store = Some(PathBuf::from(value)),
                "--acks" => options.acks = Some(PathBuf::from(value)),
                "--token-env" => options.token_variable = Some(value.clone()),
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        Ok(options)
    }
}

/// Runs the child; see the module docs. Exit status 0 after SIGTERM, 3 after
/// `--exit-after-ms`, 2 for a usage error.
pub fn run(arguments: &[String]) -> ExitCode {
    let options = match ChildOptions::parse(arguments) {
        Ok(options) => options,
        Err(problem) => {
            eprintln!("ledger-child: {problem}");
            return ExitCode::from(2);
        }
    };
    let token_variable = options
        .token_variable
        .clone()
        .unwrap_or_else(|| "TENURE_FENCING_TOKEN".to_string());
    let identity = Arc::new(Identity {
        node: variable("TENURE_NODE_ID"),
        token_text: variable(&token_variable),
        leader: variable("TENURE_LEADER_ID"),
        pid: std::process::id(),
        options,
    });
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return ExitCode::FAILURE;
    };
    runtime.block_on(supervised(identity))
}

fn variable(name: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|value| !value.is_empty() && !value.contains(char::is_whitespace))
        .unwrap_or_else(|| "?".to_string())
}

struct Identity {
    node: String,
    token_text: String,
    leader: String,
    pid: u32,
    options: ChildOptions,
}

impl Identity {
    fn token(&self) -> u64 {
        self.token_text.parse().unwrap_or(0)
    }

    fn record(&self, event: &str) {
        let line = format!(
            "{} {} {event} {} {} {}\n",
            self.node,
            self.token_text,
            monotonic_nanos(),
            self.pid,
            self.leader
        );
        append(&self.options.ledger, &line);
    }

    fn record_ack(&self, seq: u64) {
        if let Some(acks) = &self.options.acks {
            let line = format!(
                "{} {} {} {seq} {}\n",
                self.node,
                self.token(),
                self.pid,
                monotonic_nanos()
            );
            append(acks, &line);
        }
    }
}

fn append(path: &PathBuf, line: &str) {
    let written = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(line.as_bytes()));
    if let Err(error) = written {
        eprintln!("ledger-child: cannot write {}: {error}", path.display());
    }
}

async fn supervised(identity: Arc<Identity>) -> ExitCode {
    // Install the handler before announcing the start, so a SIGTERM right after the start
    // line is recorded rather than killing the child silently.
    let Ok(mut terminate) =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        return ExitCode::FAILURE;
    };
    identity.record("start");
    let seq = Arc::new(AtomicU64::new(0));
    let writer = match (&identity.options.store, identity.options.write_every) {
        (Some(_), Some(every)) => Some(tokio::spawn(write_loop(
            identity.clone(),
            seq.clone(),
            every,
        ))),
        _ => None,
    };
    let alive_every = identity
        .options
        .alive_every
        .unwrap_or(Duration::from_secs(3600));
    let mut alive = tokio::time::interval(alive_every);
    // After a freeze, one stamp at once rather than a burst of the missed ones.
    alive.set_missed_tick_behavior(MissedTickBehavior::Skip);
    alive.tick().await;
    let exit_at = tokio::time::sleep(
        identity
            .options
            .exit_after
            .unwrap_or(Duration::from_secs(24 * 3600)),
    );
    tokio::pin!(exit_at);
    // Bounded by the signal or the exit timer; each turn handles one event.
    loop {
        tokio::select! {
            _ = terminate.recv() => {
                if let Some(writer) = writer {
                    writer.abort();
                    if identity.options.store.is_some() {
                        let mut connection = None;
                        let _ = tokio::time::timeout(
                            FLUSH_TIMEOUT,
                            write_once(&identity, &seq, &mut connection),
                        )
                        .await;
                    }
                }
                identity.record("stop");
                return ExitCode::SUCCESS;
            }
            _ = alive.tick(), if identity.options.alive_every.is_some() => {
                identity.record("alive");
            }
            () = &mut exit_at => {
                if let Some(writer) = writer {
                    writer.abort();
                }
                identity.record("stop");
                return ExitCode::from(3);
            }
        }
    }
}

type Connection = Option<BufReader<UnixStream>>;

async fn write_loop(identity: Arc<Identity>, seq: Arc<AtomicU64>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut connection: Connection = None;
    // Runs until the main task aborts it.
    loop {
        tick.tick().await;
        if tokio::time::timeout(WRITE_TIMEOUT, write_once(&identity, &seq, &mut connection))
            .await
            .is_err()
        {
            connection = None;
        }
    }
}

/// One write with the child's token; an acknowledged write is appended to the acks file.
async fn write_once(identity: &Identity, seq: &AtomicU64, connection: &mut Connection) {
    let Some(socket) = &identity.options.store else {
        return;
    };
    let seq = seq.fetch_add(1, Ordering::SeqCst) + 1;
    if connection.is_none() {
        match UnixStream::connect(socket).await {
            Ok(stream) => *connection = Some(BufReader::new(stream)),
            Err(_) => return,
        }
    }
    let Some(stream) = connection.as_mut() else {
        return;
    };
    let request = format!(
        "write {} {} {} {seq}\n",
        identity.token(),
        identity.node,
        identity.pid
    );
    let mut reply = String::new();
    let exchanged = async {
        stream.get_mut().write_all(request.as_bytes()).await?;
        stream.read_line(&mut reply).await
    }
    .await;
    match exchanged {
        Ok(length) if length > 0 && length <= MAX_REQUEST => {
            if parse_reply(&reply).ok() == Some(Verdict::Accepted) {
                identity.record_ack(seq);
            }
        }
        _ => *connection = None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_options() {
        let arguments: Vec<String> = [
            "/tmp/ledger",
            "--alive-ms",
            "50",
            "--store",
            "/tmp/s.sock",
            "--write-ms",
            "20",
            "--acks",
            "/tmp/acks",
            "--token-env",
            "ETCD_LOCK_REV",
        ]
        .iter()
        .map(|text| text.to_string())
        .collect();
        let options = ChildOptions::parse(&arguments).unwrap();
        assert_eq!(options.alive_every, Some(Duration::from_millis(50)));
        assert_eq!(options.write_every, Some(Duration::from_millis(20)));
        assert_eq!(options.store, Some(PathBuf::from("/tmp/s.sock")));
        assert_eq!(options.token_variable.as_deref(), Some("ETCD_LOCK_REV"));
        assert!(ChildOptions::parse(&["l".to_string(), "--alive-ms".to_string()]).is_err());
        assert!(
            ChildOptions::parse(&["l".to_string(), "--x".to_string(), "1".to_string()]).is_err()
        );
        assert!(ChildOptions::parse(&[]).is_err());
    }
}
