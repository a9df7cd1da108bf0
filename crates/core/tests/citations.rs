//! Every citation of a rule resolves to a heading (protocol: Citing a rule).
//!
//! The checker walks the repository (Rust, Markdown, TOML, YAML, shell and Python files, and
//! scripts that start with `#!`; never `target/` or `.git/`) and reports, by file and line:
//!
//! - a citation of the spec (`protocol:`, a space, a heading) whose heading docs/protocol.md
//!   does not have;
//! - a citation of another document (its path from the root, ending in `.md`, then a colon, a
//!   space and a heading) whose document does not exist or lacks the heading, and one of the
//!   spec written that way: the spec is cited as `protocol:`;
//! - a citation in an older form: a path, then a comma or an opening bracket, then a quoted
//!   heading;
//! - a mention of a document outside the repository: the original design document or the
//!   style guide, by their upper-case names.
//!
//! A citation resolves when its text, joined across wrapped comment lines, begins with a
//! heading of the cited document and the heading is not followed by more of a word. Every
//! document's headings must be unique, so that a citation names one rule. The tests at the end
//! show that the checker rejects each kind of bad citation; they build their examples from
//! pieces, so that this file cites nothing it does not mean to.
//!
//! Run it alone with `cargo test -p tenure-core --test citations`.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use tenure_core::Invariant;

/// The name that cites the spec, docs/protocol.md.
const SPEC: &str = "protocol";
/// The extension of the documents a citation may name.
const MD: &str = ".md";
/// The spec's path from the root of the repository.
const SPEC_PATH: &str = "docs/protocol.md";
/// Documents outside the repository that nothing may point at, spelled so that this file does
/// not mention them itself.
const OUTSIDE: [&str; 2] = [concat!("DES", "IGN"), concat!("STY", "LE")];
/// The file types the checker reads.
const EXTENSIONS: [&str; 7] = ["rs", "md", "toml", "sh", "py", "yml", "yaml"];
/// Directories never read: build output and version control.
const SKIPPED_DIRECTORIES: [&str; 2] = ["target", ".git"];
/// A citation's heading may wrap onto this many following lines.
const CONTINUATION_LINES: usize = 3;

