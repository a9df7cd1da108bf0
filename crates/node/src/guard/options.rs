//! [`GuardOptions`]: the guard's command line, which tenure writes and the guard parses.

use std::ffi::{OsStr, OsString};
use std::time::Duration;

use super::MAX_GUARD_WAIT;
use crate::cli::LogFormat;

/// The guard's configuration: its command line after `__guard`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuardOptions {
    /// The initial acting deadline, a `CLOCK_BOOTTIME` instant in nanoseconds.
    pub deadline_nanos: u64,
    /// How long the child may take to exit after SIGTERM before the group gets SIGKILL.
    pub stop_grace: Duration,
    /// How long the kernel may take to end the child after SIGKILL. Not zero.
    pub kill_after: Duration,
    /// The program to run.
    pub command: OsString,
    /// Its arguments.
    pub arguments: Vec<OsString>,
    /// How the guard writes its own lines to stderr: tenure's `--log-format`.
    pub log_format: LogFormat,
}

/// A guard command line that does not parse. The message says what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0}; usage: tenure __guard --deadline-ns NANOSECONDS --stop-grace-ms MILLISECONDS \
     --kill-after-ms MILLISECONDS [--log-format json] -- COMMAND [ARGUMENTS...]"
)]
pub struct GuardUsageError(String);

impl GuardOptions {
    /// Parses the arguments that follow `__guard`.
    pub fn parse(
        arguments: impl IntoIterator<Item = OsString>,
    ) -> Result<GuardOptions, GuardUsageError> {
        let mut arguments = arguments.into_iter();
        let mut deadline_nanos = None;
        let mut stop_grace_ms = None;
        let mut kill_after_ms = None;
        let mut log_format = None;
        loop {
            let Some(flag) = arguments.next() else {
                return Err(GuardUsageError(
                    "missing \"--\" and the command".to_string(),
                ));
            };
            if flag == "--" {
                break;
            }
            if flag == "--log-format" {
                if log_format.is_some() {
                    return Err(GuardUsageError(format!("{flag:?} given twice")));
                }
                log_format = Some(parse_log_format(arguments.next())?);
                continue;
            }
            let slot = match flag.to_str() {
                Some("--deadline-ns") => &mut deadline_nanos,
                Some("--stop-grace-ms") => &mut stop_grace_ms,
                Some("--kill-after-ms") => &mut kill_after_ms,
                _ => return Err(GuardUsageError(format!("unknown option {flag:?}"))),
            };
            if slot.is_some() {
                return Err(GuardUsageError(format!("{flag:?} given twice")));
            }
            let value = arguments
                .next()
                .ok_or_else(|| GuardUsageError(format!("{flag:?} needs a value")))?;
            *slot = Some(parse_decimal(&value).ok_or_else(|| {
                GuardUsageError(format!("{flag:?} needs a whole number, not {value:?}"))
            })?);
        }
        let required = |value: Option<u64>, flag: &str| {
            value.ok_or_else(|| GuardUsageError(format!("{flag} is required")))
        };
        let deadline_nanos = required(deadline_nanos, "--deadline-ns")?;
        let stop_grace = Duration::from_millis(required(stop_grace_ms, "--stop-grace-ms")?);
        let kill_after = Duration::from_millis(required(kill_after_ms, "--kill-after-ms")?);
        if stop_grace > MAX_GUARD_WAIT || kill_after > MAX_GUARD_WAIT {
            return Err(GuardUsageError(
                "--stop-grace-ms and --kill-after-ms must be at most 3600000 (one hour)"
                    .to_string(),
            ));
        }
        if kill_after.is_zero() {
            return Err(GuardUsageError(
                "--kill-after-ms must be at least 1: the kernel needs time to end a process"
                    .to_string(),
            ));
        }
        let command = arguments
            .next()
            .ok_or_else(|| GuardUsageError("no command after \"--\"".to_string()))?;
        Ok(GuardOptions {
            deadline_nanos,
            stop_grace,
            kill_after,
            command,
            arguments: arguments.collect(),
            log_format: log_format.unwrap_or(LogFormat::Text),
        })
    }

    /// The arguments that `parse` turns back into these options (without `__guard`).
    ///
    /// Durations are sent in whole milliseconds, rounded up so the guard never waits less than
    /// asked.
    pub fn to_arguments(&self) -> Vec<OsString> {
        let mut arguments: Vec<OsString> = vec![
            "--deadline-ns".into(),
            self.deadline_nanos.to_string().into(),
            "--stop-grace-ms".into(),
            whole_milliseconds(self.stop_grace).to_string().into(),
            "--kill-after-ms".into(),
            whole_milliseconds(self.kill_after).to_string().into(),
        ];
        if self.log_format == LogFormat::Json {
            arguments.extend(["--log-format".into(), "json".into()]);
        }
        arguments.extend(["--".into(), self.command.clone()]);
        arguments.extend(self.arguments.iter().cloned());
        arguments
    }
}

fn whole_milliseconds(duration: Duration) -> u128 {
    duration.as_nanos().div_ceil(1_000_000)
}

