//! The node's durable state: the current term, the vote cast in it, and the boot counter.
//!
//! protocol: Persist before send. `term` and `voted_for` are written durably before any message
//! that depends on them leaves the node. A node that forgets them can
//! vote twice in one term and elect two leaders, so this module never papers over a damaged
//! file: anything it cannot read with certainty is an error that stops the node and tells the
//! operator what to do. Only a missing file means a fresh node.
//!
//! The file `state` in the state directory is small, human-readable text, so an operator can
//! inspect it with `cat`:
//!
//! ```text
//! tenure-state 1
//! term 5
//! voted_for n2
//! incarnation 3
//! crc32 1a2b3c4d
//! ```
//!
//! `voted_for -` means no vote in this term. The `crc32` line is a CRC-32 (IEEE) of every byte
//! before it, as eight lowercase hex digits. Writes are atomic: a temporary file in the same
//! directory is written and fsynced, renamed over `state`, and the directory is fsynced, so a
//! crash at any point leaves either the old or the new state, never a mixture.
//!
//! An open `StateFile` holds an exclusive `flock` on `lock` in the state directory, because two
//! tenure processes sharing one state directory would be one voter acting twice.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::{flock, FlockOperation, Mode, OFlags};

/// The state a node keeps across restarts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StoredState {
    /// The latest term this node has seen.
    pub term: u64,
    /// The name of the node this node voted for in `term`, if it voted.
    pub voted_for: Option<String>,
    /// The boot counter: strictly greater on every boot, so peers can tell this boot's
    /// datagrams from replays of an earlier boot's (see `wire`).
    pub incarnation: u64,
}

/// An open state directory. Holds the directory's lock until dropped.
#[derive(Debug)]
pub struct StateFile {
    directory: PathBuf,
    path: PathBuf,
    temporary_path: PathBuf,
    /// The last state read or durably stored; `None` for a fresh node that has stored nothing.
    current: Option<StoredState>,
    /// Kept open only to hold the `flock`; the lock is released when the file is closed.
    _lock: File,
}

/// Why the state directory could not be opened, read or written.
///
/// Every message names the full path involved and tells the operator what to do.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error(
        "state directory {} is not usable: {source}. It must be an existing directory that \
         tenure can write to: create it (or mount the volume that holds it) and give tenure's \
         user write access. tenure does not create it itself, because a missing state \
         directory more often means a missing volume than a new node",
        .path.display()
    )]
    Directory { path: PathBuf, source: io::Error },

    #[error(
        "state directory is in use: cannot lock {}: {source}. Another tenure process is \
         probably running with this state directory; two processes sharing one state would \
         vote twice. Stop the other process, or give each node its own state directory",
        .path.display()
    )]
    Locked { path: PathBuf, source: io::Error },

    #[error(
        "cannot read state file {}: {source}. If this is a permission or disk problem, fix it \
         and restart the node. Otherwise: {}",
        .path.display(),
        RECOVERY_ADVICE
    )]
    Unreadable { path: PathBuf, source: io::Error },

    #[error("state file {} is damaged: {problem}. {}", .path.display(), RECOVERY_ADVICE)]
    Corrupt { path: PathBuf, problem: String },

    #[error(
        "state file {} is {kind}, not a regular file (tenure keeps its term and vote in a \
         regular file that it replaces atomically, never in what a link points to). If the \
         state lives on a volume, mount it, and point --state-dir at the directory that really \
         holds the file instead of linking to it. Otherwise: {}",
        .path.display(),
        RECOVERY_ADVICE
    )]
    NotARegularFile { path: PathBuf, kind: String },

    #[error(
        "state file {} has format version {version:?}, but this tenure reads only version {}. \
         It was probably written by a newer tenure: run that version on this node. {}",
        .path.display(),
        FORMAT_VERSION,
        RECOVERY_ADVICE
    )]
    UnsupportedVersion { path: PathBuf, version: String },

    #[error(
        "cannot store node state: {step} {} failed: {source}. The previous state is still in \
         place; tenure stops rather than act on a vote or term it could not make durable. \
         Free space on the volume or fix the directory's permissions, then restart the node",
        .path.display()
    )]
    Write {
        step: &'static str,
        path: PathBuf,
        source: io::Error,
    },

    #[error("cannot store vote for node name {name:?}: {problem}")]
    InvalidName { name: String, problem: &'static str },

    #[error(
        "the incarnation counter in {} is exhausted; move the state file aside as for a lost \
         state (see the error for a damaged file) and restart",
        .path.display()
    )]
    IncarnationExhausted { path: PathBuf },
}

/// What an operator must read when the state cannot be trusted. The order of the advice is the
/// order of preference: a restored file keeps every promise; a fresh start is safe only once
/// every promise and vote the node may have made has run out.
const RECOVERY_ADVICE: &str = "tenure refuses to start, because this node may have voted or \
    promised a lease that it would then forget, which could let two leaders act at once. \
    Restore the file from a backup if you have one. If this node's state is truly lost, move \
    the file aside (keep it for diagnosis), keep this node stopped for at least one full lease \
    duration while the other nodes carry on, then start it: it starts as a fresh node. Never \
    delete or reset the state file of a node that may be running or may have voted within the \
    last lease duration";

