//! The members of the cluster: the names operators give them (`n1`, `tenure-0`, …), their
//! addresses, and the mapping onto the core's `NodeId`s and the wire's member indexes.
//!
//! Every node is given the same member set: itself with `--id` and the others with `--peer`.
//! The names are sorted, and a member's `NodeId` (and its index in datagram headers) is its
//! position in that sorted list. So every node computes the same ids without any coordination,
//! and a node whose member set differs from the others' is a configuration error that shows up
//! at once as `unknown_peer` or `unauthenticated` drops, never as a silent mix-up.
//!
//! The state file stores the vote as the name, not the index, so that a vote stays attached to
//! the right node even if an operator later renames or adds members.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use tenure_core::{NodeId, MAX_CLUSTER_SIZE};

/// Longest member name accepted. Names appear in logs, metrics labels and the state file;
/// 63 is the length of a DNS label, so a Kubernetes pod name always fits.
pub const MAX_NAME_LEN: usize = 63;

/// The members of the cluster, in sorted name order. A `Members` that exists is valid: names
/// are distinct and well formed, there are at most `MAX_CLUSTER_SIZE`, and it contains the own
/// node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Members {
    names: Vec<String>,
    own: NodeId,
}

/// Where a peer listens: an IP socket address, or a host name resolved (and re-resolved, since
/// a restarted Kubernetes pod comes back with a new IP) at run time.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PeerAddress {
    Socket(SocketAddr),
    Host { host: String, port: u16 },
}

/// One `--peer NAME=HOST:PORT` argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerSpec {
    pub name: String,
    pub address: PeerAddress,
}

impl Members {
    /// The member set made of `own` and `peers`. The error says which name is wrong and why.
    pub fn new<'a>(own: &str, peers: impl IntoIterator<Item = &'a str>) -> Result<Members, String> {
        validate_name(own).map_err(|problem| format!("--id {own:?}: {problem}"))?;
        let mut names = vec![own.to_string()];
        for peer in peers {
            validate_name(peer).map_err(|problem| format!("--peer {peer:?}: {problem}"))?;
            if peer == own {
                // Every node may be given the same full member list (a StatefulSet shares one
                // command line): the entry for this node itself is skipped.
                continue;
            }
            if names.iter().any(|name| name == peer) {
                return Err(format!(
                    "--peer {peer:?} is given twice; every member needs a distinct name"
                ));
            }
            names.push(peer.to_string());
        }
        if names.len() > MAX_CLUSTER_SIZE {
            return Err(format!(
                "{} members is more than the maximum of {MAX_CLUSTER_SIZE}; run 3 or 5 nodes",
                names.len()
            ));
        }
        names.sort();
        let own = names
            .iter()
            .position(|name| name == own)
            .map(index_to_id)
            .ok_or_else(|| "the own name vanished while sorting".to_string())?;
        Ok(Members { names, own })
    }

    /// This node's id.
    pub fn own_id(&self) -> NodeId {
        self.own
    }

    /// This node's name.
    pub fn own_name(&self) -> &str {
        self.name(self.own).unwrap_or("?")
    }

    /// Every member's id, ascending.
    pub fn ids(&self) -> Vec<NodeId> {
        (0..self.names.len()).map(index_to_id).collect()
    }

    /// The other members' ids, ascending.
    pub fn peer_ids(&self) -> Vec<NodeId> {
        self.ids()
            .into_iter()
            .filter(|id| *id != self.own)
            .collect()
    }

    /// How many members there are (at most `MAX_CLUSTER_SIZE`).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// How many members make a majority: floor(N/2)+1, as `tenure_core::Config::majority`,
    /// for the metrics, which have the member set but not the core's configuration.
    pub fn majority(&self) -> usize {
        self.names.len() / 2 + 1
    }

    /// Never true: a member set contains at least the own node.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The name of `id`, if it is a member.
    pub fn name(&self, id: NodeId) -> Option<&str> {
        self.names
            .get(usize::try_from(id.0).ok()?)
            .map(String::as_str)
    }

    /// The name of `id` for logs: the name, or the raw id if it is not a member.
    pub fn display(&self, id: NodeId) -> String {
        self.name(id)
            .map_or_else(|| id.to_string(), ToString::to_string)
    }

    /// The id of the member called `name`.
    pub fn id(&self, name: &str) -> Option<NodeId> {
        self.names
            .iter()
            .position(|candidate| candidate == name)
            .map(index_to_id)
    }

    /// Every name, sorted.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The index of `id` in datagram headers. Ids are below `MAX_CLUSTER_SIZE`, so they fit.
    pub fn wire_index(id: NodeId) -> u16 {
        u16::try_from(id.0).unwrap_or(u16::MAX)
    }
}

/// Indexes are below `MAX_CLUSTER_SIZE` (9), so the conversion is exact.
fn index_to_id(index: usize) -> NodeId {
    NodeId(u32::try_from(index).unwrap_or(u32::MAX))
}

/// Member names are short identifiers: letters, digits, `.`, `_` and `-`, starting with a
/// letter or digit. They must survive a command line, a metrics label and the state file.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the name is empty".to_string());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("the name is longer than {MAX_NAME_LEN} characters"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("a name must start with a letter or a digit".to_string());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "{bad:?} is not allowed in a name; use letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

impl FromStr for PeerAddress {
    type Err = String;

