//! The settings of `tenure run`: the command line, `TENURE_*` variables and the `--config` TOML
//! file merged (flag > environment > file > default) and checked into [`RunSettings`].
//!
//! A `RunSettings` that exists is valid: the member set, the timing (through
//! `tenure_core::Config::new`), the key and the admin token have all been read and checked.
//! Every error names the flag (or variable, or file key) it comes from and says what to do.
//!
//! # Stop grace and stop margin
//!
//! `--stop-grace` is what the daemon gets between SIGTERM and SIGKILL. The core's stop margin
//! (how long before its lease ends the leader stops acting) must cover the deadline guard's
//! whole stop sequence, so it is `--stop-grace + STOP_RESERVE`: the guard sends SIGTERM at the
//! acting deadline, SIGKILL `--stop-grace` later, and the reserve covers the kernel ending the
//! group after SIGKILL (`KILL_AFTER`) plus the guard's wake-up latency. So the group is dead
//! before the lease can end.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::ArgMatches;
use serde::Deserialize;
use tenure_core::{Config, ConfigError, ConfigParams, NodeId};
use tenure_driver::DEFAULT_HEALTH_FAILURES;

use crate::cli::{parse_duration, LogFormat, RunArgs};
use crate::health_check::{
    HealthProbe, HealthSettings, DEFAULT_HEALTH_GRACE, DEFAULT_HEALTH_INTERVAL,
    DEFAULT_HEALTH_TIMEOUT,
};
use crate::members::{Members, PeerAddress, PeerSpec};
use crate::small_file;
use crate::wire::ClusterKey;

/// Default lease: crash failover takes about one lease (docs/protocol.md, "Defaults").
pub const DEFAULT_LEASE: Duration = Duration::from_secs(2);
/// Default renewal period: eight renewals per lease.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_millis(250);
/// Default drift bound ρ.
pub const DEFAULT_MAX_DRIFT: f64 = 0.01;
/// Default SIGTERM-to-SIGKILL grace of the daemon.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_millis(500);
/// Default restart budget of a daemon that exits on its own.
pub const DEFAULT_MAX_CHILD_RESTARTS: u32 = 3;
/// How long the guard waits for the kernel to end the group after SIGKILL.
pub const KILL_AFTER: Duration = Duration::from_millis(100);
/// The part of the stop margin beyond `--stop-grace`: `KILL_AFTER` plus 50 ms for the guard
/// to wake up at the deadline on a busy machine.
pub const STOP_RESERVE: Duration = Duration::from_millis(150);
/// The election jitter is a quarter lease, as in the core's defaults (2 s lease, 500 ms).
pub const JITTER_DIVISOR: u32 = 4;

/// Longest admin token file read; it is one short line.
const MAX_SECRET_FILE: u64 = 4096;

/// Longest `--config` file read. The example in deploy/ is about 1.5 KB.
const MAX_CONFIG_FILE: u64 = 64 * 1024;

/// A configuration error, for the operator. Exit status 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError(pub String);

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SettingsError {}

fn error(message: impl Into<String>) -> SettingsError {
    SettingsError(message.into())
}

/// Where a setting's value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Flag(&'static str),
    Environment(&'static str),
    File(PathBuf),
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(flag) => write!(f, "{flag}"),
            Origin::Environment(variable) => write!(f, "${variable}"),
            Origin::File(path) => write!(f, "config file {}", path.display()),
            Origin::Default => f.write_str("default"),
        }
    }
}

/// What secures the datagrams.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    File(PathBuf),
    /// `--insecure`: the well-known all-zero key.
    Insecure,
    /// A cluster of one exchanges no datagrams; no key is needed.
    NotNeeded,
}

/// The checked settings of `tenure run`.
#[derive(Debug)]
pub struct RunSettings {
    pub members: Members,
    pub peer_addresses: Vec<(NodeId, PeerAddress)>,
    /// `None` for a cluster of one without `--listen` (it needs no socket anyone can reach).
    pub listen: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
    pub state_dir: PathBuf,
    /// The key datagrams are sealed with, derived from the cluster key (see `datagram_key`).
    pub key: ClusterKey,
    pub key_source: KeySource,
    pub config: Arc<Config>,
    pub lease: Duration,
    pub heartbeat: Duration,
    pub max_drift: f64,
    pub stop_grace: Duration,
    pub max_child_restarts: u32,
    /// The daemon's health checks, if any (protocol: Health-gated acting).
    pub health: Option<HealthSettings>,
    pub admin_token: Option<String>,
    pub admin_token_file: Option<PathBuf>,
    pub log_format: LogFormat,
    pub log_level: String,
    /// The daemon and its arguments; `None` for an observer-only node.
    pub command: Option<(OsString, Vec<OsString>)>,
    pub dry_run: bool,
    /// Where each displayed setting came from, for `--dry-run`.
    pub origins: BTreeMap<&'static str, Origin>,
    /// What the operator should fix although the node can run (a secret file other users may
    /// read); `tenure run` logs each as a warning.
    pub warnings: Vec<String>,
}

