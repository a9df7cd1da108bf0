//! Merging the sources of `tenure run`'s settings: each setting comes from the command line
//! (a flag, or a `TENURE_*` variable, which clap tells apart), else the `--config` TOML file,
//! else its default. Nothing is checked here beyond parsing the file's values, which clap
//! does for the command line; `RunSettings::load` checks what the merge yields.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;
use clap::ArgMatches;
use serde::Deserialize;

use super::core_config::{
    heartbeat_for, stop_grace_for, DEFAULT_LEASE, DEFAULT_MAX_CHILD_RESTARTS, DEFAULT_MAX_DRIFT,
};
use super::{error, SettingsError};
use crate::cli::{parse_duration, LogFormat, RunArgs};
use crate::members::PeerSpec;
use crate::small_file;

/// Longest `--config` file read. The example in deploy/ is about 1.5 KB.
const MAX_CONFIG_FILE: u64 = 64 * 1024;

/// Where a setting's value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Flag(&'static str),
    Environment(&'static str),
    File(PathBuf),
    /// Not given: derived from other settings, by the rule shown (`lease/8`).
    Derived(&'static str),
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(flag) => write!(f, "{flag}"),
            Origin::Environment(variable) => write!(f, "${variable}"),
            Origin::File(path) => write!(f, "config file {}", path.display()),
            Origin::Derived(rule) => write!(f, "default: {rule}"),
            Origin::Default => f.write_str("default"),
        }
    }
}

/// The settings of `tenure run`, each taken from the first source that gives it (flag >
/// environment > file > default). Parsed, not yet checked.
#[derive(Debug)]
pub(super) struct MergedSettings {
    pub id: Option<String>,
    pub peers: Vec<PeerSpec>,
    pub listen: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
    pub state_dir: Option<PathBuf>,
    pub cluster_key_file: Option<PathBuf>,
    pub insecure: bool,
    /// `--backend`: the store's URL as given (it may hold a password: never logged).
    pub backend: Option<String>,
    /// `--election`.
    pub election: Option<String>,
    /// `--exit-on-daemon-failure`.
    pub exit_on_daemon_failure: bool,
    pub lease: Duration,
    pub heartbeat: Duration,
    pub max_drift: f64,
    pub stop_grace: Duration,
    pub max_child_restarts: u32,
    /// The health-check settings as given; `settings::health` checks them.
    pub health: HealthSources,
    pub admin_token_file: Option<PathBuf>,
    pub log_format: LogFormat,
    pub log_level: String,
    /// The daemon and its arguments; empty for an observer-only node.
    pub command: Vec<OsString>,
    pub dry_run: bool,
    /// Where each setting that did not take its default came from.
    pub origins: BTreeMap<&'static str, Origin>,
}

