//! The driver's [`Storage`] on the state file: the core's `PersistentState` (ids) stored as the
//! state file's `StoredState` (names), keeping the boot incarnation.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use tenure_core::{NodeId, PersistentState, Term, MAX_TERM};

use crate::members::Members;
use crate::state_file::{StateFile, StoredState};
use tenure_driver::Storage;

/// The state file of a running node. Open it, call `StateFile::begin_boot`, then wrap it.
///
/// The file is shared with the transport, which raises the incarnation when peers refuse this
/// node's datagrams (`StateFile::raise_incarnation`); every store keeps the incarnation the
/// file holds at that moment, so a vote written later never takes a raised incarnation back.
#[derive(Debug)]
pub struct StateStorage {
    file: Arc<Mutex<StateFile>>,
    members: Members,
    /// The incarnation of this boot, for a file that has stored nothing yet.
    incarnation: u64,
}

impl StateStorage {
    /// Wraps an open state file whose boot has begun with `incarnation`.
    pub fn new(file: StateFile, members: Members, incarnation: u64) -> StateStorage {
        StateStorage::shared(Arc::new(Mutex::new(file)), members, incarnation)
    }

    /// Wraps a state file shared with the transport.
    pub fn shared(file: Arc<Mutex<StateFile>>, members: Members, incarnation: u64) -> StateStorage {
        StateStorage {
            file,
            members,
            incarnation,
        }
    }

    fn file(&self) -> MutexGuard<'_, StateFile> {
        lock_state_file(&self.file)
    }
}

/// Locks a shared state file. A panic while holding the lock happened between whole-file
/// writes (each is a rename), so the file and its cached state are still consistent.
pub fn lock_state_file(file: &Mutex<StateFile>) -> MutexGuard<'_, StateFile> {
    file.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Storage for StateStorage {
    fn load(&mut self) -> io::Result<Option<PersistentState>> {
        let file = self.file();
        let Some(stored) = file.current() else {
            return Ok(None);
        };
        assert!(
            stored.incarnation >= self.incarnation,
            "the boot began (StateFile::begin_boot) before the state file was wrapped"
        );
        check_loaded(stored, file.path())?;
        // `begin_boot` stores a state even for a fresh node; term 0 without a vote is exactly
        // what a fresh node has, so it loads as "nothing persisted" and the core treats the
        // boot as a first boot (which matters only for a cluster of one).
        if stored.term == 0 && stored.voted_for.is_none() {
            return Ok(None);
        }
        let voted_for = match &stored.voted_for {
            None => None,
            Some(name) => Some(self.members.id(name).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "state file {} records a vote for {name:?} in term {}, but {name:?} is \
                         not a member (members: {}). Every node must be given the same member \
                         set, and it must not change while a node may hold a vote: restore the \
                         previous --peer list, or treat this node's state as lost (see the \
                         operations guide, \"A lost or damaged state file\")",
                        file.path().display(),
                        stored.term,
                        self.members.names().join(", ")
                    ),
                )
            })?),
        };
        Ok(Some(PersistentState {
            term: Term(stored.term),
            voted_for,
        }))
    }

    async fn store(&mut self, state: PersistentState) -> io::Result<()> {
        let voted_for = match state.voted_for {
            None => None,
            Some(id) => Some(self.name(id)?),
        };
        let mut file = self.file();
        let incarnation = file
            .current()
            .map_or(self.incarnation, |stored| stored.incarnation);
        let stored = StoredState {
            term: state.term.0,
            voted_for,
            incarnation,
        };
        // A synchronous write and fsync, on purpose: nothing that depends on this state may
        // happen before it is durable, so there is nothing useful to run meanwhile.
        file.store(&stored).map_err(io::Error::other)
    }
}

/// Re-validates what the state file held beyond its syntax and checksum: values this node
/// could have written. A term beyond the core's range, or a vote in term 0 (nobody votes
/// before the first election), means a hand-edited file or a bug; booting on it could cast a
/// second vote, so the node refuses to start.
fn check_loaded(stored: &StoredState, path: &std::path::Path) -> io::Result<()> {
    let problem = if stored.term > MAX_TERM.0 {
        format!("term {} is beyond the maximum of {MAX_TERM}", stored.term)
    } else if stored.term == 0 && stored.voted_for.is_some() {
        "it records a vote in term 0, in which nobody votes".to_string()
    } else {
        return Ok(());
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "state file {}: {problem}. tenure never writes this, so the file was edited or \
             written by a faulty program: treat this node's state as lost (see the operations \
             guide, \"A lost or damaged state file\")",
            path.display()
        ),
    ))
}

