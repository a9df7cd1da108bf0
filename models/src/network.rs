//! The network: every message in flight may arrive at any instant of its delivery window, in
//! any order; a bounded number of messages may be held back and arrive much later.
//!
//! A message sent at global tick `g` is *in flight* until `g + max_latency`: it may arrive at
//! any instant of that window at which the model stops (the model's time stops at every
//! instant at which anything can change, and at the window's end), before or after any other
//! message in flight. Time does not pass the end of the window until the message has arrived,
//! been lost (a fault) or been *held*. A held message (the network's bounded reordering
//! budget, `SearchBounds::max_holds`) waits in a multiset and may arrive at any later instant, after
//! any number of messages sent after it and any number of term changes, or never. A
//! duplicate is a message that arrives and leaves a held copy behind.

use tenure_core::Envelope;

/// A message in flight and the last global tick at which it may arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InFlight {
    /// The end of the delivery window (global ticks).
    pub deadline: u32,
    /// The message.
    pub envelope: Envelope,
}

/// Messages in flight.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Network {
    /// In flight, sorted (a multiset).
    in_flight: Vec<InFlight>,
    /// Held back, sorted (a multiset: copies appear twice). Any of them may arrive next.
    held: Vec<Envelope>,
}

impl Network {
    /// Puts a message in flight until `deadline`.
    pub fn send(&mut self, envelope: Envelope, deadline: u32) {
        let message = InFlight { deadline, envelope };
        let position = self.in_flight.partition_point(|other| *other < message);
        self.in_flight.insert(position, message);
    }

    /// The messages in flight, each distinct one once.
    pub fn distinct_in_flight(&self) -> impl Iterator<Item = &InFlight> + '_ {
        distinct(&self.in_flight)
    }

    /// Removes one copy of `message` from the messages in flight, if it is there.
    pub fn take_in_flight(&mut self, message: &InFlight) -> Option<InFlight> {
        let position = self.in_flight.binary_search(message).ok()?;
        Some(self.in_flight.remove(position))
    }

    /// Adds a message to the held multiset.
    pub fn hold(&mut self, envelope: Envelope) {
        let position = self.held.partition_point(|other| *other < envelope);
        self.held.insert(position, envelope);
    }

    /// Removes one held copy of `envelope`, if there is one.
    pub fn take_held(&mut self, envelope: &Envelope) -> Option<Envelope> {
        let position = self.held.binary_search(envelope).ok()?;
        Some(self.held.remove(position))
    }

    /// The held messages, each distinct one once.
    pub fn distinct_held(&self) -> impl Iterator<Item = &Envelope> + '_ {
        distinct(&self.held)
    }

    /// The earliest end of a delivery window, if anything is in flight.
    pub fn earliest_deadline(&self) -> Option<u32> {
        self.in_flight.iter().map(|message| message.deadline).min()
    }

    /// Messages in flight.
    pub fn in_flight(&self) -> &[InFlight] {
        &self.in_flight
    }

    /// Messages held back.
    pub fn held(&self) -> &[Envelope] {
        &self.held
    }

    /// Every message in flight or held.
    pub fn len(&self) -> usize {
        self.in_flight.len() + self.held.len()
    }

    /// Whether nothing is in flight or held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every message in flight or held.
    pub fn iter(&self) -> impl Iterator<Item = &Envelope> + '_ {
        self.in_flight
            .iter()
            .map(|message| &message.envelope)
            .chain(self.held.iter())
    }
}

/// Each distinct element of a sorted slice once.
fn distinct<T: PartialEq>(sorted: &[T]) -> impl Iterator<Item = &T> + '_ {
    sorted
        .iter()
        .enumerate()
        .filter(|(index, item)| *index == 0 || sorted[index - 1] != **item)
        .map(|(_, item)| item)
}

#[cfg(test)]
mod tests {
    use tenure_core::{Message, NodeId, Term};

    use super::*;

    fn envelope(to: u32, term: u64) -> Envelope {
        Envelope {
            from: NodeId(0),
            to: NodeId(to),
            message: Message::RequestVote { term: Term(term) },
        }
    }

    #[test]
    fn messages_in_flight_are_a_multiset_and_held_ones_wait() {
        let mut network = Network::default();
        network.send(envelope(2, 1), 5);
        network.send(envelope(1, 1), 5);
        network.send(envelope(1, 1), 5);
        assert_eq!(network.distinct_in_flight().count(), 2);
        assert_eq!(network.earliest_deadline(), Some(5));
        let first = *network.distinct_in_flight().next().expect("in flight");
        assert_eq!(first.envelope, envelope(1, 1));
        let taken = network.take_in_flight(&first).expect("in flight");
        network.hold(taken.envelope);
        assert_eq!(network.len(), 3);
        assert_eq!(network.take_held(&envelope(1, 1)), Some(envelope(1, 1)));
        assert_eq!(network.take_held(&envelope(1, 1)), None);
        assert!(!network.is_empty());
    }
}
