//! tenure-tests: filled in by a later issue.
