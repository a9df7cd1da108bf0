//! The replay window: which `(incarnation, sequence)` pairs of one sender's authentic datagrams
//! are fresh.
//!
//! The real transport (`tenure-node`'s sealed UDP) applies it after a datagram's tag checks out;
//! the simulation's transport applies the very same rule to the datagrams its adversary holds
//! back and releases late. It lives here, beside the driver, so that both use one
//! implementation without the simulation depending on the binary's crate.
//!
//! A sender numbers its datagrams per boot (`incarnation`) with one sequence counter across
//! all receivers. A lower incarnation than the one held is `StaleIncarnation`; a sequence
//! already accepted, or older than [`REPLAY_WINDOW`] below the highest, is `Replayed`.
//! RFC 4303 §3.4.3 describes the same sliding window for IPsec.

/// How many sequences below the highest one the replay window remembers.
pub const REPLAY_WINDOW: u64 = 64;

const _: () = assert!(
    REPLAY_WINDOW == u64::BITS as u64,
    "the window is one u64 bitmap"
);

/// Why a datagram's `(incarnation, sequence)` was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReplayError {
    /// From an earlier boot of the sender than one already seen.
    StaleIncarnation,
    /// A sequence already accepted, or older than the replay window.
    Replayed,
}

/// What one sender's authentic datagrams have used up: RFC 4303 §3.4.3-style sliding window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayWindow {
    incarnation: u64,
    highest_sequence: u64,
    /// Bit i set: sequence `highest_sequence - i` was accepted. Bit 0 is always set.
    accepted: u64,
}

impl ReplayWindow {
    /// The window after the first datagram seen from a sender.
    pub fn first(incarnation: u64, sequence: u64) -> ReplayWindow {
        ReplayWindow {
            incarnation,
            highest_sequence: sequence,
            accepted: 1,
        }
    }

    /// The sender's incarnation this window holds: the highest accepted.
    #[must_use]
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// Records `(incarnation, sequence)` if it is fresh; leaves the window unchanged if not.
    pub fn accept(&mut self, incarnation: u64, sequence: u64) -> Result<(), ReplayError> {
        if incarnation < self.incarnation {
            return Err(ReplayError::StaleIncarnation);
        }
        if incarnation > self.incarnation {
            // The sender restarted; its sequences start over.
            *self = ReplayWindow::first(incarnation, sequence);
            return Ok(());
        }
        if sequence > self.highest_sequence {
            let shift = sequence - self.highest_sequence;
            self.accepted = if shift >= REPLAY_WINDOW {
                1
            } else {
                (self.accepted << shift) | 1
            };
            self.highest_sequence = sequence;
            return Ok(());
        }
        let age = self.highest_sequence - sequence;
        if age >= REPLAY_WINDOW {
            return Err(ReplayError::Replayed);
        }
        let bit = 1u64 << age;
        if self.accepted & bit != 0 {
            return Err(ReplayError::Replayed);
        }
        self.accepted |= bit;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_window_edges() {
        let mut window = ReplayWindow::first(1, 100);
        // A jump of exactly the window size forgets everything before.
        assert_eq!(window.accept(1, 164), Ok(()));
        assert_eq!(window.accept(1, 100), Err(ReplayError::Replayed));
        assert_eq!(window.accept(1, 101), Ok(()));
        assert_eq!(window.accept(1, 101), Err(ReplayError::Replayed));
        // A jump of one less keeps the old highest in the window.
        let mut window = ReplayWindow::first(1, 100);
        assert_eq!(window.accept(1, 163), Ok(()));
        assert_eq!(window.accept(1, 100), Err(ReplayError::Replayed));
        assert_eq!(window.accept(1, 99), Err(ReplayError::Replayed));
        // The extremes of the sequence space.
        let mut window = ReplayWindow::first(1, 0);
        assert_eq!(window.accept(1, u64::MAX), Ok(()));
        assert_eq!(window.accept(1, 0), Err(ReplayError::Replayed));
        assert_eq!(window.accept(1, u64::MAX - 63), Ok(()));
        assert_eq!(window.accept(1, u64::MAX - 64), Err(ReplayError::Replayed));
        // A refused datagram leaves the window as it was.
        let before = window;
        assert_eq!(window.accept(0, 5), Err(ReplayError::StaleIncarnation));
        assert_eq!(window, before);
    }
}
