//! The state file decoder (`tenure_node::state_file`): any file contents either are refused
//! or decode to a state that `encode_state` writes back byte for byte. So no two files mean
//! the same state, nothing is silently normalised, and decoding never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tenure_node::state_file::{decode_state, encode_state};

fuzz_target!(|bytes: &[u8]| {
    if let Ok(state) = decode_state(bytes) {
        assert_eq!(
            encode_state(&state).as_bytes(),
            bytes,
            "{state:?} re-encodes differently"
        );
    }
});