/// The `--config` file. Every key is optional; unknown keys are errors, so a typo is caught
/// instead of silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    id: Option<String>,
    listen: Option<String>,
    peers: Option<BTreeMap<String, String>>,
    http: Option<String>,
    state_dir: Option<PathBuf>,
    cluster_key_file: Option<PathBuf>,
    insecure: Option<bool>,
    lease: Option<String>,
    heartbeat: Option<String>,
    max_drift: Option<f64>,
    stop_grace: Option<String>,
    max_child_restarts: Option<u32>,
    health_cmd: Option<String>,
    health_http: Option<String>,
    health_interval: Option<String>,
    health_timeout: Option<String>,
    health_failures: Option<u32>,
    health_grace: Option<String>,
    admin_token_file: Option<PathBuf>,
    log_format: Option<LogFormat>,
    log_level: Option<String>,
    command: Option<Vec<String>>,
}

impl RunSettings {
    /// Merges the parsed command line (and its environment) with the config file and
    /// defaults, then checks everything. `matches` are the `run` subcommand's matches, which
    /// tell a flag from an environment variable.
    pub fn load(args: RunArgs, matches: &ArgMatches) -> Result<RunSettings, SettingsError> {
        let file_path = args.config.clone();
        let file = match &file_path {
            Some(path) => read_file_settings(path)?,
            None => FileSettings::default(),
        };
        let base = file_path
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let mut merge = Merge {
            matches,
            file_path: file_path.clone(),
            origins: BTreeMap::new(),
        };

        let id = merge
            .pick("id", "--id", "TENURE_ID", args.id, file.id.map(Ok))?
            .ok_or_else(|| {
                error(
                    "--id is required: this node's name, e.g. --id n1 (the other members are \
                     given with --peer NAME=HOST:PORT)",
                )
            })?;

        let file_peers = file.peers.map(|table| {
            table
                .into_iter()
                .map(|(name, address)| {
                    format!("{name}={address}")
                        .parse::<PeerSpec>()
                        .map_err(|problem| merge.file_error("peers", &problem))
                })
                .collect::<Result<Vec<_>, _>>()
        });
        let cli_peers = (!args.peers.is_empty()).then_some(args.peers);
        let peers = merge
            .pick("peers", "--peer", "TENURE_PEERS", cli_peers, file_peers)?
            .unwrap_or_default();
        let members = Members::new(&id, peers.iter().map(|peer| peer.name.as_str()))
            .map_err(SettingsError)?;
        let peer_addresses = peers
            .iter()
            .filter_map(|peer| Some((members.id(&peer.name)?, peer.address.clone())))
            .filter(|(id, _)| *id != members.own_id())
            .collect();

        let file_listen = file.listen.map(|text| {
            text.parse::<SocketAddr>()
                .map_err(|_| merge.file_error("listen", &format!("{text:?} is not IP:PORT")))
        });
        let listen = merge.pick(
            "listen",
            "--listen",
            "TENURE_LISTEN",
            args.listen,
            file_listen,
        )?;
        if listen.is_none() && members.len() > 1 {
            return Err(error(
                "--listen is required: the UDP address this node receives the other members' \
                 messages on, e.g. --listen 0.0.0.0:7101",
            ));
        }
        let file_http = file.http.map(|text| {
            text.parse::<SocketAddr>()
                .map_err(|_| merge.file_error("http", &format!("{text:?} is not IP:PORT")))
        });
        let http = merge.pick("http", "--http", "TENURE_HTTP", args.http, file_http)?;

        let state_dir = merge
            .pick(
                "state_dir",
                "--state-dir",
                "TENURE_STATE_DIR",
                args.state_dir,
                file.state_dir.map(|path| Ok(base.join(path))),
            )?
            .ok_or_else(|| {
                error(
                    "--state-dir is required: an existing directory, private to this node, \
                     that keeps its term and vote across restarts (e.g. /var/lib/tenure)",
                )
            })?;

        let key_file = merge.pick(
            "cluster_key_file",
            "--cluster-key-file",
            "TENURE_CLUSTER_KEY_FILE",
            args.cluster_key_file,
            file.cluster_key_file.map(|path| Ok(base.join(path))),
        )?;
        let insecure = args.insecure || file.insecure.unwrap_or(false);
        let mut warnings = Vec::new();
        let (key, key_source) = match (key_file, insecure) {
            (Some(_), true) => {
                return Err(error(
                    "--insecure and --cluster-key-file are given together; choose one: the key \
                     file (authenticated datagrams) or --insecure (no authentication, demo only)",
                ))
            }
            (Some(path), false) => {
                let (key, mode) =
                    ClusterKey::from_file(&path).map_err(|problem| error(problem.to_string()))?;
                warnings.extend(small_file::exposure_warning(
                    "cluster key file",
                    &path,
                    mode,
                ));
                (key, KeySource::File(path))
            }
            (None, true) => (ClusterKey::insecure(), KeySource::Insecure),
            (None, false) if members.len() == 1 => (ClusterKey::insecure(), KeySource::NotNeeded),
            (None, false) => {
                return Err(error(format!(
                    "a cluster of {} members needs --cluster-key-file: every datagram is \
                     authenticated with the cluster key, so that nobody else can depose the \
                     leader. Create a key once with `openssl rand -hex 32 > key`, install the \
                     same file on every node, and pass --cluster-key-file. (--insecure runs \
                     without authentication, for a demo on one machine only.)",
                    members.len()
                )))
            }
        };

        let lease = merge
            .pick(
                "lease",
                "--lease",
                "TENURE_LEASE",
                args.lease,
                file.lease
                    .map(|text| parse_file_duration(&merge, "lease", &text)),
            )?
            .unwrap_or(DEFAULT_LEASE);
        let heartbeat = merge
            .pick(
                "heartbeat",
                "--heartbeat",
                "TENURE_HEARTBEAT",
                args.heartbeat,
                file.heartbeat
                    .map(|text| parse_file_duration(&merge, "heartbeat", &text)),
            )?
            .unwrap_or(DEFAULT_HEARTBEAT);
        let max_drift = merge
            .pick(
                "max_drift",
                "--max-drift",
                "TENURE_MAX_DRIFT",
                args.max_drift,
                file.max_drift.map(Ok),
            )?
            .unwrap_or(DEFAULT_MAX_DRIFT);
        let stop_grace = merge
            .pick(
                "stop_grace",
                "--stop-grace",
                "TENURE_STOP_GRACE",
                args.stop_grace,
                file.stop_grace
                    .map(|text| parse_file_duration(&merge, "stop_grace", &text)),
            )?
            .unwrap_or(DEFAULT_STOP_GRACE);
        let max_child_restarts = merge
            .pick(
                "max_child_restarts",
                "--max-child-restarts",
                "TENURE_MAX_CHILD_RESTARTS",
                args.max_child_restarts,
                file.max_child_restarts.map(Ok),
            )?
            .unwrap_or(DEFAULT_MAX_CHILD_RESTARTS);
        let health = health_settings(
            &mut merge,
            HealthFlags {
                command: args.health_cmd,
                http: args.health_http,
                interval: args.health_interval,
                timeout: args.health_timeout,
                failures: args.health_failures,
                grace: args.health_grace,
            },
            HealthFlags {
                command: file.health_cmd,
                http: file.health_http,
                interval: file.health_interval,
                timeout: file.health_timeout,
                failures: file.health_failures,
                grace: file.health_grace,
            },
        )?;
        let config = core_config(&members, lease, heartbeat, max_drift, stop_grace)?;
        let key = datagram_key(&key, &members, lease);

        let admin_token_file = merge.pick(
            "admin_token_file",
            "--admin-token-file",
            "TENURE_ADMIN_TOKEN_FILE",
            args.admin_token_file,
            file.admin_token_file.map(|path| Ok(base.join(path))),
        )?;
        let admin_token = match admin_token_file.as_deref() {
            Some(path) => {
                let (token, mode) = read_admin_token(path)?;
                warnings.extend(small_file::exposure_warning("admin token file", path, mode));
                Some(token)
            }
            None => None,
        };
        let log_format = merge
            .pick(
                "log_format",
                "--log-format",
                "TENURE_LOG_FORMAT",
                args.log_format,
                file.log_format.map(Ok),
            )?
            .unwrap_or(LogFormat::Text);
        let log_level = merge
            .pick(
                "log_level",
                "--log-level",
                "TENURE_LOG_LEVEL",
                args.log_level,
                file.log_level.map(Ok),
            )?
            .unwrap_or_else(|| "info".to_string());
        tracing_subscriber::EnvFilter::try_new(&log_level).map_err(|problem| {
            error(format!(
                "--log-level {log_level:?}: {problem}; use error, warn, info, debug or trace"
            ))
        })?;

        let mut command: Vec<OsString> = args.command;
        if command.is_empty() {
            if let Some(from_file) = file.command {
                command = from_file.into_iter().map(OsString::from).collect();
                merge.record(
                    "command",
                    Origin::File(file_path.clone().unwrap_or_default()),
                );
            }
        } else {
            merge.record("command", Origin::Flag("-- COMMAND"));
        }
        let command = match command.split_first() {
            Some((program, _)) if program.is_empty() => {
                return Err(error("the command after \"--\" is empty"))
            }
            Some((program, arguments)) => {
                // Caught here, so `--dry-run` reports it and a start refuses before it touches
                // the state file: otherwise the node would win an election, fail to start the
                // command, hand leadership over, and the next node would do the same.
                check_executable(program, std::env::var_os("PATH").as_deref()).map_err(error)?;
                Some((program.clone(), arguments.to_vec()))
            }
            None => None,
        };
        if health.is_some() && command.is_none() {
            return Err(error(
                "--health-cmd or --health-http is given without a command to check: add the \
                 daemon after \"--\"",
            ));
        }

        Ok(RunSettings {
            members,
            peer_addresses,
            listen,
            http,
            state_dir,
            key,
            key_source,
            config,
            lease,
            heartbeat,
            max_drift,
            stop_grace,
            max_child_restarts,
            health,
            admin_token,
            admin_token_file,
            log_format,
            log_level,
            command,
            dry_run: args.dry_run,
            origins: merge.origins,
            warnings,
        })
    }

