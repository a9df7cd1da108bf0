//! `tenure status`: one line per node, read from each node's `GET /status`.
//!
//! ```text
//! NODE           ID  ROLE      TERM  LEADER  ACTING  TOKEN  LEASE LEFT  HEARD   QUARANTINE  CHILD
//! 10.0.0.1:8101  n1  leader    7     n1      yes     7      1.71s       0.21s   -           running
//! 10.0.0.2:8101  n2  follower  7     n1      no      -      -           0.04s   -           stopped
//! 10.0.0.3:8101  -   unreachable: connection refused
//! ```
//!
//! `HEARD` is how long ago the node last heard its leader (a follower), or its least recently
//! heard peer (the leader). `QUARANTINE` is what is left of its boot quarantine. `CHILD` is
//! whether its supervised daemon runs (`none`: an observer-only node).

use std::process::ExitCode;

use serde_json::Value;

use crate::cli::StatusArgs;
use crate::http_client;

/// Exit status when every node answered, exactly one acts and no peer refuses a node.
pub const EXIT_HEALTHY: u8 = 0;
/// Exit status when the cluster is degraded but safe: no node acts right now (an election,
/// a handover, or no quorum), a node did not answer, or a peer refuses a node's datagrams.
pub const EXIT_DEGRADED: u8 = 1;
/// Exit status when two or more nodes report acting at once: page someone.
pub const EXIT_OVERLAP: u8 = 3;

/// Prints the table and returns [`EXIT_HEALTHY`], [`EXIT_DEGRADED`] or [`EXIT_OVERLAP`].
pub fn status(args: StatusArgs) -> ExitCode {
    let mut rows = Vec::new();
    let mut warnings = Vec::new();
    for address in &args.addresses {
        match http_client::get(address, "/status", args.timeout).and_then(|answer| answer.json()) {
            Ok(status) => {
                warnings.extend(refusal_warning(&status));
                rows.push(Row::from_status(address, &status));
            }
            Err(error) => rows.push(Row::unreachable(address, &error.to_string())),
        }
    }
    print!("{}", render(&rows));
    for warning in &warnings {
        println!("\nWARNING: {warning}");
    }
    let (code, verdict) = verdict(&rows, !warnings.is_empty());
    println!("\n{verdict}");
    ExitCode::from(code)
}

/// The exit status and the closing line for `rows`; `refused` when a peer refuses a node.
fn verdict(rows: &[Row], refused: bool) -> (u8, String) {
    let acting: Vec<&str> = rows
        .iter()
        .filter(|row| row.acting == "yes")
        .map(|row| row.id.as_str())
        .collect();
    let unreachable: Vec<&str> = rows
        .iter()
        .filter(|row| row.problem.is_some())
        .map(|row| row.address.as_str())
        .collect();
    let mut leaders: Vec<&str> = rows
        .iter()
        .filter(|row| row.problem.is_none() && row.leader != "-")
        .map(|row| row.leader.as_str())
        .collect();
    leaders.sort_unstable();
    leaders.dedup();
    if acting.len() > 1 {
        return (
            EXIT_OVERLAP,
            format!(
                "CRITICAL: {} nodes report acting at once ({}). That must never happen: check the \
                 nodes' clocks and logs, and whether they share one cluster key and member list.",
                acting.len(),
                acting.join(", ")
            ),
        );
    }
    let mut problems = Vec::new();
    if acting.is_empty() {
        problems.push(if leaders.len() > 1 {
            format!(
                "no node acts, and the nodes name different leaders ({}): an election is under \
                 way",
                leaders.join(", ")
            )
        } else {
            "no node acts right now: an election or a handover may be under way, or no quorum \
             can be reached (see the nodes' logs: \"cannot get elected\")"
                .to_string()
        });
    }
    if !unreachable.is_empty() {
        problems.push(format!(
            "{} of {} nodes did not answer ({})",
            unreachable.len(),
            rows.len(),
            unreachable.join(", ")
        ));
    }
    if refused {
        problems.push("a peer refuses a node's datagrams (see the warning above)".to_string());
    }
    if problems.is_empty() {
        (
            EXIT_HEALTHY,
            format!("ok: {} acts; every node answered", acting[0]),
        )
    } else {
        (EXIT_DEGRADED, format!("DEGRADED: {}", problems.join("; ")))
    }
}

/// A warning when a peer refused this node's incarnation within the report window (transport:
/// Refused incarnations): another process with its id, or a forgery.
fn refusal_warning(status: &Value) -> Option<String> {
    let refusal = &status["refused_by_peer"];
    let ago = refusal["ago_ms"].as_u64()?;
    let window = u64::try_from(crate::transport::REFUSED_REPORT_WINDOW.as_millis()).ok()?;
    (ago < window).then(|| {
        let id = status["id"].as_str().unwrap_or("?");
        format!(
            "peer {} refused the datagrams of {id} {:.1}s ago (it holds incarnation {} for it): \
             another process with id {id} may be running, or a key holder forged one; see the \
             logs of both",
            refusal["peer"].as_str().unwrap_or("?"),
            ago as f64 / 1000.0,
            refusal["held_incarnation"],
        )
    })
}

