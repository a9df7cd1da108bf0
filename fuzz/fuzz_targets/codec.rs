//! The election message codec (`tenure_core::Message::decode`) and the transport's notice
//! (`tenure_node::notice`): any payload either fails to decode or decodes to a message whose
//! encoding is exactly that payload (the format has one encoding per message), no payload is
//! both, and decoding never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tenure_core::Message;
use tenure_node::notice::IncarnationNotice;

fuzz_target!(|payload: &[u8]| {
    let message = Message::decode(payload);
    if let Ok(message) = message {
        assert_eq!(
            message.encode(),
            payload,
            "{message:?} re-encodes differently"
        );
    }
    if let Some(Ok(notice)) = IncarnationNotice::decode(payload) {
        assert!(message.is_err(), "{payload:?} decodes as both a message and {notice:?}");
        assert_eq!(notice.encode(), payload, "{notice:?} re-encodes differently");
    }
});
