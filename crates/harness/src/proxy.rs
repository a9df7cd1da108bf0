//! Partitions through a UDP fault proxy, where network namespaces are unavailable (not root,
//! no iproute2). Every node gets a proxy socket on loopback that the other nodes use as its
//! address (`Node::advertised`); the proxy forwards each datagram to the node unless the sender
//! or the receiver is cut off. tenure does not check source addresses (the datagram's tag
//! proves the sender), and replies go to the configured address, that is through the proxy
//! again, so every datagram between two nodes passes one proxy socket.
//!
//! Only election datagrams are cut; the runner still reaches a cut-off node's HTTP API, which
//! namespaces would block too. Loopback only: the proxy sockets are on 127.0.1.x.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How often a proxy thread looks at the stop flag.
const POLL: Duration = Duration::from_millis(50);
/// Largest datagram forwarded; tenure's are at most 512 bytes.
const MAX_DATAGRAM: usize = 2048;

/// The proxy. Dropping it stops its threads.
pub struct FaultProxy {
    addresses: Vec<SocketAddr>,
    /// Bit `i` set: node `i` is cut off.
    isolated: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// Datagrams forwarded and dropped, over all nodes.
    counters: Arc<[AtomicU64; 2]>,
}

impl FaultProxy {
    /// One proxy socket per node, in front of the nodes' real addresses `targets`.
    pub fn start(targets: &[SocketAddr]) -> io::Result<FaultProxy> {
        assert!(targets.len() <= 64, "a bit per node");
        let isolated = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let counters: Arc<[AtomicU64; 2]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let mut proxy = FaultProxy {
            addresses: Vec::new(),
            isolated: isolated.clone(),
            stop: stop.clone(),
            threads: Vec::new(),
            counters: counters.clone(),
        };
        for (index, target) in targets.iter().enumerate() {
            let socket = UdpSocket::bind(format!("127.0.1.{}:0", index + 1))?;
            socket.set_read_timeout(Some(POLL))?;
            proxy.addresses.push(socket.local_addr()?);
            let (isolated, stop, counters) = (isolated.clone(), stop.clone(), counters.clone());
            let senders = targets.to_vec();
            let target = *target;
            proxy.threads.push(
                thread::Builder::new()
                    .name(format!("fault-proxy-{}", index + 1))
                    .spawn(move || {
                        forward(
                            &socket, index, target, &senders, &isolated, &stop, &counters,
                        )
                    })?,
            );
        }
        Ok(proxy)
    }

    /// The address the other nodes must use for node `index`.
    pub fn address(&self, index: usize) -> SocketAddr {
        self.addresses[index]
    }

    /// Cuts node `index` off from every other node.
    pub fn isolate(&self, index: usize) {
        self.isolated.fetch_or(1 << index, Ordering::SeqCst);
    }

    /// Connects node `index` again.
    pub fn heal(&self, index: usize) {
        self.isolated.fetch_and(!(1 << index), Ordering::SeqCst);
    }

    /// Datagrams forwarded and dropped so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.counters[0].load(Ordering::Relaxed),
            self.counters[1].load(Ordering::Relaxed),
        )
    }

    /// A one-line description for the run's header.
    pub fn describe(&self) -> String {
        format!(
            "a UDP fault proxy on 127.0.1.x in front of each node ({} sockets)",
            self.addresses.len()
        )
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn forward(
    socket: &UdpSocket,
    index: usize,
    target: SocketAddr,
    senders: &[SocketAddr],
    isolated: &AtomicU64,
    stop: &AtomicBool,
    counters: &[AtomicU64; 2],
) {
    let mut buffer = [0u8; MAX_DATAGRAM];
    while !stop.load(Ordering::SeqCst) {
        let Ok((length, source)) = socket.recv_from(&mut buffer) else {
            continue;
        };
        let cut = isolated.load(Ordering::SeqCst);
        let sender = senders.iter().position(|address| *address == source);
        let blocked = |node: usize| cut & (1 << node) != 0;
        let dropped = blocked(index) || sender.is_some_and(blocked);
        if dropped {
            counters[1].fetch_add(1, Ordering::Relaxed);
        } else {
            counters[0].fetch_add(1, Ordering::Relaxed);
            let _ = socket.send_to(&buffer[..length], target);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_until_a_side_is_cut_off() {
        let node_a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let node_b = UdpSocket::bind("127.0.0.1:0").unwrap();
        node_b
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let targets = [node_a.local_addr().unwrap(), node_b.local_addr().unwrap()];
        let proxy = FaultProxy::start(&targets).unwrap();
        let mut buffer = [0u8; 16];

        node_a.send_to(b"one", proxy.address(1)).unwrap();
        let (length, _) = node_b.recv_from(&mut buffer).unwrap();
        assert_eq!(&buffer[..length], b"one");

        proxy.isolate(0);
        node_a.send_to(b"two", proxy.address(1)).unwrap();
        assert!(node_b.recv_from(&mut buffer).is_err(), "a cut-off sender");

        proxy.heal(0);
        node_a.send_to(b"three", proxy.address(1)).unwrap();
        let (length, _) = node_b.recv_from(&mut buffer).unwrap();
        assert_eq!(&buffer[..length], b"three");
        assert_eq!(proxy.counts(), (2, 1));
    }
}
