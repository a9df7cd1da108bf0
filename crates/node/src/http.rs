//! The HTTP API of a running node. Every response is JSON except `/metrics`.
//!
//! | request           | answer                                                               |
//! |-------------------|----------------------------------------------------------------------|
//! | `GET /`           | `{"name": "<leader>"}` (`""` if none known), like the Kubernetes leader-elector sidecar |
//! | `GET /health`     | 200 while the process and its election loop are healthy, else 503     |
//! | `GET /ready`      | 200 only while this node acts, else 503 (route a Service to the leader) |
//! | `GET /joined`     | 200 once this node has left its boot quarantine and knows the leader: it can vote in the next election (a StatefulSet's readiness probe; the rolling-upgrade gate) |
//! | `GET /status`     | id, role, term, leader, acting, fencing token, lease remaining, peers |
//! | `GET /metrics`    | Prometheus text                                                      |
//! | `POST /step-down` | graceful resign; `?successor=NAME` optional; needs `Authorization: Bearer <admin token>` when one is configured |
//!
//! Answers are computed from the driver's last turn, with the acting deadline and the lease
//! checked against the clock at the time of the request.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tenure_core::{CommandError, NodeId};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tracing::info;

use crate::clock::BootClock;
use crate::http_server::{self, ConnectionLimits};
use crate::members::Members;
use crate::metrics;
use crate::observer::Shared;
use crate::transport::REFUSED_REPORT_WINDOW;
use tenure_driver::{Clock as _, Command};

/// How long `POST /step-down` waits for the driver to take the request.
const STEP_DOWN_REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest acceptable silence of the election loop, in leases. A healthy loop turns at
/// least every heartbeat while a leader is known, and at least once per lease otherwise
/// (boot quarantine, election rounds), so three leases without a turn means it is stuck.
const STALL_LEASES: u64 = 3;

/// What the handlers share.
pub struct HttpState {
    pub shared: Arc<Shared>,
    pub commands: mpsc::Sender<Command>,
    /// `None`: `POST /step-down` is open to anyone who can reach the port.
    pub admin_token: Option<String>,
}

/// The API's routes.
pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/", get(leader_name))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/joined", get(joined))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/step-down", post(step_down))
        .route("/pause", post(pause))
        .route("/resume", post(resume))
        .fallback(not_found)
        .with_state(state)
}

/// Serves the API on `listener` until the process exits, within `limits` (see
/// `http_server`: the connections must leave file descriptors to the election).
pub async fn serve(
    listener: TcpListener,
    state: Arc<HttpState>,
    limits: ConnectionLimits,
) -> io::Result<()> {
    http_server::serve(listener, router(state), limits).await
}

fn now() -> tenure_core::Instant {
    BootClock::new().now()
}

async fn leader_name(State(state): State<Arc<HttpState>>) -> Json<Value> {
    let snapshot = state.shared.snapshot();
    let name = snapshot
        .leader
        .and_then(|leader| state.shared.info.name_of(leader))
        .unwrap_or_default();
    Json(json!({ "name": name }))
}

async fn health(State(state): State<Arc<HttpState>>) -> Response {
    let snapshot = state.shared.snapshot();
    let silent = now().saturating_duration_since(snapshot.at);
    let limit = tenure_core::Duration::from_nanos(
        state
            .shared
            .info
            .lease_duration
            .as_nanos()
            .saturating_mul(STALL_LEASES)
            .max(5_000_000_000),
    );
    if !snapshot.driver_running {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "the election loop has stopped" })),
        )
            .into_response();
    }
    if silent > limit {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "the election loop is stalled",
                "silent_ms": silent.as_millis(),
            })),
        )
            .into_response();
    }
    (StatusCode::OK, Json(json!({ "status": "ok" }))).into_response()
}

async fn ready(State(state): State<Arc<HttpState>>) -> Response {
    let snapshot = state.shared.snapshot();
    let now = now();
    if snapshot.is_acting(now) {
        let token = snapshot
            .leadership
            .map(|leadership| leadership.fencing_token.0);
        (
            StatusCode::OK,
            Json(json!({ "ready": true, "fencing_token": token })),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false, "role": snapshot.role.name() })),
        )
            .into_response()
    }
}

