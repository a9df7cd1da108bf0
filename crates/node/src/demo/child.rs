//! The demo's supervised child: a POSIX shell script, so that the demo needs nothing but the
//! `tenure` binary and `/bin/sh`, and so that the command line the demo prints is one a user
//! could run as it is. It prints its fencing token at start and every second, and a last line
//! on SIGTERM:
//!
//! ```text
//! [demo child n1] started with TENURE_FENCING_TOKEN=3 (pid 4242)
//! [demo child n1] working with fencing token 3
//! [demo child n1] SIGTERM: stopping (fencing token 3)
//! ```
//!
//! The guard signals the child's whole process group, so the `sleep` of the loop stops with the
//! shell, whose `wait` returns at once for the trapped SIGTERM. When the demo is gone, the next
//! line hits a closed pipe and ends the shell.

use std::ffi::OsString;
use std::time::Instant;

/// The prefix of every line of the demo child.
const CHILD_PREFIX: &str = "[demo child ";
const STARTED: &str = "] started with TENURE_FENCING_TOKEN=";
const STOPPING: &str = "] SIGTERM: stopping (fencing token ";

/// The child, for `sh -c`. The trap comes before the start line, so that a SIGTERM right
/// after the start is recorded rather than ending the child silently. It holds no single
/// quote, so that it quotes plainly for the printed command line.
const SCRIPT: &str = "say() { echo \"[demo child $TENURE_NODE_ID] $*\"; }; \
                      trap \"say SIGTERM: stopping \\(fencing token $TENURE_FENCING_TOKEN\\); \
                      exit 0\" TERM; \
                      say started with TENURE_FENCING_TOKEN=$TENURE_FENCING_TOKEN \\(pid $$\\); \
                      while :; do sleep 1 & wait $!; \
                      say working with fencing token $TENURE_FENCING_TOKEN; done";

/// The command each node supervises. `marker` (the demo's directory) is the script's only
/// argument, so that every child's command line mentions it and the cleanup can find it.
pub(super) fn command(marker: &str) -> Vec<OsString> {
    ["sh", "-c", SCRIPT, "tenure-demo-child", marker]
        .iter()
        .map(OsString::from)
        .collect()
}

/// A line of a demo child, read from its node's standard output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum ChildLine {
    Started {
        token: u64,
    },
    Stopping {
        token: u64,
    },
    /// Any other line, without the child's prefix.
    Other(String),
}

/// A child start seen on a node's standard output.
#[derive(Clone, Copy, Debug)]
pub(super) struct ChildStart {
    pub(super) node: usize,
    pub(super) token: u64,
    pub(super) at: Instant,
}

/// What a line of a node's standard output says.
pub(super) fn parse(line: &str) -> ChildLine {
    let Some(rest) = line.strip_prefix(CHILD_PREFIX) else {
        return ChildLine::Other(line.to_string());
    };
    let token = |after: &str| after.split([' ', ')']).next()?.parse().ok();
    if let Some(token) = rest.split_once(STARTED).and_then(|(_, after)| token(after)) {
        return ChildLine::Started { token };
    }
    if let Some(token) = rest
        .split_once(STOPPING)
        .and_then(|(_, after)| token(after))
    {
        return ChildLine::Stopping { token };
    }
    ChildLine::Other(
        rest.split_once("] ")
            .map_or(rest.to_string(), |(_, text)| text.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};

    use super::*;

    #[test]
    fn parses_the_childs_lines() {
        assert_eq!(
            parse("[demo child n1] started with TENURE_FENCING_TOKEN=3 (pid 9)"),
            ChildLine::Started { token: 3 }
        );
        assert_eq!(
            parse("[demo child n2] SIGTERM: stopping (fencing token 14)"),
            ChildLine::Stopping { token: 14 }
        );
        assert_eq!(
            parse("[demo child n2] working with fencing token 4"),
            ChildLine::Other("working with fencing token 4".to_string())
        );
        assert_eq!(
            parse("anything else"),
            ChildLine::Other("anything else".to_string())
        );
    }

    #[test]
    fn the_script_prints_the_lines_the_demo_parses() {
        // The start line, then SIGTERM at once: the stop line and status 0.
        let arguments = command("/tmp/tenure-demo-test-marker");
        let mut child = Command::new(&arguments[0])
            .args(&arguments[1..])
            .env("TENURE_NODE_ID", "n7")
            .env("TENURE_FENCING_TOKEN", "12")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
        assert_eq!(parse(first.trim_end()), ChildLine::Started { token: 12 });
        assert!(first.contains(&format!("(pid {})", child.id())), "{first}");
        crate::cluster::process::signal(child.id() as i32, crate::cluster::Signal::TERM);
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        assert!(child.wait().unwrap().success());
        let last = rest.lines().last().unwrap_or_default();
        assert_eq!(parse(last), ChildLine::Stopping { token: 12 }, "{rest}");
    }
}
