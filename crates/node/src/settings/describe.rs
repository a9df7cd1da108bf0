//! `tenure run --dry-run`: the settings in effect, one per line, with where each came from.

use std::collections::BTreeMap;
use std::fmt::{self, Write};
use std::time::Duration;

use super::{human, KeySource, Origin, RunSettings};

/// The rows of a store-backed node: who it is in the store, and the store without its password.
fn describe_store(store: &super::StoreSettings, settings: &RunSettings, table: &mut Table<'_>) {
    let judge = match store.judge {
        tenure_core::ExpiryJudge::Contenders => "contenders, on their own clocks (PostgreSQL)",
        tenure_core::ExpiryJudge::Store => "the store, by its lease TTL (etcd)",
    };
    let http = settings
        .http
        .map_or_else(|| "none (no HTTP API)".into(), |a| a.to_string());
    table.row("id", settings.members.own_name(), Some("id"));
    table.row("backend", store.redacted_url(), Some("backend"));
    table.row("election", &store.election, Some("election"));
    table.row("expiry judged by", judge, None);
    table.row("http", http, Some("http"));
}

impl RunSettings {
    /// The settings in effect, one per line, with where each came from (`--dry-run`).
    pub fn describe(&self) -> String {
        let mut table = Table {
            origins: &self.origins,
            text: String::new(),
        };
        match &self.store {
            Some(store) => describe_store(store, self, &mut table),
            None => self.describe_cluster(&mut table),
        }
        self.describe_timing(&mut table);
        self.describe_child_and_outputs(&mut table);
        table.text
    }

    fn describe_cluster(&self, table: &mut Table<'_>) {
        let peers: Vec<String> = self
            .peer_addresses
            .iter()
            .map(|(id, address)| format!("{}={address}", self.members.display(*id)))
            .collect();
        let members = format!(
            "{} (majority {})",
            self.members.names().join(", "),
            self.config.majority()
        );
        let listen = self
            .listen
            .map_or_else(|| "none (a cluster of one)".into(), |a| a.to_string());
        let http = self
            .http
            .map_or_else(|| "none (no HTTP API)".into(), |a| a.to_string());
        let key = match &self.key_source {
            KeySource::File(path) => path.display().to_string(),
            KeySource::Insecure => "NONE (--insecure: datagrams are not authenticated)".into(),
            KeySource::NotNeeded => "not needed (a cluster of one)".into(),
        };
        table.row("id", self.members.own_name(), Some("id"));
        table.row("members", members, None);
        table.row("listen", listen, Some("listen"));
        table.row("peers", peers.join(", "), Some("peers"));
        table.row("http", http, Some("http"));
        table.row("state dir", self.state_dir.display(), Some("state_dir"));
        table.row("cluster key", key, Some("cluster_key_file"));
    }

    fn describe_timing(&self, table: &mut Table<'_>) {
        if self.store.is_some() {
            let heartbeat = format!(
                "{} (the holder renews, and each other node reads the store, this often)",
                human(self.heartbeat)
            );
            table.row("lease", human(self.lease), Some("lease"));
            table.row("heartbeat", heartbeat, Some("heartbeat"));
            table.row("max drift", self.max_drift, Some("max_drift"));
            table.row("stop grace", human(self.stop_grace), Some("stop_grace"));
            return;
        }
        let hold: Duration = self.config.lease_hold().into();
        let acting_window = hold.saturating_sub(self.stop_margin());
        let lease = format!(
            "{} (held {} per renewal after drift)",
            human(self.lease),
            human(hold)
        );
        let stop_grace = format!(
            "{} (SIGTERM to SIGKILL; stop margin {}, acting window {} per renewal)",
            human(self.stop_grace),
            human(self.stop_margin()),
            human(acting_window)
        );
        table.row("lease", lease, Some("lease"));
        table.row("heartbeat", human(self.heartbeat), Some("heartbeat"));
        table.row("max drift", self.max_drift, Some("max_drift"));
        table.row("stop grace", stop_grace, Some("stop_grace"));
    }

    fn describe_child_and_outputs(&self, table: &mut Table<'_>) {
        let admin_token = match &self.admin_token_file {
            Some(path) => path.display().to_string(),
            None => "none (POST /step-down is open to anyone reaching --http)".into(),
        };
        let log = format!("{:?}, {}", self.log_format, self.log_level).to_lowercase();
        let command = match &self.command {
            Some((program, arguments)) => std::iter::once(program)
                .chain(arguments)
                .map(|part| part.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" "),
            None => "none: observer only (takes part in elections, runs nothing)".into(),
        };
        table.row(
            "child restarts",
            self.max_child_restarts,
            Some("max_child_restarts"),
        );
        let health = match &self.health {
            Some(health) => format!(
                "{}; every {}, timeout {}, {} failures in a row, grace {}",
                health.probe.describe(),
                human(health.interval),
                human(health.timeout),
                health.failures,
                human(health.grace)
            ),
            None => "none".to_string(),
        };
        let health_origin = if self.origins.contains_key("health_cmd") {
            "health_cmd"
        } else {
            "health_http"
        };
        table.row("health check", health, Some(health_origin));
        table.row("admin token", admin_token, Some("admin_token_file"));
        table.row("log", log, Some("log_format"));
        table.row("command", command, Some("command"));
    }
}

/// The lines of the description: name, value, and the origin of the setting shown.
struct Table<'a> {
    origins: &'a BTreeMap<&'static str, Origin>,
    text: String,
}

impl Table<'_> {
    /// One line. `origin` is the key whose origin to show, `None` for a derived value.
    fn row(&mut self, name: &str, value: impl fmt::Display, origin: Option<&str>) {
        let origin = match origin {
            None => String::new(),
            Some(key) => {
                let origin = self
                    .origins
                    .get(key)
                    .map_or_else(|| "default".to_string(), ToString::to_string);
                format!("   [{origin}]")
            }
        };
        // Writing to a String cannot fail.
        let _ = writeln!(self.text, "  {name:<15} {value}{origin}");
    }
}
