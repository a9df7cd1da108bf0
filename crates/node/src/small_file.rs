//! Reading the small files that the settings name: the `--config` file, the cluster key and
//! the admin token.
//!
//! Every read is bounded twice. In size: a file longer than its limit is an error, not a
//! prefix silently used, so `--config /dev/zero` ends at once instead of filling memory. In
//! time: the open never waits (`O_NONBLOCK`), so a FIFO without a writer or a device cannot
//! hang the start. Only regular files and pipes (`--config <(generate)`) are read; a device,
//! socket or directory is refused with what it is.
//!
//! Secrets are also checked for their mode: a key or token that every user of the machine may
//! read is reported (see [`exposure_warning`]); the caller decides what to do with that.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use rustix::fs::{Mode, OFlags};

/// A file read whole.
#[derive(Debug)]
pub struct SmallFile {
    pub text: String,
    /// The permission bits (`st_mode & 0o7777`).
    pub mode: u32,
}

/// Reads `path` as UTF-8 text of at most `limit` bytes. The error says what is wrong, without
/// the path (the caller names the file and what it is for).
pub fn read(path: &Path, limit: u64) -> Result<SmallFile, String> {
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let descriptor = rustix::fs::open(path, flags, Mode::empty())
        .map_err(|errno| format!("cannot open it: {}", std::io::Error::from(errno)))?;
    let file = File::from(descriptor);
    let metadata = file
        .metadata()
        .map_err(|problem| format!("cannot inspect it: {problem}"))?;
    let file_type = metadata.file_type();
    if file_type.is_fifo() {
        // A pipe is read blocking from here on: with no writer left the read ends (EOF), and a
        // writer that is there is the operator's own (`--config <(generate)`).
        rustix::fs::fcntl_setfl(&file, OFlags::empty())
            .map_err(|errno| format!("cannot read it: {}", std::io::Error::from(errno)))?;
    } else if !file_type.is_file() {
        return Err(format!("it is {}, not a regular file", kind(&file_type)));
    }
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|problem| format!("cannot read it: {problem}"))?;
    if bytes.len() as u64 > limit {
        return Err(format!("it is longer than {limit} bytes"));
    }
    let text = String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_string())?;
    Ok(SmallFile {
        text,
        mode: metadata.permissions().mode() & 0o7777,
    })
}

/// A warning for a secret file that users other than its owner and group may read or write,
/// naming the file, its mode and the `chmod` that fixes it; `None` when the mode is private
/// enough. Group access is left alone: `root:tenure 0640` is the documented layout.
pub fn exposure_warning(what: &str, path: &Path, mode: u32) -> Option<String> {
    if mode & 0o007 == 0 {
        return None;
    }
    Some(format!(
        "{what} {} has mode {mode:04o}: every user of this machine may read it{}. Make it \
         private with `chmod o-rwx {}` (or `chmod 600` when tenure's own user owns it)",
        path.display(),
        if mode & 0o002 != 0 {
            " and replace it"
        } else {
            ""
        },
        path.display()
    ))
}

fn kind(file_type: &std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn set_mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn reads_a_small_file_with_its_mode() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("token");
        std::fs::write(&path, "abc\n").unwrap();
        set_mode(&path, 0o640);
        let file = read(&path, 4).unwrap();
        assert_eq!(file.text, "abc\n");
        assert_eq!(file.mode, 0o640);
    }

    #[test]
    fn a_file_over_the_limit_is_an_error_not_a_prefix() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("big");
        std::fs::write(&path, "12345").unwrap();
        assert_eq!(read(&path, 5).unwrap().text, "12345");
        assert_eq!(read(&path, 4).unwrap_err(), "it is longer than 4 bytes");
    }

    #[test]
    fn devices_and_directories_are_refused_at_once() {
        // Hardening item 6: `--config /dev/zero` read without end and grew without bound.
        let started = Instant::now();
        for (path, expected) in [
            ("/dev/zero", "it is a character device, not a regular file"),
            ("/dev/null", "it is a character device, not a regular file"),
            ("/", "it is a directory, not a regular file"),
        ] {
            assert_eq!(read(Path::new(path), 4096).unwrap_err(), expected);
        }
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_fifo_without_a_writer_reads_as_empty_instead_of_hanging() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &path,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        assert_eq!(read(&path, 4096).unwrap().text, "");
    }

    #[test]
    fn only_access_by_other_users_is_worth_a_warning() {
        let path = Path::new("/etc/tenure/key");
        assert_eq!(exposure_warning("cluster key file", path, 0o600), None);
        assert_eq!(exposure_warning("cluster key file", path, 0o640), None);
        let warning = exposure_warning("cluster key file", path, 0o644).unwrap();
        assert!(
            warning.starts_with("cluster key file /etc/tenure/key has mode 0644"),
            "{warning}"
        );
        assert!(
            warning.contains("`chmod o-rwx /etc/tenure/key`"),
            "{warning}"
        );
        let writable = exposure_warning("admin token file", path, 0o666).unwrap();
        assert!(writable.contains("read it and replace it"), "{writable}");
    }
}
