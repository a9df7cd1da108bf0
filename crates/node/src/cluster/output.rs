//! Connecting a node's standard output and standard error as its [`Output`] asks: to its log
//! file directly, or through two reader threads that time each line.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Sender;
use std::thread;
use std::time::Instant;

use super::spec::{Output, OutputLine, Stream};

/// Sets the standard output and error of `command`, before it is spawned.
pub(super) fn connect(command: &mut Command, output: &Output, log: &Path) -> io::Result<()> {
    match output {
        Output::LogFile => {
            let log = File::options().create(true).append(true).open(log)?;
            command.stdout(log.try_clone()?).stderr(log);
        }
        Output::Lines { .. } => {
            command.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
    }
    Ok(())
}

/// Starts the reader threads of node `node`'s freshly spawned `process`, for
/// [`Output::Lines`]. The threads end when the process and its children close the pipes.
pub(super) fn follow(
    node: usize,
    process: &mut Child,
    output: &Output,
    log: &Path,
) -> io::Result<()> {
    let Output::Lines { sender, log_lines } = output else {
        return Ok(());
    };
    if let Some(stdout) = process.stdout.take() {
        let sender = sender.clone();
        thread::spawn(move || forward_lines(node, stdout, &sender));
    }
    if let Some(stderr) = process.stderr.take() {
        let log = File::options().create(true).append(true).open(log)?;
        let sender = log_lines.then(|| sender.clone());
        thread::spawn(move || copy_log(node, stderr, log, sender.as_ref()));
    }
    Ok(())
}

/// Sends each line of a node's standard output, timed as it is read.
fn forward_lines(node: usize, stdout: impl io::Read, sender: &Sender<OutputLine>) {
    for line in BufReader::new(stdout).lines() {
        let Ok(text) = line else {
            return;
        };
        let line = OutputLine {
            node,
            at: Instant::now(),
            stream: Stream::Stdout,
            text,
        };
        if sender.send(line).is_err() {
            return;
        }
    }
}

/// Copies a node's log lines to its log file, and to `echo` when given.
fn copy_log(node: usize, stderr: impl io::Read, mut log: File, echo: Option<&Sender<OutputLine>>) {
    for line in BufReader::new(stderr).lines() {
        let Ok(text) = line else {
            return;
        };
        let _ = writeln!(log, "{text}");
        if let Some(sender) = echo {
            let _ = sender.send(OutputLine {
                node,
                at: Instant::now(),
                stream: Stream::Log,
                text,
            });
        }
    }
}
