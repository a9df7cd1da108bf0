//! The command line of the `tenure` binary. Every flag of `tenure run` can also come from a
//! `TENURE_*` environment variable or the `--config` TOML file; precedence is
//! flag > environment > file > default (see `settings`).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::members::PeerSpec;

/// The whole command line.
#[derive(Debug, Parser)]
#[command(
    name = "tenure",
    version,
    about = "High availability for a singleton daemon: several nodes run tenure, exactly one \
             holds a quorum lease and runs the daemon, with a fencing token",
    long_about = None,
    after_help = "Start with `tenure demo` to watch a local 3-node cluster fail over.\n\
                  Run `tenure run --help` for how to run a node."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: CliCommand,
}

#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Run a node: take part in elections and, while this node leads, run COMMAND.
    Run(Box<RunArgs>),
    /// Print a table of the cluster, read from the nodes' HTTP /status endpoints.
    Status(StatusArgs),
    /// Run a local 3-node cluster on 127.0.0.1, kill its leader, show the failover and a
    /// graceful handover, then clean up.
    Demo(DemoArgs),
    /// Ask the leader to hand leadership over gracefully (POST /step-down).
    StepDown(StepDownArgs),
    /// Maintenance mode: the node keeps voting but never campaigns, and hands leadership over
    /// if it leads (POST /pause). It stays paused until `tenure resume` or a restart.
    Pause(AdminArgs),
    /// Leave maintenance mode: the node may campaign again (POST /resume).
    Resume(AdminArgs),
}

/// What `tenure pause` and `tenure resume` need: one node's HTTP API and the admin token.
#[derive(Debug, Args)]
#[command(after_help = ADMIN_AFTER_HELP)]
pub struct AdminArgs {
    /// The node's HTTP API address.
    #[arg(long = "http", env = "TENURE_ADMIN_HTTP", value_name = "HOST:PORT")]
    pub address: String,

    /// The file holding the node's admin token (the node's --admin-token-file). Without it
    /// the request carries no token, which a node with a token refuses.
    #[arg(long, env = "TENURE_ADMIN_TOKEN_FILE", value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// How long to wait for the node's answer.
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
}

/// `tenure step-down`.
#[derive(Debug, Args)]
#[command(after_help = ADMIN_AFTER_HELP)]
pub struct StepDownArgs {
    #[command(flatten)]
    pub admin: AdminArgs,

    /// The member that should campaign first; by default the leader picks the most
    /// up-to-date peer.
    #[arg(long, value_name = "NAME")]
    pub successor: Option<String>,
}

const ADMIN_AFTER_HELP: &str = "Example:\n  tenure step-down --http 10.0.0.1:8101 \
                                --admin-token-file /etc/tenure/admin-token\n\nExit status: 0 \
                                when the node did it; 1 when it refused (not the leader, a \
                                wrong token) or could not be reached; 2 for a usage error.";

/// `tenure run`.
#[derive(Debug, Args)]
#[command(
    about = "Run a node: take part in elections and, while this node leads, run COMMAND",
    after_help = RUN_AFTER_HELP
)]
pub struct RunArgs {
    /// A TOML file with any of the settings below (keys as the flags, with '_' for '-':
    /// id, listen, http, state_dir, cluster_key_file, insecure, backend, election, lease,
    /// heartbeat, max_drift, stop_grace, max_child_restarts, admin_token_file, log_format,
    /// log_level, command, and a table "peers" of NAME = "HOST:PORT"). Flags and TENURE_*
    /// variables override it.
    #[arg(long, env = "TENURE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// This node's name, unique in the cluster (letters, digits, '.', '_', '-'). Every node
    /// must list the same members: itself with --id, the others with --peer.
    #[arg(long, env = "TENURE_ID", value_name = "NAME", help_heading = "Cluster")]
    pub id: Option<String>,

