//! The load a store-backed cluster puts on its store: over a steady window (one holder, the
//! others contending), the requests every node counts in its own `/metrics`
//! (`tenure_store_requests_total`, by kind), and beside them what the store itself counted:
//! PostgreSQL's scans of tenure's table (`pg_stat_user_tables`: every statement of tenure's
//! reads one row by key, and the table is so small that it is scanned), etcd's handled KV and
//! Lease RPCs (`grpc_server_handled_total`). The store's figures cover every user of the
//! table or the server: another election or client at the same time adds to them.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tenure_harness::metric;
use tenure_harness::stores::Stores;
use tenure_node::backend::POSTGRES_TABLE;

use crate::session::Bench;
use crate::store_results::{BackendKind, NodeRequests, StoreLoad};
use crate::tenure::Measured;
use crate::Failure;

/// The kinds of store request, in the order of `tenure_core::StoreOp::KINDS` (the `op` label
/// of `tenure_store_requests_total`).
pub(crate) const REQUEST_KINDS: [&str; 4] = ["read", "acquire", "renew", "release"];
/// How long a request to the store's own statistics may take.
const STATISTICS_TIMEOUT: Duration = Duration::from_secs(5);

impl Bench<'_> {
    /// Watches the steady cluster for `--idle` and counts its requests to the store.
    pub(crate) fn store_load(
        &mut self,
        measured: &Measured,
        backend: BackendKind,
        stores: &Stores,
    ) -> Result<StoreLoad, Failure> {
        let cluster = &measured.cluster;
        let holder = measured.healthy.leader;
        self.say(&format!(
            "{} {} nodes: counting store requests over {} s of steady state",
            backend.name(),
            cluster.nodes.len(),
            self.args.idle.as_secs()
        ));
        let store_before = store_counter(backend, stores);
        let before: Vec<Option<[u64; 4]>> = (0..cluster.nodes.len())
            .map(|index| node_requests(cluster, index))
            .collect();
        let started = Instant::now();
        self.sleep(self.args.idle)?;
        let after: Vec<Option<[u64; 4]>> = (0..cluster.nodes.len())
            .map(|index| node_requests(cluster, index))
            .collect();
        let window = started.elapsed();
        let store_after = store_counter(backend, stores);
        let mut nodes = Vec::new();
        for (index, (before, after)) in before.iter().zip(&after).enumerate() {
            let (Some(before), Some(after)) = (before, after) else {
                self.say(&format!(
                    "note: {} did not answer /metrics",
                    cluster.nodes[index].name
                ));
                continue;
            };
            nodes.push(NodeRequests {
                name: cluster.nodes[index].name.clone(),
                holds: index == holder,
                requests: difference(before, after),
            });
        }
        let store_side = match (store_before, store_after) {
            (Some((before, what)), Some((after, _))) => Some((after - before, what)),
            _ => None,
        };
        Ok(StoreLoad {
            window,
            poll_interval: cluster.timing.heartbeat,
            nodes,
            store_side,
        })
    }
}

/// Node `index`'s store requests so far, by kind (`REQUEST_KINDS`), from its `/metrics`.
fn node_requests(cluster: &tenure_harness::Cluster, index: usize) -> Option<[u64; 4]> {
    parse_requests(&cluster.get(index, "/metrics").ok()?.body)
}

/// `tenure_store_requests_total{op="KIND"}` for every kind, from a node's `/metrics`.
fn parse_requests(text: &str) -> Option<[u64; 4]> {
    let mut counts = [0; 4];
    for (count, kind) in counts.iter_mut().zip(REQUEST_KINDS) {
        let series = format!("tenure_store_requests_total{{op=\"{kind}\"}}");
        *count = metric(text, &series)? as u64;
    }
    Some(counts)
}

fn difference(before: &[u64; 4], after: &[u64; 4]) -> [u64; 4] {
    let mut delta = [0; 4];
    for (slot, (before, after)) in delta.iter_mut().zip(before.iter().zip(after)) {
        *slot = after.saturating_sub(*before);
    }
    delta
}

