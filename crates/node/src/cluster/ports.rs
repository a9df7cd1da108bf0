//! Free ports on loopback, picked by the kernel: bind port 0, read the port, let it go. Another
//! process could take the port before the node binds it; on loopback, with ports from the
//! kernel's ephemeral range, that is rare enough for a demo and for tests.

use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};

/// A free UDP port on `ip`, as an address.
pub fn free_udp(ip: &str) -> io::Result<SocketAddr> {
    UdpSocket::bind((ip, 0))?.local_addr()
}

/// A free TCP port on `ip`, as an address.
pub fn free_tcp(ip: &str) -> io::Result<SocketAddr> {
    TcpListener::bind((ip, 0))?.local_addr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ports_are_on_the_address_asked_for_and_can_be_bound() {
        let udp = free_udp("127.0.0.3").unwrap();
        assert_eq!(udp.ip().to_string(), "127.0.0.3");
        assert_ne!(udp.port(), 0);
        UdpSocket::bind(udp).unwrap();
        let tcp = free_tcp("127.0.0.1").unwrap();
        assert_eq!(tcp.ip().to_string(), "127.0.0.1");
        TcpListener::bind(tcp).unwrap();
    }
}
