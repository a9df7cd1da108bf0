//! The coordination stores that store-backed clusters compete in (protocol: Store leases): the
//! PostgreSQL and the etcd that `scripts/stores.sh` installs and starts on loopback, for the
//! end-to-end backend tests and the benchmark.
//!
//! The servers are named by the variables the script prints. When they are already set in the
//! environment (`eval "$(scripts/stores.sh)"`), they are used as they are; otherwise the first
//! caller in a process runs `scripts/stores.sh start`, which reuses running servers, and reads
//! them from its output. Set `TENURE_SKIP_STORE_TESTS=1` to skip what needs them: nothing that
//! needs a store passes silently without it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use tenure_node::cluster::StoreBackend;

/// The variable with the PostgreSQL URL of a role that may create the election table.
pub const POSTGRES_URL: &str = "TENURE_TEST_POSTGRES_URL";
/// The variable with the PostgreSQL URL of a role with a different password.
pub const POSTGRES_LIMITED_URL: &str = "TENURE_TEST_POSTGRES_LIMITED_URL";
/// The variable with the etcd endpoints, `HOST:PORT[,…]`.
pub const ETCD_ENDPOINTS: &str = "TENURE_TEST_ETCD_ENDPOINTS";
/// Set to `1` to skip whatever needs the stores.
pub const SKIP: &str = "TENURE_SKIP_STORE_TESTS";

/// The running stores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stores {
    /// `postgres://…` of the test role.
    pub postgres_url: String,
    /// `postgres://…` of the limited role.
    pub postgres_limited_url: String,
    /// `HOST:PORT[,…]` of etcd's client endpoints.
    pub etcd_endpoints: String,
}

impl Stores {
    /// A cluster backend in PostgreSQL, under `election`.
    pub fn postgres(&self, election: &str) -> StoreBackend {
        StoreBackend {
            url: self.postgres_url.clone(),
            election: election.to_string(),
        }
    }

    /// A cluster backend in etcd, under `election`.
    pub fn etcd(&self, election: &str) -> StoreBackend {
        StoreBackend {
            url: format!("etcd://{}", self.etcd_endpoints),
            election: election.to_string(),
        }
    }
}

/// Whether `TENURE_SKIP_STORE_TESTS=1` says to skip what needs the stores.
pub fn skipped() -> bool {
    std::env::var(SKIP).as_deref() == Ok("1")
}

/// The running stores, started (once per process) if the environment does not name them.
pub fn ensure() -> Result<&'static Stores, String> {
    static STORES: OnceLock<Result<Stores, String>> = OnceLock::new();
    STORES
        .get_or_init(|| {
            let from_environment =
                [POSTGRES_URL, POSTGRES_LIMITED_URL, ETCD_ENDPOINTS].map(|name| {
                    std::env::var(name)
                        .ok()
                        .map(|value| (name.to_string(), value))
                });
            let variables = if from_environment.iter().all(Option::is_some) {
                from_environment.into_iter().flatten().collect()
            } else {
                start()?
            };
            let get = |name: &str| {
                variables
                    .get(name)
                    .cloned()
                    .ok_or_else(|| format!("scripts/stores.sh printed no {name}"))
            };
            Ok(Stores {
                postgres_url: get(POSTGRES_URL)?,
                postgres_limited_url: get(POSTGRES_LIMITED_URL)?,
                etcd_endpoints: get(ETCD_ENDPOINTS)?,
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Runs `scripts/stores.sh start` and reads the variables it prints (`export NAME='VALUE'`).
fn start() -> Result<BTreeMap<String, String>, String> {
    let output = run_script(&["start"])?;
    Ok(output
        .lines()
        .filter_map(|line| line.strip_prefix("export "))
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_string(), value.trim_matches('\'').to_string()))
        .collect())
}

/// Runs `scripts/stores.sh` with `arguments` (e.g. `["restart-postgres", "3"]`); its standard
/// output, or why it failed.
pub fn run_script(arguments: &[&str]) -> Result<String, String> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/stores.sh");
    let output = Command::new(&script)
        .args(arguments)
        .output()
        .map_err(|problem| format!("cannot run {}: {problem}", script.display()))?;
    if !output.status.success() {
        return Err(format!(
            "scripts/stores.sh {} failed: {}",
            arguments.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// An election name that no other user of the stores, and no earlier run, uses: tests run in
/// parallel, and the stores keep their data between runs.
pub fn fresh_election(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    format!("{prefix}-{}-{nanos}", std::process::id())
}
