//! The health checks of the child in the binary (protocol: Health-gated acting): a command run
//! with `sh -c` in the child's environment (`--health-cmd`), or an HTTP GET whose answer must be
//! 2xx (`--health-http`).
//!
//! The supervisor starts one [`HealthChecker`] task per start of the child and aborts it when
//! the child stops or exits: the first check comes `--health-grace` after the start, then one
//! every `--health-interval` (start to start), each bounded by `--health-timeout`. Each result
//! goes to the driver, which counts the failures in a row and gives leadership up at
//! `--health-failures`. A check still running when its task is aborted is killed with its whole
//! process group, so no check outlives the child it checked by more than a moment.

use std::ffi::OsString;
use std::num::NonZeroU32;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use rustix::process::{kill_process_group, Pid, Signal};
use tenure_driver::HealthCheck;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::http_client;

/// Default time between the starts of two checks.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(10);
/// Default bound on one check.
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time after each start of the child without checks, for the daemon to start up.
pub const DEFAULT_HEALTH_GRACE: Duration = Duration::from_secs(60);

/// The most bytes of a check's output kept for the reason of a failure; the rest is read and
/// dropped, so a chatty check can neither block on a full pipe nor fill memory.
const MAX_OUTPUT_KEPT: u64 = 4096;
/// The longest reason handed on to the logs and the status page, in characters.
const MAX_REASON_CHARS: usize = 200;

/// What a check asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HealthProbe {
    /// `sh -c COMMAND` in the child's environment; exit status 0 is healthy.
    Command(String),
    /// `GET path` from `address` (`HOST:PORT`); a 2xx answer is healthy.
    Http {
        url: String,
        address: String,
        path: String,
    },
}

impl HealthProbe {
    /// Parses `--health-http URL`: `http://HOST:PORT/PATH` (the port defaults to 80, the path
    /// to `/`). No TLS: the URL is meant for the daemon on this machine or its own network.
    pub fn http(url: &str) -> Result<HealthProbe, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("{url:?} is not an http:// URL (https is not supported for health checks)")
        })?;
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(format!("{url:?} names no host (http://HOST:PORT/PATH)"));
        }
        let has_port = match authority.rsplit_once(':') {
            // An IPv6 literal such as [::1] has colons of its own.
            Some((_, port)) => !port.ends_with(']') && !port.is_empty(),
            None => false,
        };
        let address = if has_port {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        Ok(HealthProbe::Http {
            url: url.to_string(),
            address,
            path: path.to_string(),
        })
    }

    /// How the probe is shown in `--dry-run` and the logs.
    pub fn describe(&self) -> String {
        match self {
            HealthProbe::Command(command) => format!("command: sh -c {command:?}"),
            HealthProbe::Http { url, .. } => format!("HTTP GET {url}"),
        }
    }
}

/// When and how the child's health is checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthSettings {
    pub probe: HealthProbe,
    pub interval: Duration,
    pub timeout: Duration,
    pub grace: Duration,
    pub failures: NonZeroU32,
}

/// The checks of one start of the child: a task that stops when this is dropped.
pub struct HealthChecker {
    task: JoinHandle<()>,
}

impl HealthChecker {
    /// Starts checking a child that was just started with `environment` added to tenure's
    /// own. Results go to `results` with `try_send`: a driver that does not read them (it
    /// stops the child) drops them rather than stalls the checks.
    pub fn start(
        settings: Arc<HealthSettings>,
        environment: Vec<(OsString, OsString)>,
        results: mpsc::Sender<HealthCheck>,
    ) -> HealthChecker {
        let task = tokio::spawn(async move {
            tokio::time::sleep(settings.grace).await;
            let mut next = tokio::time::Instant::now();
            loop {
                let result = check(&settings, &environment).await;
                // Full or closed: the driver is not reading now, so the result is moot.
                let _ = results.try_send(result);
                next += settings.interval;
                tokio::time::sleep_until(next.max(tokio::time::Instant::now())).await;
            }
        });
        HealthChecker { task }
    }
}

impl Drop for HealthChecker {
    fn drop(&mut self) {
        // Dropping the task's future kills a check command in flight (see `CommandRun`).
        self.task.abort();
    }
}

