//! The nodes' HTTP API as the cluster's user sees it: any request, `/status`, and which nodes
//! act.

use std::io;
use std::time::Duration;

use serde_json::Value;

use super::ProcessCluster;
use crate::http_client::{self, Response};

/// Longest time one request to a node may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// A way to reach the nodes' HTTP APIs other than from the calling thread as it is, such as
/// from inside the network namespace the nodes run in.
pub trait HttpRoute {
    /// Runs `request` (which opens its own connection) where the nodes can be reached, and
    /// returns what it returned.
    fn run(&self, request: &(dyn Fn() -> io::Result<Response> + Sync)) -> io::Result<Response>;
}

impl ProcessCluster {
    /// A request with an empty body to node `index`'s HTTP API.
    pub fn request(
        &self,
        index: usize,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> io::Result<Response> {
        let address = self.nodes[index].http.to_string();
        let send = || http_client::request(&address, method, path, headers, REQUEST_TIMEOUT);
        match &self.http_route {
            Some(route) => route.run(&send),
            None => send(),
        }
    }

    /// `GET path` on node `index`.
    pub fn get(&self, index: usize, path: &str) -> io::Result<Response> {
        self.request(index, "GET", path, &[])
    }

    /// Node `index`'s `/status`, if it answers.
    pub fn status(&self, index: usize) -> Option<Value> {
        self.get(index, "/status").ok()?.json().ok()
    }

    /// The running nodes that report acting, with their fencing tokens.
    pub fn acting(&self) -> Vec<(usize, u64)> {
        (0..self.nodes.len())
            .filter(|index| self.is_running(*index))
            .filter_map(|index| {
                let status = self.status(index)?;
                (status["acting"].as_bool() == Some(true))
                    .then(|| (index, status["fencing_token"].as_u64().unwrap_or(0)))
            })
            .collect()
    }

    /// Whether node `index` follows node `leader` and is out of its boot quarantine, so that
    /// it can vote in the next election.
    pub fn follows(&self, index: usize, leader: usize) -> bool {
        let leader_name = self.nodes[leader].name.as_str();
        self.status(index).is_some_and(|status| {
            status["leader"].as_str() == Some(leader_name)
                && status["quarantine_remaining_ms"].is_null()
        })
    }
}
