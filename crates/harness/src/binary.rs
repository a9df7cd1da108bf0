//! The `tenure` binary under test, and running it to completion.
//!
//! Cargo builds the binaries of a package only for that package's own integration tests, and
//! `tenure` belongs to `tenure-node`. [`tenure_binary`] therefore looks, in this order, at:
//! 1. `$TENURE_BIN`, if set;
//! 2. `tenure` in the directory above the test executable's `deps/` (where `cargo test
//!    --workspace` and `cargo build -p tenure-node` put it), or beside the running binary (the
//!    chaos runner, the benchmark), if it is newer than every source file of `tenure-node`,
//!    `tenure-driver` and `tenure-core`;
//! 3. otherwise it runs `cargo build -p tenure-node --bin tenure` into that same target
//!    directory and profile, once per process.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use crate::timing::SLACK;

/// The crates the `tenure` binary is built from, relative to the workspace root.
const SOURCES: [&str; 3] = ["crates/node", "crates/driver", "crates/core"];

/// The `tenure` binary under test; see the module docs.
pub fn tenure_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(locate_or_build).clone()
}

/// Runs `tenure` with `arguments` to completion (bounded), returning status, stdout and
/// stderr.
pub fn run_tenure(
    arguments: &[&str],
    environment: &[(&str, &str)],
) -> (ExitStatus, String, String) {
    let mut command = Command::new(tenure_binary());
    command.args(arguments).stdin(Stdio::null());
    for (variable, _) in std::env::vars_os() {
        if variable.to_string_lossy().starts_with("TENURE_") {
            command.env_remove(variable);
        }
    }
    command.envs(environment.iter().copied());
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tenure");
    let give_up = Instant::now() + SLACK * 2;
    loop {
        if child.try_wait().expect("wait for our own child").is_some() {
            break;
        }
        if Instant::now() >= give_up {
            let _ = child.kill();
            panic!("tenure {arguments:?} did not finish within {:?}", SLACK * 2);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let output = child.wait_with_output().expect("collect tenure's output");
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn locate_or_build() -> PathBuf {
    if let Some(path) = std::env::var_os("TENURE_BIN") {
        return PathBuf::from(path);
    }
    let executable = std::env::current_exe().expect("the test knows its own path");
    // target/<profile>/deps/<test> → target/<profile>; a binary of the harness (the chaos
    // runner, the benchmark) runs from target/<profile> itself.
    let mut profile_dir = executable
        .parent()
        .expect("an executable lies in a directory")
        .to_path_buf();
    if profile_dir.file_name().is_some_and(|name| name == "deps") {
        profile_dir = profile_dir
            .parent()
            .expect("deps lies in target/<profile>")
            .to_path_buf();
    }
    let candidate = profile_dir.join("tenure");
    if is_fresh(&candidate) {
        return candidate;
    }
    let target_dir = profile_dir
        .parent()
        .expect("a profile directory lies in a target directory");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut build = Command::new(cargo);
    build
        .args(["build", "-p", "tenure-node", "--bin", "tenure"])
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(workspace_root());
    if profile_dir
        .file_name()
        .is_some_and(|name| name == "release")
    {
        build.arg("--release");
    }
    let status = build
        .status()
        .expect("cargo runs to build the tenure binary");
    assert!(status.success(), "building the tenure binary failed");
    assert!(candidate.exists(), "{} was not built", candidate.display());
    candidate
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the harness lies in crates/ of the workspace")
        .to_path_buf()
}

/// Whether `binary` exists and is newer than every source file it is built from.
fn is_fresh(binary: &Path) -> bool {
    let Ok(built) = fs::metadata(binary).and_then(|metadata| metadata.modified()) else {
        return false;
    };
    let root = workspace_root();
    let newest = SOURCES
        .iter()
        .map(|crate_dir| newest_source(&root.join(crate_dir)))
        .max()
        .flatten();
    newest.is_none_or(|newest| newest <= built)
}

fn newest_source(directory: &Path) -> Option<SystemTime> {
    let mut newest = None;
    let entries = fs::read_dir(directory).ok()?;
    for entry in entries.flatten() {
        let path = entry.path();
        let modified = if path.is_dir() {
            if path.file_name().is_some_and(|name| name == "tests") {
                continue;
            }
            newest_source(&path)
        } else if path
            .extension()
            .is_some_and(|extension| extension == "rs" || extension == "toml")
        {
            entry
                .metadata()
                .and_then(|metadata| metadata.modified())
                .ok()
        } else {
            None
        };
        newest = newest.max(modified);
    }
    newest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sources_of_the_binary_are_found_in_the_workspace() {
        let root = workspace_root();
        for source in SOURCES {
            assert!(
                newest_source(&root.join(source)).is_some(),
                "{source} holds no source file"
            );
        }
    }
}