    /// The stop margin handed to the core: `--stop-grace` plus `STOP_RESERVE`.
    pub fn stop_margin(&self) -> Duration {
        self.stop_grace + STOP_RESERVE
    }

    /// The settings in effect, one per line, with where each came from (`--dry-run`).
    pub fn describe(&self) -> String {
        let origin = |key: &str| {
            self.origins
                .get(key)
                .map_or_else(|| "default".to_string(), ToString::to_string)
        };
        let peers: Vec<String> = self
            .peer_addresses
            .iter()
            .map(|(id, address)| format!("{}={address}", self.members.display(*id)))
            .collect();
        let hold: Duration = self.config.lease_hold().into();
        let acting_window = hold.saturating_sub(self.stop_margin());
        let key = match &self.key_source {
            KeySource::File(path) => path.display().to_string(),
            KeySource::Insecure => "NONE (--insecure: datagrams are not authenticated)".into(),
            KeySource::NotNeeded => "not needed (a cluster of one)".into(),
        };
        let command = match &self.command {
            Some((program, arguments)) => std::iter::once(program)
                .chain(arguments)
                .map(|part| part.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" "),
            None => "none: observer only (takes part in elections, runs nothing)".into(),
        };
        let rows: Vec<(&str, String, String)> = vec![
            ("id", self.members.own_name().to_string(), origin("id")),
            (
                "members",
                format!(
                    "{} (majority {})",
                    self.members.names().join(", "),
                    self.config.majority()
                ),
                String::new(),
            ),
            (
                "listen",
                self.listen
                    .map_or_else(|| "none (a cluster of one)".into(), |a| a.to_string()),
                origin("listen"),
            ),
            ("peers", peers.join(", "), origin("peers")),
            (
                "http",
                self.http
                    .map_or_else(|| "none (no HTTP API)".into(), |a| a.to_string()),
                origin("http"),
            ),
            (
                "state dir",
                self.state_dir.display().to_string(),
                origin("state_dir"),
            ),
            ("cluster key", key, origin("cluster_key_file")),
            (
                "lease",
                format!(
                    "{} (held {} per renewal after drift)",
                    human(self.lease),
                    human(hold)
                ),
                origin("lease"),
            ),
            ("heartbeat", human(self.heartbeat), origin("heartbeat")),
            ("max drift", self.max_drift.to_string(), origin("max_drift")),
            (
                "stop grace",
                format!(
                    "{} (SIGTERM to SIGKILL; stop margin {}, acting window {} per renewal)",
                    human(self.stop_grace),
                    human(self.stop_margin()),
                    human(acting_window)
                ),
                origin("stop_grace"),
            ),
            (
                "child restarts",
                self.max_child_restarts.to_string(),
                origin("max_child_restarts"),
            ),
            (
                "health check",
                match &self.health {
                    Some(health) => format!(
                        "{}; every {}, timeout {}, {} failures in a row, grace {}",
                        health.probe.describe(),
                        human(health.interval),
                        human(health.timeout),
                        health.failures,
                        human(health.grace)
                    ),
                    None => "none".into(),
                },
                origin("health"),
            ),
            (
                "admin token",
                match &self.admin_token_file {
                    Some(path) => path.display().to_string(),
                    None => "none (POST /step-down is open to anyone reaching --http)".into(),
                },
                origin("admin_token_file"),
            ),
            (
                "log",
                format!("{:?}, {}", self.log_format, self.log_level).to_lowercase(),
                origin("log_format"),
            ),
            ("command", command, origin("command")),
        ];
        let mut text = String::new();
        for (name, value, origin) in rows {
            let origin = if origin.is_empty() {
                String::new()
            } else {
                format!("   [{origin}]")
            };
            text.push_str(&format!("  {name:<15} {value}{origin}\n"));
        }
        text
    }
}

