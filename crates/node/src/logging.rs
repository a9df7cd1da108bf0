//! Log output through `tracing-subscriber`, to standard error, as text or one JSON object per
//! line. Standard output belongs to the supervised daemon, whose lines pass through unchanged.

use std::io::IsTerminal;
use std::time::SystemTime;

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

/// One log line in the JSON format of [`init`] (`timestamp`, `level`, `message`, then
/// `fields`), for what writes to tenure's log stream without the subscriber: the deadline guard,
/// a separate process, and the last error of `tenure run`. So that with `--log-format json`
/// every line of the stream parses as JSON.
pub fn json_line(level: &str, message: &str, fields: &[(&str, &str)]) -> String {
    let mut object = serde_json::Map::new();
    let timestamp = humantime::format_rfc3339_micros(SystemTime::now()).to_string();
    object.insert("timestamp".into(), timestamp.into());
    object.insert("level".into(), level.into());
    object.insert("message".into(), message.into());
    for (name, value) in fields {
        object.insert((*name).into(), (*value).into());
    }
    serde_json::Value::Object(object).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_line_is_one_object_with_the_subscribers_keys() {
        let line = json_line(
            "WARN",
            "a \"quoted\"\nmessage",
            &[("source", "tenure-guard")],
        );
        assert!(!line.contains('\n'), "{line}");
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["level"], "WARN");
        assert_eq!(value["message"], "a \"quoted\"\nmessage");
        assert_eq!(value["source"], "tenure-guard");
        assert!(
            value["timestamp"].as_str().unwrap().ends_with('Z'),
            "{line}"
        );
    }
}
