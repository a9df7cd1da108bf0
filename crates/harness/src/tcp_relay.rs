//! [`TcpRelay`]: a TCP relay between the nodes of a test and a coordination store, which a test
//! can cut for one node at a time (protocol: Store leases; docs/backends.md: When things go
//! wrong, "the holder is cut off from the store").
//!
//! The store-backed end-to-end tests run each node in a network namespace of its own
//! (`netns`); the stores listen on the machine's loopback, which no namespace reaches. The
//! relay's listening socket is opened inside the hub namespace (the caller passes it in, made
//! with `netns::in_namespace`), so the nodes reach it at the hub's address; its connections to
//! the store are opened by ordinary threads, in the namespace the test process runs in. A
//! socket keeps the namespace it was created in, whichever thread uses it.
//!
//! Cutting a source address makes the relay a black hole for it, as a lost network is: bytes
//! from and to its connections stay where they are (nothing is read, nothing closed), and its
//! new connections are accepted but not carried on to the store. The node sees requests go
//! unanswered, not refused. Healing carries on what was held.
//!
//! Bounded: at most [`MAX_CONNECTIONS`] connections at once, two threads each; every blocking
//! call wakes up every [`POLL`] to look at the cut and stop flags. Dropping the relay closes
//! every connection and joins every thread.

use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Most connections relayed at once; a node holds one or two.
pub const MAX_CONNECTIONS: usize = 64;
/// How often blocked threads look at the flags.
const POLL: Duration = Duration::from_millis(20);
/// Longest wait for the store to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The running relay. See the module docs.
pub struct TcpRelay {
    address: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

struct Shared {
    target: SocketAddr,
    cut: Mutex<BTreeSet<IpAddr>>,
    stop: AtomicBool,
}

impl TcpRelay {
    /// Relays every connection `listener` accepts to `target`.
    pub fn start(listener: TcpListener, target: SocketAddr) -> io::Result<TcpRelay> {
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            target,
            cut: Mutex::new(BTreeSet::new()),
            stop: AtomicBool::new(false),
        });
        let acceptor = {
            let shared = shared.clone();
            thread::Builder::new()
                .name("tcp-relay".to_string())
                .spawn(move || accept_loop(&listener, &shared))?
        };
        Ok(TcpRelay {
            address,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// Where the relay listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Black-holes every connection from `source`, open or new.
    pub fn cut(&self, source: IpAddr) {
        lock(&self.shared.cut).insert(source);
    }

    /// Carries `source`'s connections on again.
    pub fn heal(&self, source: IpAddr) {
        lock(&self.shared.cut).remove(&source);
    }
}

impl Drop for TcpRelay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

impl Shared {
    fn is_cut(&self, source: IpAddr) -> bool {
        lock(&self.cut).contains(&source)
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// A poisoned lock only means a relay thread panicked between plain set operations.
fn lock(cut: &Mutex<BTreeSet<IpAddr>>) -> MutexGuard<'_, BTreeSet<IpAddr>> {
    cut.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    while !shared.stopping() {
        connections.retain(|connection| !connection.is_finished());
        match listener.accept() {
            Ok((stream, peer)) if connections.len() < MAX_CONNECTIONS => {
                let shared = shared.clone();
                if let Ok(handle) = thread::Builder::new()
                    .name("tcp-relay-connection".to_string())
                    .spawn(move || relay(stream, peer.ip(), &shared))
                {
                    connections.push(handle);
                }
            }
            // Over the bound: the connection is dropped, closing it.
            Ok(_) => {}
            Err(_) => thread::sleep(POLL),
        }
    }
    for connection in connections {
        let _ = connection.join();
    }
}

/// Carries one connection from `source` to the store, in both directions, until either side
/// closes it or the relay stops.
fn relay(client: TcpStream, source: IpAddr, shared: &Arc<Shared>) {
    // A cut node's new connection waits here, accepted but not carried on.
    while shared.is_cut(source) {
        if shared.stopping() {
            return;
        }
        thread::sleep(POLL);
    }
    let Ok(server) = TcpStream::connect_timeout(&shared.target, CONNECT_TIMEOUT) else {
        return;
    };
    let streams = [client, server];
    for stream in &streams {
        if stream.set_nonblocking(false).is_err()
            || stream.set_read_timeout(Some(POLL)).is_err()
            || stream.set_nodelay(true).is_err()
        {
            return;
        }
    }
    let (Ok(client_reader), Ok(server_reader)) = (streams[0].try_clone(), streams[1].try_clone())
    else {
        return;
    };
    let [client_writer, server_writer] = streams;
    thread::scope(|scope| {
        scope.spawn(|| pump(client_reader, server_writer, source, shared));
        pump(server_reader, client_writer, source, shared);
    });
}

/// Copies `from` to `to` while `source` is not cut; ends both directions when either side
/// closes or fails.
fn pump(mut from: TcpStream, mut to: TcpStream, source: IpAddr, shared: &Shared) {
    let mut buffer = [0u8; 16 * 1024];
    while !shared.stopping() {
        if shared.is_cut(source) {
            thread::sleep(POLL);
            continue;
        }
        match from.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => {
                // A read that was under way when the cut began may return bytes sent after
                // it: they are held too, until the source is healed.
                while shared.is_cut(source) && !shared.stopping() {
                    thread::sleep(POLL);
                }
                if to.write_all(&buffer[..read]).is_err() {
                    break;
                }
            }
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo_server() -> (SocketAddr, JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let handle = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut buffer = [0u8; 64];
            loop {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => return,
                    Ok(read) => stream.write_all(&buffer[..read]).unwrap(),
                }
            }
        });
        (address, handle)
    }

    fn round_trip(stream: &mut TcpStream, text: &[u8]) -> io::Result<Vec<u8>> {
        stream.write_all(text)?;
        let mut reply = vec![0u8; text.len()];
        stream.read_exact(&mut reply)?;
        Ok(reply)
    }

    #[test]
    fn relays_and_black_holes_a_cut_source_until_it_is_healed() {
        let (server, echo) = echo_server();
        let relay = TcpRelay::start(TcpListener::bind("127.0.0.1:0").unwrap(), server).unwrap();
        let mut client = TcpStream::connect(relay.address()).unwrap();
        client
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();

        // Carried through while not cut.
        assert_eq!(round_trip(&mut client, b"one").unwrap(), b"one");

        // Cut: the request is accepted by the kernel but never answered, nor refused.
        relay.cut(client.local_addr().unwrap().ip());
        let silent = round_trip(&mut client, b"two").unwrap_err();
        assert!(
            matches!(
                silent.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{silent}"
        );

        // Healed: what was held arrives, and the connection works again.
        relay.heal(client.local_addr().unwrap().ip());
        let mut held = [0u8; 3];
        client.read_exact(&mut held).unwrap();
        assert_eq!(&held, b"two");
        assert_eq!(round_trip(&mut client, b"three").unwrap(), b"three");

        drop(client);
        drop(relay);
        echo.join().unwrap();
    }
}
