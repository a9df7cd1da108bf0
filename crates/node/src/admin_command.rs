//! `tenure step-down`, `tenure pause` and `tenure resume`: one authenticated POST to a node's
//! HTTP API, with the admin token read from its file, so that no operator needs curl.

use std::process::ExitCode;

use crate::cli::{AdminArgs, StepDownArgs};
use crate::http_client;
use crate::small_file;

/// Longest admin token file read, as the node reads it.
const MAX_TOKEN_FILE: u64 = 4096;

/// `tenure step-down`.
pub fn step_down(args: StepDownArgs) -> ExitCode {
    let path = match &args.successor {
        Some(successor) => format!("/step-down?successor={}", percent_encode(successor)),
        None => "/step-down".to_string(),
    };
    post(&args.admin, &path)
}

/// `tenure pause`.
pub fn pause(args: AdminArgs) -> ExitCode {
    post(&args, "/pause")
}

/// `tenure resume`.
pub fn resume(args: AdminArgs) -> ExitCode {
    post(&args, "/resume")
}

/// Sends `POST path` with the admin token and prints the node's answer; exit 0 on a 2xx.
fn post(args: &AdminArgs, path: &str) -> ExitCode {
    let token = match &args.admin_token_file {
        Some(file) => match small_file::read(file, MAX_TOKEN_FILE) {
            Ok(file) => Some(file.text.trim().to_string()),
            Err(error) => {
                eprintln!(
                    "error: cannot read the admin token file {}: {error}",
                    file.display()
                );
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let authorization = token.map(|token| format!("Bearer {token}"));
    let headers: Vec<(&str, &str)> = authorization
        .iter()
        .map(|value| ("Authorization", value.as_str()))
        .collect();
    match http_client::request(&args.address, "POST", path, &headers, args.timeout) {
        Ok(response) if (200..300).contains(&response.status) => {
            println!("{}", response.body.trim());
            ExitCode::SUCCESS
        }
        Ok(response) => {
            eprintln!(
                "error: {} answered {}: {}",
                args.address,
                response.status,
                response.body.trim()
            );
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("error: cannot reach {}: {error}", args.address);
            ExitCode::FAILURE
        }
    }
}

/// `text` with everything but unreserved URL characters percent-encoded.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_names_are_percent_encoded() {
        assert_eq!(percent_encode("n2"), "n2");
        assert_eq!(percent_encode("node a&b=c"), "node%20a%26b%3Dc");
    }
}
