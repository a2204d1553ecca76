//! The video loader (FFmpeg through our declarations), driven like a render: sniff, probe,
//! limits, load, every strip. FFmpeg itself is not instrumented: coverage guides through our
//! side (the I/O callbacks, stream and frame choice, conversion), FFmpeg's parsers take the
//! mutated bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use thumbfs::codec::{video, Format};

fuzz_target!(init: thumbfs_fuzz::init(), |data: &[u8]| {
    let _ = thumbfs_fuzz::decode(data, &[Format(&video::Video)]);
});