/// The health-check settings as given on the command line (durations parsed) or in the file
/// (durations as text).
struct HealthFlags<D> {
    command: Option<String>,
    http: Option<String>,
    interval: Option<D>,
    timeout: Option<D>,
    failures: Option<u32>,
    grace: Option<D>,
}

/// The health-check flags (protocol: Health-gated acting), merged like every other setting:
/// `None` without `--health-cmd` or `--health-http` (the other health flags then do nothing).
fn health_settings(
    merge: &mut Merge<'_>,
    args: HealthFlags<Duration>,
    file: HealthFlags<String>,
) -> Result<Option<HealthSettings>, SettingsError> {
    let command = merge.pick(
        "health_cmd",
        "--health-cmd",
        "TENURE_HEALTH_CMD",
        args.command,
        file.command.map(Ok),
    )?;
    let http = merge.pick(
        "health_http",
        "--health-http",
        "TENURE_HEALTH_HTTP",
        args.http,
        file.http.map(Ok),
    )?;
    let probe = match (command, http) {
        (Some(_), Some(_)) => {
            return Err(error(
                "--health-cmd and --health-http are given together; choose one",
            ))
        }
        (Some(command), None) if command.trim().is_empty() => {
            return Err(error("--health-cmd is empty"))
        }
        (Some(command), None) => HealthProbe::Command(command),
        (None, Some(url)) => {
            HealthProbe::http(&url).map_err(|problem| error(format!("--health-http: {problem}")))?
        }
        (None, None) => return Ok(None),
    };
    let origin = merge
        .origins
        .get("health_cmd")
        .or(merge.origins.get("health_http"))
        .cloned()
        .unwrap_or(Origin::Default);
    merge.record("health", origin);
    let duration = |merge: &mut Merge<'_>,
                    key: &'static str,
                    flag: &'static str,
                    variable: &'static str,
                    command_line: Option<Duration>,
                    text: &Option<String>,
                    default: Duration| {
        let from_file = text
            .as_deref()
            .map(|text| parse_file_duration(merge, key, text));
        merge
            .pick(key, flag, variable, command_line, from_file)
            .map(|value| value.unwrap_or(default))
    };
    let interval = duration(
        merge,
        "health_interval",
        "--health-interval",
        "TENURE_HEALTH_INTERVAL",
        args.interval,
        &file.interval,
        DEFAULT_HEALTH_INTERVAL,
    )?;
    let timeout = duration(
        merge,
        "health_timeout",
        "--health-timeout",
        "TENURE_HEALTH_TIMEOUT",
        args.timeout,
        &file.timeout,
        DEFAULT_HEALTH_TIMEOUT,
    )?;
    let grace = duration(
        merge,
        "health_grace",
        "--health-grace",
        "TENURE_HEALTH_GRACE",
        args.grace,
        &file.grace,
        DEFAULT_HEALTH_GRACE,
    )?;
    let failures = merge
        .pick(
            "health_failures",
            "--health-failures",
            "TENURE_HEALTH_FAILURES",
            args.failures,
            file.failures.map(Ok),
        )?
        .map_or(Ok(DEFAULT_HEALTH_FAILURES), |count| {
            NonZeroU32::new(count).ok_or_else(|| {
                error("--health-failures must be at least 1 (failed checks in a row)")
            })
        })?;
    if interval.is_zero() || timeout.is_zero() {
        return Err(error(
            "--health-interval and --health-timeout must be longer than zero",
        ));
    }
    if timeout > interval {
        return Err(error(format!(
            "--health-timeout {} is longer than --health-interval {}: a check must end before \
             the next one starts",
            human(timeout),
            human(interval)
        )));
    }
    Ok(Some(HealthSettings {
        probe,
        interval,
        timeout,
        grace,
        failures,
    }))
}