/// The only format version this code reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// Longest node name that can be stored; node names are short identifiers such as `n2`, and a
/// bound keeps the file (and the read of it) small.
pub const MAX_NODE_NAME_LEN: usize = 255;

/// The file holding the state, inside the state directory.
pub const STATE_FILE_NAME: &str = "state";

/// The temporary file a store writes before renaming it over the state file. A leftover from a
/// crash mid-store is harmless: it is never read and the next store truncates it.
pub const TEMPORARY_FILE_NAME: &str = "state.tmp";

/// The lock file inside the state directory.
pub const LOCK_FILE_NAME: &str = "lock";

/// A well-formed file is well under 400 bytes; reading at most this many bounds the work done
/// on a file that is not ours.
const MAX_FILE_LEN: u64 = 4096;

/// Extra `open` flags of the temporary file (see `StateFile::store`).
const TEMPORARY_OPEN_FLAGS: i32 = (OFlags::NOFOLLOW.bits() | OFlags::NONBLOCK.bits()) as i32;

/// The `voted_for` value meaning "no vote". Not a valid node name for that reason.
const NO_VOTE: &str = "-";

impl StateFile {
    /// Opens the state directory `directory`, locks it, and reads its state file.
    ///
    /// Returns `None` as the state when there is no state file: a fresh node. Every other
    /// failure to read a valid state is an error; this never resets state silently.
    pub fn open(directory: &Path) -> Result<(StateFile, Option<StoredState>), StateFileError> {
        let metadata = fs::metadata(directory).map_err(|source| StateFileError::Directory {
            path: directory.to_path_buf(),
            source,
        })?;
        if !metadata.is_dir() {
            return Err(StateFileError::Directory {
                path: directory.to_path_buf(),
                source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
            });
        }

        let lock_path = directory.join(LOCK_FILE_NAME);
        let lock = open_lock_file(&lock_path).map_err(|source| StateFileError::Directory {
            path: directory.to_path_buf(),
            source,
        })?;
        flock(&lock, FlockOperation::NonBlockingLockExclusive).map_err(|errno| {
            StateFileError::Locked {
                path: lock_path,
                source: errno.into(),
            }
        })?;

        let path = directory.join(STATE_FILE_NAME);
        let current = read_state(&path)?;
        let state_file = StateFile {
            directory: directory.to_path_buf(),
            temporary_path: directory.join(TEMPORARY_FILE_NAME),
            path,
            current: current.clone(),
            _lock: lock,
        };
        Ok((state_file, current))
    }

    /// Durably replaces the stored state with `state`.
    ///
    /// When this returns `Ok`, the new state survives a crash or power loss. When it returns
    /// an error, the state file still holds the previous state and `current()` is unchanged;
    /// the caller must not send anything that depends on `state`.
    pub fn store(&mut self, state: &StoredState) -> Result<(), StateFileError> {
        if let Some(name) = &state.voted_for {
            validate_node_name(name).map_err(|problem| StateFileError::InvalidName {
                name: name.clone(),
                problem,
            })?;
        }
        let contents = encode(state);

        let write_error = |step: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| StateFileError::Write { step, path, source }
        };
        // NOFOLLOW and NONBLOCK: a link or a FIFO left at the temporary name makes the store
        // fail at once with an error, instead of writing through the link or waiting forever
        // for a reader.
        let mut temporary = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(TEMPORARY_OPEN_FLAGS)
            .open(&self.temporary_path)
            .map_err(write_error("creating", &self.temporary_path))?;
        temporary
            .write_all(contents.as_bytes())
            .map_err(write_error("writing", &self.temporary_path))?;
        // Without this fsync the rename could reach the disk before the data, and a crash
        // would leave an empty or partial `state`.
        temporary
            .sync_all()
            .map_err(write_error("fsyncing", &self.temporary_path))?;
        drop(temporary);
        fs::rename(&self.temporary_path, &self.path)
            .map_err(write_error("renaming over", &self.path))?;
        // The rename is a change to the directory; until the directory is fsynced a crash can
        // bring back the old state file.
        sync_directory(&self.directory).map_err(write_error("fsyncing", &self.directory))?;

        self.current = Some(state.clone());
        Ok(())
    }

    /// Records a new boot: stores a strictly greater incarnation (keeping term and vote) and
    /// returns it. Call once per start, before sending anything.
    ///
    /// The new incarnation is the previous one plus one, or the wall clock in seconds since
    /// the Unix epoch if that is greater. The wall clock is never trusted for safety here;
    /// it only helps a node whose state was lost and recreated (see the recovery advice):
    /// its peers remember the incarnation of its last boot and would drop everything a
    /// restarted counter sends as `stale_incarnation`, whereas a wall-clock incarnation is
    /// almost surely above every earlier one.
    pub fn begin_boot(&mut self) -> Result<u64, StateFileError> {
        let wall_clock_seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since_epoch| since_epoch.as_secs());
        let previous = self.current.as_ref().map(|state| state.incarnation);
        self.store_incarnation(next_incarnation(previous, wall_clock_seconds))
    }

    /// Stores an incarnation above both the current one and `above` (keeping term and vote)
    /// and returns it: for a running node whose peers hold a higher incarnation for it than
    /// its own (another process with its id, or a forgery) and so refuse its datagrams. The
    /// next boot then starts above it too.
    pub fn raise_incarnation(&mut self, above: u64) -> Result<u64, StateFileError> {
        let current = self.current.as_ref().map_or(0, |state| state.incarnation);
        self.store_incarnation(current.max(above).checked_add(1))
    }

    /// Stores `incarnation` with the current term and vote and returns it; `None` means the
    /// incarnations are exhausted.
    fn store_incarnation(&mut self, incarnation: Option<u64>) -> Result<u64, StateFileError> {
        let incarnation = incarnation.ok_or_else(|| StateFileError::IncarnationExhausted {
            path: self.path.clone(),
        })?;
        let mut state = self.current.clone().unwrap_or(StoredState {
            term: 0,
            voted_for: None,
            incarnation: 0,
        });
        state.incarnation = incarnation;
        self.store(&state)?;
        Ok(incarnation)
    }

    /// The last state read or stored; `None` for a fresh node that has stored nothing yet.
    pub fn current(&self) -> Option<&StoredState> {
        self.current.as_ref()
    }

    /// The full path of the state file, for log messages.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The bytes `StateFile::store` writes for `state`. Public for the fuzz target `state_file`.