#[test]
fn every_citation_in_the_repository_resolves() {
    let root = repository_root();
    let files = files(&root);
    assert!(
        files.iter().any(|(path, _)| path == SPEC_PATH),
        "{SPEC_PATH} not found under {}",
        root.display()
    );
    let documents = Documents::new(&files);
    let mut problems = documents.duplicate_headings();
    let mut citations = 0;
    for (path, text) in &files {
        let report = check_file(path, text, &documents);
        citations += report.citations;
        problems.extend(report.problems);
    }
    println!("{citations} citations in {} files", files.len());
    assert!(
        problems.is_empty(),
        "{} of {citations} citations or mentions do not resolve \
         (protocol: Citing a rule):\n{}",
        problems.len(),
        problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn every_rules_test_opens_with_the_citation_of_its_rule() {
    // One test per rule, each naming the heading it pins, as raft-rs's tests name the
    // sections of the Raft paper. The citations themselves are checked above.
    for path in [
        "crates/core/tests/rules.rs",
        "crates/core/tests/store_rules.rs",
    ] {
        check_rules_tests_open_with_citations(path);
    }
}

fn check_rules_tests_open_with_citations(path: &str) {
    let text = fs::read_to_string(repository_root().join(path)).expect("read the rules tests");
    let lines: Vec<&str> = text.lines().collect();
    let mut tests = 0;
    for (index, line) in lines.iter().enumerate() {
        if line.trim() != "#[test]" {
            continue;
        }
        tests += 1;
        // Past any further attributes (`#[should_panic]`), the line after the `fn` line.
        let signature = lines[index + 1..]
            .iter()
            .position(|line| line.trim_start().starts_with("fn "))
            .map_or(lines.len(), |offset| index + 1 + offset);
        let first = lines.get(signature + 1).map_or("", |line| line.trim());
        assert!(
            first.starts_with(&format!("// {SPEC}: ")),
            "{path}:{}: the test does not open with a citation of its rule",
            signature + 2
        );
    }
    assert!(tests > 0, "no tests found in {path}");
}

#[test]
fn every_invariant_has_its_heading_in_the_spec() {
    let root = repository_root();
    let spec = fs::read_to_string(root.join(SPEC_PATH)).expect("read the spec");
    let headings = headings(&spec);
    for invariant in Invariant::ALL {
        assert!(
            headings
                .iter()
                .any(|(_, heading)| heading == invariant.name()),
            "{SPEC_PATH} has no heading for the invariant {invariant}"
        );
    }
}

// ----- The checker --------------------------------------------------------------------------

/// One citation or mention that does not resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Problem {
    file: String,
    line: usize,
    message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// What the checker found in one file.
#[derive(Debug, Default)]
struct Report {
    /// Citations and mentions seen, resolved or not.
    citations: usize,
    problems: Vec<Problem>,
}

/// The headings of every Markdown file of the repository, by path from its root, each with
/// its line number.
struct Documents {
    headings: BTreeMap<String, Vec<(usize, String)>>,
}

impl Documents {
    fn new(files: &[(String, String)]) -> Documents {
        let headings = files
            .iter()
            .filter(|(path, _)| path.ends_with(".md"))
            .map(|(path, text)| (path.clone(), headings(text)))
            .collect();
        Documents { headings }
    }

    /// Resolves the citation text `cited` (what follows `<document>: `) against `document`.
    fn resolve(&self, document: &str, cited: &str) -> Result<(), String> {
        let Some(headings) = self.headings.get(document) else {
            return Err(format!("cites {document}, which does not exist"));
        };
        let found = headings.iter().any(|(_, heading)| {
            cited.strip_prefix(heading.as_str()).is_some_and(|rest| {
                !rest
                    .chars()
                    .next()
                    .is_some_and(|next| next.is_alphanumeric() || next == '_')
            })
        });
        if found {
            Ok(())
        } else {
            Err(format!(
                "\"{}\" is not a heading of {document}",
                shorten(cited)
            ))
        }
    }

    /// Headings that occur twice in one document: a citation of one would be ambiguous.
    fn duplicate_headings(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        for (path, headings) in &self.headings {
            for (index, (line, heading)) in headings.iter().enumerate() {
                if headings[..index]
                    .iter()
                    .any(|(_, earlier)| earlier == heading)
                {
                    problems.push(Problem {
                        file: path.clone(),
                        line: *line,
                        message: format!("the heading \"{heading}\" occurs twice"),
                    });
                }
            }
        }
        problems
    }
}

/// Checks every citation and mention in the text of the file at `path`. In YAML only the
/// comments are read, since a key named like the spec, with its value, is no citation.
fn check_file(path: &str, text: &str, documents: &Documents) -> Report {
    let yaml = path.ends_with(".yml") || path.ends_with(".yaml");
    let lines: Vec<&str> = text
        .lines()
        .map(|line| match line.find('#') {
            Some(comment) if yaml => &line[comment..],
            None if yaml => "",
            _ => line,
        })
        .collect();
    let mut report = Report::default();
    for (index, line) in lines.iter().enumerate() {
        let problem = |message: String| Problem {
            file: path.to_owned(),
            line: index + 1,
            message,
        };
        for (start, document) in citations(line) {
            report.citations += 1;
            let cited = joined(&line[start..], &lines[index + 1..]);
            let resolved = match document {
                Cited::Spec => documents.resolve(SPEC_PATH, &cited),
                Cited::Document(path) if path == SPEC_PATH => {
                    Err(format!("cite the spec as \"{SPEC}: {}\"", shorten(&cited)))
                }
                Cited::Document(path) => documents.resolve(&path, &cited),
            };
            if let Err(message) = resolved {
                report.problems.push(problem(message));
            }
        }
        for document in old_citations(line) {
            report.citations += 1;
            let cited = if document == SPEC_PATH {
                SPEC
            } else {
                &document
            };
            report.problems.push(problem(format!(
                "an old form of citation: write \"{cited}: <Heading>\""
            )));
        }
        for name in outside_mentions(line) {
            report.citations += 1;
            report.problems.push(problem(format!(
                "mentions {name}, a document outside the repository: cite a heading of \
                 {SPEC_PATH} instead"
            )));
        }
    }
    report
}

/// What a citation names before its colon.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Cited {
    /// The spec, by its short name.
    Spec,
    /// A document, by its path from the root of the repository.
    Document(String),
}

/// The citations that begin on `line`: where each one's heading starts, and what it cites.
fn citations(line: &str) -> Vec<(usize, Cited)> {
    let mut found = Vec::new();
    // A colon then a space, or a colon that ends the line: the heading then wraps onto the
    // next comment line.
    let line = line.trim_end();
    for (at, _) in line.match_indices(':') {
        if !(at + 1 == line.len() || line[at + 1..].starts_with(' ')) {
            continue;
        }
        let before = &line[..at];
        let cited = &before[path_start(before)..];
        let document = if cited == SPEC {
            Cited::Spec
        } else if cited.ends_with(MD) && cited.len() > MD.len() {
            Cited::Document(cited.trim_start_matches("./").to_owned())
        } else {
            continue;
        };
        found.push(((at + ": ".len()).min(line.len()), document));
    }
    found
}

/// Paths of documents cited on `line` in an older form: the path (perhaps in backticks), then
/// a comma and a space or a space and an opening bracket, then a double quote.
fn old_citations(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in line.match_indices(MD) {
        let rest = line[at + MD.len()..].trim_start_matches('`');
        if !(rest.starts_with(", \"") || rest.starts_with(" (\"")) {
            continue;
        }
        let start = path_start(&line[..at]);
        if start < at {
            found.push(format!("{}{MD}", &line[start..at]));
        }
    }
    found
}

/// Upper-case names of documents outside the repository that `line` mentions as words.
fn outside_mentions(line: &str) -> Vec<&'static str> {
    let mut found = Vec::new();
    for name in OUTSIDE {
        for (at, _) in line.match_indices(name) {
            let before = line[..at].chars().next_back();
            let after = line[at + name.len()..].chars().next();
            let is_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
            if !is_word(before) && !is_word(after) {
                found.push(name);
            }
        }
    }
    found
}

