//! The `--config` file parser (`tenure_node::settings`): any text is parsed or refused with a
//! message, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tenure_node::settings::check_config_text;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(text) = std::str::from_utf8(bytes) {
        if let Err(problem) = check_config_text(text) {
            assert!(!problem.is_empty());
        }
    }
});
