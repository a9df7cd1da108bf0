//! What the store tests share: the servers `scripts/stores.sh` started, named by the variables
//! it prints, and a fresh election name per test.
//!
//! When the variables are not set, the first test that needs them runs `scripts/stores.sh
//! start` (which installs the servers if they are missing and starts them on loopback) and
//! reads them from its output, so `cargo test --workspace` needs nothing beforehand. If that
//! fails, the test fails saying why, unless `TENURE_SKIP_STORE_TESTS=1` says to skip the store
//! tests: a store test never passes silently without its store.

#![allow(dead_code)] // Each test binary uses part of this.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tenure_node::backend::{Backend, ElectionName, PostgresTarget};

pub const POSTGRES_URL: &str = "TENURE_TEST_POSTGRES_URL";
pub const POSTGRES_LIMITED_URL: &str = "TENURE_TEST_POSTGRES_LIMITED_URL";
pub const ETCD_ENDPOINTS: &str = "TENURE_TEST_ETCD_ENDPOINTS";
pub const SKIP: &str = "TENURE_SKIP_STORE_TESTS";

/// The request timeout of the tests: far above a loopback store's answer time, and short
/// enough that the outage tests see several failures.
pub const TIMEOUT: Duration = Duration::from_secs(1);

/// The value of `variable`, or `None` when the store tests are skipped. Starts the stores if
/// the variable is not set; panics, saying why, if that fails.
pub fn store_variable(variable: &str) -> Option<String> {
    if let Ok(value) = std::env::var(variable) {
        return Some(value);
    }
    if std::env::var(SKIP).as_deref() == Ok("1") {
        eprintln!("{SKIP}=1: skipping a test that needs {variable}");
        return None;
    }
    match started_stores() {
        Ok(variables) => Some(
            variables
                .get(variable)
                .unwrap_or_else(|| panic!("scripts/stores.sh printed no {variable}"))
                .clone(),
        ),
        Err(problem) => panic!(
            "{variable} is not set and the stores could not be started: {problem}. Start them \
             with `eval \"$(scripts/stores.sh)\"` (as root, or with postgresql and etcd-server \
             installed), or set {SKIP}=1 to skip the tests that need them"
        ),
    }
}

/// Runs `scripts/stores.sh start` once per test binary and reads the variables it prints
/// (`export NAME='VALUE'`).
fn started_stores() -> Result<&'static BTreeMap<String, String>, String> {
    static STARTED: OnceLock<Result<BTreeMap<String, String>, String>> = OnceLock::new();
    STARTED
        .get_or_init(|| {
            let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/stores.sh");
            let output = Command::new(&script)
                .arg("start")
                .output()
                .map_err(|problem| format!("cannot run {}: {problem}", script.display()))?;
            if !output.status.success() {
                return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
            }
            Ok(String::from_utf8_lossy(&output.stdout)
                .lines()
                .filter_map(|line| line.strip_prefix("export "))
                .filter_map(|line| line.split_once('='))
                .map(|(name, value)| (name.to_string(), value.trim_matches('\'').to_string()))
                .collect())
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The PostgreSQL target of `variable`.
pub fn postgres_target(variable: &str) -> Option<PostgresTarget> {
    let url = store_variable(variable)?;
    match Backend::parse(&url) {
        Ok(Backend::Postgres(target)) => Some(*target),
        other => panic!("{variable} is no PostgreSQL URL: {other:?}"),
    }
}

/// The etcd endpoints (`HOST:PORT,…`).
pub fn etcd_endpoints() -> Option<Vec<String>> {
    let endpoints = store_variable(ETCD_ENDPOINTS)?;
    match Backend::parse(&format!("etcd://{endpoints}")) {
        Ok(Backend::Etcd { endpoints }) => Some(endpoints),
        other => panic!("{ETCD_ENDPOINTS} is no etcd endpoint list: {other:?}"),
    }
}

/// An election name no other test, and no earlier run, uses: tests run in parallel, and the
/// stores keep their data between runs.
pub fn fresh_election(test: &str) -> ElectionName {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_nanos();
    ElectionName::parse(&format!("{test}-{}-{nanos}", std::process::id()))
        .expect("a valid election name")
}

/// Runs `scripts/stores.sh` with `arguments`, and fails the test if it fails.
pub fn stores_script(arguments: &[&str]) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/stores.sh");
    let output = Command::new(&script)
        .args(arguments)
        .output()
        .expect("scripts/stores.sh runs");
    assert!(
        output.status.success(),
        "scripts/stores.sh {arguments:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
