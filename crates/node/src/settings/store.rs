//! The settings of a node that holds its election in a coordination store (`--backend`;
//! protocol: Store leases): what the quorum's flags mean there, and the store-lease core's
//! configuration.

use std::time::Duration;

use tenure_core::{ExpiryJudge, NodeId, StoreLeaseConfig, StoreLeaseParams};

use super::sources::MergedSettings;
use super::{error, human, SettingsError};
use crate::backend::{Backend, ElectionName};

/// The election name when `--election` is not given.
pub const DEFAULT_ELECTION: &str = "default";

/// The checked store settings.
#[derive(Clone, Debug)]
pub struct StoreSettings {
    /// The store. It may hold a password: its `Display` shows `***` instead.
    pub backend: Backend,
    pub election: ElectionName,
    /// Who decides that a tenure ended: the contenders (PostgreSQL) or the store (etcd).
    pub judge: ExpiryJudge,
    /// This node's id in the store's record, derived from its name ([`store_id`]).
    pub id: NodeId,
    pub config: StoreLeaseConfig,
}

impl StoreSettings {
    /// The URL with any password replaced by `***`, for logs and `--dry-run`.
    #[must_use]
    pub fn redacted_url(&self) -> String {
        self.backend.to_string()
    }
}

/// Checks the store settings, if `--backend` is given: the quorum's own flags are refused,
/// since they would do nothing, and the timing becomes the store lease's.
pub(super) fn store_settings(
    merged: &MergedSettings,
    name: &str,
    stop_margin: Duration,
) -> Result<Option<StoreSettings>, SettingsError> {
    let Some(url) = merged.backend.clone() else {
        if merged.election.is_some() {
            return Err(error(
                "--election names an election in a coordination store: it needs --backend",
            ));
        }
        return Ok(None);
    };
    refuse_quorum_flags(merged)?;
    let backend = Backend::parse(&url).map_err(|problem| error(problem.to_string()))?;
    let judge = backend.judge();
    let election = merged.election.as_deref().unwrap_or(DEFAULT_ELECTION);
    let election = ElectionName::parse(election).map_err(|problem| error(problem.to_string()))?;
    let lease = tenure_core::Duration::from_nanos(nanos(merged.lease));
    let mut params = StoreLeaseParams::for_lease(
        lease,
        tenure_core::Duration::from_nanos(nanos(stop_margin)),
        judge,
    );
    params.max_drift_ppm = (merged.max_drift * 1e6).round() as u32;
    let interval = tenure_core::Duration::from_nanos(nanos(merged.heartbeat));
    params.renew_interval = interval;
    params.poll_interval = interval;
    params.request_timeout = interval;
    let config = StoreLeaseConfig::new(params).map_err(|problem| {
        error(format!(
            "--lease {}, --heartbeat {} and --stop-grace do not fit a store lease: {problem}",
            human(merged.lease),
            human(merged.heartbeat)
        ))
    })?;
    Ok(Some(StoreSettings {
        backend,
        election,
        judge,
        id: store_id(name),
        config,
    }))
}

/// This node's id in the store: a hash of its name (FNV-1a, 32 bits). Two nodes whose names
/// collide stay safe (a tenure is named by its token, not the holder's id), they only see each
/// other's record as their own name's.
#[must_use]
pub fn store_id(name: &str) -> NodeId {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in name.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    NodeId(hash)
}

/// The flags of the embedded quorum, which a store-backed node does not use: given anyway,
/// they mean the operator expects something that will not happen.
fn refuse_quorum_flags(merged: &MergedSettings) -> Result<(), SettingsError> {
    let given = [
        ("--peer", !merged.peers.is_empty()),
        ("--listen", merged.listen.is_some()),
        ("--cluster-key-file", merged.cluster_key_file.is_some()),
        ("--insecure", merged.insecure),
    ];
    match given.iter().find(|(_, given)| *given) {
        Some((flag, _)) => Err(error(format!(
            "{flag} is for the embedded quorum, but --backend holds the election in a store: \
             the nodes never talk to each other. Remove {flag}, or remove --backend to run \
             the quorum"
        ))),
        None => Ok(()),
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_ids_are_stable_and_tell_usual_names_apart() {
        assert_eq!(store_id("n1"), store_id("n1"));
        let names = [
            "n1",
            "n2",
            "n3",
            "a",
            "b",
            "dagster-0",
            "dagster-1",
            "scheduler-a",
        ];
        let mut ids: Vec<u32> = names.iter().map(|name| store_id(name).0).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), names.len());
    }
}