impl MergedSettings {
    /// Merges the parsed command line (and its environment) with the config file and the
    /// defaults. `matches` are the `run` subcommand's matches, which tell a flag from an
    /// environment variable. Fails only on a config file that cannot be read or parsed.
    pub(super) fn merge(
        args: RunArgs,
        matches: &ArgMatches,
    ) -> Result<MergedSettings, SettingsError> {
        let file = read_file_settings(args.config.as_deref())?;
        let mut merge = Merge {
            matches,
            file_path: args.config.clone(),
            origins: BTreeMap::new(),
        };
        // Paths in the file are relative to the file.
        let directory = file_directory(args.config.as_deref());
        let in_file = |path: PathBuf| Ok(directory.join(path));
        let health = merge.health(&args, &file)?;
        let id = merge.pick(&ID, args.id, file.id.map(Ok))?;
        let file_peers = file.peers.map(|table| merge.file_peers(table));
        let cli_peers = (!args.peers.is_empty()).then_some(args.peers);
        let peers = merge.pick(&PEERS, cli_peers, file_peers)?;
        let listen = merge.address(&LISTEN, args.listen, file.listen)?;
        let http = merge.address(&HTTP, args.http, file.http)?;
        let state_dir = merge.pick(&STATE_DIR, args.state_dir, file.state_dir.map(in_file))?;
        let cluster_key_file = merge.pick(
            &CLUSTER_KEY_FILE,
            args.cluster_key_file,
            file.cluster_key_file.map(in_file),
        )?;
        let store = merge.store((args.backend, file.backend), (args.election, file.election))?;
        let lease = merge.duration(&LEASE, args.lease, file.lease)?;
        let heartbeat = merge.duration(&HEARTBEAT, args.heartbeat, file.heartbeat)?;
        let max_drift = merge.pick(&MAX_DRIFT, args.max_drift, file.max_drift.map(Ok))?;
        let stop_grace = merge.duration(&STOP_GRACE, args.stop_grace, file.stop_grace)?;
        let max_child_restarts = merge.pick(
            &MAX_CHILD_RESTARTS,
            args.max_child_restarts,
            file.max_child_restarts.map(Ok),
        )?;
        let file_token = file.admin_token_file.map(in_file);
        let admin_token_file = merge.pick(&ADMIN_TOKEN_FILE, args.admin_token_file, file_token)?;
        let log_format = merge.pick(&LOG_FORMAT, args.log_format, file.log_format.map(Ok))?;
        let log_level = merge.pick(&LOG_LEVEL, args.log_level, file.log_level.map(Ok))?;
        let command = merge.command(args.command, file.command);
        let exit_on_daemon_failure =
            either(args.exit_on_daemon_failure, file.exit_on_daemon_failure);
        let (lease, heartbeat, max_drift, stop_grace) =
            merge.timing(lease, heartbeat, max_drift, stop_grace);
        Ok(MergedSettings {
            id,
            peers: peers.unwrap_or_default(),
            listen,
            http,
            state_dir,
            cluster_key_file,
            insecure: args.insecure || file.insecure.unwrap_or(false),
            backend: store.0,
            election: store.1,
            exit_on_daemon_failure,
            lease,
            heartbeat,
            max_drift,
            stop_grace,
            max_child_restarts: max_child_restarts.unwrap_or(DEFAULT_MAX_CHILD_RESTARTS),
            health,
            admin_token_file,
            log_format: log_format.unwrap_or(LogFormat::Text),
            log_level: log_level.unwrap_or_else(|| "info".to_string()),
            command,
            dry_run: args.dry_run,
            origins: merge.origins,
        })
    }
}

/// The health-check settings as merged (protocol: Health-gated acting), before they are
/// checked.
#[derive(Debug, Default)]
pub(super) struct HealthSources {
    pub command: Option<String>,
    pub http: Option<String>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub failures: Option<u32>,
    pub grace: Option<Duration>,
}

/// Parses the text of a `--config` file. Public for the fuzz target `config_file`; the result
/// says only whether it parsed, because `FileSettings` is private to this module.
pub fn check_config_text(text: &str) -> Result<(), String> {
    parse_file_settings(text).map(drop)
}

/// A setting's names in its sources. The file key is also clap's argument id (the field name
/// of `RunArgs`), which tells a flag from an environment variable.
struct Key {
    key: &'static str,
    flag: &'static str,
    variable: &'static str,
}

