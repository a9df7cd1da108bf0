//! tenure-sim: filled in by a later issue.