/// The text of a citation: the rest of its line and the next few lines, without their comment
/// markers, with every run of white space made one space. A blank line ends it.
fn joined(rest: &str, following: &[&str]) -> String {
    let mut text = rest.to_owned();
    for line in following.iter().take(CONTINUATION_LINES) {
        let line = without_comment_marker(line);
        if line.is_empty() {
            break;
        }
        text.push(' ');
        text.push_str(line);
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A line without its indentation and leading comment marker (`//!`, `///`, `//`, `#`, `*`).
fn without_comment_marker(line: &str) -> &str {
    let line = line.trim_start();
    let line = ["//!", "///", "//", "#", "*"]
        .iter()
        .find_map(|marker| line.strip_prefix(marker))
        .unwrap_or(line);
    line.trim()
}

/// The headings of a Markdown text with their line numbers, without their `#`s, outside
/// fenced code blocks.
fn headings(markdown: &str) -> Vec<(usize, String)> {
    let mut headings = Vec::new();
    let mut fenced = false;
    for (index, line) in markdown.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let hashes = line.len() - line.trim_start_matches('#').len();
        if fenced || hashes == 0 || !line[hashes..].starts_with(' ') {
            continue;
        }
        let heading = line[hashes..].split_whitespace().collect::<Vec<_>>();
        headings.push((index + 1, heading.join(" ")));
    }
    headings
}

/// Where the path (or name) that ends `text` begins.
fn path_start(text: &str) -> usize {
    text.char_indices()
        .rev()
        .find(|(_, c)| !is_path_char(*c))
        .map_or(0, |(index, c)| index + c.len_utf8())
}

fn is_path_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/')
}