struct Row {
    address: String,
    id: String,
    role: String,
    term: String,
    leader: String,
    acting: String,
    token: String,
    lease: String,
    heard: String,
    quarantine: String,
    child: String,
    problem: Option<String>,
}

impl Row {
    fn from_status(address: &str, status: &Value) -> Row {
        let text = |key: &str| match &status[key] {
            Value::String(text) => text.clone(),
            Value::Number(number) => number.to_string(),
            _ => "-".to_string(),
        };
        let lease = seconds(status["lease_remaining_ms"].as_u64());
        let child = match (
            status["supervises_child"].as_bool(),
            status["child_running"].as_bool(),
        ) {
            (Some(false), _) => "none",
            (_, Some(true)) => "running",
            (_, Some(false)) => "stopped",
            (_, None) => "-",
        };
        Row {
            address: address.to_string(),
            id: text("id"),
            role: if status["paused"].as_bool() == Some(true) {
                format!("{},paused", text("role"))
            } else {
                text("role")
            },
            term: text("term"),
            leader: text("leader"),
            acting: if status["acting"].as_bool() == Some(true) {
                "yes".to_string()
            } else {
                "no".to_string()
            },
            token: text("fencing_token"),
            lease,
            heard: seconds(heard_ms(status)),
            quarantine: seconds(status["quarantine_remaining_ms"].as_u64()),
            child: child_health(child, &status["health"]),
            problem: None,
        }
    }

    fn unreachable(address: &str, problem: &str) -> Row {
        Row {
            address: address.to_string(),
            id: "-".to_string(),
            role: String::new(),
            term: String::new(),
            leader: String::new(),
            acting: String::new(),
            token: String::new(),
            lease: String::new(),
            heard: String::new(),
            quarantine: String::new(),
            child: String::new(),
            problem: Some(format!("unreachable: {problem}")),
        }
    }
}

/// The CHILD column: the child's state, and its health when checks fail (protocol:
/// Health-gated acting): `running,failing 2/3`, or `stopped,unhealthy` on a node that gave
/// leadership up for failed checks.
fn child_health(child: &str, health: &Value) -> String {
    let failures = health["consecutive_failures"].as_u64().unwrap_or(0);
    match health["state"].as_str() {
        Some("failing") => format!("{child},failing {failures}"),
        Some("unhealthy") => format!("{child},unhealthy"),
        _ => child.to_string(),
    }
}

/// Milliseconds as seconds with two decimals, or `-`.
fn seconds(millis: Option<u64>) -> String {
    millis.map_or_else(
        || "-".to_string(),
        |millis| format!("{:.2}s", millis as f64 / 1000.0),
    )
}

/// How long ago the node heard its leader (a follower), or its least recently heard peer (the
/// leader); `None` if it knows no leader or has heard nobody.
fn heard_ms(status: &Value) -> Option<u64> {
    let peers = status["peers"].as_array()?;
    let leader = status["leader"].as_str()?;
    if status["id"].as_str() == Some(leader) {
        peers
            .iter()
            .map(|peer| peer["last_heard_ms"].as_u64().unwrap_or(u64::MAX))
            .max()
            .filter(|oldest| *oldest != u64::MAX)
    } else {
        peers
            .iter()
            .find(|peer| peer["id"].as_str() == Some(leader))?["last_heard_ms"]
            .as_u64()
    }
}