async fn joined(State(state): State<Arc<HttpState>>) -> Response {
    let snapshot = state.shared.snapshot();
    let now = now();
    let quarantined = state.shared.info.is_quarantined(now);
    let leader = snapshot
        .leader
        .and_then(|leader| state.shared.info.name_of(leader));
    // A node whose datagrams a peer refuses (another process with its id, or a forged
    // incarnation) is not part of the cluster until it has moved above it and the refusals
    // have stopped (transport: Refused incarnations).
    let refused = state
        .shared
        .info
        .transport
        .refused_within(now.as_nanos(), REFUSED_REPORT_WINDOW);
    let joined = snapshot.driver_running && !quarantined && !refused && leader.is_some();
    let code = if joined {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(json!({
            "joined": joined,
            "quarantined": quarantined,
            "refused_by_peer": refused,
            "leader": leader,
        })),
    )
        .into_response()
}

async fn status(State(state): State<Arc<HttpState>>) -> Json<Value> {
    let snapshot = state.shared.snapshot();
    let info = &state.shared.info;
    let now = now();
    let acting = snapshot.is_acting(now);
    let name = |id| info.name_of(id);
    let refusal = info.transport.last_refusal();
    let peers: Vec<Value> = info
        .members
        .peer_ids()
        .into_iter()
        .map(|peer| {
            json!({
                "id": name(peer),
                "address": info.peers.configured(peer).map(ToString::to_string),
                "last_heard_ms": info
                    .peers
                    .last_heard(peer)
                    .map(|heard| now.as_nanos().saturating_sub(heard) / 1_000_000),
            })
        })
        .collect();
    Json(json!({
        "id": info.members.own_name(),
        "role": snapshot.role.name(),
        "term": snapshot.term.0,
        "leader": snapshot.leader.and_then(name),
        "acting": acting,
        "fencing_token": snapshot
            .leadership
            .filter(|_| acting)
            .map(|leadership| leadership.fencing_token.0),
        "lease_remaining_ms": snapshot
            .lease_remaining(now)
            .map(tenure_core::Duration::as_millis),
        "voted_for": snapshot.voted_for.and_then(name),
        "quarantine_remaining_ms": info
            .quarantine_until
            .filter(|until| now < *until)
            .map(|until| until.saturating_duration_since(now).as_millis()),
        "paused": snapshot.paused,
        "backend": info.store.as_ref().map(|store| json!({
            "url": store.backend,
            "election": store.election,
            "expiry_judged_by": store.judge,
        })),
        "supervises_child": info.supervises_child,
        "child_running": info.supervises_child
            && info.child.running.load(Ordering::Relaxed) > 0,
        "health": info.health_checked.then(|| json!({
            "state": snapshot.health.state.name(),
            "consecutive_failures": snapshot.health.consecutive_failures,
            "failures_total": snapshot.health.failures_total,
            "last_error": snapshot.health.last_error,
        })),
        "incarnation": info.transport.incarnation.load(Ordering::Relaxed),
        "incarnation_moves": info.transport.incarnation_moves.load(Ordering::Relaxed),
        "refused_by_peer": refusal.map(|refusal| json!({
            "peer": name(refusal.by),
            "held_incarnation": refusal.held,
            "ago_ms": now.as_nanos().saturating_sub(refusal.at_nanos) / 1_000_000,
        })),
        "duplicate_ids_detected": info.transport.duplicate_ids.load(Ordering::Relaxed),
        "term_jumps_refused": snapshot.term_jumps.refused,
        "last_refused_term": snapshot.term_jumps.last.map(|(_, term)| term.0),
        "last_refused_term_from": snapshot.term_jumps.last.and_then(|(from, _)| name(from)),
        "peers": peers,
    }))
}

async fn metrics(State(state): State<Arc<HttpState>>) -> Response {
    let snapshot = state.shared.snapshot();
    let body = metrics::render(&state.shared, &snapshot, now());
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(metrics::CONTENT_TYPE),
        )],
        body,
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepDownParameters {
    successor: Option<String>,
}

async fn step_down(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    Query(parameters): Query<StepDownParameters>,
) -> Response {
    if let Some(refusal) = refuse_without_admin_token(&state, &headers, "step-down") {
        return refusal;
    }
    let members = &state.shared.info.members;
    let successor = match successor(members, parameters.successor.as_deref()) {
        Ok(successor) => successor,
        Err(problem) => {
            return (StatusCode::BAD_REQUEST, Json(json!({ "error": problem }))).into_response()
        }
    };
    let (reply, answer) = oneshot::channel();
    let command = Command::Resign { successor, reply };
    if state.commands.send(command).await.is_err() {
        return unavailable("the election loop has stopped");
    }
    let result = match tokio::time::timeout(STEP_DOWN_REPLY_TIMEOUT, answer).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => return unavailable("the election loop has stopped"),
        Err(_) => return unavailable("the election loop did not answer in time"),
    };
    step_down_answer(&state, result, successor)
}

