//! Peak memory of `thumbfs convert`: a resize holds bands of rows, so its peak follows the
//! image's width, not its height (issue 21). The peak is the child's own `VmHWM`, which it
//! writes to stderr when `THUMBFS_PEAK_RSS` is set.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::thumbfs_bin;

/// Writes a binary 8-bit PPM of `w x h` busy pixels (gradients and noise: nothing compresses
/// or stays shared).
fn write_ppm(path: &Path, w: usize, h: usize) {
    let mut data = Vec::with_capacity(w * h * 3 + 32);
    write!(data, "P6\n{w} {h}\n255\n").unwrap();
    let mut state = 0x2545_f491_u32;
    for y in 0..h {
        for x in 0..w {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            data.push((x * 255 / w) as u8 ^ (state as u8 & 0x1f));
            data.push((y % 256) as u8);
            data.push((state >> 8) as u8);
        }
    }
    std::fs::write(path, data).unwrap();
}

/// Peak RSS in kB of `thumbfs convert spec input -` (output discarded).
fn peak_rss_kb(spec: &str, input: &Path) -> u64 {
    let out = Command::new(thumbfs_bin())
        .args(["convert", spec])
        .arg(input)
        .arg("-")
        .env("THUMBFS_PEAK_RSS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "convert {spec}: {err}");
    err.lines()
        .find_map(|l| l.strip_prefix("thumbfs: peak RSS "))
        .and_then(|v| v.trim_end_matches(" kB").parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS line in: {err}"))
}

#[test]
fn resize_memory_follows_width_not_height() {
    let dir = tempfile::tempdir().unwrap();
    let (short, tall) = (dir.path().join("short.ppm"), dir.path().join("tall.ppm"));
    // Same width, 8x the height: 6 MB and 48 MB of pixels.
    write_ppm(&short, 2000, 1000);
    write_ppm(&tall, 2000, 8000);
    // Enlarging 2x (4000x16000 out of the tall one: 192 MB of output pixels) and shrinking 2x.
    // The short image's band is the whole image when it fits the band budget, so the tall
    // one may take a little more.
    for (spec, out_mb) in [("w4000_up_ppm", 192), ("w1000_ppm", 12)] {
        let (a, b) = (peak_rss_kb(spec, &short), peak_rss_kb(spec, &tall));
        eprintln!("{spec}: peak RSS {a} kB for 2000x1000, {b} kB for 2000x8000");
        // A whole-image resize would hold the tall input (48 MB) and output at once.
        assert!(
            b <= a + 8 * 1024,
            "{spec}: {b} kB for the tall image against {a} kB for the short one: memory \
             grows with the height"
        );
        // Less than the tall input's pixels alone: bands of at most 8 MB in and out, the
        // loader's and saver's rows, and the process.
        assert!(
            b < 40 * 1024,
            "{spec}: {b} kB peak for an image of 48 MB in and {out_mb} MB out"
        );
    }
}
