//! The fenced store of the chaos runner: the resource a supervised daemon protects with its
//! fencing token (docs/operations.md: Fencing tokens).
//!
//! It accepts a write only if the write's token is at least the highest token it has seen,
//! exactly as the `UPDATE fence ... WHERE token <= $1` of the operations guide, and it records
//! every decision in an append-only log:
//!
//! ```text
//! accepted <token> <highest before> <node> <pid> <seq> <CLOCK_MONOTONIC nanoseconds>
//! rejected <token> <highest before> <node> <pid> <seq> <CLOCK_MONOTONIC nanoseconds>
//! ```
//!
//! The children talk to it over a Unix stream socket (a path in the cluster's directory, so it
//! is reachable from every network namespace and needs no network at all), one request line
//! and one reply line at a time:
//!
//! ```text
//! write <token> <node> <pid> <seq>      ->   ok | rejected <highest>
//! ```
//!
//! Decisions are serialised by one lock and logged before the reply leaves, so a write a child
//! saw acknowledged is in the log (the chaos runner checks that none is missing). The store
//! runs inside the chaos runner's process, on threads of its own; it is never frozen or killed
//! by the faults, which target tenure and its children only.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use tenure_node::cluster::monotonic_nanos;

/// Most connections served at once; a child holds one, so this is far above what a cluster
/// of five ever needs. Connections beyond it are closed at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Longest request line.
pub const MAX_REQUEST: usize = 256;
/// How often idle threads look at the stop flag.
const POLL: Duration = Duration::from_millis(50);

/// What the store decided about one write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    Rejected { highest: u64 },
}

/// One line of the store's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreRecord {
    pub accepted: bool,
    pub token: u64,
    pub highest_before: u64,
    pub node: String,
    pub pid: u32,
    pub seq: u64,
    /// `CLOCK_MONOTONIC` nanoseconds when the store decided.
    pub at: u64,
}

/// The running store. Dropping it stops its threads and removes the socket.
pub struct FencedStore {
    socket: PathBuf,
    state: Arc<Mutex<StoreState>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

struct StoreState {
    highest: u64,
    log: File,
    accepted: u64,
    rejected: u64,
}

impl FencedStore {
    /// Serves on a Unix socket at `socket`, logging to `log` (created or appended to).
    pub fn start(socket: &Path, log: &Path) -> io::Result<FencedStore> {
        let _ = fs::remove_file(socket);
        let listener = UnixListener::bind(socket)?;
        listener.set_nonblocking(true)?;
        let log = File::options().create(true).append(true).open(log)?;
        let state = Arc::new(Mutex::new(StoreState {
            highest: 0,
            log,
            accepted: 0,
            rejected: 0,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (state, stop) = (state.clone(), stop.clone());
            thread::Builder::new()
                .name("fenced-store".to_string())
                .spawn(move || accept_loop(&listener, &state, &stop))?
        };
        Ok(FencedStore {
            socket: socket.to_path_buf(),
            state,
            stop,
            acceptor: Some(acceptor),
        })
    }

    /// The socket's path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The highest token accepted so far.
    pub fn highest(&self) -> u64 {
        lock(&self.state).highest
    }

    /// Writes accepted and rejected so far.
    pub fn counts(&self) -> (u64, u64) {
        let state = lock(&self.state);
        (state.accepted, state.rejected)
    }
}

impl Drop for FencedStore {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let _ = fs::remove_file(&self.socket);
    }
}

/// A poisoned lock only means a connection thread panicked between plain assignments; the
/// state is still consistent enough to serve and to report.
fn lock(state: &Mutex<StoreState>) -> MutexGuard<'_, StoreState> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn accept_loop(listener: &UnixListener, state: &Arc<Mutex<StoreState>>, stop: &Arc<AtomicBool>) {
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        connections.retain(|connection| !connection.is_finished());
        match listener.accept() {
            Ok((stream, _)) if connections.len() < MAX_CONNECTIONS => {
                let (state, stop) = (state.clone(), stop.clone());
                if let Ok(handle) = thread::Builder::new()
                    .name("fenced-store-connection".to_string())
                    .spawn(move || serve(stream, &state, &stop))
                {
                    connections.push(handle);
                }
            }
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => thread::sleep(POLL / 10),
            Err(_) => thread::sleep(POLL / 10),
        }
    }
    for connection in connections {
        let _ = connection.join();
    }
}

fn serve(stream: UnixStream, state: &Mutex<StoreState>, stop: &AtomicBool) {
    if stream.set_nonblocking(false).is_err() || stream.set_read_timeout(Some(POLL)).is_err() {
        return;
    }
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream.take(u64::MAX));
    let mut line = String::new();
    while !stop.load(Ordering::SeqCst) {
        // Each read is bounded: a request longer than MAX_REQUEST closes the connection.
        reader.get_mut().set_limit(MAX_REQUEST as u64);
        match reader.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) if !line.ends_with('\n') => {
                if line.len() >= MAX_REQUEST {
                    return;
                }
                // A partial line (read timeout mid-line); keep it and read on.
                continue;
            }
            Ok(_) => {
                let reply = match parse_request(&line) {
                    Some(request) => match decide(state, &request) {
                        Verdict::Accepted => "ok\n".to_string(),
                        Verdict::Rejected { highest } => format!("rejected {highest}\n"),
                    },
                    None => "error\n".to_string(),
                };
                line.clear();
                if writer.write_all(reply.as_bytes()).is_err() {
                    return;
                }
            }
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => return,
        }
    }
}

