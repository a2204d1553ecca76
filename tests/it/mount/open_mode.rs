//! `--open-mode`: the default, `auto`, is no-open under `--stat exact` (re-reads never reach
//! the daemon) and per-open under `--stat estimate` (files stream while they render); every
//! mode serves the same bytes, and no-open keeps the memory cache within its budget.

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::time::Duration;

use common::mount::{engine, small_tree, Mount};
use common::*;

/// Drops the kernel's cached pages of `path` (clean pages of a read-only file), so that the
/// next read of it reaches the daemon.
fn drop_pages(path: &std::path::Path) {
    let f = fs::File::open(path).unwrap();
    // SAFETY: a valid open descriptor; fadvise only drops clean cached pages.
    let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0, "fadvise {}", path.display());
}

/// In the default mode (and with `-o open_mode=auto`) a finished output is re-read without
/// the daemon hearing of it: no open, no read (bytes served and cache hits stay where the
/// first read left them). With `--open-mode per-open` every open is a request, each one a
/// cache hit.
#[test]
fn default_mode_rereads_never_reach_the_daemon() {
    let src = small_tree();
    let want = engine(&src.path().join("a.jpg"), "w48").unwrap();
    for (what, opts) in [
        ("default", &[][..]),
        ("-o open_mode=auto", &["-o", "open_mode=auto"][..]),
        ("per-open", &["--open-mode", "per-open"][..]),
    ] {
        let m = Mount::new(src.path(), opts);
        let path = m.path("w48/a.jpg");
        assert!(fs::read(&path).unwrap() == want, "{what}: first read");
        let before = m.stats();
        for _ in 0..5 {
            assert!(fs::read(&path).unwrap() == want, "{what}: re-read");
        }
        let after = m.stats();
        let grew = |k: &str| after[k] - before[k];
        assert_eq!(after["renders"], 1, "{what}");
        if what == "per-open" {
            // Each open is a request; it counts as a cache hit when the output is in the
            // memory cache (under load it may be held only by the read pins, which count none).
            if after["cache_mem_entries"] > 0 {
                assert!(grew("cache_hits") >= 5, "{what}: {before:?} -> {after:?}");
            }
        } else {
            assert_eq!(grew("cache_hits"), 0, "{what}: an open reached the daemon");
            assert_eq!(
                grew("bytes_served"),
                0,
                "{what}: a re-read reached the daemon"
            );
        }
    }
}

/// With `--stat estimate` the default mode streams: the first bytes of a slow render arrive
/// while it still runs (no-open would be refused with estimate sizes).
#[test]
fn default_mode_with_estimate_streams() {
    let m = Mount::new(
        &corpus("photos"),
        &["--stat", "estimate", "--render-timeout", "30"],
    );
    // Maximum zlib effort on the photo enlarged to ~20 megapixels: many seconds of work.
    let f = fs::File::open(m.path("w6000_up_png_c9/seeding_by_Clements_Engelhardt.png")).unwrap();
    let mut buf = vec![0u8; 65536];
    assert_eq!(f.read_at(&mut buf, 0).unwrap(), 65536);
    assert_eq!(&buf[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(m.stats()["in_flight"], 1, "first bytes arrived mid-render");
}

/// Every open mode, and `--stat estimate` under the default one, serves the engine's bytes.
#[test]
fn every_mode_serves_the_same_bytes() {
    let src = small_tree();
    let cases = [
        ("w48", "a.jpg", "a.jpg"),
        ("w40_webp", "b.png", "b.webp"),
        ("png", "c.ppm", "c.png"),
    ];
    let want: Vec<Vec<u8>> = cases
        .iter()
        .map(|(spec, from, _)| engine(&src.path().join(from), spec).unwrap())
        .collect();
    for opts in [
        &[][..],
        &["--open-mode", "auto"][..],
        &["--open-mode", "per-open"][..],
        &["--open-mode", "no-open"][..],
        &["--stat", "estimate"][..],
        &["--stat", "estimate", "--open-mode", "per-open"][..],
    ] {
        let m = Mount::new(src.path(), opts);
        for ((spec, _, shown), want) in cases.iter().zip(&want) {
            for _ in 0..2 {
                let got = fs::read(m.path(&format!("{spec}/{shown}"))).unwrap();
                assert!(got == *want, "{opts:?}: {spec}/{shown}");
            }
        }
    }
}

/// No open handle pins an output in the default (no-open) mode: the memory cache stays within
/// `--cache-mem` however many outputs are read, re-reads after the kernel dropped its pages
/// give the same bytes, and an output larger than the whole budget (never admitted) read
/// slowly, one request at a time after its render ended, is not rendered again for each
/// request (a read pin holds it, as a handle would).
#[test]
fn default_mode_keeps_the_memory_cache_bounded() {
    let src = corpus("photos");
    let limit = 300u64 << 10;
    let m = Mount::new(&src, &["--cache-mem", "300K"]);
    let mut outputs = BTreeMap::new();
    for spec in ["w200_png", "w300_png", "w400_png", "w500_png"] {
        for name in [
            "seeding_by_Clements_Engelhardt",
            "sunset_by_Aitzol_Berasategi",
        ] {
            let rel = format!("{spec}/{name}.png");
            let want = engine(&src.join(format!("{name}.jpg")), spec).unwrap();
            assert!(fs::read(m.path(&rel)).unwrap() == want, "{rel}");
            outputs.insert(rel, want);
        }
    }
    let total: usize = outputs.values().map(Vec::len).sum();
    assert!(
        total as u64 > 2 * limit,
        "outputs of {total} bytes overflow the cache"
    );
    let st = m.stats();
    assert!(st["cache_mem_bytes"] <= limit, "{st:?}");
    assert!(st["cache_evictions"] > 0, "{st:?}");
    assert_eq!(st["renders"], outputs.len() as u64);
    for rel in outputs.keys() {
        drop_pages(&m.path(rel));
    }
    for (rel, want) in &outputs {
        assert!(fs::read(m.path(rel)).unwrap() == *want, "{rel} re-read");
    }
    let st = m.stats();
    assert!(st["cache_mem_bytes"] <= limit, "{st:?}");
    assert!(st["renders"] <= 2 * outputs.len() as u64, "{st:?}");

    let big = m.path("png/sunset_by_Aitzol_Berasategi.png");
    let want = engine(&src.join("sunset_by_Aitzol_Berasategi.jpg"), "png").unwrap();
    assert!(want.len() as u64 > 8 * limit, "{} bytes", want.len());
    assert!(fs::read(&big).unwrap() == want, "big output");
    m.wait_idle(Duration::from_secs(60));
    drop_pages(&big);
    let before = m.stats()["renders"];
    // 1 MiB at a time with pauses: every request arrives after the render ended.
    let f = fs::File::open(&big).unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read_at(&mut buf, got.len() as u64).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(got == want, "big output, slow re-read");
    let renders = m.stats()["renders"] - before;
    assert!(
        renders <= 1,
        "{renders} renders for one slow read of the big output"
    );
    assert!(m.stats()["cache_mem_bytes"] <= limit);
}
