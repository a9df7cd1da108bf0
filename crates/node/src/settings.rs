//! The settings of `tenure run`: the command line, `TENURE_*` variables and the `--config` TOML
//! file merged (flag > environment > file > default) and checked into [`RunSettings`].
//!
//! A `RunSettings` that exists is valid: the member set, the timing (through
//! `tenure_core::Config::new`), the key and the admin token have all been read and checked.
//! Every error names the flag (or variable, or file key) it comes from and says what to do.
//!
//! Two steps, a file each: `sources` merges the sources into `MergedSettings`; this file
//! checks what they yield into `RunSettings`, with `core_config` translating the timing into
//! the core's `Config` (see there for how `--stop-grace` becomes the stop margin).

mod core_config;
mod describe;
mod sources;
mod store;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::ArgMatches;
use tenure_core::{Config, NodeId};

use crate::cli::{LogFormat, RunArgs};
use crate::health_check::{
    HealthProbe, HealthSettings, DEFAULT_HEALTH_GRACE, DEFAULT_HEALTH_INTERVAL,
    DEFAULT_HEALTH_TIMEOUT,
};
use crate::members::{Members, PeerAddress, PeerSpec};
use crate::small_file;
use crate::wire::ClusterKey;
use core_config::core_config;
pub use core_config::{
    heartbeat_for, human, stop_grace_for, DEFAULT_HEARTBEAT, DEFAULT_LEASE,
    DEFAULT_MAX_CHILD_RESTARTS, DEFAULT_MAX_DRIFT, DEFAULT_STOP_GRACE, KILL_AFTER, STOP_RESERVE,
};
pub use sources::{check_config_text, Origin};
use sources::{HealthSources, MergedSettings};
use store::store_settings;
pub use store::{store_id, StoreSettings, DEFAULT_ELECTION};

/// Longest admin token file read; it is one short line.
const MAX_SECRET_FILE: u64 = 4096;

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
    /// Unused with a store backend (which keeps no local state); then it may be empty.
    pub state_dir: PathBuf,
    /// `--backend`: the election is held in a coordination store (protocol: Store leases).
    pub store: Option<StoreSettings>,
    /// The key datagrams are sealed with, derived from the cluster key (see `datagram_key`).
    pub key: ClusterKey,
    pub key_source: KeySource,
    pub config: Arc<Config>,
    pub lease: Duration,
    pub heartbeat: Duration,
    pub max_drift: f64,
    pub stop_grace: Duration,
    pub max_child_restarts: u32,
    /// Exit with status 3 once the daemon failed for good (`--exit-on-daemon-failure`).
    pub exit_on_daemon_failure: bool,
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

impl RunSettings {
    /// Merges the parsed command line (and its environment) with the config file and
    /// defaults, then checks everything. `matches` are the `run` subcommand's matches, which
    /// tell a flag from an environment variable.
    pub fn load(args: RunArgs, matches: &ArgMatches) -> Result<RunSettings, SettingsError> {
        RunSettings::check(MergedSettings::merge(args, matches)?)
    }

    /// Checks the merged settings, in the order an operator meets them: who this node is,
    /// where it listens and keeps its state, the key, the timing, then the rest.
    fn check(merged: MergedSettings) -> Result<RunSettings, SettingsError> {
        let id = merged.id.as_deref().ok_or_else(|| {
            error(
                "--id is required: this node's name, e.g. --id n1 (the other members are \
                 given with --peer NAME=HOST:PORT)",
            )
        })?;
        let members = Members::new(id, merged.peers.iter().map(|peer| peer.name.as_str()))
            .map_err(SettingsError)?;
        let peer_addresses = peer_addresses(&members, &merged.peers);
        if merged.listen.is_none() && members.len() > 1 {
            return Err(error(
                "--listen is required: the UDP address this node receives the other members' \
                 messages on, e.g. --listen 0.0.0.0:7101",
            ));
        }
        let store = store_settings(
            &merged,
            members.own_name(),
            merged.stop_grace + STOP_RESERVE,
        )?;
        let state_dir = state_dir(&merged, store.is_some())?;
        let mut warnings = membership_warnings(&members, &merged.peers, merged.listen);
        let (key, key_source) = cluster_key(&merged, &members, &mut warnings)?;
        let config = core_config(
            &members,
            merged.lease,
            merged.heartbeat,
            merged.max_drift,
            merged.stop_grace,
        )?;
        let key = datagram_key(&key, &members, merged.lease);
        let admin_token = admin_token(merged.admin_token_file.as_deref(), &mut warnings)?;
        check_log_level(&merged.log_level)?;
        let command = check_command(&merged.command)?;
        let health = health(&merged.health)?;
        if health.is_some() && command.is_none() {
            return Err(error(
                "--health-cmd or --health-http is given without a command to check: add the \
                 daemon after \"--\"",
            ));
        }
        Ok(RunSettings {
            members,
            peer_addresses,
            listen: merged.listen,
            http: merged.http,
            state_dir,
            store,
            key,
            key_source,
            config,
            lease: merged.lease,
            heartbeat: merged.heartbeat,
            max_drift: merged.max_drift,
            stop_grace: merged.stop_grace,
            max_child_restarts: merged.max_child_restarts,
            exit_on_daemon_failure: merged.exit_on_daemon_failure,
            health,
            admin_token,
            admin_token_file: merged.admin_token_file,
            log_format: merged.log_format,
            log_level: merged.log_level,
            command,
            dry_run: merged.dry_run,
            origins: merged.origins,
            warnings,
        })
    }