/// Runs one check, bounded by the timeout.
async fn check(settings: &HealthSettings, environment: &[(OsString, OsString)]) -> HealthCheck {
    let timeout = settings.timeout;
    let outcome = match &settings.probe {
        HealthProbe::Command(command) => {
            tokio::time::timeout(timeout, run_command(command, environment)).await
        }
        HealthProbe::Http { address, path, .. } => {
            let (address, path) = (address.clone(), path.clone());
            let get = tokio::task::spawn_blocking(move || {
                http_client::get(&address, &path, timeout)
                    .map_err(|error| format!("GET failed: {error}"))
                    .and_then(|response| match response.status {
                        200..=299 => Ok(()),
                        status => Err(format!(
                            "HTTP status {status}{}",
                            last_line(response.body.as_bytes())
                                .map(|line| format!(": {line}"))
                                .unwrap_or_default()
                        )),
                    })
            });
            // The client bounds itself by the timeout; the outer bound is a second line of
            // defence for a blocking call that the runtime cannot cancel.
            match tokio::time::timeout(timeout + Duration::from_millis(100), get).await {
                Ok(Ok(result)) => Ok(result),
                Ok(Err(join)) => Ok(Err(format!("the HTTP check failed to run: {join}"))),
                Err(elapsed) => Err(elapsed),
            }
        }
    };
    match outcome {
        Ok(Ok(())) => HealthCheck::Passed,
        Ok(Err(reason)) => HealthCheck::Failed(bounded(reason)),
        Err(_) => HealthCheck::Failed(format!(
            "timed out after {}",
            crate::settings::human(timeout)
        )),
    }
}

/// Runs `sh -c command` in a process group of its own and waits for it. Dropping the future
/// (a timeout, or the checker's abort) kills the whole group.
async fn run_command(command: &str, environment: &[(OsString, OsString)]) -> Result<(), String> {
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .envs(environment.iter().map(|(name, value)| (name, value)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| format!("cannot run sh: {error}"))?;
    let mut run = CommandRun { child };
    let stdout = run.child.stdout.take();
    let stderr = run.child.stderr.take();
    let (status, stdout, stderr) =
        tokio::join!(run.child.wait(), read_bounded(stdout), read_bounded(stderr));
    let status = status.map_err(|error| format!("cannot wait for the check: {error}"))?;
    if status.success() {
        return Ok(());
    }
    let said = last_line(&stderr)
        .or_else(|| last_line(&stdout))
        .map(|line| format!(": {line}"))
        .unwrap_or_default();
    Err(match (status.code(), status_signal(&status)) {
        (Some(code), _) => format!("exit status {code}{said}"),
        (None, Some(signal)) => format!("killed by signal {signal}{said}"),
        (None, None) => format!("ended abnormally{said}"),
    })
}

/// A running check command; dropped before it was reaped, it kills its whole process group
/// (the shell and whatever it started). While the shell is not reaped its pid, which is the
/// group's id, cannot be reused, so the signal reaches no one else.
struct CommandRun {
    child: tokio::process::Child,
}

impl Drop for CommandRun {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id().and_then(|pid| Pid::from_raw(pid as i32)) {
            let _ = kill_process_group(pid, Signal::KILL);
        }
    }
}

fn status_signal(status: &std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.signal()
}

/// Reads up to `MAX_OUTPUT_KEPT` bytes of `stream` and drops the rest.
async fn read_bounded(stream: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let mut kept = Vec::new();
    if let Some(mut stream) = stream {
        let _ = (&mut stream)
            .take(MAX_OUTPUT_KEPT)
            .read_to_end(&mut kept)
            .await;
        let _ = tokio::io::copy(&mut stream, &mut tokio::io::sink()).await;
    }
    kept
}

/// The last non-empty line of `output`, bounded.
fn last_line(output: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(output);
    text.lines()
        .map(str::trim)
        .rfind(|line| !line.is_empty())
        .map(|line| bounded(line.to_string()))
}

