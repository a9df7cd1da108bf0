//! Log output through `tracing-subscriber`, to standard error, as text or one JSON object per
//! line. Standard output belongs to the supervised daemon, whose lines pass through unchanged.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// Installs the global subscriber. `filter` was checked when the settings were loaded; should
/// it fail anyway, `info` is used.
pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only on a terminal: escape codes in a journal or a log file are noise.
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    // A second call (tests) finds a subscriber installed and changes nothing.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
