//! [`SometimesLatch`]: reports each `Sometimes` property only in the first state it holds in,
//! shared by both models.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Which of `N` `Sometimes` properties were reached, when latching. A `Sometimes` property is
/// evaluated in every state until stateright sees it hold; a leader acts in most states, so
/// that costs more than the rest of the check. Latched, the property is true once and false
/// afterwards, which changes no result. A checker run wants this; the Explorer, which shows
/// every property in every state, does not.
#[derive(Clone, Debug)]
pub(crate) struct SometimesLatch<const N: usize>(Option<Arc<[AtomicBool; N]>>);

impl<const N: usize> SometimesLatch<N> {
    /// No latching: every property is evaluated in every state.
    pub(crate) fn off() -> SometimesLatch<N> {
        SometimesLatch(None)
    }

    /// Latching, with nothing reached yet.
    pub(crate) fn on() -> SometimesLatch<N> {
        SometimesLatch(Some(Arc::new(std::array::from_fn(|_| {
            AtomicBool::new(false)
        }))))
    }

    /// Evaluates `Sometimes` property number `index` through the latch, if any.
    pub(crate) fn check(&self, index: usize, holds: impl FnOnce() -> bool) -> bool {
        match &self.0 {
            None => holds(),
            Some(reached) => {
                if reached[index].load(Ordering::Relaxed) || !holds() {
                    return false;
                }
                !reached[index].swap(true, Ordering::Relaxed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_latched_property_holds_once_and_an_unlatched_one_every_time() {
        let latch = SometimesLatch::<2>::on();
        assert!(!latch.check(0, || false));
        assert!(latch.check(0, || true));
        assert!(!latch.check(0, || true), "reported once");
        assert!(latch.check(1, || true), "each property has its own latch");
        let off = SometimesLatch::<2>::off();
        assert!(off.check(0, || true) && off.check(0, || true));
    }
}