const ID: Key = Key {
    key: "id",
    flag: "--id",
    variable: "TENURE_ID",
};
const PEERS: Key = Key {
    key: "peers",
    flag: "--peer",
    variable: "TENURE_PEERS",
};
const LISTEN: Key = Key {
    key: "listen",
    flag: "--listen",
    variable: "TENURE_LISTEN",
};
const HTTP: Key = Key {
    key: "http",
    flag: "--http",
    variable: "TENURE_HTTP",
};
const STATE_DIR: Key = Key {
    key: "state_dir",
    flag: "--state-dir",
    variable: "TENURE_STATE_DIR",
};
const CLUSTER_KEY_FILE: Key = Key {
    key: "cluster_key_file",
    flag: "--cluster-key-file",
    variable: "TENURE_CLUSTER_KEY_FILE",
};
const BACKEND: Key = Key {
    key: "backend",
    flag: "--backend",
    variable: "TENURE_BACKEND",
};
const ELECTION: Key = Key {
    key: "election",
    flag: "--election",
    variable: "TENURE_ELECTION",
};
const LEASE: Key = Key {
    key: "lease",
    flag: "--lease",
    variable: "TENURE_LEASE",
};
const HEARTBEAT: Key = Key {
    key: "heartbeat",
    flag: "--heartbeat",
    variable: "TENURE_HEARTBEAT",
};
const MAX_DRIFT: Key = Key {
    key: "max_drift",
    flag: "--max-drift",
    variable: "TENURE_MAX_DRIFT",
};
const STOP_GRACE: Key = Key {
    key: "stop_grace",
    flag: "--stop-grace",
    variable: "TENURE_STOP_GRACE",
};
const MAX_CHILD_RESTARTS: Key = Key {
    key: "max_child_restarts",
    flag: "--max-child-restarts",
    variable: "TENURE_MAX_CHILD_RESTARTS",
};
const ADMIN_TOKEN_FILE: Key = Key {
    key: "admin_token_file",
    flag: "--admin-token-file",
    variable: "TENURE_ADMIN_TOKEN_FILE",
};
const LOG_FORMAT: Key = Key {
    key: "log_format",
    flag: "--log-format",
    variable: "TENURE_LOG_FORMAT",
};
const HEALTH_CMD: Key = Key {
    key: "health_cmd",
    flag: "--health-cmd",
    variable: "TENURE_HEALTH_CMD",
};
const HEALTH_HTTP: Key = Key {
    key: "health_http",
    flag: "--health-http",
    variable: "TENURE_HEALTH_HTTP",
};
const HEALTH_INTERVAL: Key = Key {
    key: "health_interval",
    flag: "--health-interval",
    variable: "TENURE_HEALTH_INTERVAL",
};
const HEALTH_TIMEOUT: Key = Key {
    key: "health_timeout",
    flag: "--health-timeout",
    variable: "TENURE_HEALTH_TIMEOUT",
};
const HEALTH_FAILURES: Key = Key {
    key: "health_failures",
    flag: "--health-failures",
    variable: "TENURE_HEALTH_FAILURES",
};
const HEALTH_GRACE: Key = Key {
    key: "health_grace",
    flag: "--health-grace",
    variable: "TENURE_HEALTH_GRACE",
};
const LOG_LEVEL: Key = Key {
    key: "log_level",
    flag: "--log-level",
    variable: "TENURE_LOG_LEVEL",
};

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
    backend: Option<String>,
    election: Option<String>,
    exit_on_daemon_failure: Option<bool>,
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

