//! The election message codec (`tenure_node::codec`): any payload either fails to decode or
//! decodes to a message whose encoding is exactly that payload (the format has one encoding
//! per message), and decoding never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tenure_node::codec::WireMessage;

fuzz_target!(|payload: &[u8]| {
    if let Ok(message) = WireMessage::decode(payload) {
        assert_eq!(
            message.encode(),
            payload,
            "{message:?} re-encodes differently"
        );
    }
});