pub fn encode_state(state: &StoredState) -> String {
    encode(state)
}

/// Parses the bytes of a state file exactly as `StateFile::open` does, the problem described
/// without a path. Public for the fuzz target `state_file`, which checks that whatever this
/// accepts, `encode_state` writes back byte for byte.
pub fn decode_state(bytes: &[u8]) -> Result<StoredState, String> {
    decode(bytes).map_err(|problem| match problem {
        DecodeProblem::Corrupt(problem) => problem,
        DecodeProblem::UnsupportedVersion(version) => format!("format version {version:?}"),
    })
}

/// Checks that `name` can be stored as `voted_for` and read back unchanged: one word of
/// printable characters, so the line format stays unambiguous.
pub fn validate_node_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("the name is empty");
    }
    if name.len() > MAX_NODE_NAME_LEN {
        return Err("the name is longer than 255 bytes");
    }
    if name == NO_VOTE {
        return Err("\"-\" is reserved in the state file for \"no vote\"");
    }
    if name.chars().any(char::is_whitespace) {
        return Err("the name contains whitespace or a line break");
    }
    if name.chars().any(char::is_control) {
        return Err("the name contains a control character");
    }
    Ok(())
}

/// Fsyncs a directory, making renames and creations inside it durable.
pub fn sync_directory(directory: &Path) -> io::Result<()> {
    File::open(directory)?.sync_all()
}

/// The incarnation for the next boot: strictly greater than `previous`, and at least the wall
/// clock. `None` once the counter cannot grow any more.
fn next_incarnation(previous: Option<u64>, wall_clock_seconds: u64) -> Option<u64> {
    let counted = match previous {
        Some(previous) => previous.checked_add(1)?,
        None => 1,
    };
    Some(counted.max(wall_clock_seconds))
}

fn open_lock_file(lock_path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(lock_path)
}

fn read_state(path: &Path) -> Result<Option<StoredState>, StateFileError> {
    let unreadable = |source| StateFileError::Unreadable {
        path: path.to_path_buf(),
        source,
    };
    // Only a name that does not exist at all is a fresh node. `symlink_metadata` does not
    // follow links, so a dangling link (a volume that is not mounted) is seen for what it is
    // instead of as a missing file.
    let metadata = match fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(unreadable(source)),
    };
    if !metadata.file_type().is_file() {
        return Err(not_a_regular_file(path, &metadata));
    }
    // NOFOLLOW and NONBLOCK: should the name be swapped for a link or a FIFO after the check
    // above, the open fails or returns at once instead of following the link or waiting for
    // a writer forever. The descriptor is then checked once more.
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK;
    let file = File::from(
        rustix::fs::open(path, flags, Mode::empty()).map_err(|errno| unreadable(errno.into()))?,
    );
    let metadata = file.metadata().map_err(unreadable)?;
    if !metadata.file_type().is_file() {
        return Err(not_a_regular_file(path, &metadata));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| StateFileError::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
    decode(&bytes)
        .map(Some)
        .map_err(|problem| problem.into_error(path))
}

/// The error for a state path that exists but is no regular file, saying what it is.
fn not_a_regular_file(path: &Path, metadata: &fs::Metadata) -> StateFileError {
    use std::os::unix::fs::FileTypeExt;

    let file_type = metadata.file_type();
    let kind = if file_type.is_symlink() {
        let target = fs::read_link(path).map_or_else(
            |_| "an unreadable target".to_string(),
            |target| format!("{}", target.display()),
        );
        match fs::metadata(path) {
            Err(problem) => format!(
                "a symbolic link to {target}, which cannot be followed ({problem}; is the \
                 volume mounted?)"
            ),
            Ok(_) => format!(
                "a symbolic link to {target}; a store would replace the link, not the file it \
                 points to"
            ),
        }
    } else if file_type.is_fifo() {
        "a named pipe (FIFO)".to_string()
    } else if file_type.is_socket() {
        "a socket".to_string()
    } else if file_type.is_char_device() {
        "a character device".to_string()
    } else if file_type.is_block_device() {
        "a block device".to_string()
    } else if file_type.is_dir() {
        "a directory".to_string()
    } else {
        "not a regular file".to_string()
    };
    StateFileError::NotARegularFile {
        path: path.to_path_buf(),
        kind,
    }
}