impl StateStorage {
    fn name(&self, id: NodeId) -> io::Result<String> {
        self.members.name(id).map(str::to_string).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the core voted for {id}, which is not a member"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members() -> Members {
        Members::new("n1", ["n2", "n3"]).unwrap()
    }

    #[tokio::test]
    async fn stores_votes_as_names_and_loads_them_back_as_ids() {
        let directory = tempfile::tempdir().unwrap();
        let (mut file, _) = StateFile::open(directory.path()).unwrap();
        let incarnation = file.begin_boot().unwrap();
        let mut storage = StateStorage::new(file, members(), incarnation);
        // A fresh node: begin_boot stored term 0 and no vote, which is "nothing persisted".
        assert_eq!(storage.load().unwrap(), None);
        let state = PersistentState {
            term: Term(4),
            voted_for: Some(NodeId(2)),
        };
        storage.store(state).await.unwrap();
        drop(storage);

        let text = std::fs::read_to_string(directory.path().join("state")).unwrap();
        assert!(text.contains("voted_for n3"), "{text}");
        assert!(
            text.contains(&format!("incarnation {incarnation}")),
            "{text}"
        );
        let (file, _) = StateFile::open(directory.path()).unwrap();
        let mut storage = StateStorage::new(file, members(), incarnation);
        assert_eq!(storage.load().unwrap(), Some(state));
    }

    #[tokio::test]
    async fn a_vote_for_a_name_that_is_no_member_is_an_error_that_names_the_file() {
        let directory = tempfile::tempdir().unwrap();
        let (mut file, _) = StateFile::open(directory.path()).unwrap();
        file.store(&StoredState {
            term: 3,
            voted_for: Some("n9".to_string()),
            incarnation: 1,
        })
        .unwrap();
        let incarnation = file.begin_boot().unwrap();
        let mut storage = StateStorage::new(file, members(), incarnation);
        let error = storage.load().unwrap_err().to_string();
        assert!(error.contains("\"n9\" is not a member"), "{error}");
        assert!(
            error.contains(&directory.path().display().to_string()),
            "{error}"
        );
    }

    #[test]
    fn a_state_tenure_never_writes_is_refused_on_load() {
        // The checksum matches (the file was edited and re-checksummed), but no node writes a
        // term beyond the core's range or a vote in term 0.
        for (term, voted_for, expected) in [
            (MAX_TERM.0 + 1, None, "beyond the maximum"),
            (u64::MAX, Some("n2"), "beyond the maximum"),
            (0, Some("n2"), "a vote in term 0"),
        ] {
            let directory = tempfile::tempdir().unwrap();
            let (mut file, _) = StateFile::open(directory.path()).unwrap();
            file.store(&StoredState {
                term,
                voted_for: voted_for.map(str::to_string),
                incarnation: 1,
            })
            .unwrap();
            let incarnation = file.begin_boot().unwrap();
            let mut storage = StateStorage::new(file, members(), incarnation);
            let error = storage.load().unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData);
            let error = error.to_string();
            assert!(error.contains(expected), "{term}: {error}");
            assert!(error.contains("state file"), "{error}");
        }
        // The largest term the core accepts still loads.
        let directory = tempfile::tempdir().unwrap();
        let (mut file, _) = StateFile::open(directory.path()).unwrap();
        file.store(&StoredState {
            term: MAX_TERM.0,
            voted_for: Some("n2".to_string()),
            incarnation: 1,
        })
        .unwrap();
        let incarnation = file.begin_boot().unwrap();
        let mut storage = StateStorage::new(file, members(), incarnation);
        assert_eq!(
            storage.load().unwrap(),
            Some(PersistentState {
                term: MAX_TERM,
                voted_for: Some(NodeId(1)),
            })
        );
    }
}
