//! The cluster key: read from its file, checked, and derived for the settings every member
//! shares. Its `Debug` output never shows the key.

use std::fmt;
use std::path::{Path, PathBuf};

use hmac::Mac;

use super::HmacSha256;
use crate::small_file;

/// The well-known key of `--insecure` mode: all zeros. It provides **no authentication**:
/// anyone who can send a datagram to a node can forge any message, depose the leader and run
/// the daemon twice. Only for a demo on a trusted network or a single machine.
pub const INSECURE_KEY: [u8; 32] = [0; 32];

/// Fewest key bytes accepted from a key file (128 bits).
pub const MIN_KEY_LEN: usize = 16;
/// Most key bytes accepted from a key file (HMAC-SHA256's block size).
pub const MAX_KEY_LEN: usize = 64;

/// Longest key file read: the longest key in hex with generous room for whitespace.
const MAX_KEY_FILE_LEN: u64 = 4096;

/// The secret shared by all members of a cluster. Its `Debug` output never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterKey {
    bytes: Vec<u8>,
}

/// Why a key file was refused. The message names the file and the rule it broke.
#[derive(Debug, thiserror::Error)]
#[error(
    "cluster key file {}: {problem}. The file must hold one line of {} to {} hexadecimal \
     digits ({MIN_KEY_LEN} to {MAX_KEY_LEN} random bytes), for example made with \
     `openssl rand -hex 32`, and every node of the cluster must use the same key",
    .path.display(),
    MIN_KEY_LEN * 2,
    MAX_KEY_LEN * 2
)]
pub struct KeyFileError {
    pub path: PathBuf,
    pub problem: String,
}

impl ClusterKey {
    /// Reads a key from a file holding it in hex, and returns it with the file's permission
    /// bits (for a warning when other users may read it). Leading and trailing whitespace
    /// (such as the newline `openssl rand -hex 32 > key` leaves) is ignored; upper and lower
    /// case are both accepted. The read is bounded in size and never blocks (`small_file`).
    pub fn from_file(path: &Path) -> Result<(ClusterKey, u32), KeyFileError> {
        let key_file_error = |problem: String| KeyFileError {
            path: path.to_path_buf(),
            problem,
        };
        // A valid file is at most a few hundred bytes.
        let file = small_file::read(path, MAX_KEY_FILE_LEN).map_err(key_file_error)?;
        let key = ClusterKey::from_hex(&file.text).map_err(key_file_error)?;
        Ok((key, file.mode))
    }

    /// Parses a key in hex, whitespace around it ignored. The error says what is wrong.
    pub fn from_hex(text: &str) -> Result<ClusterKey, String> {
        let digits = text.trim();
        if digits.is_empty() {
            return Err("it is empty".to_string());
        }
        if let Some(position) = digits.find(|c: char| !c.is_ascii_hexdigit()) {
            return Err(format!(
                "it contains {:?} at position {position}, which is not a hexadecimal digit",
                digits[position..].chars().next().unwrap_or('?')
            ));
        }
        if digits.len() % 2 != 0 {
            return Err(format!(
                "it holds an odd number of hexadecimal digits ({})",
                digits.len()
            ));
        }
        let length = digits.len() / 2;
        if !(MIN_KEY_LEN..=MAX_KEY_LEN).contains(&length) {
            return Err(format!(
                "it holds {} hexadecimal digits ({length} bytes)",
                digits.len()
            ));
        }
        let bytes: Vec<u8> = digits
            .as_bytes()
            .chunks_exact(2)
            .map(|pair| (hex_value(pair[0]) << 4) | hex_value(pair[1]))
            .collect();
        if bytes.iter().all(|&byte| byte == 0) {
            return Err(
                "it is all zeros, the well-known insecure key; generate a random key \
                        (or run with --insecure if no authentication is really intended)"
                    .to_string(),
            );
        }
        Ok(ClusterKey { bytes })
    }

    /// The insecure well-known key, `INSECURE_KEY`. See its documentation.
    pub fn insecure() -> ClusterKey {
        ClusterKey {
            bytes: INSECURE_KEY.to_vec(),
        }
    }

    /// Whether this is `INSECURE_KEY`, so the node can warn about it loudly.
    pub fn is_insecure(&self) -> bool {
        self.bytes == INSECURE_KEY
    }

    /// A key derived from this one for `context`: HMAC-SHA256(key, context).
    ///
    /// The node seals its datagrams under a key derived from the cluster key and the settings
    /// every member must share (the member list and the lease), so that nodes configured
    /// differently cannot talk at all, instead of forming quorums that do not intersect or
    /// leases that outlast their promises. A mismatch then shows as `unauthenticated` drops.
    pub fn derive(&self, context: &[u8]) -> ClusterKey {
        let mut mac = self.mac();
        mac.update(context);
        ClusterKey {
            bytes: mac.finalize().into_bytes().to_vec(),
        }
    }

