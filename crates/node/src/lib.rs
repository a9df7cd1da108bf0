//! tenure-node: everything between the sans-IO election core and the operating system.
//!
//! So far:
//! - `clock`: the node's only clock, `CLOCK_BOOTTIME`.
//! - `state_file`: the durable term, vote and boot counter, written atomically.
//! - `wire`: authenticated, replay-protected datagrams; `codec`: the election messages in them.
//! - `guard`: the deadline guard that bounds the supervised child's lifetime, and tenure's
//!   handle on it.
//!
//! The driver loop, the UDP transport and the HTTP API build on these.

pub mod clock;
pub mod codec;
pub mod driver;
pub mod guard;
pub mod state_file;
pub mod wire;
