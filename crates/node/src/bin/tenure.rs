//! The `tenure` binary. For now only its hidden guard mode exists (see
//! `tenure_node::guard`); the lead replaces the rest of `main`.

use std::os::fd::AsFd;
use std::process::ExitCode;

use tenure_node::guard::{run_guard, GuardOptions, EXIT_GUARD_FAILED, GUARD_SUBCOMMAND};

fn main() -> ExitCode {
    let mut arguments = std::env::args_os().skip(1);
    match arguments.next() {
        Some(mode) if mode == GUARD_SUBCOMMAND => match GuardOptions::parse(arguments) {
            Ok(options) => {
                let stdin = std::io::stdin();
                ExitCode::from(run_guard(&options, stdin.as_fd()).exit_code())
            }
            Err(error) => {
                eprintln!("tenure guard: {error}");
                ExitCode::from(EXIT_GUARD_FAILED)
            }
        },
        _ => {
            eprintln!("tenure: not yet implemented");
            ExitCode::from(2)
        }
    }
}