/// What is wrong with a file's contents, before the path is attached.
#[derive(Debug, PartialEq, Eq)]
enum DecodeProblem {
    Corrupt(String),
    UnsupportedVersion(String),
}

impl DecodeProblem {
    fn into_error(self, path: &Path) -> StateFileError {
        let path = path.to_path_buf();
        match self {
            DecodeProblem::Corrupt(problem) => StateFileError::Corrupt { path, problem },
            DecodeProblem::UnsupportedVersion(version) => {
                StateFileError::UnsupportedVersion { path, version }
            }
        }
    }
}

fn corrupt(problem: impl Into<String>) -> DecodeProblem {
    DecodeProblem::Corrupt(problem.into())
}

fn encode(state: &StoredState) -> String {
    let voted_for = state.voted_for.as_deref().unwrap_or(NO_VOTE);
    let body = format!(
        "tenure-state {FORMAT_VERSION}\nterm {}\nvoted_for {voted_for}\nincarnation {}\n",
        state.term, state.incarnation
    );
    let checksum = crc32fast::hash(body.as_bytes());
    format!("{body}crc32 {checksum:08x}\n")
}

fn decode(bytes: &[u8]) -> Result<StoredState, DecodeProblem> {
    if bytes.is_empty() {
        return Err(corrupt("the file is empty"));
    }
    if bytes.len() as u64 > MAX_FILE_LEN {
        return Err(corrupt(format!(
            "the file is longer than {MAX_FILE_LEN} bytes"
        )));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| corrupt("the file is not UTF-8 text"))?;
    let Some(text) = text.strip_suffix('\n') else {
        return Err(corrupt(
            "the last line is incomplete (was the file truncated?)",
        ));
    };
    let lines: Vec<&str> = text.split('\n').collect();

    // The version comes first: a later version may lay out everything after it differently,
    // so nothing else can be judged until it is known.
    let version = field(lines[0], "tenure-state")?;
    if !version.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(corrupt(format!(
            "the first line is not \"tenure-state <version>\": {:?}",
            lines[0]
        )));
    }
    if version != FORMAT_VERSION.to_string() {
        return Err(DecodeProblem::UnsupportedVersion(version.to_string()));
    }

    // Check the checksum before parsing the fields, so damage is reported as damage rather
    // than as whichever field it happened to land in.
    let body_lines = verify_checksum(bytes, text, &lines)?;
    // The checksum matched, so what follows can only fail for a file that was hand-edited
    // and re-checksummed, or written by a buggy tenure; be exact all the same.
    parse_fields(body_lines, lines.len())
}

/// Checks the last line's CRC-32 against every byte before it, and returns the lines it
/// covers. `text` is `bytes` as text without its final newline, split into `lines`.
fn verify_checksum<'lines>(
    bytes: &[u8],
    text: &str,
    lines: &'lines [&'lines str],
) -> Result<&'lines [&'lines str], DecodeProblem> {
    let Some((checksum_line, body_lines)) = lines.split_last() else {
        return Err(corrupt("the file has no lines"));
    };
    if body_lines.is_empty() {
        return Err(corrupt(
            "the crc32 line is missing (was the file truncated?)",
        ));
    }
    let stored_checksum = field(checksum_line, "crc32")
        .map_err(|_| corrupt("the last line is not a crc32 line (was the file truncated?)"))?;
    if stored_checksum.len() != 8
        || !stored_checksum
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
    {
        return Err(corrupt(
            "the crc32 line does not hold eight lowercase hex digits",
        ));
    }
    let stored_checksum = u32::from_str_radix(stored_checksum, 16)
        .map_err(|_| corrupt("the crc32 line does not hold eight lowercase hex digits"))?;
    // The checksummed body is every byte before the checksum line.
    let body_len = text.len() - checksum_line.len();
    let computed_checksum = crc32fast::hash(&bytes[..body_len]);
    if stored_checksum != computed_checksum {
        return Err(corrupt(format!(
            "checksum mismatch: the file says crc32 {stored_checksum:08x} but its contents \
             have {computed_checksum:08x}"
        )));
    }
    Ok(body_lines)
}

/// The fields of the checksummed lines: version (already checked), term, vote, incarnation.
/// `line_count` counts the checksum line too, for the error.
fn parse_fields(body_lines: &[&str], line_count: usize) -> Result<StoredState, DecodeProblem> {
    let [_, term_line, voted_for_line, incarnation_line] = body_lines else {
        return Err(corrupt(format!(
            "expected 5 lines (version, term, voted_for, incarnation, crc32), found {line_count}"
        )));
    };
    let term = parse_decimal(field(term_line, "term")?, "term")?;
    let voted_for = match field(voted_for_line, "voted_for")? {
        NO_VOTE => None,
        name => {
            validate_node_name(name).map_err(|problem| {
                corrupt(format!("voted_for holds an invalid node name: {problem}"))
            })?;
            Some(name.to_string())
        }
    };
    let incarnation = parse_decimal(field(incarnation_line, "incarnation")?, "incarnation")?;
    Ok(StoredState {
        term,
        voted_for,
        incarnation,
    })
}

