//! The supervised child of the end-to-end tests: it records its start and stop in a ledger
//! file (and optionally alive stamps and writes to the fenced store). See
//! `tenure_harness::child` for the ledger format and the options.

use std::process::ExitCode;

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    tenure_harness::child::run(&arguments)
}
