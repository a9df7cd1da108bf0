//! Partitions through Linux network namespaces: every node of a chaos cluster runs in a
//! network namespace of its own, joined to a hub namespace by a veth pair whose hub end is a
//! port of a bridge. Cutting a node off is setting its hub end down; healing, setting it up.
//!
//! ```text
//!   NAME-n1: eth0 10.77.0.1 ──veth── h1 ┐
//!   NAME-n2: eth0 10.77.0.2 ──veth── h2 ├─ br0 10.77.0.254   (NAME-hub)
//!   NAME-n3: eth0 10.77.0.3 ──veth── h3 ┘
//! ```
//!
//! Nothing is connected to the machine's own (root) namespace: no interface, address or route
//! is added there, and no datagram can leave the namespaces. The runner reaches the nodes'
//! HTTP APIs from a thread that has entered the hub namespace ([`in_namespace`]); the fenced
//! store and the ledger are files and a Unix socket, which namespaces do not separate.
//!
//! Names carry the runner's process ID (`tenure-chaos-PID-K-…`). Dropping the network deletes
//! every namespace it created, also when a run fails or panics; a run that was killed outright
//! leaves them behind, and the next run deletes those whose process is gone
//! ([`NamespaceNetwork::remove_stale`]). Needs root and `ip` from iproute2
//! (`scripts/chaos-deps.sh` installs it).

use std::ffi::OsString;
use std::fs::{self, File};
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};
use tenure_node::cluster::HttpRoute;
use tenure_node::http_client::Response;

