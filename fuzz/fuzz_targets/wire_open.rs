//! The datagram opener (`tenure_node::wire`), driven by a script of operations so that the
//! fuzzer reaches past the tag check: the harness seals datagrams itself (HMAC-SHA256 under
//! the well-known insecure key) with any header it likes, replays earlier ones and flips bits.
//!
//! Checked at every step: `open` never panics; a datagram with any bit flipped never opens;
//! and every authentic datagram is accepted or dropped exactly as a reference model of the
//! replay window says (a `BTreeSet` of accepted sequences instead of the opener's bitmask).
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;
use tenure_node::wire::{
    ClusterKey, DatagramDropReason, Opener, HEADER_LEN, INSECURE_KEY, MAGIC, MAX_DATAGRAM, REPLAY_WINDOW,
    TAG_LEN,
};

const OWN_INDEX: u16 = 0;
const MEMBERS: u16 = 3;

/// Reads the fuzz input front to back; running out yields zeros, which ends the script.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    fn bytes(&mut self, count: usize) -> &[u8] {
        let count = count.min(self.0.len());
        let (taken, rest) = self.0.split_at(count);
        self.0 = rest;
        taken
    }

    fn u64(&mut self) -> u64 {
        let mut eight = [0; 8];
        let taken = self.bytes(8);
        eight[..taken.len()].copy_from_slice(taken);
        u64::from_be_bytes(eight)
    }
}

/// What the opener should remember of one sender.
struct Window {
    incarnation: u64,
    highest: u64,
    accepted: BTreeSet<u64>,
}

fn seal(sender: u16, receiver: u16, incarnation: u64, sequence: u64, payload: &[u8]) -> Vec<u8> {
    let mut datagram = Vec::new();
    datagram.extend_from_slice(&MAGIC);
    datagram.extend_from_slice(&sender.to_be_bytes());
    datagram.extend_from_slice(&receiver.to_be_bytes());
    datagram.extend_from_slice(&incarnation.to_be_bytes());
    datagram.extend_from_slice(&sequence.to_be_bytes());
    datagram.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    datagram.extend_from_slice(payload);
    let mut mac = Hmac::<Sha256>::new_from_slice(&INSECURE_KEY).expect("any key length");
    mac.update(&datagram);
    datagram.extend_from_slice(&mac.finalize().into_bytes());
    datagram
}

/// The header of `datagram` if it is well-formed and carries a valid tag, else `None`.
fn authentic_header(datagram: &[u8]) -> Option<(u16, u16, u64, u64)> {
    if datagram.len() > MAX_DATAGRAM || datagram.len() < HEADER_LEN + TAG_LEN {
        return None;
    }
    let field = |offset: usize| u16::from_be_bytes([datagram[offset], datagram[offset + 1]]);
    let long = |offset: usize| {
        u64::from_be_bytes(datagram[offset..offset + 8].try_into().expect("8 bytes"))
    };
    if datagram[..4] != MAGIC || HEADER_LEN + usize::from(field(24)) + TAG_LEN != datagram.len() {
        return None;
    }
    let (signed, tag) = datagram.split_at(datagram.len() - TAG_LEN);
    let mut mac = Hmac::<Sha256>::new_from_slice(&INSECURE_KEY).expect("any key length");
    mac.update(signed);
    mac.verify_slice(tag).ok()?;
    Some((field(4), field(6), long(8), long(16)))
}

