//! The network: in order by default, with a bounded number of delayed messages.
//!
//! The messages one step of a node sends (a broadcast) leave together as a batch, and batches
//! arrive in the order they were sent, all within the unit of global time they were sent in:
//! the messages of a batch arrive in any order, a later batch only after an earlier one. The
//! network's freedom beyond that lies in its faults: it loses an arriving message, duplicates
//! it, or delays it. A delayed message (and the spare copy of a duplicated one) waits in a
//! small multiset and arrives, or is lost, at any later point, even many units later and after
//! messages sent long after it. This is delay-bounded scheduling (Emmi, Qadeer and Rakamarić,
//! POPL 2011): every reordering that needs at most `max_faults` delays is explored, without
//! the interleavings of all messages with each other that would multiply the state space
//! without adding behaviours of interest.

use tenure_core::Envelope;

/// Messages in flight.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Network {
    /// Batches in send order, each sorted, concatenated.
    queue: Vec<Envelope>,
    /// The length of each batch in `queue`, oldest first; none is zero.
    batches: Vec<u8>,
    /// Held back, sorted (a multiset: copies appear twice). Any of them may arrive next.
    delayed: Vec<Envelope>,
}

impl Network {
    /// The messages one step sent leave together.
    pub fn send_batch(&mut self, mut batch: Vec<Envelope>) {
        if batch.is_empty() {
            return;
        }
        batch.sort_unstable();
        self.batches
            .push(u8::try_from(batch.len()).expect("one step sends a handful of messages"));
        self.queue.extend(batch);
    }

    /// The messages that may arrive next (the oldest batch), each distinct one once.
    pub fn arriving(&self) -> impl Iterator<Item = &Envelope> + '_ {
        let batch = &self.queue[..self
            .batches
            .first()
            .map_or(0, |length| usize::from(*length))];
        distinct(batch)
    }

    /// Removes one copy of `envelope` from the oldest batch, if it is there.
    pub fn take_arriving(&mut self, envelope: &Envelope) -> Option<Envelope> {
        let length = usize::from(*self.batches.first()?);
        let position = self.queue[..length].binary_search(envelope).ok()?;
        let taken = self.queue.remove(position);
        if length == 1 {
            self.batches.remove(0);
        } else {
            self.batches[0] -= 1;
        }
        Some(taken)
    }

    /// Adds a message to the delayed multiset.
    pub fn hold(&mut self, envelope: Envelope) {
        let position = self.delayed.partition_point(|other| *other < envelope);
        self.delayed.insert(position, envelope);
    }

    /// Removes one delayed copy of `envelope`, if there is one.
    pub fn take_delayed(&mut self, envelope: &Envelope) -> Option<Envelope> {
        let position = self.delayed.binary_search(envelope).ok()?;
        Some(self.delayed.remove(position))
    }

    /// The delayed messages, each distinct one once.
    pub fn distinct_delayed(&self) -> impl Iterator<Item = &Envelope> + '_ {
        distinct(&self.delayed)
    }

    /// Messages queued (not delayed), oldest batch first.
    pub fn queued(&self) -> &[Envelope] {
        &self.queue
    }

    /// Messages held back.
    pub fn delayed(&self) -> &[Envelope] {
        &self.delayed
    }

    /// Every message in flight.
    pub fn len(&self) -> usize {
        self.queue.len() + self.delayed.len()
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every message in flight, queued first.
    pub fn iter(&self) -> impl Iterator<Item = &Envelope> + '_ {
        self.queue.iter().chain(self.delayed.iter())
    }
}

/// Each distinct envelope of a sorted slice once.
fn distinct(sorted: &[Envelope]) -> impl Iterator<Item = &Envelope> + '_ {
    sorted
        .iter()
        .enumerate()
        .filter(|(index, envelope)| *index == 0 || sorted[index - 1] != **envelope)
        .map(|(_, envelope)| envelope)
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
    fn batches_arrive_in_order_and_a_batch_in_any_order() {
        let mut network = Network::default();
        network.send_batch(vec![envelope(2, 1), envelope(1, 1)]);
        network.send_batch(vec![envelope(1, 2)]);
        let arriving: Vec<Envelope> = network.arriving().copied().collect();
        assert_eq!(arriving, vec![envelope(1, 1), envelope(2, 1)]);
        assert_eq!(
            network.take_arriving(&envelope(1, 2)),
            None,
            "not before its batch"
        );
        let second = network.take_arriving(&envelope(2, 1)).expect("arriving");
        network.hold(second);
        network.hold(second);
        assert_eq!(network.take_arriving(&envelope(1, 1)), Some(envelope(1, 1)));
        assert_eq!(
            network.arriving().copied().collect::<Vec<_>>(),
            vec![envelope(1, 2)]
        );
        assert_eq!(network.len(), 3);
        assert_eq!(network.distinct_delayed().count(), 1);
        assert_eq!(network.take_delayed(&second), Some(second));
        assert_eq!(network.take_delayed(&envelope(2, 9)), None);
        assert_eq!(network.delayed(), &[second][..]);
    }
}