/// Where `ip netns` binds named namespaces.
const NETNS_DIR: &str = "/run/netns";
/// The prefix of every namespace this module creates.
const PREFIX: &str = "tenure-chaos-";
/// The first three octets of the nodes' addresses; node `i` is `.i+1`, the hub's bridge `.254`.
const SUBNET: [u8; 3] = [10, 77, 0];
/// Longest wait for one `ip` command.
const IP_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `work` on a new thread that first enters the network namespace bound at `path` (a file
/// such as `/run/netns/NAME`); sockets `work` opens belong to that namespace. The calling
/// thread's own namespace is never changed.
pub fn in_namespace<T: Send>(
    path: &Path,
    work: impl FnOnce() -> io::Result<T> + Send,
) -> io::Result<T> {
    thread::scope(|scope| {
        scope
            .spawn(|| {
                let namespace = File::open(path)?;
                move_into_link_name_space(namespace.as_fd(), Some(LinkNameSpaceType::Network))?;
                work()
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")))
    })
}

/// Requests to the nodes' HTTP APIs from inside the network namespace bound at its path, as a
/// [`HttpRoute`] of the process cluster.
#[derive(Clone, Debug)]
pub struct InNamespace(pub PathBuf);

impl HttpRoute for InNamespace {
    fn run(&self, request: &(dyn Fn() -> io::Result<Response> + Sync)) -> io::Result<Response> {
        in_namespace(&self.0, request)
    }
}

/// A hub and one namespace per node. See the module docs.
#[derive(Debug)]
pub struct NamespaceNetwork {
    hub: String,
    nodes: Vec<String>,
    /// Namespaces created so far, deleted on drop (also after a failure half-way).
    created: Vec<String>,
}

impl NamespaceNetwork {
    /// Whether namespaces can be used here: `ip` runs and a probe namespace can be created and
    /// deleted. The error says why not.
    pub fn probe() -> Result<(), String> {
        let name = format!("{PREFIX}{}-probe", std::process::id());
        ip(&["netns", "add", &name]).map_err(|error| format!("`ip netns add` failed: {error}"))?;
        ip(&["netns", "delete", &name])
            .map_err(|error| format!("`ip netns delete` failed: {error}"))?;
        Ok(())
    }

    /// Deletes namespaces left by chaos runs whose process no longer exists.
    pub fn remove_stale() {
        let Ok(entries) = fs::read_dir(NETNS_DIR) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(owner) = name
                .strip_prefix(PREFIX)
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok())
            else {
                continue;
            };
            if !Path::new(&format!("/proc/{owner}")).exists() {
                eprintln!("removing the stale network namespace {name} of a dead run");
                let _ = ip(&["netns", "delete", &name]);
            }
        }
    }

    /// Creates the hub and `count` node namespaces, tagged `tag` (unique within this process).
    pub fn create(tag: &str, count: usize) -> io::Result<NamespaceNetwork> {
        assert!((1..=9).contains(&count), "1 to 9 nodes");
        let prefix = format!("{PREFIX}{}-{tag}", std::process::id());
        let mut network = NamespaceNetwork {
            hub: format!("{prefix}-hub"),
            nodes: (1..=count)
                .map(|number| format!("{prefix}-n{number}"))
                .collect(),
            created: Vec::new(),
        };
        let hub = network.hub.clone();
        network.add_namespace(&hub)?;
        ip(&["-n", &hub, "link", "set", "lo", "up"])?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        let hub_address = format!("{}/24", Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], 254));
        ip(&["-n", &hub, "addr", "add", &hub_address, "dev", "br0"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        for index in 0..count {
            let node = network.nodes[index].clone();
            let port = hub_port(index);
            network.add_namespace(&node)?;
            ip(&["-n", &node, "link", "set", "lo", "up"])?;
            // Created inside the node's namespace with its peer moved straight into the hub:
            // neither end ever appears in the root namespace.
            ip(&[
                "-n", &node, "link", "add", "eth0", "type", "veth", "peer", "name", &port, "netns",
                &hub,
            ])?;
            let address = format!("{}/24", network.address(index));
            ip(&["-n", &node, "addr", "add", &address, "dev", "eth0"])?;
            ip(&["-n", &node, "link", "set", "eth0", "up"])?;
            ip(&["-n", &hub, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &hub, "link", "set", &port, "up"])?;
        }
        Ok(network)
    }

    /// Node `index`'s address, inside its namespace.
    pub fn address(&self, index: usize) -> Ipv4Addr {
        let last = u8::try_from(index + 1).expect("at most 9 nodes");
        Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], last)
    }

    /// The command that runs a program in node `index`'s namespace: `ip netns exec NAME`
    /// (which execs the program, so its process ID is the program's).
    pub fn launcher(&self, index: usize) -> Vec<OsString> {
        ["ip", "netns", "exec", &self.nodes[index]]
            .iter()
            .map(OsString::from)
            .collect()
    }

    /// The hub namespace's file, for [`in_namespace`].
    pub fn hub_path(&self) -> PathBuf {
        Path::new(NETNS_DIR).join(&self.hub)
    }

    /// The route a cluster of these nodes sends its HTTP requests by: from the hub namespace.
    pub fn http_route(&self) -> Box<dyn HttpRoute> {
        Box::new(InNamespace(self.hub_path()))
    }

    /// Cuts node `index` off from every other node (and from the runner's HTTP probes).
    pub fn isolate(&self, index: usize) -> io::Result<()> {
        ip(&["-n", &self.hub, "link", "set", &hub_port(index), "down"])
    }

    /// Connects node `index` again.
    pub fn heal(&self, index: usize) -> io::Result<()> {
        ip(&["-n", &self.hub, "link", "set", &hub_port(index), "up"])
    }

    /// A one-line description for the run's header.
    pub fn describe(&self) -> String {
        format!(
            "network namespaces {} and {}-n1..n{} joined by veth pairs to a bridge, {}.0/24",
            self.hub,
            self.hub.trim_end_matches("-hub"),
            self.nodes.len(),
            SUBNET.map(|octet| octet.to_string()).join(".")
        )
    }

    fn add_namespace(&mut self, name: &str) -> io::Result<()> {
        ip(&["netns", "add", name])?;
        self.created.push(name.to_string());
        Ok(())
    }
}

impl Drop for NamespaceNetwork {
    fn drop(&mut self) {
        // Nodes first, then the hub; deleting a namespace destroys its ends of the veth pairs.
        for name in self.created.iter().rev() {
            if let Err(error) = ip(&["netns", "delete", name]) {
                eprintln!("could not delete the network namespace {name}: {error}");
            }
        }
    }
}

fn hub_port(index: usize) -> String {
    format!("h{}", index + 1)
}

/// Runs `ip ARGUMENTS`, bounded in time; an error carries its stderr.
fn ip(arguments: &[&str]) -> io::Result<()> {
    let mut child = Command::new("ip")
        .args(arguments)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let give_up = Instant::now() + IP_TIMEOUT;
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if Instant::now() >= give_up {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "ip {} did not finish within {IP_TIMEOUT:?}",
                    arguments.join(" ")
                ),
            ));
        }
        thread::sleep(Duration::from_millis(2));
    }
    let output = child.wait_with_output()?;
    if output.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "ip {}: {} ({})",
            arguments.join(" "),
            String::from_utf8_lossy(&output.stderr).trim(),
            output.status
        )))
    }
}
