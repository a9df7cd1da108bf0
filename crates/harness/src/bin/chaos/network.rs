//! How partitions are made: network namespaces with veth pairs when the runner may (root and
//! `ip`), else a UDP fault proxy on loopback. Either way, nothing leaves loopback or the
//! namespaces the runner creates.

use std::net::SocketAddr;

use tenure_harness::netns::NamespaceNetwork;
use tenure_harness::proxy::FaultProxy;
use tenure_harness::Cluster;

use crate::{Abort, PartitionMode};

/// What the runner uses, with the reason, for the header and the summary.
pub(crate) type PartitionChoice = (PartitionMode, String);

/// How partitions are made.
pub(crate) enum Network {
    Namespaces(NamespaceNetwork),
    Proxy(FaultProxy),
}

impl Network {
    pub(crate) fn isolate(&self, index: usize) -> Result<(), String> {
        match self {
            Network::Namespaces(network) => {
                network.isolate(index).map_err(|error| error.to_string())
            }
            Network::Proxy(proxy) => {
                proxy.isolate(index);
                Ok(())
            }
        }
    }

    pub(crate) fn heal(&self, index: usize) -> Result<(), String> {
        match self {
            Network::Namespaces(network) => network.heal(index).map_err(|error| error.to_string()),
            Network::Proxy(proxy) => {
                proxy.heal(index);
                Ok(())
            }
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Network::Namespaces(network) => network.describe(),
            Network::Proxy(proxy) => proxy.describe(),
        }
    }
}

impl Network {
    /// Sets up the partitions of campaign `number` around the prepared (not yet started)
    /// `cluster`: in namespaces, every node gets its namespace's address, its launcher and the
    /// cluster's HTTP route; with the proxy, the nodes send to each other through it.
    pub(crate) fn around(
        cluster: &mut Cluster,
        mode: PartitionMode,
        number: usize,
    ) -> Result<Network, Abort> {
        match mode {
            PartitionMode::Namespaces => {
                let network = NamespaceNetwork::create(&number.to_string(), cluster.nodes.len())
                    .map_err(|error| {
                        Abort::Setup(format!("cannot create the namespaces: {error}"))
                    })?;
                for (index, node) in cluster.nodes.iter_mut().enumerate() {
                    let address = network.address(index).into();
                    node.udp = SocketAddr::new(address, 7101);
                    node.advertised = node.udp;
                    node.http = SocketAddr::new(address, 8101);
                    node.launcher = network.launcher(index);
                }
                cluster.http_route = Some(network.http_route());
                Ok(Network::Namespaces(network))
            }
            PartitionMode::Auto | PartitionMode::Proxy => {
                let targets: Vec<SocketAddr> = cluster.nodes.iter().map(|node| node.udp).collect();
                let proxy = FaultProxy::start(&targets)
                    .map_err(|error| Abort::Setup(format!("cannot start the proxy: {error}")))?;
                for (index, node) in cluster.nodes.iter_mut().enumerate() {
                    node.advertised = proxy.address(index);
                }
                Ok(Network::Proxy(proxy))
            }
        }
    }
}

/// The partition mode for `--partition`: namespaces need root and a working `ip`.
pub(crate) fn choose_partition_mode(asked: PartitionMode) -> Result<PartitionChoice, Abort> {
    let namespaces = || {
        if !rustix::process::geteuid().is_root() {
            return Err("not root".to_string());
        }
        NamespaceNetwork::remove_stale();
        NamespaceNetwork::probe()
    };
    match asked {
        PartitionMode::Proxy => Ok((
            PartitionMode::Proxy,
            "a UDP fault proxy on loopback (--partition proxy)".to_string(),
        )),
        PartitionMode::Namespaces => namespaces()
            .map(|()| {
                (
                    PartitionMode::Namespaces,
                    "network namespaces with veth pairs".to_string(),
                )
            })
            .map_err(|problem| {
                Abort::Setup(format!(
                    "network namespaces are unavailable ({problem}); run \
                     scripts/chaos-deps.sh as root, or use --partition proxy"
                ))
            }),
        PartitionMode::Auto => Ok(match namespaces() {
            Ok(()) => (
                PartitionMode::Namespaces,
                "network namespaces with veth pairs".to_string(),
            ),
            Err(problem) => (
                PartitionMode::Proxy,
                format!(
                    "a UDP fault proxy on loopback, because network namespaces are \
                     unavailable here ({problem})"
                ),
            ),
        }),
    }
}