/// The start of a citation's text, for a message: up to a closing bracket or a semicolon, at
/// most six words, without a final full stop.
fn shorten(cited: &str) -> String {
    let cited = cited.split([')', ';']).next().unwrap_or_default();
    let words: Vec<&str> = cited.split(' ').take(6).collect();
    words.join(" ").trim_end_matches('.').to_owned()
}

// ----- The files ----------------------------------------------------------------------------

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

/// Every file the checker reads, by path from `root` (with `/` separators), with its text.
fn files(root: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut directories = vec![root.to_path_buf()];
    while let Some(directory) = directories.pop() {
        let entries = fs::read_dir(&directory)
            .unwrap_or_else(|error| panic!("cannot list {}: {error}", directory.display()));
        for entry in entries {
            let entry = entry.expect("a directory entry");
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let kind = entry.file_type().expect("a file type");
            if kind.is_dir() {
                if !SKIPPED_DIRECTORIES.contains(&name.as_str()) {
                    directories.push(path);
                }
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            let Ok(bytes) = fs::read(&path) else {
                continue;
            };
            let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            let script = path.extension().is_none() && bytes.starts_with(b"#!");
            if !(EXTENSIONS.contains(&extension) || script) {
                continue;
            }
            let relative = path
                .strip_prefix(root)
                .expect("under the root")
                .components()
                .map(|part| part.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            found.push((relative, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    found.sort();
    found
}

// ----- The checker's own tests --------------------------------------------------------------

/// A small repository: a spec and one other document.
fn documents() -> Documents {
    let spec = "# The spec\n\n## Promises, leases, acting\n\n### Promises\n\n### Acting\n\n\
                ## Graceful handover\n\n```sh\n# Not a heading\n```\n";
    let operations = "# Operating\n\n## Tuning\n";
    Documents::new(&[
        (SPEC_PATH.to_owned(), spec.to_owned()),
        (format!("docs/operations{MD}"), operations.to_owned()),
    ])
}

/// The problems of a file with this text, one line per problem.
fn problems_in(text: &str) -> Vec<String> {
    check_file("example.rs", text, &documents())
        .problems
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn the_checker_accepts_citations_of_existing_headings() {
    let text = format!(
        "// A rule ({SPEC}: Promises). Another ({SPEC}: Promises, leases, acting).\n\
         /// {SPEC}: Acting; {SPEC}: Graceful handover.\n\
         # See (docs/operations{MD}: Tuning).\n\
         let x = 1; // the {SPEC} is not cited here: no colon follows it\n"
    );
    assert_eq!(problems_in(&text), Vec::<String>::new());
    assert_eq!(check_file("example.rs", &text, &documents()).citations, 5);
}

#[test]
fn the_checker_follows_a_heading_that_wraps_onto_the_next_comment_line() {
    let text = format!("    // handed over ({SPEC}: Graceful\n    // handover) at once.\n");
    assert_eq!(problems_in(&text), Vec::<String>::new());
}

#[test]
fn the_checker_reads_a_citation_whose_heading_starts_on_the_next_line() {
    assert!(problems_in(&format!("/// as the spec says ({SPEC}:\n/// Promises).\n")).is_empty());
    assert_eq!(
        problems_in(&format!(
            "/// rounds ({SPEC}:\n/// Failover), plus slack.\n"
        )),
        vec!["example.rs:1: \"Failover\" is not a heading of docs/protocol.md"]
    );
}

#[test]
fn the_checker_rejects_a_heading_the_spec_does_not_have() {
    let text = format!("fn f() {{}}\n// The old name ({SPEC}: Leader lease).\n");
    assert_eq!(
        problems_in(&text),
        vec![format!(
            "example.rs:2: \"Leader lease\" is not a heading of {SPEC_PATH}"
        )]
    );
}

#[test]
fn the_checker_rejects_a_made_up_document() {
    let text = format!("# (docs/nowhere{MD}: Tuning)\n");
    assert_eq!(
        problems_in(&text),
        vec![format!(
            "example.rs:1: cites docs/nowhere{MD}, which does not exist"
        )]
    );
}

#[test]
fn the_checker_rejects_a_heading_of_another_document() {
    let text = format!("// ({SPEC}: Tuning) and (docs/operations{MD}: Promises)\n");
    assert_eq!(problems_in(&text).len(), 2, "{:?}", problems_in(&text));
}

#[test]
fn the_checker_rejects_a_heading_that_is_only_the_start_of_a_word() {
    // "Acting" is a heading, "Actings" is not; "Promises" is, "Promises2" is not.
    let text = format!("// ({SPEC}: Actings) ({SPEC}: Promises2)\n");
    assert_eq!(problems_in(&text).len(), 2, "{:?}", problems_in(&text));
}

#[test]
fn the_checker_rejects_a_heading_inside_a_code_block() {
    let text = format!("// ({SPEC}: Not a heading)\n");
    assert_eq!(problems_in(&text).len(), 1);
}

#[test]
fn the_checker_rejects_the_spec_cited_by_its_path() {
    let text = format!("// (docs/{SPEC}{MD}: Promises)\n");
    assert_eq!(
        problems_in(&text),
        vec![format!(
            "example.rs:1: cite the spec as \"{SPEC}: Promises\""
        )]
    );
}

#[test]
fn the_checker_rejects_the_old_forms_of_citation() {
    let path = format!("docs/operations{MD}");
    let text =
        format!("# see {path}, \"Tuning\"\n// {path} (\"Tuning\") and `{path}`, \"Tuning\"\n");
    let expected = |line: usize| {
        format!("example.rs:{line}: an old form of citation: write \"{path}: <Heading>\"")
    };
    assert_eq!(
        problems_in(&text),
        vec![expected(1), expected(2), expected(2)]
    );
    let text = format!("// docs/{SPEC}{MD} (\"Defaults\")\n");
    assert_eq!(
        problems_in(&text),
        vec![format!(
            "example.rs:1: an old form of citation: write \"{SPEC}: <Heading>\""
        )]
    );
}

#[test]
fn the_checker_reads_only_the_comments_of_yaml() {
    let text = format!("ports: [{{name: udp, {SPEC}: UDP}}]  # ({SPEC}: Leader lease)\n");
    let report = check_file("deploy/example.yaml", &text, &documents());
    assert_eq!(report.citations, 1);
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(problems_in(&text).len(), 2, "in Rust both are read");
}

#[test]
fn the_checker_rejects_documents_outside_the_repository() {
    let [design, style] = OUTSIDE;
    let text = format!(
        "// {design}: Promises\n// see {design}.md\n# ({design})\n// {style}: Tests\n\
         // {design}ED and UN{style}D are other words\n"
    );
    let problems = problems_in(&text);
    assert_eq!(problems.len(), 4, "{problems:?}");
    assert!(problems[0].starts_with("example.rs:1: mentions"));
    assert!(problems[3].starts_with("example.rs:4: mentions"));
}

#[test]
fn the_checker_rejects_a_heading_that_occurs_twice() {
    let documents = Documents::new(&[(
        format!("docs/twice{MD}"),
        "# Twice\n\n## Rule\n\n## Rule\n".to_owned(),
    )]);
    assert_eq!(
        documents
            .duplicate_headings()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        vec![format!(
            "docs/twice{MD}:5: the heading \"Rule\" occurs twice"
        )]
    );
}