    /// The stop margin handed to the core: `--stop-grace` plus `STOP_RESERVE`.
    pub fn stop_margin(&self) -> Duration {
        self.stop_grace + STOP_RESERVE
    }
}

/// The state directory: required for the quorum, which keeps its term and vote there; not
/// used with a store backend, whose state lives in the store.
fn state_dir(merged: &MergedSettings, store: bool) -> Result<PathBuf, SettingsError> {
    match (&merged.state_dir, store) {
        (Some(state_dir), _) => Ok(state_dir.clone()),
        (None, true) => Ok(PathBuf::new()),
        (None, false) => Err(error(
            "--state-dir is required: an existing directory, private to this node, that keeps \
             its term and vote across restarts (e.g. /var/lib/tenure)",
        )),
    }
}

/// The health checks as the merged settings give them (protocol: Health-gated acting):
/// `None` without `--health-cmd` or `--health-http` (the other health flags then do nothing).
fn health(sources: &HealthSources) -> Result<Option<HealthSettings>, SettingsError> {
    let probe = match (&sources.command, &sources.http) {
        (Some(_), Some(_)) => {
            return Err(error(
                "--health-cmd and --health-http are given together; choose one",
            ))
        }
        (Some(command), None) if command.trim().is_empty() => {
            return Err(error("--health-cmd is empty"))
        }
        (Some(command), None) => HealthProbe::Command(command.clone()),
        (None, Some(url)) => {
            HealthProbe::http(url).map_err(|problem| error(format!("--health-http: {problem}")))?
        }
        (None, None) => return Ok(None),
    };
    let interval = sources.interval.unwrap_or(DEFAULT_HEALTH_INTERVAL);
    let timeout = sources.timeout.unwrap_or(DEFAULT_HEALTH_TIMEOUT);
    let grace = sources.grace.unwrap_or(DEFAULT_HEALTH_GRACE);
    let failures = match sources.failures {
        None => tenure_driver::DEFAULT_HEALTH_FAILURES,
        Some(count) => std::num::NonZeroU32::new(count).ok_or_else(|| {
            error("--health-failures must be at least 1 (failed checks in a row)")
        })?,
    };
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

/// What is odd about the member set although the node can run: a cluster of two, and an entry
/// for this node among the `--peer`s whose address is not `--listen`.
///
/// The self entry is a warning, not an error: the documented StatefulSet
/// (deploy/kubernetes/) gives every pod the same `--peer` list of DNS names while each listens on
/// 0.0.0.0, and a NAT or port mapping (Docker `-p`) may forward the address the others use to
/// another one. So only what is certainly different is reported: another port, or another IP
/// when both are IPs and `--listen` is not a wildcard address.
fn membership_warnings(
    members: &Members,
    peers: &[PeerSpec],
    listen: Option<SocketAddr>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    if members.len() == 2 {
        warnings.push(
            "a cluster of 2 members tolerates no failure: a majority is both members, so \
             either one down stops the cluster, which is worse than one node. Run 3 members \
             (docs/operations.md: Quorum and failure tolerance)"
                .to_string(),
        );
    }
    let own = members.own_name();
    let differs = |address: &PeerAddress, listen: SocketAddr| match address {
        PeerAddress::Socket(socket) => {
            socket.port() != listen.port()
                || (!listen.ip().is_unspecified() && socket.ip() != listen.ip())
        }
        PeerAddress::Host { port, .. } => *port != listen.port(),
    };
    for peer in peers.iter().filter(|peer| peer.name == own) {
        if let Some(listen) = listen.filter(|listen| differs(&peer.address, *listen)) {
            warnings.push(format!(
                "--peer {peer} names this node (--id {own}) with the address {}, but it \
                 listens on --listen {listen}: the other members send to {} and cannot reach \
                 this node unless a NAT or port mapping forwards it to {listen}. The entry is \
                 skipped; correct whichever address is wrong",
                peer.address, peer.address
            ));
        }
    }
    warnings
}

/// The other members' addresses, by id.
fn peer_addresses(members: &Members, peers: &[PeerSpec]) -> Vec<(NodeId, PeerAddress)> {
    peers
        .iter()
        .filter_map(|peer| Some((members.id(&peer.name)?, peer.address.clone())))
        .filter(|(id, _)| *id != members.own_id())
        .collect()
}

/// The cluster key and where it came from: the key file, `--insecure`, or none for a cluster
/// of one. A key file other users may read adds a warning.
fn cluster_key(
    merged: &MergedSettings,
    members: &Members,
    warnings: &mut Vec<String>,
) -> Result<(ClusterKey, KeySource), SettingsError> {
    match (&merged.cluster_key_file, merged.insecure) {
        (Some(_), true) => Err(error(
            "--insecure and --cluster-key-file are given together; choose one: the key \
             file (authenticated datagrams) or --insecure (no authentication, demo only)",
        )),
        (Some(path), false) => {
            let (key, mode) =
                ClusterKey::from_file(path).map_err(|problem| error(problem.to_string()))?;
            warnings.extend(small_file::exposure_warning("cluster key file", path, mode));
            Ok((key, KeySource::File(path.clone())))
        }
        (None, true) => Ok((ClusterKey::insecure(), KeySource::Insecure)),
        (None, false) if members.len() == 1 => Ok((ClusterKey::insecure(), KeySource::NotNeeded)),
        (None, false) => Err(error(format!(
            "a cluster of {} members needs --cluster-key-file: every datagram is \
             authenticated with the cluster key, so that nobody else can depose the \
             leader. Create a key once with `openssl rand -hex 32 > key`, install the \
             same file on every node, and pass --cluster-key-file. (--insecure runs \
             without authentication, for a demo on one machine only.)",
            members.len()
        ))),
    }
}

/// The admin token, if a file is given. A file other users may read adds a warning.
fn admin_token(
    path: Option<&Path>,
    warnings: &mut Vec<String>,
) -> Result<Option<String>, SettingsError> {
    let Some(path) = path else {
        return Ok(None);
    };
    let (token, mode) = read_admin_token(path)?;
    warnings.extend(small_file::exposure_warning("admin token file", path, mode));
    Ok(Some(token))
}

fn check_log_level(log_level: &str) -> Result<(), SettingsError> {
    tracing_subscriber::EnvFilter::try_new(log_level)
        .map(drop)
        .map_err(|problem| {
            error(format!(
                "--log-level {log_level:?}: {problem}; use error, warn, info, debug or trace"
            ))
        })
}

/// The daemon and its arguments, `None` without a command. The program must be found and
/// executable now: caught here, `--dry-run` reports it and a start refuses before it touches
/// the state file. Otherwise the node would win an election, fail to start the command, hand
/// leadership over, and the next node would do the same.
fn check_command(command: &[OsString]) -> Result<Option<(OsString, Vec<OsString>)>, SettingsError> {
    match command.split_first() {
        Some((program, _)) if program.is_empty() => Err(error("the command after \"--\" is empty")),
        Some((program, arguments)) => {
            check_executable(program, std::env::var_os("PATH").as_deref()).map_err(error)?;
            Ok(Some((program.clone(), arguments.to_vec())))
        }
        None => Ok(None),
    }
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
    fn a_cluster_of_two_and_a_self_entry_elsewhere_are_warned_about() {
        let directory = tempfile::tempdir().unwrap();
        let key = key_file(directory.path());
        // A key file only its owner reads, so that the only warnings are the member set's.
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let state = directory.path().display().to_string();
        let warnings = |peers: &[&str]| {
            let mut all = vec![
                "--id",
                "n1",
                "--listen",
                "10.0.0.1:7101",
                "--state-dir",
                &state,
                "--cluster-key-file",
                &key,
            ];
            for peer in peers {
                all.extend(["--peer", peer]);
            }
            load(&all).unwrap().warnings
        };

        // Three members, the self entry at the address listened on: nothing to say.
        assert!(warnings(&["n1=10.0.0.1:7101", "n2=10.0.0.2:7101", "n3=10.0.0.3:7101"]).is_empty());
        // A host name with the listened port cannot be checked without DNS: nothing either.
        assert!(warnings(&["n1=node1.example:7101", "n2=h:1", "n3=h:2"]).is_empty());

        // Two members tolerate no failure.
        let two = warnings(&["n2=10.0.0.2:7101"]);
        assert_eq!(two.len(), 1, "{two:?}");
        assert!(two[0].contains("2 members tolerates no failure"), "{two:?}");

        // A self entry at another IP or port names both addresses.
        for entry in [
            "n1=10.0.0.9:7101",
            "n1=10.0.0.1:7999",
            "n1=node1.example:7999",
        ] {
            let found = warnings(&[entry, "n2=10.0.0.2:7101", "n3=10.0.0.3:7101"]);
            assert_eq!(found.len(), 1, "{entry}: {found:?}");
            let address = entry.trim_start_matches("n1=");
            assert!(
                found[0].contains(&format!("with the address {address}")),
                "{found:?}"
            );
            assert!(found[0].contains("--listen 10.0.0.1:7101"), "{found:?}");
        }
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
