//! Finished outputs on the hot path (issue 12), through real mounts: a source changed while a
//! reader is half-way (all old bytes or EIO, never a mix) in both open modes and with every
//! output evicted at once, the new output at the next open, inodes released on FORGET, and
//! stats and cached reads answered while the disk-cache writer is stuck.

use crate::common;

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::corpus;
use common::mount::{engine, Mount};
use thumbfs::mount::cache::{RenderKey, SourceId};

const OLD: &str = "jpeg/flower.png.im_q85_420.jpg";
const NEW: &str = "jpeg/flower.png.im_q85_444.jpg";
const SPEC: &str = "w700_png";

/// Drops the kernel's clean page cache (1) or dentries and inodes (2), which sends FORGETs.
fn drop_caches(what: u8) {
    fs::write("/proc/sys/vm/drop_caches", format!("{what}\n")).unwrap();
}

/// A source rewritten in place or replaced by rename while a reader holds it half-read: the
/// reader gets all old bytes or EIO, never a mix; after the entry TTL a new open gets the new
/// output. `--cache-mem 1` admits no output, so every output is evicted while it is open:
/// per-open handles keep theirs; no-open reads render the inode's version again, or fail
/// once that version is gone.
#[test]
fn changed_source_mid_read_gives_all_old_bytes_or_eio_then_the_new_output() {
    let old_src = corpus(OLD);
    let new_src = corpus(NEW);
    let old = engine(&old_src, SPEC).unwrap();
    let new = engine(&new_src, SPEC).unwrap();
    assert_ne!(old, new);
    assert!(old.len() > 256 << 10, "several reads' worth: {}", old.len());
    for mode in ["per-open", "no-open"] {
        for in_place in [false, true] {
            let what = format!("{mode}, {}", if in_place { "in place" } else { "renamed" });
            let src = tempfile::tempdir().unwrap();
            let a = src.path().join("a.jpg");
            fs::copy(&old_src, &a).unwrap();
            let m = Mount::new(src.path(), &["--open-mode", mode, "--cache-mem", "1"]);
            let path = m.path(&format!("{SPEC}/a.png"));
            let f = fs::File::open(&path).unwrap();
            let half = old.len() / 2;
            let mut got = vec![0u8; half];
            f.read_exact_at(&mut got, 0).unwrap();
            assert!(got == old[..half], "{what}: first half");
            if mode == "per-open" {
                // A write into the very file a render is still reading fails that render
                // (EIO, correct but not what this case checks); on a loaded machine the
                // render can still be running here, so let it finish first.
                m.wait_idle(Duration::from_secs(120));
            }
            if in_place {
                fs::write(&a, fs::read(&new_src).unwrap()).unwrap();
            } else {
                let tmp = src.path().join("a.jpg.tmp");
                fs::copy(&new_src, &tmp).unwrap();
                fs::rename(&tmp, &a).unwrap();
            }
            // Nothing of the old output left in the page cache either.
            drop_caches(1);
            std::thread::sleep(Duration::from_millis(1100));
            let mut rest = Vec::new();
            let result = (|| -> std::io::Result<()> {
                let mut buf = vec![0u8; 128 << 10];
                loop {
                    let n = f.read_at(&mut buf, (half + rest.len()) as u64)?;
                    if n == 0 {
                        return Ok(());
                    }
                    rest.extend_from_slice(&buf[..n]);
                }
            })();
            match &result {
                Ok(()) => {
                    let mut whole = got.clone();
                    whole.extend_from_slice(&rest);
                    assert!(
                        whole == old,
                        "{what}: {} bytes, not the old output",
                        whole.len()
                    );
                }
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{what}: {e}");
                    assert_eq!(mode, "no-open", "{what}: a per-open handle keeps its bytes");
                }
            }
            drop(f);
            assert_eq!(
                fs::metadata(&path).unwrap().len(),
                new.len() as u64,
                "{what}: new size"
            );
            assert!(fs::read(&path).unwrap() == new, "{what}: next open");
            eprintln!(
                "{what}: rest of the old file {:?}",
                result.map(|_| rest.len())
            );
        }
    }
}