/// The requested successor, which must be another member; else what is wrong with it.
fn successor(members: &Members, name: Option<&str>) -> Result<Option<NodeId>, String> {
    let Some(name) = name else {
        return Ok(None);
    };
    match members.id(name) {
        Some(id) if id != members.own_id() => Ok(Some(id)),
        _ => Err(format!(
            "successor {name:?} is not another member (members: {})",
            members.names().join(", ")
        )),
    }
}

/// The answer to a step-down the election loop handled.
fn step_down_answer(
    state: &HttpState,
    result: Result<(), CommandError>,
    successor: Option<NodeId>,
) -> Response {
    let members = &state.shared.info.members;
    let snapshot = state.shared.snapshot();
    match result {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({
                "stepping_down": true,
                "term": snapshot.term.0,
                "successor": successor.and_then(|id| members.name(id)),
            })),
        )
            .into_response(),
        Err(CommandError::NotLeader | CommandError::NotResigning) => (
            StatusCode::CONFLICT,
            Json(json!({
                "error": "this node is not the leader; send the request to the leader",
                "leader": snapshot.leader.and_then(|id| state.shared.info.name_of(id)),
            })),
        )
            .into_response(),
        Err(error @ CommandError::InvalidSuccessor { .. }) => (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": error.to_string() })),
        )
            .into_response(),
    }
}

/// `POST /pause`: maintenance mode. The node keeps voting but never campaigns, and hands
/// leadership over if it leads.
async fn pause(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    if let Some(refusal) = refuse_without_admin_token(&state, &headers, "pause") {
        return refusal;
    }
    let (reply, answer) = oneshot::channel();
    if state.commands.send(Command::Pause { reply }).await.is_err() {
        return unavailable("the election loop has stopped");
    }
    match tokio::time::timeout(STEP_DOWN_REPLY_TIMEOUT, answer).await {
        Ok(Ok(leading)) => (
            StatusCode::OK,
            Json(json!({ "paused": true, "handing_over": leading })),
        )
            .into_response(),
        Ok(Err(_)) => unavailable("the election loop has stopped"),
        Err(_) => unavailable("the election loop did not answer in time"),
    }
}

/// `POST /resume`: leave maintenance mode; the node may campaign again.
async fn resume(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    if let Some(refusal) = refuse_without_admin_token(&state, &headers, "resume") {
        return refusal;
    }
    if state.commands.send(Command::Resume).await.is_err() {
        return unavailable("the election loop has stopped");
    }
    (StatusCode::OK, Json(json!({ "paused": false }))).into_response()
}

/// The answer to a request for `action` that lacks the admin token, or carries a wrong one,
/// when the node has one (`--admin-token-file`); `None` lets the request through.
fn refuse_without_admin_token(
    state: &HttpState,
    headers: &HeaderMap,
    action: &str,
) -> Option<Response> {
    let expected = state.admin_token.as_ref()?;
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match presented {
        None => Some(
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))],
                Json(json!({
                    "error": format!(
                        "{action} needs the header Authorization: Bearer <admin token>"
                    )
                })),
            )
                .into_response(),
        ),
        Some(token) if !constant_time_equal(token.trim().as_bytes(), expected.as_bytes()) => {
            info!("{action} refused: wrong admin token");
            Some(
                (
                    StatusCode::FORBIDDEN,
                    Json(json!({ "error": "wrong admin token" })),
                )
                    .into_response(),
            )
        }
        Some(_) => None,
    }
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({
            "error": "no such endpoint",
            "endpoints": ["GET /", "GET /health", "GET /ready", "GET /joined", "GET /status",
                          "GET /metrics", "POST /step-down", "POST /pause", "POST /resume"],
        })),
    )
        .into_response()
}

fn unavailable(reason: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "error": reason })),
    )
        .into_response()
}

/// Compares two byte strings in time independent of where they differ, so the answer time
/// leaks nothing about a guessed token but its length.
fn constant_time_equal(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    left.iter()
        .zip(right)
        .fold(0u8, |difference, (a, b)| difference | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_tokens_exactly() {
        assert!(constant_time_equal(b"secret", b"secret"));
        assert!(!constant_time_equal(b"secret", b"secreT"));
        assert!(!constant_time_equal(b"secret", b"secret2"));
        assert!(constant_time_equal(b"", b""));
    }
}