fn render(rows: &[Row]) -> String {
    let header = [
        "NODE",
        "ID",
        "ROLE",
        "TERM",
        "LEADER",
        "ACTING",
        "TOKEN",
        "LEASE LEFT",
        "HEARD",
        "QUARANTINE",
        "CHILD",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            vec![
                row.address.clone(),
                row.id.clone(),
                row.role.clone(),
                row.term.clone(),
                row.leader.clone(),
                row.acting.clone(),
                row.token.clone(),
                row.lease.clone(),
                row.heard.clone(),
                row.quarantine.clone(),
                row.child.clone(),
            ]
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|title| title.len()).collect();
    for (row, line) in rows.iter().zip(&cells) {
        let columns = if row.problem.is_some() { 2 } else { line.len() };
        for (width, cell) in widths.iter_mut().zip(line).take(columns) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let format_line = |cells: &[String], widths: &[usize]| {
        let mut line = String::new();
        for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if index + 1 == cells.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  "));
            }
        }
        line.trim_end().to_string() + "\n"
    };
    let header: Vec<String> = header.iter().map(ToString::to_string).collect();
    out.push_str(&format_line(&header, &widths));
    for (row, line) in rows.iter().zip(cells) {
        match &row.problem {
            Some(problem) => {
                let short = [line[0].clone(), line[1].clone(), problem.clone()];
                out.push_str(&format_line(&short, &widths));
            }
            None => out.push_str(&format_line(&line, &widths)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn leader_status() -> Value {
        json!({
            "id": "n1", "role": "leader", "term": 7, "leader": "n1", "acting": true,
            "fencing_token": 7, "lease_remaining_ms": 1710, "quarantine_remaining_ms": null,
            "supervises_child": true, "child_running": true,
            "peers": [{ "id": "n2", "last_heard_ms": 40 }, { "id": "n3", "last_heard_ms": 210 }]
        })
    }

    fn follower_status(id: &str, acting: bool) -> Value {
        json!({
            "id": id, "role": "follower", "term": 7, "leader": "n1", "acting": acting,
            "fencing_token": null, "lease_remaining_ms": null, "quarantine_remaining_ms": 1500,
            "supervises_child": true, "child_running": false,
            "peers": [{ "id": "n1", "last_heard_ms": 40 }, { "id": "n3", "last_heard_ms": null }]
        })
    }

    #[test]
    fn the_child_column_shows_failing_health_checks() {
        let mut status = leader_status();
        let row = Row::from_status("a", &status);
        assert_eq!(
            row.child, "running",
            "no checks, or passing ones: nothing to add"
        );
        status["health"] = json!({"state": "failing", "consecutive_failures": 2});
        assert_eq!(Row::from_status("a", &status).child, "running,failing 2");
        status["child_running"] = json!(false);
        status["health"] = json!({"state": "unhealthy", "consecutive_failures": 3});
        assert_eq!(Row::from_status("a", &status).child, "stopped,unhealthy");
    }

    #[test]
    fn renders_a_table() {
        let rows = vec![
            Row::from_status("10.0.0.1:8101", &leader_status()),
            Row::from_status("10.0.0.2:8101", &follower_status("n2", false)),
            Row::unreachable("10.0.0.3:8101", "connection refused"),
        ];
        let table = render(&rows);
        let lines: Vec<&str> = table.lines().collect();
        let expected = [
            "NODE           ID  ROLE      TERM  LEADER  ACTING  TOKEN  LEASE LEFT  HEARD  QUARANTINE  CHILD",
            "10.0.0.1:8101  n1  leader    7     n1      yes     7      1.71s       0.21s  -           running",
            "10.0.0.2:8101  n2  follower  7     n1      no      -      -           0.04s  1.50s       stopped",
        ];
        assert_eq!(lines[..3], expected);
        assert_eq!(
            lines[3],
            "10.0.0.3:8101  -   unreachable: connection refused"
        );
    }

    #[test]
    fn exits_zero_only_for_one_acting_node_and_every_node_answering() {
        let leader = Row::from_status("a", &leader_status());
        let follower = |id| Row::from_status("b", &follower_status(id, false));
        let (code, line) = verdict(&[leader, follower("n2"), follower("n3")], false);
        assert_eq!(
            (code, line.as_str()),
            (EXIT_HEALTHY, "ok: n1 acts; every node answered")
        );

        let leader = Row::from_status("a", &leader_status());
        let (code, line) = verdict(&[leader, follower("n2"), follower("n3")], true);
        assert_eq!(code, EXIT_DEGRADED, "{line}");

        let leader = Row::from_status("a", &leader_status());
        let (code, line) = verdict(
            &[leader, follower("n2"), Row::unreachable("c", "refused")],
            false,
        );
        assert_eq!(code, EXIT_DEGRADED);
        assert!(line.contains("1 of 3 nodes did not answer (c)"), "{line}");

        let (code, line) = verdict(&[follower("n2"), follower("n3")], false);
        assert_eq!(code, EXIT_DEGRADED);
        assert!(line.contains("no node acts"), "{line}");

        let leader = Row::from_status("a", &leader_status());
        let second = Row::from_status("b", &follower_status("n2", true));
        let (code, line) = verdict(&[leader, second], false);
        assert_eq!(code, EXIT_OVERLAP);
        assert!(
            line.starts_with("CRITICAL: 2 nodes report acting at once (n1, n2)"),
            "{line}"
        );
    }

    #[test]
    fn warns_about_a_recent_refusal_only() {
        let refused = |ago_ms: u64| {
            json!({
                "id": "n1",
                "refused_by_peer": { "peer": "n2", "held_incarnation": 12, "ago_ms": ago_ms },
            })
        };
        let warning = refusal_warning(&refused(800)).unwrap();
        assert!(warning.starts_with("peer n2 refused the datagrams of n1 0.8s ago"));
        assert!(warning.contains("incarnation 12"));
        assert_eq!(refusal_warning(&refused(60_000)), None);
        assert_eq!(
            refusal_warning(&json!({ "id": "n1", "refused_by_peer": null })),
            None
        );
    }
}
