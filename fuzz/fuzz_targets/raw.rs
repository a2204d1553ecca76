//! The RAW loader, driven like a render: sniff, probe, limits, load, every strip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use thumbfs::codec::InputFormat;

fuzz_target!(init: thumbfs_fuzz::init(), |data: &[u8]| {
    let _ = thumbfs_fuzz::decode(data, &[InputFormat::Raw]);
});