    /// The MAC that seals and opens datagrams under this key.
    pub(super) fn mac(&self) -> HmacSha256 {
        // HMAC is defined for keys of every length (long keys are hashed, short ones padded),
        // so the hmac crate never refuses one.
        HmacSha256::new_from_slice(&self.bytes).expect("HMAC accepts keys of any length")
    }
}

impl fmt::Debug for ClusterKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_insecure() {
            formatter.write_str("ClusterKey(INSECURE)")
        } else {
            write!(
                formatter,
                "ClusterKey({} bytes, redacted)",
                self.bytes.len()
            )
        }
    }
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        // Callers check `is_ascii_hexdigit` first.
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{DatagramDropReason, Opener, Sealer};

    const KEY_HEX: &str = "00112233445566778899aabbccddeeff0123456789abcdef0123456789abcdef";

    fn key() -> ClusterKey {
        ClusterKey::from_hex(KEY_HEX).unwrap()
    }

    #[test]
    fn parses_hex_keys() {
        let parsed = ClusterKey::from_hex(&format!("  {}\n", KEY_HEX.to_uppercase())).unwrap();
        assert_eq!(parsed, key());
        assert_eq!(parsed.bytes[0..2], [0x00, 0x11]);
        assert_eq!(parsed.bytes.len(), 32);
        assert!(ClusterKey::from_hex(&"1f".repeat(MIN_KEY_LEN)).is_ok());
        assert!(ClusterKey::from_hex(&"1f".repeat(MAX_KEY_LEN)).is_ok());
        assert!(!parsed.is_insecure());
    }

    #[test]
    fn refuses_bad_hex_keys_saying_why() {
        let cases = [
            (String::new(), "empty"),
            ("   \n".to_string(), "empty"),
            ("1f".repeat(MIN_KEY_LEN - 1), "15 bytes"),
            ("1f".repeat(MAX_KEY_LEN + 1), "65 bytes"),
            (format!("{KEY_HEX}0"), "odd number"),
            (format!("{}zz", &KEY_HEX[2..]), "not a hexadecimal digit"),
            (
                format!("{} {}", &KEY_HEX[..32], &KEY_HEX[32..]),
                "not a hexadecimal digit",
            ),
            ("00".repeat(32), "all zeros"),
        ];
        for (text, expected) in cases {
            let problem = ClusterKey::from_hex(&text).unwrap_err();
            assert!(problem.contains(expected), "{text:?}: {problem}");
        }
    }

    #[test]
    fn reads_key_files_and_names_the_file_and_rule_in_errors() {
        let directory = tempfile::tempdir().unwrap();
        let good = directory.path().join("good.key");
        std::fs::write(&good, format!("{KEY_HEX}\n")).unwrap();
        assert_eq!(ClusterKey::from_file(&good).unwrap().0, key());

        let short = directory.path().join("short.key");
        std::fs::write(&short, "abcd\n").unwrap();
        let missing = directory.path().join("missing.key");
        let binary = directory.path().join("binary.key");
        std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
        for path in [short, missing, binary] {
            let message = ClusterKey::from_file(&path).unwrap_err().to_string();
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(
                message.contains("32 to 128 hexadecimal digits"),
                "{message}"
            );
        }
    }

    #[test]
    fn never_prints_the_key() {
        let printed = format!("{:?} {:?}", key(), Sealer::new(&key(), 0, 1));
        assert!(!printed.to_lowercase().contains("0011223344"), "{printed}");
        assert!(!printed.contains("[0, 17, 34"), "{printed}");
        assert_eq!(
            format!("{:?}", ClusterKey::insecure()),
            "ClusterKey(INSECURE)"
        );
        assert!(ClusterKey::insecure().is_insecure());
    }

    #[test]
    fn derived_keys_depend_on_key_and_context() {
        let first = key().derive(b"members n1,n2,n3");
        assert_eq!(first, key().derive(b"members n1,n2,n3"));
        assert_ne!(first, key().derive(b"members n1,n2"));
        assert_ne!(first, ClusterKey::insecure().derive(b"members n1,n2,n3"));
        assert_eq!(first.bytes.len(), 32);
        // A datagram sealed under one derived key does not open under another.
        let datagram = Sealer::new(&first, 1, 1).seal(0, b"x").unwrap();
        let mut opener = Opener::new(&key().derive(b"members n1,n2"), 0, 3);
        assert_eq!(
            opener.open(&datagram),
            Err(DatagramDropReason::Unauthenticated)
        );
    }
}