    /// The UDP address to listen on for the other members, e.g. 0.0.0.0:7101.
    #[arg(
        long,
        env = "TENURE_LISTEN",
        value_name = "IP:PORT",
        help_heading = "Cluster"
    )]
    pub listen: Option<SocketAddr>,

    /// Another member and its UDP address; repeat for each (2 for a 3-node cluster, 4 for 5).
    /// An entry for this node itself is skipped, so every node can be given the same list
    /// (a warning names its address if it differs from --listen).
    /// HOST may be a DNS name; it is resolved again every 2 s, so pods may change IPs. In
    /// TENURE_PEERS, separate members with commas.
    #[arg(
        long = "peer",
        env = "TENURE_PEERS",
        value_name = "NAME=HOST:PORT",
        value_delimiter = ',',
        help_heading = "Cluster"
    )]
    pub peers: Vec<PeerSpec>,

    /// The directory holding this node's term and vote. It must exist, survive restarts and
    /// belong to this node alone. Never wipe it while the cluster runs: see
    /// docs/operations.md before touching it.
    #[arg(
        long,
        env = "TENURE_STATE_DIR",
        value_name = "DIR",
        help_heading = "Cluster"
    )]
    pub state_dir: Option<PathBuf>,

    /// The file holding the cluster key in hex (32 to 128 digits; make one with
    /// `openssl rand -hex 32`). Every node uses the same key; datagrams are authenticated
    /// with HMAC-SHA256 under a key derived from it, the member list and --lease, so nodes
    /// configured differently cannot talk. Required when the cluster has more than one member.
    #[arg(
        long,
        env = "TENURE_CLUSTER_KEY_FILE",
        value_name = "FILE",
        help_heading = "Cluster"
    )]
    pub cluster_key_file: Option<PathBuf>,

    /// Run a multi-node cluster WITHOUT authentication (a well-known all-zero key). Anyone
    /// who can send UDP to a node can then depose the leader and run the daemon twice. Only
    /// for a demo on one machine. TENURE_INSECURE takes 1/0, true/false, yes/no or on/off.
    #[arg(
        long,
        env = "TENURE_INSECURE",
        value_parser = clap::builder::BoolishValueParser::new(),
        help_heading = "Cluster"
    )]
    pub insecure: bool,

    /// Hold the election in a coordination store instead of among tenure nodes:
    /// postgres://USER:PASSWORD@HOST:PORT/DB[?sslmode=require] or etcd://HOST:PORT[,HOST:PORT…].
    /// Two nodes then suffice; --peer, --listen and the cluster key are not used. Safe only
    /// with a store that never loses an acknowledged write (docs/backends.md). Prefer
    /// TENURE_BACKEND or the config file for a URL with a password.
    #[arg(
        long,
        env = "TENURE_BACKEND",
        value_name = "URL",
        hide_env_values = true,
        help_heading = "Store backend"
    )]
    pub backend: Option<String>,

    /// The election's name in the store: nodes with the same --backend and --election compete
    /// for one singleton; other names are other singletons. [default: default]
    #[arg(
        long,
        env = "TENURE_ELECTION",
        value_name = "NAME",
        help_heading = "Store backend"
    )]
    pub election: Option<String>,

    /// How long a lease lasts. Crash failover takes about one lease plus up to a quarter lease
    /// of election jitter. Every node must use the same value: nodes with another lease cannot
    /// talk to this one. --heartbeat and --stop-grace follow it unless given, so --lease alone
    /// sets a consistent timing from 250ms to 60s. [default: 2s]
    #[arg(
        long,
        env = "TENURE_LEASE",
        value_name = "DURATION",
        value_parser = parse_duration,
        help_heading = "Timing"
    )]
    pub lease: Option<Duration>,

    /// How often the leader renews its lease; below a third of --lease, so that a lease
    /// survives lost heartbeats. [default: lease/8, 250ms at the default lease]
    #[arg(
        long,
        env = "TENURE_HEARTBEAT",
        value_name = "DURATION",
        value_parser = parse_duration,
        help_heading = "Timing"
    )]
    pub heartbeat: Option<Duration>,

    /// The bound on clock-rate drift between machines, as a fraction (0.01 = 1%, at most
    /// 0.1). The leader shortens its lease by it. [default: 0.01]
    #[arg(
        long,
        env = "TENURE_MAX_DRIFT",
        value_name = "FRACTION",
        help_heading = "Timing"
    )]
    pub max_drift: Option<f64>,

    /// How long the daemon gets to exit after SIGTERM before its process group gets SIGKILL.
    /// The leader stops acting this long plus 150 ms (the SIGKILL reserve) before its lease
    /// can end, so --stop-grace + 150ms + --heartbeat must stay below the lease shortened for
    /// drift. [default: lease/4, less when that leaves the leader too short an acting window;
    /// 500ms at the default lease]
    #[arg(
        long,
        env = "TENURE_STOP_GRACE",
        value_name = "DURATION",
        value_parser = parse_duration,
        help_heading = "Child"
    )]
    pub stop_grace: Option<Duration>,

    /// How often a daemon that exits on its own is restarted (after 100 ms, then doubling up
    /// to 5 s) before this node gives leadership up so another node gets its turn. A daemon
    /// that ran for a minute earns its restarts back. [default: 3]
    #[arg(
        long,
        env = "TENURE_MAX_CHILD_RESTARTS",
        value_name = "COUNT",
        help_heading = "Child"
    )]
    pub max_child_restarts: Option<u32>,

    /// When the daemon fails for good on this node (its restarts ran out), hand leadership
    /// over and exit with status 3, as `consul lock -child-exit-code` reports a failed child,
    /// instead of staying on as a member. For a supervisor (systemd, Kubernetes) that should
    /// see the failure. TENURE_EXIT_ON_DAEMON_FAILURE takes 1/0, true/false, yes/no or on/off.
    #[arg(
        long,
        env = "TENURE_EXIT_ON_DAEMON_FAILURE",
        value_parser = clap::builder::BoolishValueParser::new(),
        help_heading = "Child"
    )]
    pub exit_on_daemon_failure: bool,

    /// A health check of the daemon: a shell command, run with `sh -c` in the daemon's
    /// environment (with TENURE_FENCING_TOKEN); exit status 0 is healthy. After
    /// --health-failures failed checks in a row, the leader stops the daemon and hands
    /// leadership over (protocol: Health-gated acting).
    #[arg(
        long,
        env = "TENURE_HEALTH_CMD",
        value_name = "COMMAND",
        help_heading = "Health"
    )]
    pub health_cmd: Option<String>,

    /// A health check of the daemon by HTTP: GET URL (http://HOST:PORT/PATH); a 2xx answer is
    /// healthy. Instead of --health-cmd.
    #[arg(
        long,
        env = "TENURE_HEALTH_HTTP",
        value_name = "URL",
        help_heading = "Health"
    )]
    pub health_http: Option<String>,

    /// Time between the starts of two health checks. [default: 10s]
    #[arg(
        long,
        env = "TENURE_HEALTH_INTERVAL",
        value_name = "DURATION",
        value_parser = parse_duration,
        help_heading = "Health"
    )]
    pub health_interval: Option<Duration>,

    /// A health check that has not answered after this long has failed. [default: 5s]
    #[arg(
        long,
        env = "TENURE_HEALTH_TIMEOUT",
        value_name = "DURATION",
        value_parser = parse_duration,
        help_heading = "Health"
    )]
    pub health_timeout: Option<Duration>,

    /// Failed health checks in a row after which the leader gives leadership up. [default: 3]
    #[arg(
        long,
        env = "TENURE_HEALTH_FAILURES",
        value_name = "COUNT",
        help_heading = "Health"
    )]
    pub health_failures: Option<u32>,

    /// No health check within this long after each start of the daemon, so that its start-up
    /// is not judged. [default: 60s]
    #[arg(
        long,
        env = "TENURE_HEALTH_GRACE",
        value_name = "DURATION",
        value_parser = parse_duration,
        help_heading = "Health"
    )]
    pub health_grace: Option<Duration>,

    /// The HTTP API address (/, /health, /ready, /joined, /status, /metrics, /step-down),
    /// e.g. 127.0.0.1:8101. Without it, no HTTP API is served. The API has no TLS: bind it to
    /// 127.0.0.1 or a management network, and set --admin-token-file.
    #[arg(
        long,
        env = "TENURE_HTTP",
        value_name = "IP:PORT",
        help_heading = "HTTP and logs"
    )]
    pub http: Option<SocketAddr>,

    /// A file holding the token that POST /step-down requires as "Authorization: Bearer
    /// TOKEN". Without it, anyone who reaches the HTTP port can make the leader step down.
    #[arg(
        long,
        env = "TENURE_ADMIN_TOKEN_FILE",
        value_name = "FILE",
        help_heading = "HTTP and logs"
    )]
    pub admin_token_file: Option<PathBuf>,

    /// Log lines as human-readable text or as one JSON object per line. [default: text]
    #[arg(
        long,
        env = "TENURE_LOG_FORMAT",
        value_name = "FORMAT",
        help_heading = "HTTP and logs"
    )]
    pub log_format: Option<LogFormat>,

    /// Which log lines to show: error, warn, info, debug or trace, or a tracing filter such
    /// as "info,tenure_node::transport=debug". Dropped datagrams are logged at debug.
    /// [default: info]
    #[arg(
        long,
        env = "TENURE_LOG_LEVEL",
        value_name = "FILTER",
        help_heading = "HTTP and logs"
    )]
    pub log_level: Option<String>,

    /// Check the configuration, print the settings in effect, and exit without starting.
    #[arg(long)]
    pub dry_run: bool,

    /// The daemon to run while this node leads, after "--". Without it the node only takes
    /// part in elections and reports the leader (like a Kubernetes leader-elector sidecar).
    #[arg(last = true, value_name = "COMMAND", value_parser = clap::value_parser!(OsString))]
    pub command: Vec<OsString>,
}

