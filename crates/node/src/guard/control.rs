//! The control lines the guard reads from tenure: `extend <nanoseconds>` and `stop`.

use std::ffi::OsStr;

use super::options::parse_decimal;

/// Longest control line; `extend 18446744073709551615` is 27 bytes.
const MAX_CONTROL_LINE: usize = 64;

// The longest line tenure sends fits, and every line is below the pipe's atomic write size
// (PIPE_BUF on Linux): `GuardHandle` relies on a line arriving whole or not at all.
const _: () = assert!(
    "extend 18446744073709551615".len() <= MAX_CONTROL_LINE && MAX_CONTROL_LINE < 4096,
    "every control line fits the parser, and is written atomically"
);

/// A control command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ControlCommand {
    Extend { deadline_nanos: u64 },
    Stop,
}

/// Splits the control stream into lines and parses them.
#[derive(Debug, Default)]
pub(super) struct ControlParser {
    line: Vec<u8>,
}

impl ControlParser {
    /// Parses the complete lines in `bytes` (plus what was buffered before). A line that is
    /// not a command, or too long to be one, is an error carrying the offending text.
    pub(super) fn push(&mut self, bytes: &[u8]) -> Result<Vec<ControlCommand>, String> {
        let mut commands = Vec::new();
        for &byte in bytes {
            if byte != b'\n' {
                if self.line.len() >= MAX_CONTROL_LINE {
                    return Err(format!(
                        "a control line longer than {MAX_CONTROL_LINE} bytes: {:?}...",
                        String::from_utf8_lossy(&self.line)
                    ));
                }
                self.line.push(byte);
                continue;
            }
            let command = parse_control_line(&self.line).ok_or_else(|| {
                format!(
                    "an unknown control line {:?}",
                    String::from_utf8_lossy(&self.line)
                )
            })?;
            commands.push(command);
            self.line.clear();
        }
        Ok(commands)
    }
}

fn parse_control_line(line: &[u8]) -> Option<ControlCommand> {
    let line = std::str::from_utf8(line).ok()?;
    if line == "stop" {
        return Some(ControlCommand::Stop);
    }
    let deadline = line.strip_prefix("extend ")?;
    parse_decimal(OsStr::new(deadline))
        .map(|deadline_nanos| ControlCommand::Extend { deadline_nanos })
}

#[cfg(test)]
mod tests {
    use super::*;

    // ---- Control protocol ----

    #[test]
    fn parses_control_lines_across_reads() {
        let mut parser = ControlParser::default();
        assert_eq!(parser.push(b"ext"), Ok(vec![]));
        assert_eq!(
            parser.push(b"end 42\nextend 18446744073709551615\nst"),
            Ok(vec![
                ControlCommand::Extend { deadline_nanos: 42 },
                ControlCommand::Extend {
                    deadline_nanos: u64::MAX
                },
            ])
        );
        assert_eq!(parser.push(b"op\n"), Ok(vec![ControlCommand::Stop]));
        assert_eq!(parser.push(b""), Ok(vec![]));
    }

    #[test]
    fn refuses_malformed_control_lines() {
        for bad in [
            &b"\n"[..],
            b"extend\n",
            b"extend \n",
            b"extend -1\n",
            b"extend 1 2\n",
            b"extend  1\n",
            b"extend 0x10\n",
            b"extend 18446744073709551616\n",
            b"STOP\n",
            b"stop \n",
            b"stop\r\n",
            b"\xff\xfe\n",
            b"kill\n",
        ] {
            let mut parser = ControlParser::default();
            assert!(
                parser.push(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn refuses_an_overlong_line_before_its_end_arrives() {
        let mut parser = ControlParser::default();
        let error = parser.push(&[b'1'; MAX_CONTROL_LINE + 1]).unwrap_err();
        assert!(error.contains("longer than 64 bytes"), "{error}");
        // The longest valid line fits.
        let mut parser = ControlParser::default();
        assert!(parser.push(b"extend 18446744073709551615\n").is_ok());
    }
}