/// Picks a setting by precedence and records where it came from.
struct Merge<'a> {
    matches: &'a ArgMatches,
    file_path: Option<PathBuf>,
    origins: BTreeMap<&'static str, Origin>,
}

impl Merge<'_> {
    /// The command-line value (flag or environment, told apart by clap) if any, else the file
    /// value if any. A file value is only parsed, and its error only reported, when no flag
    /// overrides it.
    fn pick<T>(
        &mut self,
        key: &'static str,
        flag: &'static str,
        variable: &'static str,
        command_line: Option<T>,
        file: Option<Result<T, SettingsError>>,
    ) -> Result<Option<T>, SettingsError> {
        if let Some(value) = command_line {
            // clap's argument ids are the field names of `RunArgs`, which the keys follow.
            let origin = match self.matches.value_source(key) {
                Some(ValueSource::EnvVariable) => Origin::Environment(variable),
                _ => Origin::Flag(flag),
            };
            self.origins.insert(key, origin);
            return Ok(Some(value));
        }
        match file {
            Some(value) => {
                let value = value?;
                self.origins.insert(
                    key,
                    Origin::File(self.file_path.clone().unwrap_or_default()),
                );
                Ok(Some(value))
            }
            None => Ok(None),
        }
    }

    fn record(&mut self, key: &'static str, origin: Origin) {
        self.origins.insert(key, origin);
    }

    fn file_error(&self, key: &str, problem: &str) -> SettingsError {
        let path = self.file_path.clone().unwrap_or_default();
        error(format!("config file {}: {key}: {problem}", path.display()))
    }
}

fn parse_file_duration(
    merge: &Merge<'_>,
    key: &str,
    text: &str,
) -> Result<Duration, SettingsError> {
    parse_duration(text).map_err(|problem| merge.file_error(key, &format!("{text:?}: {problem}")))
}

fn read_file_settings(path: &Path) -> Result<FileSettings, SettingsError> {
    let file = small_file::read(path, MAX_CONFIG_FILE)
        .map_err(|problem| error(format!("config file {}: {problem}", path.display())))?;
    parse_file_settings(&file.text)
        .map_err(|problem| error(format!("config file {}: {problem}", path.display())))
}

/// Parses the text of a `--config` file. Public for the fuzz target `config_file`; the result
/// says only whether it parsed, because `FileSettings` is private to this module.
pub fn check_config_text(text: &str) -> Result<(), String> {
    parse_file_settings(text).map(drop)
}

fn parse_file_settings(text: &str) -> Result<FileSettings, String> {
    toml::from_str(text).map_err(|problem| problem.to_string())
}

/// Reads the admin token, and returns it with the file's permission bits.
fn read_admin_token(path: &Path) -> Result<(String, u32), SettingsError> {
    let problem = |what: String| {
        error(format!(
            "admin token file {}: {what}. It must hold one line with the token that POST \
             /step-down requires as \"Authorization: Bearer TOKEN\" (make one with \
             `openssl rand -hex 16`)",
            path.display()
        ))
    };
    let file = small_file::read(path, MAX_SECRET_FILE).map_err(problem)?;
    let token = file.text.trim();
    if token.is_empty() {
        return Err(problem("it is empty".to_string()));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(problem(
            "it contains whitespace inside the token".to_string(),
        ));
    }
    Ok((token.to_string(), file.mode))
}