const RUN_AFTER_HELP: &str = "\
Example (node n1 of three):
  tenure run --id n1 --listen 10.0.0.1:7101 \\
      --peer n2=10.0.0.2:7101 --peer n3=10.0.0.3:7101 \\
      --http 127.0.0.1:8101 --state-dir /var/lib/tenure \\
      --cluster-key-file /etc/tenure/key -- dagster-daemon run

The daemon gets TENURE_FENCING_TOKEN (the term, in decimal; it strictly increases from one
leader to the next), TENURE_NODE_ID and TENURE_LEADER_ID. Its stdout and stderr are tenure's,
unchanged. It runs in its own process group under a deadline guard that kills the whole group
before the lease can run out, even if tenure is frozen or killed.

Precedence: flag > TENURE_* environment variable > --config file > default.

SIGTERM or SIGINT: stop the daemon, hand leadership to another node, exit 0. A second signal
exits at once (the guard still stops the daemon).

Exit status: 0 after a clean shutdown; 1 when the node cannot start or fails (state file,
addresses, I/O); 2 for a configuration error.";

/// Log output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `tenure status`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  tenure status --http 10.0.0.1:8101 --http 10.0.0.2:8101 \
                        --http 10.0.0.3:8101\n\nExit status: 0 when every node answered and \
                        exactly one acts; 1 when degraded but safe (no node acts right now, a \
                        node did not answer, or a peer refuses a node's datagrams); 3 when two \
                        or more nodes report acting at once (page someone); 2 for a usage \
                        error."
)]
pub struct StatusArgs {
    /// A node's HTTP API address; repeat for every node. In TENURE_STATUS_HTTP, separate
    /// addresses with commas.
    #[arg(
        long = "http",
        env = "TENURE_STATUS_HTTP",
        value_name = "HOST:PORT",
        value_delimiter = ',',
        required = true
    )]
    pub addresses: Vec<String>,

    /// How long to wait for each node.
    #[arg(long, default_value = "2s", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
}

