//! The libvips-style `name[k=v,...]` argument parser and the spec it builds.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = thumbfs_fuzz::vips_arguments(text);
    }
});