/// The store's own count of requests so far, and what it counts.
fn store_counter(backend: BackendKind, stores: &Stores) -> Option<(f64, String)> {
    match backend {
        BackendKind::Postgres => postgres_scans(&stores.postgres_url).map(|count| {
            (
                count,
                "statements on tenure_elections (pg_stat_user_tables seq_scan + idx_scan)"
                    .to_string(),
            )
        }),
        BackendKind::Etcd => etcd_rpcs(&stores.etcd_endpoints).map(|count| {
            (
                count,
                "KV and Lease RPCs handled (grpc_server_handled_total)".to_string(),
            )
        }),
    }
}

/// The scans of tenure's table in the URL's database, by `psql`: one per read, acquisition,
/// renewal or release (each finds its row by the election's key; a table of a few rows is
/// scanned sequentially, a large one through its primary key). Statistics that are not
/// tenure's own (autovacuum, other tables, other databases) are left out; backends flush
/// theirs at most once a second, which blurs the window's edges by up to a second.
fn postgres_scans(url: &str) -> Option<f64> {
    let query = format!(
        "SELECT COALESCE(seq_scan, 0) + COALESCE(idx_scan, 0) FROM pg_stat_user_tables \
         WHERE relname = '{POSTGRES_TABLE}'"
    );
    let seconds = STATISTICS_TIMEOUT.as_secs();
    let output = command_output(
        Command::new("psql")
            .args(["-X", "-A", "-t", "-c", &query, url])
            .env("PGCONNECT_TIMEOUT", seconds.to_string())
            .env(
                "PGOPTIONS",
                format!("-c statement_timeout={}", seconds * 1000),
            ),
    )?;
    output.trim().parse().ok()
}

/// etcd's handled KV and Lease RPCs so far, from its `/metrics`.
fn etcd_rpcs(endpoints: &str) -> Option<f64> {
    let endpoint = endpoints.split(',').next()?;
    let text = command_output(Command::new("curl").args([
        "-fsS",
        "--max-time",
        &STATISTICS_TIMEOUT.as_secs().to_string(),
        &format!("http://{endpoint}/metrics"),
    ]))?;
    Some(parse_etcd_rpcs(&text))
}

/// The sum of `grpc_server_handled_total` over the KV and Lease services, every method and
/// code.
fn parse_etcd_rpcs(text: &str) -> f64 {
    text.lines()
        .filter(|line| line.starts_with("grpc_server_handled_total{"))
        .filter(|line| {
            line.contains("grpc_service=\"etcdserverpb.KV\"")
                || line.contains("grpc_service=\"etcdserverpb.Lease\"")
        })
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// A command's standard output, if it succeeds. The commands bound their own time
/// (`curl --max-time`, psql's connect and statement timeouts); waiting on the process instead
/// would stall it once its output fills the pipe (etcd's `/metrics` is larger than a pipe).
fn command_output(command: &mut Command) -> Option<String> {
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nodes_requests_are_read_by_kind() {
        let text = "# HELP tenure_store_requests_total x\n\
                    tenure_store_requests_total{op=\"read\"} 17\n\
                    tenure_store_requests_total{op=\"acquire\"} 1\n\
                    tenure_store_requests_total{op=\"renew\"} 40\n\
                    tenure_store_requests_total{op=\"release\"} 0\n";
        assert_eq!(parse_requests(text), Some([17, 1, 40, 0]));
        assert_eq!(parse_requests("tenure_up 1\n"), None);
        assert_eq!(difference(&[17, 1, 40, 0], &[20, 1, 52, 1]), [3, 0, 12, 1]);
    }

    #[test]
    fn etcds_rpcs_are_summed_over_kv_and_lease() {
        let text = "grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"Range\",\
                    grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"} 120\n\
                    grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"LeaseKeepAlive\",\
                    grpc_service=\"etcdserverpb.Lease\",grpc_type=\"bidi_stream\"} 30\n\
                    grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"Check\",\
                    grpc_service=\"grpc.health.v1.Health\",grpc_type=\"unary\"} 9\n\
                    grpc_server_started_total{grpc_method=\"Range\",\
                    grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"} 121\n";
        assert_eq!(parse_etcd_rpcs(text), 150.0);
    }
}