/// `tenure demo`.
#[derive(Debug, Args)]
#[command(
    after_help = "The demo uses the default timing (lease 2s, heartbeat 250ms) and free \
                        ports on 127.0.0.1, keeps its state in a temporary directory, and \
                        stops every process it started, also on Ctrl-C or error. It takes \
                        about 15 seconds."
)]
pub struct DemoArgs {
    /// Also print each node's own log lines. Without it they go to files in the demo's
    /// temporary directory, which is removed with everything else at the end.
    #[arg(long)]
    pub verbose: bool,
}

/// Parses a human duration such as `2s`, `250ms` or `1m 30s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|error| format!("{error}; write a duration such as 2s, 250ms or 1m30s"))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent_and_every_flag_has_help() {
        Cli::command().debug_assert();
        let command = Cli::command();
        let run = command.find_subcommand("run").expect("run exists");
        for argument in run.get_arguments() {
            assert!(
                argument.get_help().is_some(),
                "--{} has no help",
                argument.get_id()
            );
        }
    }

    #[test]
    fn parses_durations_in_human_syntax() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("2x").unwrap_err().contains("such as 2s"));
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn the_command_follows_the_double_dash() {
        let cli = Cli::try_parse_from([
            "tenure",
            "run",
            "--id",
            "n1",
            "--peer",
            "n2=127.0.0.1:2",
            "--",
            "sleep",
            "--x",
            "5",
        ])
        .unwrap();
        let CliCommand::Run(run) = cli.command else {
            panic!("not run");
        };
        assert_eq!(run.command, ["sleep", "--x", "5"]);
        assert_eq!(run.peers.len(), 1);
    }
}
