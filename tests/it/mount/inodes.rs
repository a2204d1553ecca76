//! Inodes: released on FORGET, and a walk of a million entries keeps the daemon's memory
//! bounded.

use crate::common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::corpus;
use common::mount::{drop_caches, Mount};

/// Walking a tree allocates inodes the kernel later forgets: after the kernel drops its
/// dentries, the daemon's table shrinks back, and listing allocates none.
#[test]
fn forget_releases_inodes() {
    let src = tempfile::tempdir().unwrap();
    let png = fs::read(corpus("pngsuite/primary/basn0g01.png")).unwrap();
    let (dirs, per_dir) = (20, 100);
    for d in 0..dirs {
        let dir = src.path().join(format!("d{d:02}"));
        fs::create_dir(&dir).unwrap();
        for i in 0..per_dir {
            fs::write(dir.join(format!("{i:03}.png")), &png).unwrap();
        }
    }
    let m = Mount::new(src.path(), &["--stat", "estimate"]);
    let base = m.stats()["inodes"];
    let spec = m.path("w16");
    let mut listed = 0;
    for d in fs::read_dir(&spec).unwrap() {
        listed += fs::read_dir(d.unwrap().path()).unwrap().count();
    }
    assert_eq!(listed, dirs * per_dir);
    let after_list = m.stats()["inodes"];
    assert!(
        after_list <= base + dirs as u64 + 1,
        "listing allocated {after_list}"
    );
    let rss_before = m.status_kib("VmRSS");
    walk_stat(&spec);
    let walked = m.stats()["inodes"];
    assert!(
        walked >= base + (dirs * per_dir) as u64,
        "{walked} inodes after the walk"
    );
    let t = Instant::now();
    let mut now = walked;
    while now > base + 50 {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "still {now} inodes (walk {walked}, base {base})"
        );
        drop_caches(2);
        std::thread::sleep(Duration::from_millis(200));
        now = m.stats()["inodes"];
    }
    eprintln!(
        "inodes: base {base}, after listing {after_list}, after stat of {} files {walked}, \
         after drop_caches {now} ({:?}); RSS before walk {rss_before} KiB, after {} KiB",
        dirs * per_dir,
        t.elapsed(),
        m.status_kib("VmRSS")
    );
}

fn walk_stat(dir: &Path) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let meta = fs::metadata(&p).unwrap();
        if meta.is_dir() {
            walk_stat(&p);
        }
    }
}

/// Daemon memory while walking a big tree through ten specs (`--stat estimate`, so a stat
/// renders nothing): every file of every spec is stat'ed, the kernel holds what it likes, and
/// peak RSS must stay within the bound the README states (the idle daemon plus 1 KiB per
/// entry). Short form: 2,000 images x 10 specs; `THUMBFS_WALK_FILES=100000` (scripts/stress.sh)
/// is the million-entry walk.
#[test]
fn big_walk_keeps_memory_bounded() {
    let files: usize = std::env::var("THUMBFS_WALK_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let specs = [
        "w64", "w32", "w16", "h64", "h32", "h16", "64x64", "32x32", "w64_png", "w32_webp",
    ];
    let src = tempfile::tempdir().unwrap();
    let png = fs::read(corpus("pngsuite/primary/basn0g01.png")).unwrap();
    let per_dir = 1000.min(files);
    for i in 0..files {
        let dir = src.path().join(format!("d{:04}", i / per_dir));
        if i % per_dir == 0 {
            fs::create_dir(&dir).unwrap();
        }
        fs::write(dir.join(format!("{i:06}.png")), &png).unwrap();
    }
    let m = Mount::new(src.path(), &["--stat", "estimate"]);
    let idle = m.status_kib("VmRSS");
    let t = Instant::now();
    for s in specs {
        walk_stat(&m.path(s));
    }
    let entries = files * specs.len();
    let walk = t.elapsed();
    let peak = m.status_kib("VmHWM");
    let held = m.stats()["inodes"];
    let bound = idle + entries as u64 + 64 * 1024;
    eprintln!(
        "walk of {entries} entries in {walk:?}: idle RSS {idle} KiB, peak {peak} KiB \
         ({:.0} bytes per entry), {held} inodes held at the end; bound {bound} KiB",
        (peak.saturating_sub(idle) * 1024) as f64 / entries as f64
    );
    assert_eq!(m.stats()["renders"], 0, "estimate mode renders nothing");
    assert!(peak <= bound, "peak RSS {peak} KiB > {bound} KiB");
}