/// The value of a `key value` line, which must be exactly that: one space, non-empty value.
fn field<'line>(line: &'line str, key: &str) -> Result<&'line str, DecodeProblem> {
    line.strip_prefix(key)
        .and_then(|rest| rest.strip_prefix(' '))
        .filter(|value| !value.is_empty() && !value.contains(' '))
        .ok_or_else(|| corrupt(format!("expected a line \"{key} <value>\", found {line:?}")))
}

/// Parses a canonical decimal `u64`: digits only (no sign, no spaces), no leading zeros.
fn parse_decimal(value: &str, key: &str) -> Result<u64, DecodeProblem> {
    let canonical = value.bytes().all(|byte| byte.is_ascii_digit())
        && (value == "0" || !value.starts_with('0'));
    let parsed = value.parse::<u64>().ok().filter(|_| canonical);
    parsed.ok_or_else(|| {
        corrupt(format!(
            "{key} is {value:?}, not a decimal number from 0 to {}",
            u64::MAX
        ))
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn sample() -> StoredState {
        StoredState {
            term: 5,
            voted_for: Some("n2".to_string()),
            incarnation: 3,
        }
    }

    /// A valid file for a body whose checksum is recomputed, to show the parser is strict even
    /// where the checksum cannot help.
    fn with_valid_checksum(body: &str) -> Vec<u8> {
        format!("{body}crc32 {:08x}\n", crc32fast::hash(body.as_bytes())).into_bytes()
    }

    fn write_state_file(directory: &Path, bytes: &[u8]) {
        fs::write(directory.join(STATE_FILE_NAME), bytes).unwrap();
    }

    fn open_error(directory: &Path) -> StateFileError {
        match StateFile::open(directory) {
            Ok((_, state)) => panic!("expected an error, opened {state:?}"),
            Err(error) => error,
        }
    }

    /// Every error about the state file must say where it is and what the operator should do.
    fn assert_actionable(error: &StateFileError, path: &Path) {
        let message = error.to_string();
        assert!(
            message.contains(&path.display().to_string()),
            "message does not name {}: {message}",
            path.display()
        );
        assert!(
            message.contains("Restore the file from a backup"),
            "{message}"
        );
        assert!(message.contains("full lease duration"), "{message}");
        assert!(message.contains("Never delete"), "{message}");
    }

    // ---- Format ----

    #[test]
    fn encodes_the_documented_format() {
        let text = encode(&sample());
        let body = "tenure-state 1\nterm 5\nvoted_for n2\nincarnation 3\n";
        assert_eq!(
            text,
            format!("{body}crc32 {:08x}\n", crc32fast::hash(body.as_bytes()))
        );
        let no_vote = encode(&StoredState {
            voted_for: None,
            ..sample()
        });
        assert!(no_vote.contains("\nvoted_for -\n"), "{no_vote}");
    }

    #[test]
    fn decodes_what_it_encodes() {
        for state in [
            sample(),
            StoredState {
                term: 0,
                voted_for: None,
                incarnation: 0,
            },
            StoredState {
                term: u64::MAX,
                voted_for: Some("x".repeat(MAX_NODE_NAME_LEN)),
                incarnation: u64::MAX,
            },
            StoredState {
                term: 7,
                voted_for: Some("nœud-ü.example:7".to_string()),
                incarnation: 1,
            },
        ] {
            assert_eq!(decode(encode(&state).as_bytes()), Ok(state));
        }
    }

    #[test]
    fn rejects_every_truncation() {
        let bytes = encode(&sample()).into_bytes();
        for len in 0..bytes.len() {
            assert!(
                matches!(decode(&bytes[..len]), Err(DecodeProblem::Corrupt(_))),
                "truncation to {len} bytes was accepted: {:?}",
                decode(&bytes[..len])
            );
        }
    }

    #[test]
    fn rejects_every_single_bit_flip() {
        let bytes = encode(&sample()).into_bytes();
        for position in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[position] ^= 1 << bit;
                assert!(
                    decode(&damaged).is_err(),
                    "flipping bit {bit} of byte {position} was accepted"
                );
            }
        }
    }

    #[test]
    fn rejects_a_checksum_mismatch_with_both_values() {
        let text = encode(&sample()).replace("term 5", "term 6");
        match decode(text.as_bytes()) {
            Err(DecodeProblem::Corrupt(problem)) => {
                assert!(problem.contains("checksum mismatch"), "{problem}")
            }
            other => panic!("expected a checksum mismatch, got {other:?}"),
        }
    }

    #[test]
    fn rejects_other_versions_before_anything_else() {
        let body = "tenure-state 2\nsomething new\n";
        assert_eq!(
            decode(&with_valid_checksum(body)),
            Err(DecodeProblem::UnsupportedVersion("2".to_string()))
        );
        assert_eq!(
            decode(b"tenure-state 10\n"),
            Err(DecodeProblem::UnsupportedVersion("10".to_string()))
        );
        assert!(matches!(
            decode(b"tenure-stat 1\n"),
            Err(DecodeProblem::Corrupt(_))
        ));
    }

    #[test]
    fn rejects_malformed_bodies_even_with_a_valid_checksum() {
        let bodies = [
            // Missing, extra, reordered and duplicated lines.
            "tenure-state 1\nterm 5\nincarnation 3\n",
            "tenure-state 1\nterm 5\nvoted_for n2\nincarnation 3\nextra 1\n",
            "tenure-state 1\nvoted_for n2\nterm 5\nincarnation 3\n",
            "tenure-state 1\nterm 5\nterm 5\nincarnation 3\n",
            // Numbers that are not canonical decimals.
            "tenure-state 1\nterm +5\nvoted_for n2\nincarnation 3\n",
            "tenure-state 1\nterm 05\nvoted_for n2\nincarnation 3\n",
            "tenure-state 1\nterm -5\nvoted_for n2\nincarnation 3\n",
            "tenure-state 1\nterm 18446744073709551616\nvoted_for n2\nincarnation 3\n",
            "tenure-state 1\nterm 0x5\nvoted_for n2\nincarnation 3\n",
            "tenure-state 1\nterm 5\nvoted_for n2\nincarnation \n",
            // Spacing that a careless hand edit could introduce.
            "tenure-state 1\nterm  5\nvoted_for n2\nincarnation 3\n",
            "tenure-state 1\nterm 5 \nvoted_for n2\nincarnation 3\n",
            "tenure-state 1\nterm 5\nvoted_for n2 n3\nincarnation 3\n",
            "tenure-state 1\r\nterm 5\nvoted_for n2\nincarnation 3\n",
            // A name the writer would have refused.
            "tenure-state 1\nterm 5\nvoted_for n\u{7}2\nincarnation 3\n",
        ];
        for body in bodies {
            assert!(
                matches!(
                    decode(&with_valid_checksum(body)),
                    Err(DecodeProblem::Corrupt(_))
                ),
                "accepted {body:?}"
            );
        }
    }

    #[test]
    fn rejects_uppercase_and_short_checksums() {
        let text = encode(&sample());
        let (body, checksum_line) = text.trim_end().rsplit_once('\n').unwrap();
        let checksum = checksum_line.strip_prefix("crc32 ").unwrap();
        for bad in [
            checksum.to_uppercase(),
            checksum[1..].to_string(),
            format!("0{checksum}"),
        ] {
            if bad == checksum {
                continue;
            }
            let damaged = format!("{body}\ncrc32 {bad}\n");
            assert!(decode(damaged.as_bytes()).is_err(), "accepted {damaged:?}");
        }
    }

    #[test]
    fn rejects_non_utf8_and_oversized_files() {
        let mut bytes = encode(&sample()).into_bytes();
        bytes[20] = 0xff;
        assert!(matches!(decode(&bytes), Err(DecodeProblem::Corrupt(_))));
        let huge = vec![b'a'; MAX_FILE_LEN as usize + 1];
        assert!(matches!(decode(&huge), Err(DecodeProblem::Corrupt(_))));
    }

    #[test]
    fn validates_node_names() {
        for good in [
            "n2",
            "node-1.example.com",
            "ü",
            &"x".repeat(MAX_NODE_NAME_LEN),
        ] {
            assert_eq!(validate_node_name(good), Ok(()), "{good:?}");
        }
        let too_long = "x".repeat(MAX_NODE_NAME_LEN + 1);
        for bad in [
            "", "-", "n 2", "n2\n", "\tn2", "n\u{0}2", "n\u{a0}2", &too_long,
        ] {
            assert!(validate_node_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn next_incarnation_strictly_grows_and_follows_the_wall_clock() {
        assert_eq!(next_incarnation(None, 0), Some(1));
        assert_eq!(next_incarnation(Some(3), 0), Some(4));
        // A wall clock behind the counter (set back, or a board without a clock) is ignored.
        assert_eq!(
            next_incarnation(Some(1_700_000_010), 1_700_000_000),
            Some(1_700_000_011)
        );
        // A wall clock ahead of the counter lifts a recreated state above earlier boots.
        assert_eq!(next_incarnation(None, 1_700_000_000), Some(1_700_000_000));
        assert_eq!(
            next_incarnation(Some(4), 1_700_000_000),
            Some(1_700_000_000)
        );
        assert_eq!(next_incarnation(Some(u64::MAX), 5), None);
    }

    // ---- The directory ----

    #[test]
    fn a_missing_state_file_is_a_fresh_node() {
        let directory = tempfile::tempdir().unwrap();
        let (state_file, state) = StateFile::open(directory.path()).unwrap();
        assert_eq!(state, None);
        assert_eq!(state_file.current(), None);
        assert_eq!(state_file.path(), directory.path().join("state"));
    }

    #[test]
    fn stores_and_reopens() {
        let directory = tempfile::tempdir().unwrap();
        let (mut state_file, _) = StateFile::open(directory.path()).unwrap();
        state_file.store(&sample()).unwrap();
        assert_eq!(state_file.current(), Some(&sample()));
        let later = StoredState {
            term: 6,
            voted_for: None,
            incarnation: 3,
        };
        state_file.store(&later).unwrap();
        drop(state_file);

        let (state_file, state) = StateFile::open(directory.path()).unwrap();
        assert_eq!(state, Some(later.clone()));
        assert_eq!(state_file.current(), Some(&later));
        // Only the owner may read the vote; the temporary file is gone after the rename.
        let mode = fs::metadata(directory.path().join(STATE_FILE_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!directory.path().join(TEMPORARY_FILE_NAME).exists());
    }

    #[test]
    fn begin_boot_stores_a_strictly_greater_incarnation_and_keeps_the_vote() {
        let directory = tempfile::tempdir().unwrap();
        let (mut state_file, _) = StateFile::open(directory.path()).unwrap();
        let first = state_file.begin_boot().unwrap();
        assert!(first >= 1);
        state_file
            .store(&StoredState {
                term: 9,
                voted_for: Some("n3".to_string()),
                incarnation: first,
            })
            .unwrap();
        drop(state_file);

        let (mut state_file, _) = StateFile::open(directory.path()).unwrap();
        let second = state_file.begin_boot().unwrap();
        assert!(second > first);
        drop(state_file);
        let (_, state) = StateFile::open(directory.path()).unwrap();
        assert_eq!(
            state,
            Some(StoredState {
                term: 9,
                voted_for: Some("n3".to_string()),
                incarnation: second,
            })
        );
    }

    #[test]
    fn raise_incarnation_stores_one_above_what_peers_hold_and_keeps_the_vote() {
        let directory = tempfile::tempdir().unwrap();
        let (mut state_file, _) = StateFile::open(directory.path()).unwrap();
        let booted = state_file.begin_boot().unwrap();
        state_file
            .store(&StoredState {
                term: 4,
                voted_for: Some("n2".to_string()),
                incarnation: booted,
            })
            .unwrap();
        assert_eq!(
            state_file.raise_incarnation(booted + 5).unwrap(),
            booted + 6
        );
        // Never down: a notice naming an older incarnation still moves up by one.
        assert_eq!(state_file.raise_incarnation(3).unwrap(), booted + 7);
        drop(state_file);
        let (mut state_file, state) = StateFile::open(directory.path()).unwrap();
        assert_eq!(
            state,
            Some(StoredState {
                term: 4,
                voted_for: Some("n2".to_string()),
                incarnation: booted + 7,
            })
        );
        assert!(state_file.begin_boot().unwrap() > booted + 7);
    }

    #[test]
    fn begin_boot_refuses_an_exhausted_counter_and_stores_nothing() {
        let directory = tempfile::tempdir().unwrap();
        let exhausted = StoredState {
            incarnation: u64::MAX,
            ..sample()
        };
        write_state_file(directory.path(), encode(&exhausted).as_bytes());
        let (mut state_file, _) = StateFile::open(directory.path()).unwrap();
        let error = state_file.begin_boot().unwrap_err();
        assert!(matches!(error, StateFileError::IncarnationExhausted { .. }));
        assert_eq!(state_file.current(), Some(&exhausted));
    }

    #[test]
    fn refuses_bad_names_and_keeps_the_previous_state() {
        let directory = tempfile::tempdir().unwrap();
        let (mut state_file, _) = StateFile::open(directory.path()).unwrap();
        state_file.store(&sample()).unwrap();
        for bad in ["n 2", "n2\nterm 99", "", "-"] {
            let error = state_file
                .store(&StoredState {
                    voted_for: Some(bad.to_string()),
                    ..sample()
                })
                .unwrap_err();
            assert!(
                matches!(error, StateFileError::InvalidName { .. }),
                "{error}"
            );
        }
        assert_eq!(state_file.current(), Some(&sample()));
        drop(state_file);
        assert_eq!(StateFile::open(directory.path()).unwrap().1, Some(sample()));
    }

    #[test]
    fn a_damaged_file_is_an_actionable_error_never_a_reset() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join(STATE_FILE_NAME);
        let valid = encode(&sample()).into_bytes();

        // Truncated (the classic crash-during-naive-write result).
        write_state_file(directory.path(), &valid[..valid.len() / 2]);
        let error = open_error(directory.path());
        assert!(matches!(error, StateFileError::Corrupt { .. }), "{error}");
        assert_actionable(&error, &path);

        // One flipped byte.
        let mut flipped = valid.clone();
        flipped[16] ^= 0x04;
        write_state_file(directory.path(), &flipped);
        let error = open_error(directory.path());
        assert!(matches!(error, StateFileError::Corrupt { .. }), "{error}");
        assert_actionable(&error, &path);

        // Empty.
        write_state_file(directory.path(), b"");
        assert_actionable(&open_error(directory.path()), &path);

        // The file is still there, untouched: nothing was reset.
        assert_eq!(fs::read(&path).unwrap(), b"");
    }

    #[test]
    fn an_unknown_version_says_so_and_names_the_file() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join(STATE_FILE_NAME);
        write_state_file(
            directory.path(),
            &with_valid_checksum("tenure-state 2\nterm 5\n"),
        );
        let error = open_error(directory.path());
        assert!(
            matches!(&error, StateFileError::UnsupportedVersion { version, .. } if version == "2"),
            "{error}"
        );
        assert!(error.to_string().contains("newer tenure"), "{error}");
        assert_actionable(&error, &path);
    }

    #[test]
    fn a_directory_in_place_of_the_state_file_is_an_error() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join(STATE_FILE_NAME);
        fs::create_dir(&path).unwrap();
        let error = open_error(directory.path());
        assert!(
            matches!(&error, StateFileError::NotARegularFile { kind, .. } if kind == "a directory"),
            "{error}"
        );
        assert_actionable(&error, &path);
    }

    // ---- Paths that exist but are no regular file (hardening items 3 and 4) ----

    #[test]
    fn a_dangling_symlink_is_refused_and_left_untouched_never_a_fresh_node() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join(STATE_FILE_NAME);
        let target = directory.path().join("unmounted-volume").join("state");
        std::os::unix::fs::symlink(&target, &path).unwrap();

        let error = open_error(directory.path());
        let message = error.to_string();
        assert!(
            matches!(error, StateFileError::NotARegularFile { .. }),
            "{message}"
        );
        assert!(message.contains("a symbolic link to"), "{message}");
        assert!(message.contains(&target.display().to_string()), "{message}");
        assert!(message.contains("cannot be followed"), "{message}");
        assert_actionable(&error, &path);
        // The link is still a link to the same place, and nothing was created behind it.
        assert_eq!(fs::read_link(&path).unwrap(), target);
        assert!(!target.exists());
    }

    #[test]
    fn a_symlink_to_a_valid_state_file_is_refused_because_a_store_would_replace_the_link() {
        let directory = tempfile::tempdir().unwrap();
        let real = directory.path().join("real-state");
        fs::write(&real, encode(&sample())).unwrap();
        let path = directory.path().join(STATE_FILE_NAME);
        std::os::unix::fs::symlink(&real, &path).unwrap();
        let error = open_error(directory.path());
        assert!(
            error.to_string().contains("a store would replace the link"),
            "{error}"
        );
        assert_eq!(fs::read_link(&path).unwrap(), real);
    }

    #[test]
    fn a_fifo_in_place_of_the_state_file_is_refused_at_once() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join(STATE_FILE_NAME);
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &path,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        // Before the fix, open() blocked forever waiting for a writer; this returns at once.
        let error = open_error(directory.path());
        assert!(
            matches!(&error, StateFileError::NotARegularFile { kind, .. } if kind.contains("FIFO")),
            "{error}"
        );
        assert_actionable(&error, &path);
    }

    #[test]
    fn a_fifo_at_the_temporary_name_fails_the_store_instead_of_hanging_it() {
        let directory = tempfile::tempdir().unwrap();
        let (mut file, _) = StateFile::open(directory.path()).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            directory.path().join(TEMPORARY_FILE_NAME),
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let error = file.store(&sample()).unwrap_err();
        assert!(
            matches!(
                error,
                StateFileError::Write {
                    step: "creating",
                    ..
                }
            ),
            "{error}"
        );
        assert_eq!(file.current(), None);
    }

    #[test]
    fn a_missing_or_non_directory_state_directory_is_an_error() {
        let parent = tempfile::tempdir().unwrap();
        let missing = parent.path().join("missing");
        let error = open_error(&missing);
        assert!(matches!(error, StateFileError::Directory { .. }), "{error}");
        assert!(error.to_string().contains(&missing.display().to_string()));
        assert!(
            !missing.exists(),
            "open must not create the state directory"
        );

        let file = parent.path().join("file");
        fs::write(&file, b"").unwrap();
        let error = open_error(&file);
        assert!(matches!(error, StateFileError::Directory { .. }), "{error}");
    }

    #[test]
    fn a_second_open_of_the_same_directory_is_refused_until_the_first_closes() {
        let directory = tempfile::tempdir().unwrap();
        let (first, _) = StateFile::open(directory.path()).unwrap();
        let error = open_error(directory.path());
        assert!(matches!(error, StateFileError::Locked { .. }), "{error}");
        assert!(error
            .to_string()
            .contains(&directory.path().join(LOCK_FILE_NAME).display().to_string()));
        drop(first);
        assert!(StateFile::open(directory.path()).is_ok());
    }

    #[test]
    fn leftover_temporary_files_are_ignored_and_overwritten() {
        let directory = tempfile::tempdir().unwrap();
        let temporary = directory.path().join(TEMPORARY_FILE_NAME);

        // A crash before the first rename leaves only garbage in the temporary file.
        fs::write(&temporary, b"half a st").unwrap();
        let (mut state_file, state) = StateFile::open(directory.path()).unwrap();
        assert_eq!(state, None);

        state_file.store(&sample()).unwrap();
        drop(state_file);

        // A crash after writing a newer temporary file but before the rename: the state file
        // still holds the older state, and the temporary file is not consulted.
        let newer = StoredState {
            term: 99,
            ..sample()
        };
        fs::write(&temporary, encode(&newer)).unwrap();
        let (mut state_file, state) = StateFile::open(directory.path()).unwrap();
        assert_eq!(state, Some(sample()));
        state_file.store(&newer).unwrap();
        assert!(!temporary.exists());
    }

    #[test]
    fn syncs_directories_and_reports_a_store_that_cannot_complete() {
        let parent = tempfile::tempdir().unwrap();
        sync_directory(parent.path()).unwrap();
        assert!(sync_directory(&parent.path().join("missing")).is_err());

        // Pull the directory out from under an open state file: the store must fail, name
        // the path it failed on, and leave `current` as it was.
        let directory = parent.path().join("state-directory");
        fs::create_dir(&directory).unwrap();
        let (mut state_file, _) = StateFile::open(&directory).unwrap();
        state_file.store(&sample()).unwrap();
        fs::remove_dir_all(&directory).unwrap();
        let error = state_file
            .store(&StoredState {
                term: 6,
                ..sample()
            })
            .unwrap_err();
        assert!(matches!(error, StateFileError::Write { .. }), "{error}");
        assert!(
            error.to_string().contains(&directory.display().to_string()),
            "{error}"
        );
        assert_eq!(state_file.current(), Some(&sample()));
    }
}