/// Parses a canonical decimal `u64`: ASCII digits only, no sign, no leading zeros.
pub(super) fn parse_decimal(text: &OsStr) -> Option<u64> {
    let text = text.to_str()?;
    let canonical = !text.is_empty()
        && text.bytes().all(|byte| byte.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if !canonical {
        return None;
    }
    text.parse().ok()
}

/// The value of the guard's `--log-format`.
fn parse_log_format(value: Option<OsString>) -> Result<LogFormat, GuardUsageError> {
    match value.as_ref().and_then(|value| value.to_str()) {
        Some("json") => Ok(LogFormat::Json),
        Some("text") => Ok(LogFormat::Text),
        _ => Err(GuardUsageError(
            "\"--log-format\" needs text or json".to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arguments(text: &[&str]) -> Vec<OsString> {
        text.iter().map(OsString::from).collect()
    }

    fn parse(text: &[&str]) -> Result<GuardOptions, GuardUsageError> {
        GuardOptions::parse(arguments(text))
    }

    fn sample_options() -> GuardOptions {
        GuardOptions {
            deadline_nanos: 123_456_789_000,
            stop_grace: Duration::from_millis(2500),
            kill_after: Duration::from_millis(1000),
            command: "sh".into(),
            arguments: arguments(&["-c", "exec sleep 1", "--deadline-ns"]),
            log_format: LogFormat::Text,
        }
    }

    // ---- Command line ----

    #[test]
    fn parses_a_full_command_line() {
        let options = parse(&[
            "--stop-grace-ms",
            "2500",
            "--deadline-ns",
            "123456789000",
            "--kill-after-ms",
            "1000",
            "--",
            "sh",
            "-c",
            "exec sleep 1",
            "--deadline-ns",
        ])
        .unwrap();
        assert_eq!(options, sample_options());
    }

    #[test]
    fn round_trips_through_arguments() {
        let options = sample_options();
        assert_eq!(GuardOptions::parse(options.to_arguments()), Ok(options));
        // Sub-millisecond durations round up, never down.
        let odd = GuardOptions {
            stop_grace: Duration::from_micros(1),
            kill_after: Duration::from_micros(1500),
            ..sample_options()
        };
        let parsed = GuardOptions::parse(odd.to_arguments()).unwrap();
        assert_eq!(parsed.stop_grace, Duration::from_millis(1));
        assert_eq!(parsed.kill_after, Duration::from_millis(2));
        // The JSON log format travels; the text format is the default and is left out.
        let json = GuardOptions {
            log_format: LogFormat::Json,
            ..sample_options()
        };
        assert_eq!(GuardOptions::parse(json.to_arguments()), Ok(json.clone()));
        assert!(!sample_options()
            .to_arguments()
            .contains(&OsString::from("--log-format")));
        assert!(parse(&["--log-format", "xml", "--", "sh"])
            .unwrap_err()
            .to_string()
            .contains("needs text or json"));
    }

    #[test]
    fn refuses_bad_command_lines_saying_why() {
        let base = [
            "--deadline-ns",
            "5",
            "--stop-grace-ms",
            "0",
            "--kill-after-ms",
            "1",
        ];
        let with = |extra: &[&'static str]| {
            let mut all: Vec<&str> = base.to_vec();
            all.extend_from_slice(extra);
            all
        };
        let cases: Vec<(Vec<&str>, &str)> = vec![
            (vec![], "missing \"--\""),
            (base.to_vec(), "missing \"--\""),
            (with(&["--"]), "no command"),
            (with(&["--verbose", "--", "x"]), "unknown option"),
            (with(&["--deadline-ns", "6", "--", "x"]), "given twice"),
            (vec!["--deadline-ns"], "needs a value"),
            (
                vec!["--stop-grace-ms", "0", "--kill-after-ms", "1", "--", "x"],
                "--deadline-ns is required",
            ),
            (
                vec!["--deadline-ns", "5", "--kill-after-ms", "1", "--", "x"],
                "--stop-grace-ms is required",
            ),
            (
                vec!["--deadline-ns", "5", "--stop-grace-ms", "1", "--", "x"],
                "--kill-after-ms is required",
            ),
            (
                vec![
                    "--deadline-ns",
                    "-5",
                    "--stop-grace-ms",
                    "0",
                    "--kill-after-ms",
                    "1",
                    "--",
                    "x",
                ],
                "whole number",
            ),
            (
                vec![
                    "--deadline-ns",
                    "5",
                    "--stop-grace-ms",
                    "1.5",
                    "--kill-after-ms",
                    "1",
                    "--",
                    "x",
                ],
                "whole number",
            ),
            (
                vec![
                    "--deadline-ns",
                    "5",
                    "--stop-grace-ms",
                    "0",
                    "--kill-after-ms",
                    "0",
                    "--",
                    "x",
                ],
                "at least 1",
            ),
            (
                vec![
                    "--deadline-ns",
                    "5",
                    "--stop-grace-ms",
                    "3600001",
                    "--kill-after-ms",
                    "1",
                    "--",
                    "x",
                ],
                "at most 3600000",
            ),
        ];
        for (command_line, expected) in cases {
            let error = parse(&command_line).unwrap_err().to_string();
            assert!(error.contains(expected), "{command_line:?}: {error}");
            assert!(error.contains("usage: tenure __guard"), "{error}");
        }
    }

    #[test]
    fn parses_only_canonical_decimals() {
        assert_eq!(parse_decimal(OsStr::new("0")), Some(0));
        assert_eq!(
            parse_decimal(OsStr::new("18446744073709551615")),
            Some(u64::MAX)
        );
        for bad in [
            "",
            "+1",
            "-1",
            "01",
            " 1",
            "1 ",
            "1e3",
            "18446744073709551616",
            "0x10",
        ] {
            assert_eq!(parse_decimal(OsStr::new(bad)), None, "{bad:?}");
        }
    }
}
