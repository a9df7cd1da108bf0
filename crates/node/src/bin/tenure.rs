//! The `tenure` binary: a thin dispatch onto `tenure_node`.
//!
//! The hidden `__guard` mode is recognised before anything else is parsed or initialised: the
//! deadline guard must start fast and depend on as little as possible (see
//! `tenure_node::guard`).

use std::os::fd::AsFd;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use tenure_node::cli::{Cli, CliCommand, LogFormat};
use tenure_node::guard::{
    name_this_process, run_guard, GuardOptions, EXIT_GUARD_FAILED, GUARD_SUBCOMMAND,
};
use tenure_node::logging::json_line;
use tenure_node::run::{RunOutcome, EXIT_DAEMON_FAILED};
use tenure_node::settings::RunSettings;

/// Exit status of a configuration error (as clap's own usage errors).
const EXIT_CONFIGURATION: u8 = 2;

fn main() -> ExitCode {
    let mut arguments = std::env::args_os().skip(1);
    if arguments
        .next()
        .is_some_and(|mode| mode == GUARD_SUBCOMMAND)
    {
        return guard(arguments);
    }

    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    match cli.command {
        CliCommand::Run(args) => {
            let Some(run_matches) = matches.subcommand_matches("run") else {
                return ExitCode::from(EXIT_CONFIGURATION);
            };
            let settings = match RunSettings::load(*args, run_matches) {
                Ok(settings) => settings,
                Err(error) => {
                    eprintln!("tenure run: configuration error: {error}");
                    eprintln!("(see `tenure run --help`)");
                    return ExitCode::from(EXIT_CONFIGURATION);
                }
            };
            if settings.dry_run {
                for warning in &settings.warnings {
                    eprintln!("tenure run: warning: {warning}");
                }
                println!("tenure run: the configuration is valid; --dry-run, so nothing starts.");
                print!("{}", settings.describe());
                return ExitCode::SUCCESS;
            }
            let log_format = settings.log_format;
            match tenure_node::run::run(settings) {
                Ok(RunOutcome::ShutDown) => ExitCode::SUCCESS,
                Ok(RunOutcome::DaemonFailed) => ExitCode::from(EXIT_DAEMON_FAILED),
                Err(error) => {
                    // The last line of the log stream, in its format.
                    match log_format {
                        LogFormat::Json => {
                            eprintln!(
                                "{}",
                                json_line("ERROR", &format!("tenure run: {error}"), &[])
                            );
                        }
                        LogFormat::Text => eprintln!("tenure run: {error}"),
                    }
                    ExitCode::FAILURE
                }
            }
        }
        CliCommand::Status(args) => tenure_node::status_command::status(args),
        CliCommand::Demo(args) => tenure_node::demo::demo(args),
        CliCommand::StepDown(args) => tenure_node::admin_command::step_down(args),
        CliCommand::Pause(args) => tenure_node::admin_command::pause(args),
        CliCommand::Resume(args) => tenure_node::admin_command::resume(args),
    }
}

fn guard(arguments: impl Iterator<Item = std::ffi::OsString>) -> ExitCode {
    name_this_process();
    match GuardOptions::parse(arguments) {
        Ok(options) => {
            let stdin = std::io::stdin();
            ExitCode::from(run_guard(&options, stdin.as_fd()).exit_code())
        }
        Err(error) => {
            eprintln!("tenure guard: {error}");
            ExitCode::from(EXIT_GUARD_FAILED)
        }
    }
}