/// Picks settings by precedence and records where each came from.
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
        key: &Key,
        command_line: Option<T>,
        file: Option<Result<T, SettingsError>>,
    ) -> Result<Option<T>, SettingsError> {
        if let Some(value) = command_line {
            let origin = match self.matches.value_source(key.key) {
                Some(ValueSource::EnvVariable) => Origin::Environment(key.variable),
                _ => Origin::Flag(key.flag),
            };
            self.origins.insert(key.key, origin);
            return Ok(Some(value));
        }
        match file {
            Some(value) => {
                let value = value?;
                self.origins.insert(key.key, self.file_origin());
                Ok(Some(value))
            }
            None => Ok(None),
        }
    }

    /// `--backend` and `--election` (protocol: Store leases).
    /// Each is given as (command line, file).
    fn store(
        &mut self,
        backend: (Option<String>, Option<String>),
        election: (Option<String>, Option<String>),
    ) -> Result<(Option<String>, Option<String>), SettingsError> {
        let backend = self.pick(&BACKEND, backend.0, backend.1.map(Ok))?;
        let election = self.pick(&ELECTION, election.0, election.1.map(Ok))?;
        Ok((backend, election))
    }

    /// The timing as given, with the defaults filled in: the heartbeat and stop grace follow
    /// the lease unless given (docs/operations.md: Tuning).
    fn timing(
        &mut self,
        lease: Option<Duration>,
        heartbeat: Option<Duration>,
        max_drift: Option<f64>,
        stop_grace: Option<Duration>,
    ) -> (Duration, Duration, f64, Duration) {
        let lease = lease.unwrap_or(DEFAULT_LEASE);
        let max_drift = max_drift.unwrap_or(DEFAULT_MAX_DRIFT);
        let heartbeat = heartbeat.unwrap_or_else(|| {
            self.origins
                .insert(HEARTBEAT.key, Origin::Derived("lease/8"));
            heartbeat_for(lease)
        });
        let stop_grace = stop_grace.unwrap_or_else(|| {
            let rule = "lease/4, less if the acting window needs it";
            self.origins.insert(STOP_GRACE.key, Origin::Derived(rule));
            stop_grace_for(lease, heartbeat, max_drift)
        });
        (lease, heartbeat, max_drift, stop_grace)
    }

    /// The health-check settings, each by precedence like every other setting.
    fn health(
        &mut self,
        args: &RunArgs,
        file: &FileSettings,
    ) -> Result<HealthSources, SettingsError> {
        let file_duration = |merge: &Self, key: &str, text: &Option<String>| {
            text.as_deref().map(|text| merge.file_duration(key, text))
        };
        let interval = file_duration(self, HEALTH_INTERVAL.key, &file.health_interval);
        let timeout = file_duration(self, HEALTH_TIMEOUT.key, &file.health_timeout);
        let grace = file_duration(self, HEALTH_GRACE.key, &file.health_grace);
        Ok(HealthSources {
            command: self.pick(
                &HEALTH_CMD,
                args.health_cmd.clone(),
                file.health_cmd.clone().map(Ok),
            )?,
            http: self.pick(
                &HEALTH_HTTP,
                args.health_http.clone(),
                file.health_http.clone().map(Ok),
            )?,
            interval: self.pick(&HEALTH_INTERVAL, args.health_interval, interval)?,
            timeout: self.pick(&HEALTH_TIMEOUT, args.health_timeout, timeout)?,
            failures: self.pick(
                &HEALTH_FAILURES,
                args.health_failures,
                file.health_failures.map(Ok),
            )?,
            grace: self.pick(&HEALTH_GRACE, args.health_grace, grace)?,
        })
    }

    /// The command after `--`, else the file's `command`.
    fn command(&mut self, command_line: Vec<OsString>, file: Option<Vec<String>>) -> Vec<OsString> {
        if !command_line.is_empty() {
            self.origins.insert("command", Origin::Flag("-- COMMAND"));
            return command_line;
        }
        match file {
            Some(command) => {
                self.origins.insert("command", self.file_origin());
                command.into_iter().map(OsString::from).collect()
            }
            None => Vec::new(),
        }
    }

    fn file_origin(&self) -> Origin {
        Origin::File(self.file_path.clone().unwrap_or_default())
    }

    fn file_peers(&self, table: BTreeMap<String, String>) -> Result<Vec<PeerSpec>, SettingsError> {
        table
            .into_iter()
            .map(|(name, address)| {
                format!("{name}={address}")
                    .parse::<PeerSpec>()
                    .map_err(|problem| self.file_error("peers", &problem))
            })
            .collect()
    }

    /// A duration setting: the command line's, else the file's text parsed.
    fn duration(
        &mut self,
        key: &Key,
        command_line: Option<Duration>,
        file: Option<String>,
    ) -> Result<Option<Duration>, SettingsError> {
        let file = file.map(|text| self.file_duration(key.key, &text));
        self.pick(key, command_line, file)
    }

    /// An address setting: the command line's, else the file's text parsed.
    fn address(
        &mut self,
        key: &Key,
        command_line: Option<SocketAddr>,
        file: Option<String>,
    ) -> Result<Option<SocketAddr>, SettingsError> {
        let file = file.map(|text| self.file_address(key.key, &text));
        self.pick(key, command_line, file)
    }

    fn file_address(&self, key: &str, text: &str) -> Result<SocketAddr, SettingsError> {
        text.parse::<SocketAddr>()
            .map_err(|_| self.file_error(key, &format!("{text:?} is not IP:PORT")))
    }

    fn file_duration(&self, key: &str, text: &str) -> Result<Duration, SettingsError> {
        parse_duration(text)
            .map_err(|problem| self.file_error(key, &format!("{text:?}: {problem}")))
    }

    fn file_error(&self, key: &str, problem: &str) -> SettingsError {
        let path = self.file_path.clone().unwrap_or_default();
        error(format!("config file {}: {key}: {problem}", path.display()))
    }
}

/// A switch set on the command line or in the file.
fn either(command_line: bool, file: Option<bool>) -> bool {
    command_line || file.unwrap_or(false)
}

/// The directory of the `--config` file; empty (the working directory) without one.
fn file_directory(path: Option<&Path>) -> PathBuf {
    path.and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The `--config` file's settings; none without a file.
fn read_file_settings(path: Option<&Path>) -> Result<FileSettings, SettingsError> {
    let Some(path) = path else {
        return Ok(FileSettings::default());
    };
    let file = small_file::read(path, MAX_CONFIG_FILE)
        .map_err(|problem| error(format!("config file {}: {problem}", path.display())))?;
    parse_file_settings(&file.text)
        .map_err(|problem| error(format!("config file {}: {problem}", path.display())))
}

fn parse_file_settings(text: &str) -> Result<FileSettings, String> {
    toml::from_str(text).map_err(|problem| problem.to_string())
}