/// A parsed `write` request.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Request {
    token: u64,
    node: String,
    pid: u32,
    seq: u64,
}

fn parse_request(line: &str) -> Option<Request> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let ["write", token, node, pid, seq] = fields[..] else {
        return None;
    };
    Some(Request {
        token: token.parse().ok()?,
        node: node.to_string(),
        pid: pid.parse().ok()?,
        seq: seq.parse().ok()?,
    })
}

/// The fencing rule: accept iff `token >= highest`; log before replying.
fn decide(state: &Mutex<StoreState>, request: &Request) -> Verdict {
    let mut state = lock(state);
    let highest_before = state.highest;
    let verdict = if request.token >= highest_before {
        state.highest = request.token;
        state.accepted += 1;
        Verdict::Accepted
    } else {
        state.rejected += 1;
        Verdict::Rejected {
            highest: highest_before,
        }
    };
    let line = format!(
        "{} {} {highest_before} {} {} {} {}\n",
        if verdict == Verdict::Accepted {
            "accepted"
        } else {
            "rejected"
        },
        request.token,
        request.node,
        request.pid,
        request.seq,
        monotonic_nanos()
    );
    // A log that cannot be written would make the acknowledgement check report losses, which
    // is the right outcome for a store that lost its record.
    let _ = state.log.write_all(line.as_bytes());
    verdict
}

/// Reads the store's log; a missing file is an empty log, and torn lines are skipped.
pub fn read_store_log(path: &Path) -> Vec<StoreRecord> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [verdict, token, highest, node, pid, seq, at] = fields[..] else {
                return None;
            };
            Some(StoreRecord {
                accepted: match verdict {
                    "accepted" => true,
                    "rejected" => false,
                    _ => return None,
                },
                token: token.parse().ok()?,
                highest_before: highest.parse().ok()?,
                node: node.to_string(),
                pid: pid.parse().ok()?,
                seq: seq.parse().ok()?,
                at: at.parse().ok()?,
            })
        })
        .collect()
}

/// Sends one write from a blocking client (tests and tools; the children use an async one).
pub fn write_blocking(
    socket: &Path,
    token: u64,
    node: &str,
    pid: u32,
    seq: u64,
) -> io::Result<Verdict> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(format!("write {token} {node} {pid} {seq}\n").as_bytes())?;
    let mut reply = String::new();
    BufReader::new(stream.take(MAX_REQUEST as u64)).read_line(&mut reply)?;
    parse_reply(&reply)
}

/// The store's reply line as a verdict.
pub fn parse_reply(reply: &str) -> io::Result<Verdict> {
    let fields: Vec<&str> = reply.split_whitespace().collect();
    match fields[..] {
        ["ok"] => Ok(Verdict::Accepted),
        ["rejected", highest] => highest
            .parse()
            .map(|highest| Verdict::Rejected { highest })
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, reply.to_string())),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            reply.to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_equal_or_higher_tokens_rejects_lower_and_logs_everything() {
        let directory = tempfile::tempdir().unwrap();
        let socket = directory.path().join("store.sock");
        let log = directory.path().join("store.log");
        let store = FencedStore::start(&socket, &log).unwrap();
        assert_eq!(
            write_blocking(&socket, 3, "n1", 10, 1).unwrap(),
            Verdict::Accepted
        );
        assert_eq!(
            write_blocking(&socket, 3, "n1", 10, 2).unwrap(),
            Verdict::Accepted
        );
        assert_eq!(
            write_blocking(&socket, 5, "n2", 11, 1).unwrap(),
            Verdict::Accepted
        );
        assert_eq!(
            write_blocking(&socket, 3, "n1", 10, 3).unwrap(),
            Verdict::Rejected { highest: 5 }
        );
        assert_eq!(store.highest(), 5);
        assert_eq!(store.counts(), (3, 1));
        drop(store);
        let records = read_store_log(&log);
        assert_eq!(records.len(), 4);
        assert!(records[3].token == 3 && !records[3].accepted && records[3].highest_before == 5);
        assert!(!socket.exists(), "the socket is removed on drop");
    }

    #[test]
    fn malformed_requests_get_an_error_and_change_nothing() {
        let directory = tempfile::tempdir().unwrap();
        let socket = directory.path().join("store.sock");
        let store = FencedStore::start(&socket, &directory.path().join("log")).unwrap();
        let mut stream = UnixStream::connect(&socket).unwrap();
        stream.write_all(b"write x n1 1 1\n").unwrap();
        let mut reply = String::new();
        BufReader::new(stream).read_line(&mut reply).unwrap();
        assert_eq!(reply, "error\n");
        assert_eq!(store.counts(), (0, 0));
    }
}
