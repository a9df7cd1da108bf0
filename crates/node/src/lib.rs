//! tenure-node: filled in by a later issue.