/// Both open modes serve the engine's bytes, and `.thumbfs/stats` stays fresh and whole in
/// no-open mode (page cache, snapshot per getattr). no-open with `--stat estimate` is refused.
#[test]
fn no_open_mode_serves_the_engines_bytes() {
    let src = tempfile::tempdir().unwrap();
    for (from, to) in [
        ("jpeg/video-001.jpeg", "a.jpg"),
        ("pngsuite/primary/basn2c08.png", "b.png"),
    ] {
        fs::copy(corpus(from), src.path().join(to)).unwrap();
    }
    let m = Mount::new(src.path(), &["--open-mode", "no-open"]);
    for spec in ["w48", "w40_webp", "png"] {
        for name in ["a", "b"] {
            let ext = match spec {
                "w40_webp" => "webp",
                "png" => "png",
                _ if name == "a" => "jpg",
                _ => "png",
            };
            let from = src.path().join(if name == "a" { "a.jpg" } else { "b.png" });
            let want = engine(&from, spec).unwrap();
            for _ in 0..3 {
                let got = fs::read(m.path(&format!("{spec}/{name}.{ext}"))).unwrap();
                assert!(got == want, "{spec}/{name}");
            }
        }
    }
    let renders = m.stats()["renders"];
    assert_eq!(renders, 6, "one render per output");
    assert_eq!(
        m.stats()["renders"],
        renders,
        "stats re-read, still parseable"
    );

    let mnt = tempfile::tempdir().unwrap();
    let out = Command::new(common::thumbfs_bin())
        .args([
            "mount",
            "-f",
            "--open-mode",
            "no-open",
            "--stat",
            "estimate",
        ])
        .arg(src.path())
        .arg(mnt.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --stat exact"));
}

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

/// The disk-cache writer stuck for good (its temporary file is a FIFO nobody reads, as a hung
/// cache disk would be) while four renders write large outputs: opens, reads and stats of
/// finished files still answer at once, and unmounting still exits.
#[test]
fn stats_and_cached_reads_answer_while_the_disk_cache_writer_is_stuck() {
    let src = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..6).map(|i| format!("f{i}.jpg")).collect();
    for n in &names {
        fs::copy(corpus(OLD), src.path().join(n)).unwrap();
    }
    let cache_dir = cache.path().to_str().unwrap();
    let mut m = Mount::new(
        src.path(),
        &[
            "--cache-dir",
            cache_dir,
            "--threads",
            "4",
            "--render-timeout",
            "120",
        ],
    );
    // The first output's disk write blocks in open() on a FIFO.
    let canonical = "w64".parse::<thumbfs::Spec>().unwrap().to_string();
    let key = RenderKey {
        source: SourceId::of(&fs::metadata(src.path().join("f0.jpg")).unwrap()),
        spec: canonical,
    };
    let fifo = cache.path().join(format!("{:016x}.tmp", key.hash()));
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let first = fs::read(m.path("w64/f0.jpg")).unwrap();
    assert!(first == engine(&src.path().join("f0.jpg"), "w64").unwrap());
    let small = fs::read(m.path("w64/f1.jpg")).unwrap();
    // Four large renders whose outputs queue behind the stuck write.
    let stop = Arc::new(AtomicBool::new(false));
    let busy: Vec<_> = names[2..]
        .iter()
        .map(|n| {
            let p = m.path(&format!("png/{}", n.replace(".jpg", ".png")));
            let stop = stop.clone();
            std::thread::spawn(move || {
                if !stop.load(Ordering::Relaxed) {
                    fs::read(&p).unwrap();
                }
            })
        })
        .collect();
    let t = Instant::now();
    while m.stats()["in_flight"] == 0 && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut lat = Vec::new();
    let probe = m.path("w64/f1.jpg");
    for i in 0..400 {
        let t = Instant::now();
        if i % 2 == 0 {
            // Open and release reach the daemon every time in per-open mode.
            assert!(fs::read(&probe).unwrap() == small);
        } else {
            // TTL 0: every stat of .thumbfs/stats is a getattr that reads the cache's state.
            fs::metadata(m.path(".thumbfs/stats")).unwrap();
        }
        lat.push(t.elapsed());
    }
    let during = m.stats()["in_flight"];
    stop.store(true, Ordering::Relaxed);
    for b in busy {
        b.join().unwrap();
    }
    lat.sort();
    let p50 = lat[lat.len() / 2];
    let p99 = lat[lat.len() * 99 / 100];
    eprintln!(
        "open+read or stat while the cache writer is stuck and {during} renders run: \
         p50 {p50:?}, p99 {p99:?}, max {:?}",
        lat[lat.len() - 1]
    );
    // The goal is 1 ms; this bound only catches waiting on the writer (for ever, before).
    assert!(p99 < Duration::from_millis(250), "p99 {p99:?}");
    let st = m.stop(None);
    assert!(st.success(), "{st:?}");
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