    /// `IP:PORT`, `[IPv6]:PORT` or `HOST:PORT`.
    fn from_str(text: &str) -> Result<PeerAddress, String> {
        if let Ok(socket) = text.parse::<SocketAddr>() {
            return Ok(PeerAddress::Socket(socket));
        }
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| format!("{text:?} has no port; write HOST:PORT"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| format!("{text:?}: {port:?} is not a port number"))?;
        if port == 0 {
            return Err(format!("{text:?}: port 0 is not a peer's port"));
        }
        let valid_host = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !valid_host {
            return Err(format!(
                "{text:?}: {host:?} is neither an IP address nor a host name"
            ));
        }
        Ok(PeerAddress::Host {
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for PeerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddress::Socket(socket) => write!(f, "{socket}"),
            PeerAddress::Host { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

impl FromStr for PeerSpec {
    type Err = String;

    /// `NAME=HOST:PORT`. Blanks around the entry and around the `=` are ignored, so that
    /// `TENURE_PEERS="n2=a:1, n3=b:2"` reads as it was meant.
    fn from_str(text: &str) -> Result<PeerSpec, String> {
        let text = text.trim();
        let (name, address) = text.split_once('=').ok_or_else(|| {
            format!("{text:?} is not NAME=HOST:PORT (for example n2=10.0.0.2:7101)")
        })?;
        let (name, address) = (name.trim(), address.trim());
        validate_name(name).map_err(|problem| format!("{text:?}: {problem}"))?;
        Ok(PeerSpec {
            name: name.to_string(),
            address: address.parse()?,
        })
    }
}

impl fmt::Display for PeerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, self.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blanks_around_a_peer_entry_are_ignored() {
        for text in [
            " n2=10.0.0.2:7101",
            "n2 = 10.0.0.2:7101 ",
            "\tn2=10.0.0.2:7101\n",
        ] {
            let peer: PeerSpec = text.parse().unwrap();
            assert_eq!(peer.name, "n2", "{text:?}");
            assert_eq!(peer.to_string(), "n2=10.0.0.2:7101", "{text:?}");
        }
        assert!("n 2=10.0.0.2:7101".parse::<PeerSpec>().is_err());
    }

    #[test]
    fn ids_are_positions_in_the_sorted_names_on_every_node() {
        let on_n2 = Members::new("n2", ["n3", "n1"]).unwrap();
        let on_n3 = Members::new("n3", ["n1", "n2"]).unwrap();
        assert_eq!(on_n2.names(), on_n3.names());
        assert_eq!(on_n2.own_id(), NodeId(1));
        assert_eq!(on_n3.own_id(), NodeId(2));
        assert_eq!(on_n2.id("n1"), Some(NodeId(0)));
        assert_eq!(on_n2.name(NodeId(2)), Some("n3"));
        assert_eq!(on_n2.name(NodeId(3)), None);
        assert_eq!(on_n2.peer_ids(), vec![NodeId(0), NodeId(2)]);
        assert_eq!(on_n2.display(NodeId(7)), "node7");
    }

    #[test]
    fn majority_is_the_cores_for_every_cluster_size() {
        for size in 1..=MAX_CLUSTER_SIZE {
            let names: Vec<String> = (1..=size).map(|n| format!("n{n}")).collect();
            let members = Members::new("n1", names.iter().map(String::as_str)).unwrap();
            let config = tenure_core::Config::new(tenure_core::ConfigParams {
                members: members.ids(),
                ..tenure_core::ConfigParams::default()
            })
            .unwrap();
            assert_eq!(members.majority(), config.majority(), "{size} members");
        }
    }

    #[test]
    fn refuses_bad_member_sets_saying_why() {
        let too_many: Vec<String> = (2..=10).map(|n| format!("n{n}")).collect();
        let cases: Vec<(&str, Vec<&str>, &str)> = vec![
            ("", vec![], "empty"),
            ("n1", vec!["n2", "n2"], "given twice"),
            ("n 1", vec![], "not allowed"),
            ("-n1", vec![], "must start"),
            (
                "n1",
                too_many.iter().map(String::as_str).collect(),
                "maximum of 9",
            ),
        ];
        for (own, peers, expected) in cases {
            let error = Members::new(own, peers.clone()).unwrap_err();
            assert!(error.contains(expected), "{own:?} {peers:?}: {error}");
        }
        assert!(Members::new("tenure-0.tenure", ["tenure-1.tenure"]).is_ok());
        // The own name among the peers is skipped, so all nodes can share one list.
        let shared = Members::new("n2", ["n1", "n2", "n3"]).unwrap();
        assert_eq!(shared.names(), ["n1", "n2", "n3"]);
        assert!(validate_name(&"x".repeat(MAX_NAME_LEN + 1)).is_err());
    }

    #[test]
    fn parses_peer_specs() {
        let spec: PeerSpec = "n2=127.0.0.1:7102".parse().unwrap();
        assert_eq!(spec.name, "n2");
        assert_eq!(
            spec.address,
            PeerAddress::Socket("127.0.0.1:7102".parse().unwrap())
        );
        assert_eq!(spec.to_string(), "n2=127.0.0.1:7102");
        let spec: PeerSpec = "n3=[::1]:7103".parse().unwrap();
        assert_eq!(
            spec.address,
            PeerAddress::Socket("[::1]:7103".parse().unwrap())
        );
        let spec: PeerSpec = "tenure-1=tenure-1.tenure.default.svc:7101".parse().unwrap();
        assert_eq!(
            spec.address,
            PeerAddress::Host {
                host: "tenure-1.tenure.default.svc".to_string(),
                port: 7101
            }
        );
        for (bad, expected) in [
            ("n2", "NAME=HOST:PORT"),
            ("n2=127.0.0.1", "no port"),
            ("n2=host:http", "not a port"),
            ("n2=host:0", "port 0"),
            ("n2=:7102", "neither"),
            ("n 2=host:1", "not allowed"),
        ] {
            let error = bad.parse::<PeerSpec>().unwrap_err();
            assert!(error.contains(expected), "{bad:?}: {error}");
        }
    }
}