/// The search path `execvp` uses when `PATH` is unset (glibc's default).
const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// Checks that `program` names an executable file: itself when it contains a `/` (relative to
/// the working directory, as the child is started), else the first match in `path` (`PATH`),
/// as `execvp` looks it up when the child starts. The error names the command and the rule.
fn check_executable(program: &OsString, path: Option<&std::ffi::OsStr>) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;

    let is_executable_file = |candidate: &Path| {
        std::fs::metadata(candidate)
            .is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
    };
    let shown = program.to_string_lossy();
    if program.as_bytes().contains(&b'/') {
        let candidate = Path::new(program);
        return match std::fs::metadata(candidate) {
            Err(problem) => Err(format!(
                "the command {shown:?} after \"--\" cannot be run: {problem}"
            )),
            Ok(_) if is_executable_file(candidate) => Ok(()),
            Ok(_) => Err(format!(
                "the command {shown:?} after \"--\" is not an executable file (it is a \
                 directory, or no execute bit is set)"
            )),
        };
    }
    let search = path.map_or_else(
        || std::ffi::OsString::from(DEFAULT_PATH),
        std::ffi::OsStr::to_os_string,
    );
    let found = std::env::split_paths(&search).any(|directory| {
        // An empty PATH entry means the working directory, as for execvp.
        let directory = if directory.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            directory
        };
        is_executable_file(&directory.join(program))
    });
    if found {
        Ok(())
    } else {
        Err(format!(
            "the command {shown:?} after \"--\" is not found, or not executable, in PATH ({})",
            search.to_string_lossy()
        ))
    }
}

/// The key datagrams are sealed with: the cluster key bound to the settings every member must
/// share. Nodes given a different member list or lease cannot authenticate each other's
/// datagrams, so a misconfiguration shows as `unauthenticated` drops and never as quorums that
/// do not intersect or a leader whose lease outlasts its followers' promises.
pub fn datagram_key(key: &ClusterKey, members: &Members, lease: Duration) -> ClusterKey {
    let context = format!(
        "tenure datagram key v1\nmembers {}\nlease_ns {}\n",
        members.names().join(","),
        lease.as_nanos()
    );
    key.derive(context.as_bytes())
}

/// The core's configuration, with errors phrased in terms of the flags.
fn core_config(
    members: &Members,
    lease: Duration,
    heartbeat: Duration,
    max_drift: f64,
    stop_grace: Duration,
) -> Result<Arc<Config>, SettingsError> {
    if stop_grace > crate::guard::MAX_GUARD_WAIT {
        return Err(error(format!(
            "--stop-grace {} is longer than the maximum of one hour",
            human(stop_grace)
        )));
    }
    let lease_core = tenure_core::Duration::from(lease);
    // The update fills `variant`, which exists only when cargo's feature unification compiles
    // tenure-core with `broken-variants` (a workspace test build); it is then the correct one.
    #[allow(clippy::needless_update)]
    let params = ConfigParams {
        members: members.ids(),
        lease_duration: lease_core,
        heartbeat_interval: heartbeat.into(),
        max_drift,
        stop_margin: (stop_grace + STOP_RESERVE).into(),
        election_jitter_max: lease_core.mul_ratio(1, u64::from(JITTER_DIVISOR)),
        election_step: ConfigParams::election_step_for(lease_core),
        ..ConfigParams::default()
    };
    Config::new(params).map(Arc::new).map_err(|problem| {
        error(match problem {
            ConfigError::ZeroLease => "--lease must be longer than zero".to_string(),
            ConfigError::ZeroHeartbeat => "--heartbeat must be longer than zero".to_string(),
            ConfigError::HeartbeatTooSlow { .. } => format!(
                "--heartbeat {} must be less than a third of --lease {}, so that a lease \
                 survives lost heartbeats: lower --heartbeat or raise --lease",
                human(heartbeat),
                human(lease)
            ),
            ConfigError::DriftOutOfRange { .. } => format!(
                "--max-drift {max_drift} is outside [0, 0.1]; it is the bound on clock-rate \
                 drift as a fraction (0.01 = 1%)"
            ),
            ConfigError::NoActingWindow { lease_hold, .. } => format!(
                "--stop-grace {} leaves the leader no time to act: the leader stops acting \
                 --stop-grace + {} (the SIGKILL reserve) = {} before its lease ends, and that \
                 plus --heartbeat {} must be less than the lease held per renewal, {} (--lease \
                 {} shortened for --max-drift {max_drift}). Lower --stop-grace or --heartbeat, \
                 or raise --lease",
                human(stop_grace),
                human(STOP_RESERVE),
                human(stop_grace + STOP_RESERVE),
                human(heartbeat),
                human(lease_hold.into()),
                human(lease)
            ),
            other => other.to_string(),
        })
    })
}