/// The reference model: the outcome for an authentic datagram with this header.
fn expected(
    windows: &mut BTreeMap<u16, Window>,
    sender: u16,
    receiver: u16,
    incarnation: u64,
    sequence: u64,
) -> Result<(), DatagramDropReason> {
    if sender >= MEMBERS || sender == OWN_INDEX {
        return Err(DatagramDropReason::UnknownPeer);
    }
    if receiver != OWN_INDEX {
        return Err(DatagramDropReason::Misaddressed);
    }
    let fresh = Window {
        incarnation,
        highest: sequence,
        accepted: BTreeSet::from([sequence]),
    };
    let Some(window) = windows.get_mut(&sender) else {
        windows.insert(sender, fresh);
        return Ok(());
    };
    if incarnation < window.incarnation {
        return Err(DatagramDropReason::StaleIncarnation);
    }
    if incarnation > window.incarnation {
        *window = fresh;
        return Ok(());
    }
    if sequence > window.highest {
        window.highest = sequence;
    } else if window.highest - sequence >= REPLAY_WINDOW || window.accepted.contains(&sequence) {
        return Err(DatagramDropReason::Replayed);
    }
    window.accepted.insert(sequence);
    // Only the last REPLAY_WINDOW sequences matter; forget the rest to keep the model small.
    let oldest = window.highest.saturating_sub(REPLAY_WINDOW - 1);
    window.accepted = window.accepted.split_off(&oldest);
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let mut opener = Opener::new(&ClusterKey::insecure(), OWN_INDEX, MEMBERS);
    let mut windows = BTreeMap::new();
    let mut sealed: Vec<Vec<u8>> = Vec::new();
    while let Some(operation) = input.byte() {
        match operation % 4 {
            // Raw bytes, as anyone on the network may send.
            0 => {
                let length = usize::from(input.byte().unwrap_or(0)) * 3 % (MAX_DATAGRAM + 8);
                let raw = input.bytes(length).to_vec();
                let opened = opener.open(&raw).map(drop);
                match authentic_header(&raw) {
                    // Authentic after all (a seed holds a real sealed datagram): the model
                    // decides as for a datagram the harness sealed.
                    Some((sender, receiver, incarnation, sequence)) => {
                        let want = expected(&mut windows, sender, receiver, incarnation, sequence);
                        assert_eq!(opened, want, "authentic raw bytes {raw:?}");
                    }
                    None => assert!(opened.is_err(), "forged bytes opened: {raw:?}"),
                }
            }
            // An authentic datagram with a header of the fuzzer's choosing. Incarnations and
            // sequences come from small ranges or in full, so both windows and wrap-arounds
            // are reached.
            1 => {
                let shape = input.byte().unwrap_or(0);
                let sender = u16::from(shape & 0x3);
                let receiver = u16::from((shape >> 2) & 0x1);
                let incarnation = if shape & 0x10 == 0 {
                    u64::from(input.byte().unwrap_or(0) % 4)
                } else {
                    input.u64()
                };
                let sequence = if shape & 0x20 == 0 {
                    u64::from(input.byte().unwrap_or(0))
                } else {
                    input.u64()
                };
                let length = usize::from(input.byte().unwrap_or(0)) % 24;
                let payload = input.bytes(length).to_vec();
                let datagram = seal(sender, receiver, incarnation, sequence, &payload);
                assert!(datagram.len() <= MAX_DATAGRAM);
                let want = expected(&mut windows, sender, receiver, incarnation, sequence);
                let opened = opener.open(&datagram);
                assert_eq!(
                    opened.as_ref().map(drop).map_err(|reason| *reason),
                    want,
                    "sender {sender} receiver {receiver} incarnation {incarnation} sequence \
                     {sequence}"
                );
                if let Ok(opened) = opened {
                    assert_eq!(opened.from, sender);
                    assert_eq!(opened.payload, payload);
                }
                sealed.push(datagram);
            }
            // A replay of an earlier authentic datagram: the model decides again.
            2 if !sealed.is_empty() => {
                let index = usize::from(input.byte().unwrap_or(0)) % sealed.len();
                let datagram = sealed[index].clone();
                let (sender, receiver, incarnation, sequence) =
                    authentic_header(&datagram).expect("the harness sealed it");
                let want = expected(&mut windows, sender, receiver, incarnation, sequence);
                assert_eq!(opener.open(&datagram).map(drop), want, "replay of #{index}");
            }
            // An earlier authentic datagram with one bit flipped never opens.
            3 if !sealed.is_empty() => {
                let index = usize::from(input.byte().unwrap_or(0)) % sealed.len();
                let mut datagram = sealed[index].clone();
                let bit = usize::from(input.byte().unwrap_or(0)) * 8
                    + usize::from(input.byte().unwrap_or(0) % 8);
                let position = bit / 8 % datagram.len();
                datagram[position] ^= 1 << (bit % 8);
                assert!(
                    opener.open(&datagram).is_err(),
                    "a datagram opened with bit {bit} of byte {position} flipped"
                );
            }
            _ => {}
        }
    }
});