/// `reason` cut to `MAX_REASON_CHARS` characters.
fn bounded(reason: String) -> String {
    if reason.chars().count() <= MAX_REASON_CHARS {
        return reason;
    }
    let mut cut: String = reason.chars().take(MAX_REASON_CHARS).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(probe: HealthProbe) -> HealthSettings {
        HealthSettings {
            probe,
            interval: Duration::from_millis(200),
            timeout: Duration::from_millis(500),
            grace: Duration::ZERO,
            failures: NonZeroU32::new(3).expect("positive"),
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    }

    #[test]
    fn a_command_passes_on_status_zero_and_fails_with_its_status_and_last_line() {
        runtime().block_on(async {
            let environment = vec![("TENURE_FENCING_TOKEN".into(), "7".into())];
            let passed = check(
                &settings(HealthProbe::Command(
                    "test \"$TENURE_FENCING_TOKEN\" = 7".into(),
                )),
                &environment,
            )
            .await;
            assert_eq!(passed, HealthCheck::Passed);
            let failed = check(
                &settings(HealthProbe::Command(
                    "echo starting; echo 'Daemon(s) not running' >&2; exit 3".into(),
                )),
                &environment,
            )
            .await;
            assert_eq!(
                failed,
                HealthCheck::Failed("exit status 3: Daemon(s) not running".into())
            );
        });
    }

    #[test]
    fn a_hung_command_times_out_and_its_group_is_killed() {
        runtime().block_on(async {
            let directory = tempfile::tempdir().expect("a temporary directory");
            let marker = directory.path().join("survived");
            // The grandchild would write the marker a second after the timeout killed it.
            let command = format!("(sleep 1.5; touch {}) & wait", marker.display());
            let failed = check(&settings(HealthProbe::Command(command)), &[]).await;
            assert_eq!(failed, HealthCheck::Failed("timed out after 500ms".into()));
            tokio::time::sleep(Duration::from_millis(1_500)).await;
            assert!(
                !marker.exists(),
                "a process of the check outlived its timeout"
            );
        });
    }

    #[test]
    fn an_http_check_needs_a_2xx_answer() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let address = listener.local_addr().expect("an address");
        let server = std::thread::spawn(move || {
            for status in ["200 OK", "503 Service Unavailable"] {
                let (mut stream, _) = listener.accept().expect("a connection");
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request);
                let body = "not ready";
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        let probe = HealthProbe::http(&format!("http://{address}/health")).expect("a URL");
        runtime().block_on(async {
            assert_eq!(
                check(&settings(probe.clone()), &[]).await,
                HealthCheck::Passed
            );
            assert_eq!(
                check(&settings(probe), &[]).await,
                HealthCheck::Failed("HTTP status 503: not ready".into())
            );
        });
        server.join().expect("the server ends");
        let refused = HealthProbe::http("http://127.0.0.1:1/").expect("a URL");
        let result = runtime().block_on(check(&settings(refused), &[]));
        assert!(
            matches!(&result, HealthCheck::Failed(reason) if reason.starts_with("GET failed")),
            "{result:?}"
        );
    }

    #[test]
    fn http_urls_are_parsed_into_address_and_path() {
        let probe = HealthProbe::http("http://127.0.0.1:3070/server_info").expect("valid");
        assert_eq!(
            probe,
            HealthProbe::Http {
                url: "http://127.0.0.1:3070/server_info".into(),
                address: "127.0.0.1:3070".into(),
                path: "/server_info".into(),
            }
        );
        let probe = HealthProbe::http("http://dagit.internal").expect("valid");
        assert!(
            matches!(probe, HealthProbe::Http { address, path, .. } if address == "dagit.internal:80" && path == "/")
        );
        assert!(HealthProbe::http("https://example.invalid/").is_err());
        assert!(HealthProbe::http("http:///path").is_err());
    }

    #[test]
    fn the_checker_waits_out_its_grace_then_checks_every_interval() {
        runtime().block_on(async {
            let (sender, mut receiver) = mpsc::channel(8);
            let mut timing = settings(HealthProbe::Command("exit 1".into()));
            timing.grace = Duration::from_millis(300);
            let started = tokio::time::Instant::now();
            let checker = HealthChecker::start(Arc::new(timing), Vec::new(), sender);
            let first = receiver.recv().await.expect("a result");
            assert!(
                started.elapsed() >= Duration::from_millis(300),
                "no check in the grace"
            );
            assert_eq!(first, HealthCheck::Failed("exit status 1".into()));
            let _second = receiver.recv().await.expect("a second result");
            assert!(
                started.elapsed() >= Duration::from_millis(500),
                "one interval later"
            );
            drop(checker);
            // The task is gone: the channel closes once its sender is dropped with it.
            let rest = tokio::time::timeout(Duration::from_secs(2), async {
                while receiver.recv().await.is_some() {}
            })
            .await;
            assert!(rest.is_ok(), "the checker stopped when dropped");
        });
    }
}
