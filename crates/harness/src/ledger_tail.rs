//! Reading a growing ledger incrementally. The children of a long chaos run append alive
//! stamps many times a second, so re-reading the whole file at every poll (as the short
//! end-to-end tests do with `read_ledger`) would cost more CPU than the cluster under test.
//! A [`LedgerTail`] reads only what was appended since its last poll and keeps the starts and
//! stops.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::ledger::{parse_ledger_line, LedgerEntry, LedgerEvent};

/// Most bytes read per poll; a poll that finds more reads the rest at the next one.
const MAX_READ: u64 = 4 << 20;

/// The starts and stops of a ledger, kept up to date by [`LedgerTail::poll`].
#[derive(Debug)]
pub struct LedgerTail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
    starts: Vec<LedgerEntry>,
    stops: BTreeMap<u32, LedgerEntry>,
}

impl LedgerTail {
    /// A tail of the ledger at `path`, from its beginning.
    pub fn new(path: &Path) -> LedgerTail {
        LedgerTail {
            path: path.to_path_buf(),
            offset: 0,
            partial: Vec::new(),
            starts: Vec::new(),
            stops: BTreeMap::new(),
        }
    }

    /// Reads what was appended since the last poll. A missing file is an empty ledger.
    pub fn poll(&mut self) {
        let Ok(mut file) = File::open(&self.path) else {
            return;
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut fresh = Vec::new();
        let Ok(read) = file.take(MAX_READ).read_to_end(&mut fresh) else {
            return;
        };
        self.offset += read as u64;
        self.partial.extend_from_slice(&fresh);
        // Only complete lines are parsed; the rest waits for the next poll.
        let Some(last_newline) = self.partial.iter().rposition(|byte| *byte == b'\n') else {
            return;
        };
        let complete: Vec<u8> = self.partial.drain(..=last_newline).collect();
        for line in String::from_utf8_lossy(&complete).lines() {
            let Some(entry) = parse_ledger_line(line) else {
                continue;
            };
            match entry.event {
                LedgerEvent::Start => self.starts.push(entry),
                LedgerEvent::Stop => {
                    self.stops.insert(entry.pid, entry);
                }
                LedgerEvent::Alive => {}
            }
        }
    }

    /// Every start so far, in ledger order.
    pub fn starts(&self) -> &[LedgerEntry] {
        &self.starts
    }

    /// The first start with a token above `above`.
    pub fn start_above(&self, above: u64) -> Option<&LedgerEntry> {
        self.starts.iter().find(|entry| entry.token > above)
    }

    /// The stop of the child with process ID `pid`, if recorded.
    pub fn stop_of(&self, pid: u32) -> Option<&LedgerEntry> {
        self.stops.get(&pid)
    }

    /// The children that started and have not recorded a stop.
    pub fn running(&self) -> Vec<&LedgerEntry> {
        self.starts
            .iter()
            .filter(|entry| !self.stops.contains_key(&entry.pid))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn reads_only_complete_lines_and_keeps_up_with_appends() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("ledger");
        let mut tail = LedgerTail::new(&path);
        tail.poll();
        assert!(tail.starts().is_empty());
        let mut file = File::options()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"n1 1 start 10 100 n1\nn1 1 alive 20 100 n1\nn1 1 st")
            .unwrap();
        tail.poll();
        assert_eq!(tail.starts().len(), 1);
        assert_eq!(tail.running().len(), 1);
        file.write_all(b"op 30 100 n1\nn2 2 start 40 101 n2\n")
            .unwrap();
        tail.poll();
        assert_eq!(tail.stop_of(100).map(|entry| entry.at), Some(30));
        assert_eq!(tail.start_above(1).map(|entry| entry.pid), Some(101));
        assert_eq!(tail.running().len(), 1);
        assert_eq!(tail.running()[0].node, "n2");
    }
}
