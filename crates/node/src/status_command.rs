//! `tenure status`: one line per node, read from each node's `GET /status`.
//!
//! ```text
//! NODE             ID  ROLE      TERM  LEADER  ACTING  TOKEN  LEASE LEFT
//! 10.0.0.1:8101    n1  leader    7     n1      yes     7      1.71s
//! 10.0.0.2:8101    n2  follower  7     n1      no      -      -
//! 10.0.0.3:8101    -   unreachable: connection refused
//! ```

use std::process::ExitCode;

use serde_json::Value;

use crate::cli::StatusArgs;
use crate::http_client;

/// Prints the table; exit status 0 when every node answered, at most one acts, and no peer
/// refuses a node's datagrams.
pub fn status(args: StatusArgs) -> ExitCode {
    let mut rows = Vec::new();
    let mut warnings = Vec::new();
    let mut healthy = true;
    let mut acting = Vec::new();
    let mut leaders = Vec::new();
    for address in &args.addresses {
        match http_client::get(address, "/status", args.timeout).and_then(|answer| answer.json()) {
            Ok(status) => {
                let row = Row::from_status(address, &status);
                if let Some(warning) = refusal_warning(&status) {
                    healthy = false;
                    warnings.push(warning);
                }
                if row.acting == "yes" {
                    acting.push(row.id.clone());
                }
                if row.leader != "-" {
                    leaders.push(row.leader.clone());
                }
                rows.push(row);
            }
            Err(error) => {
                healthy = false;
                rows.push(Row::unreachable(address, &error.to_string()));
            }
        }
    }
    print!("{}", render(&rows));
    for warning in &warnings {
        println!("\nWARNING: {warning}");
    }
    leaders.sort();
    leaders.dedup();
    if acting.len() > 1 {
        healthy = false;
        println!(
            "\nWARNING: {} nodes report acting at once ({}). That must never happen: check the \
             nodes' clocks and logs, and whether they share one cluster key and member list.",
            acting.len(),
            acting.join(", ")
        );
    } else if leaders.len() > 1 {
        println!(
            "\nnote: the nodes name different leaders ({}); this is normal for a moment \
             during an election",
            leaders.join(", ")
        );
    } else if acting.is_empty() && healthy {
        println!("\nnote: no node acts right now (an election or a handover may be under way)");
    }
    if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
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
    problem: Option<String>,
}

impl Row {
    fn from_status(address: &str, status: &Value) -> Row {
        let text = |key: &str| match &status[key] {
            Value::String(text) => text.clone(),
            Value::Number(number) => number.to_string(),
            _ => "-".to_string(),
        };
        let lease = match status["lease_remaining_ms"].as_u64() {
            Some(millis) => format!("{:.2}s", millis as f64 / 1000.0),
            None => "-".to_string(),
        };
        Row {
            address: address.to_string(),
            id: text("id"),
            role: text("role"),
            term: text("term"),
            leader: text("leader"),
            acting: if status["acting"].as_bool() == Some(true) {
                "yes".to_string()
            } else {
                "no".to_string()
            },
            token: text("fencing_token"),
            lease,
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
            problem: Some(format!("unreachable: {problem}")),
        }
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

    #[test]
    fn renders_a_table() {
        let leader = json!({
            "id": "n1", "role": "leader", "term": 7, "leader": "n1", "acting": true,
            "fencing_token": 7, "lease_remaining_ms": 1710
        });
        let follower = json!({
            "id": "n2", "role": "follower", "term": 7, "leader": "n1", "acting": false,
            "fencing_token": null, "lease_remaining_ms": null
        });
        let rows = vec![
            Row::from_status("10.0.0.1:8101", &leader),
            Row::from_status("10.0.0.2:8101", &follower),
            Row::unreachable("10.0.0.3:8101", "connection refused"),
        ];
        let table = render(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "NODE           ID  ROLE      TERM  LEADER  ACTING  TOKEN  LEASE LEFT"
        );
        assert_eq!(
            lines[1],
            "10.0.0.1:8101  n1  leader    7     n1      yes     7      1.71s"
        );
        assert_eq!(
            lines[2],
            "10.0.0.2:8101  n2  follower  7     n1      no      -      -"
        );
        assert_eq!(
            lines[3],
            "10.0.0.3:8101  -   unreachable: connection refused"
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