/// A duration as an operator writes it (`2s`, `250ms`, `1s 960ms 396us 39ns`).
pub fn human(duration: Duration) -> String {
    // Sub-millisecond detail is noise in these messages.
    let millis = Duration::from_millis(duration.as_millis() as u64);
    let shown = if millis.is_zero() { duration } else { millis };
    humantime::format_duration(shown).to_string()
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches};

    use super::*;
    use crate::cli::{Cli, CliCommand};

    fn load(arguments: &[&str]) -> Result<RunSettings, SettingsError> {
        let mut all = vec!["tenure", "run"];
        all.extend_from_slice(arguments);
        let matches = Cli::command().try_get_matches_from(all).expect("parses");
        let cli = Cli::from_arg_matches(&matches).expect("parses");
        let CliCommand::Run(run) = cli.command else {
            panic!("not run");
        };
        let run_matches = matches.subcommand_matches("run").expect("run");
        RunSettings::load(*run, run_matches)
    }

    fn key_file(directory: &Path) -> String {
        let path = directory.join("key");
        std::fs::write(&path, "ab".repeat(32)).unwrap();
        path.display().to_string()
    }

    #[test]
    fn a_full_command_line_loads_with_defaults() {
        let directory = tempfile::tempdir().unwrap();
        let key = key_file(directory.path());
        let state = directory.path().display().to_string();
        let settings = load(&[
            "--id",
            "n1",
            "--listen",
            "127.0.0.1:7101",
            "--peer",
            "n2=127.0.0.1:7102",
            "--peer",
            "n3=127.0.0.1:7103",
            "--state-dir",
            &state,
            "--cluster-key-file",
            &key,
            "--",
            "sleep",
            "60",
        ])
        .unwrap();
        assert_eq!(settings.members.names(), ["n1", "n2", "n3"]);
        assert_eq!(settings.config.lease_duration(), DEFAULT_LEASE.into());
        assert_eq!(
            settings.config.stop_margin(),
            (DEFAULT_STOP_GRACE + STOP_RESERVE).into()
        );
        assert_eq!(
            settings.config.election_jitter_max(),
            tenure_core::Duration::from_millis(500)
        );
        assert_eq!(settings.command.as_ref().unwrap().0, "sleep");
        assert_eq!(settings.origins.get("lease"), None);
        assert_eq!(settings.origins.get("id"), Some(&Origin::Flag("--id")));
    }

    #[test]
    fn the_file_fills_what_flags_leave_open_and_paths_are_relative_to_it() {
        let directory = tempfile::tempdir().unwrap();
        key_file(directory.path());
        let config = directory.path().join("tenure.toml");
        std::fs::write(
            &config,
            "id = \"n2\"\nlisten = \"127.0.0.1:7102\"\nstate_dir = \".\"\n\
             cluster_key_file = \"key\"\nlease = \"3s\"\nheartbeat = \"300ms\"\n\
             command = [\"sleep\", \"5\"]\n[peers]\nn1 = \"127.0.0.1:7101\"\n",
        )
        .unwrap();
        let config = config.display().to_string();
        let settings = load(&["--config", &config, "--lease", "4s"]).unwrap();
        assert_eq!(settings.members.own_name(), "n2");
        assert_eq!(settings.lease, Duration::from_secs(4));
        assert_eq!(settings.heartbeat, Duration::from_millis(300));
        assert_eq!(settings.state_dir, directory.path().join("."));
        assert_eq!(
            settings.origins.get("lease"),
            Some(&Origin::Flag("--lease"))
        );
        assert!(matches!(
            settings.origins.get("heartbeat"),
            Some(Origin::File(_))
        ));
        assert_eq!(settings.command.unwrap().1, vec![OsString::from("5")]);
    }

    #[test]
    fn bad_settings_are_explained() {
        let directory = tempfile::tempdir().unwrap();
        let key = key_file(directory.path());
        let state = directory.path().display().to_string();
        let base = [
            "--id",
            "n1",
            "--listen",
            "127.0.0.1:7101",
            "--state-dir",
            &state,
        ];
        let with = |extra: &[&str]| {
            let mut all = base.to_vec();
            all.push("--peer");
            all.push("n2=127.0.0.1:7102");
            all.extend_from_slice(extra);
            load(&all).map(|_| ()).unwrap_err().0
        };
        let cases = [
            (with(&[]), "needs --cluster-key-file"),
            (
                with(&["--insecure", "--cluster-key-file", &key]),
                "choose one",
            ),
            (
                with(&["--cluster-key-file", &key, "--heartbeat", "1s"]),
                "--heartbeat 1s must be less than a third of --lease 2s",
            ),
            (
                with(&["--cluster-key-file", &key, "--stop-grace", "2s"]),
                "--stop-grace 2s leaves the leader no time to act",
            ),
            (
                with(&["--cluster-key-file", &key, "--max-drift", "0.5"]),
                "--max-drift 0.5 is outside",
            ),
            (
                with(&["--cluster-key-file", &key, "--log-level", "loud=="]),
                "--log-level",
            ),
            (
                with(&["--cluster-key-file", "/nonexistent/key"]),
                "cluster key file /nonexistent/key",
            ),
            (
                with(&["--insecure", "--admin-token-file", "/nonexistent/token"]),
                "admin token file /nonexistent/token",
            ),
        ];
        for (message, expected) in cases {
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        }
        let missing_id = load(&["--state-dir", &state]).unwrap_err().0;
        assert!(missing_id.contains("--id is required"), "{missing_id}");
        let missing_dir = load(&["--id", "n1"]).unwrap_err().0;
        assert!(
            missing_dir.contains("--state-dir is required"),
            "{missing_dir}"
        );
    }

    #[test]
    fn config_file_errors_name_the_file_and_the_key() {
        let directory = tempfile::tempdir().unwrap();
        let config = directory.path().join("tenure.toml");
        for (text, expected) in [
            ("lese = \"2s\"\n", "unknown field `lese`"),
            ("lease = \"2 parsecs\"\n", "lease: \"2 parsecs\""),
            ("id = \n", "tenure.toml"),
            (
                "[peers]\nn2 = \"nowhere\"\n",
                "peers: \"nowhere\" has no port",
            ),
        ] {
            std::fs::write(&config, text).unwrap();
            let path = config.display().to_string();
            let state = directory.path().display().to_string();
            let message = load(&["--config", &path, "--id", "n1", "--state-dir", &state])
                .unwrap_err()
                .0;
            assert!(message.contains(&path), "{message}");
            assert!(message.contains(expected), "{text:?}: {message}");
        }
    }

    #[test]
    fn nodes_must_share_members_and_lease_to_authenticate_each_other() {
        let key = ClusterKey::from_hex(&"ab".repeat(32)).unwrap();
        let three = Members::new("n1", ["n2", "n3"]).unwrap();
        let same_from_n2 = Members::new("n2", ["n1", "n3"]).unwrap();
        let two = Members::new("n1", ["n2"]).unwrap();
        let base = datagram_key(&key, &three, DEFAULT_LEASE);
        assert_eq!(base, datagram_key(&key, &same_from_n2, DEFAULT_LEASE));
        assert_ne!(base, datagram_key(&key, &two, DEFAULT_LEASE));
        assert_ne!(base, datagram_key(&key, &three, Duration::from_secs(3)));
    }

    #[test]
    fn health_checks_take_defaults_and_refuse_what_cannot_work() {
        let directory = tempfile::tempdir().unwrap();
        let state = directory.path().display().to_string();
        let config = directory.path().join("tenure.toml");
        std::fs::write(&config, "health_interval = \"20s\"\nhealth_failures = 2\n").unwrap();
        let config = config.display().to_string();
        let base = ["--id", "solo", "--state-dir", &state, "--config", &config];
        let with = |extra: &[&str]| {
            let mut all = base.to_vec();
            all.extend_from_slice(extra);
            load(&all)
        };
        let settings = with(&["--health-cmd", "exit 0", "--", "sleep", "60"]).unwrap();
        let health = settings.health.expect("checks");
        assert_eq!(health.probe, HealthProbe::Command("exit 0".into()));
        assert_eq!(health.interval, Duration::from_secs(20), "from the file");
        assert_eq!(health.failures.get(), 2, "from the file");
        assert_eq!(health.timeout, DEFAULT_HEALTH_TIMEOUT);
        assert_eq!(health.grace, DEFAULT_HEALTH_GRACE);
        assert!(with(&["--", "sleep", "60"]).unwrap().health.is_none());
        let cases = [
            (
                vec![
                    "--health-cmd",
                    "true",
                    "--health-http",
                    "http://127.0.0.1:1/",
                ],
                "choose one",
            ),
            (vec!["--health-cmd", "true"], "without a command to check"),
            (
                vec!["--health-cmd", "true", "--health-timeout", "30s"],
                "longer than --health-interval",
            ),
            (
                vec!["--health-cmd", "true", "--health-failures", "0"],
                "at least 1",
            ),
            (vec!["--health-http", "https://x/"], "--health-http"),
        ];
        for (mut extra, expected) in cases {
            if expected != "without a command to check" {
                extra.extend(["--", "sleep", "60"]);
            }
            let message = with(&extra).map(|_| ()).unwrap_err().0;
            assert!(message.contains(expected), "{extra:?}: {message}");
        }
    }

    #[test]
    fn a_cluster_of_one_needs_neither_key_nor_listen_address() {
        let directory = tempfile::tempdir().unwrap();
        let state = directory.path().display().to_string();
        let settings = load(&["--id", "solo", "--state-dir", &state]).unwrap();
        assert_eq!(settings.key_source, KeySource::NotNeeded);
        assert_eq!(settings.listen, None);
        assert!(settings.command.is_none());
        assert!(settings.describe().contains("observer only"));
    }

    #[test]
    fn a_command_must_be_an_executable_file_found_as_execvp_would() {
        let sh = OsString::from("sh");
        assert_eq!(
            check_executable(&sh, Some("/nowhere:/bin".as_ref())),
            Ok(())
        );
        assert_eq!(check_executable(&OsString::from("/bin/sh"), None), Ok(()));
        let missing = OsString::from("no-such-command-anywhere");
        let problem = check_executable(&missing, Some("/bin:/usr/bin".as_ref())).unwrap_err();
        assert!(
            problem.contains("\"no-such-command-anywhere\""),
            "{problem}"
        );
        assert!(problem.contains("not found"), "{problem}");
        assert!(problem.contains("/bin:/usr/bin"), "{problem}");
        let problem = check_executable(&OsString::from("/bin"), None).unwrap_err();
        assert!(problem.contains("not an executable file"), "{problem}");
        let problem = check_executable(&OsString::from("/no/such/file"), None).unwrap_err();
        assert!(problem.contains("cannot be run"), "{problem}");
        // Found in the PATH but not executable.
        let directory = tempfile::tempdir().unwrap();
        std::fs::write(directory.path().join("plain"), "not a program").unwrap();
        let problem =
            check_executable(&OsString::from("plain"), Some(directory.path().as_os_str()))
                .unwrap_err();
        assert!(
            problem.contains("not found, or not executable"),
            "{problem}"
        );
    }
}
