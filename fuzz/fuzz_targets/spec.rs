//! The path grammar: any string either fails to parse or its canonical spelling parses back to
//! the same spec.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = thumbfs_fuzz::spec_round_trip(text);
    }
});
