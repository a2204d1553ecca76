//! The disk cache across mounts (damaged files re-rendered, a full disk tolerated, a stuck
//! writer not blocking stats and cached reads) and remembered failures.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::mount::{engine, small_tree, Mount};
use common::*;
use thumbfs::mount::cache::{RenderKey, SourceId};

fn cache_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "out"))
        .collect();
    v.sort();
    v
}

/// Sizes and bytes come back from `--cache-dir` after a remount without rendering; damaged
/// cache files (truncated, flipped byte) are detected, removed and rendered again.
#[test]
fn disk_cache_survives_remount_and_damage_is_rerendered() {
    let src = small_tree();
    let cache = tempfile::tempdir().unwrap();
    let cdir = cache.path().to_str().unwrap().to_string();
    let spec = "w40_png";
    let names = ["a.png", "b.png", "c.png"];
    let want: Vec<Vec<u8>> = ["a.jpg", "b.png", "c.ppm"]
        .iter()
        .map(|n| engine(&src.path().join(n), spec).unwrap())
        .collect();

    let m = Mount::new(src.path(), &["--cache-dir", &cdir]);
    let t = Instant::now();
    let sizes: Vec<u64> = names
        .iter()
        .map(|n| fs::metadata(m.path(&format!("{spec}/{n}"))).unwrap().len())
        .collect();
    let cold = t.elapsed();
    for (i, n) in names.iter().enumerate() {
        assert_eq!(
            sizes[i],
            want[i].len() as u64,
            "{n}: exact size on first stat"
        );
        assert_eq!(fs::read(m.path(&format!("{spec}/{n}"))).unwrap(), want[i]);
    }
    m.assert_stats_json();
    assert_eq!(m.stats()["renders"], 3);
    drop(m);
    let files = cache_files(cache.path());
    assert_eq!(files.len(), 3, "one cache file per output");
    assert!(cache.path().join("sizes.log").exists());

    // Damage two of them: truncate one, flip a byte in another.
    let sizes_on_disk: Vec<u64> = files
        .iter()
        .map(|f| fs::metadata(f).unwrap().len())
        .collect();
    fs::OpenOptions::new()
        .write(true)
        .open(&files[0])
        .unwrap()
        .set_len(sizes_on_disk[0] - 5)
        .unwrap();
    let mut b = fs::read(&files[1]).unwrap();
    b[10] ^= 0x40;
    fs::write(&files[1], b).unwrap();

    let m = Mount::new(src.path(), &["--cache-dir", &cdir]);
    let t = Instant::now();
    for (i, n) in names.iter().enumerate() {
        let len = fs::metadata(m.path(&format!("{spec}/{n}"))).unwrap().len();
        assert_eq!(len, want[i].len() as u64, "{n}: size from the index");
    }
    let warm = t.elapsed();
    assert_eq!(
        m.stats()["renders"],
        0,
        "sizes came from the persisted index"
    );
    for (i, n) in names.iter().enumerate() {
        let got = fs::read(m.path(&format!("{spec}/{n}"))).unwrap();
        assert!(got == want[i], "{n}: bytes after remount");
    }
    let st = m.stats();
    assert_eq!(
        st["renders"], 2,
        "the two damaged files were rendered again"
    );
    assert_eq!(st["cache_hits"], 1, "the intact file came from disk");
    assert!(m.log_text().contains("damaged"), "log: {}", m.log_text());
    drop(m);
    // Rewritten intact: a third mount renders nothing.
    assert_eq!(cache_files(cache.path()).len(), 3);
    let m = Mount::new(src.path(), &["--cache-dir", &cdir]);
    for (i, n) in names.iter().enumerate() {
        assert!(fs::read(m.path(&format!("{spec}/{n}"))).unwrap() == want[i]);
    }
    assert_eq!(m.stats()["renders"], 0);
    eprintln!("stat of 3 files: cold {cold:?}, warm after remount {warm:?}");
}

/// A cache directory on a full filesystem: every read still gets the right bytes (from
/// memory) and the failure is logged once.
#[test]
fn full_cache_disk_keeps_serving_from_memory() {
    let src = small_tree();
    let cache = tempfile::tempdir().unwrap();
    // A 16 KiB tmpfs: the first output larger than that fails to write (ENOSPC).
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16k", "tmpfs"])
        .arg(cache.path())
        .status()
        .unwrap();
    assert!(st.success(), "mounting a tmpfs for the cache (needs root)");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(cache.path().to_path_buf());
    let cdir = cache.path().to_str().unwrap();
    let m = Mount::new(src.path(), &["--cache-dir", cdir]);
    // Full-size PNG outputs of three images: together far more than 16 KiB.
    for spec in ["png", "invert_png"] {
        for (n, s) in [("a.png", "a.jpg"), ("b.png", "b.png"), ("c.png", "c.ppm")] {
            let got = fs::read(m.path(&format!("{spec}/{n}"))).unwrap();
            assert!(
                got == engine(&src.path().join(s), spec).unwrap(),
                "{spec}/{n}"
            );
        }
    }
    let log = m.log_text();
    assert_eq!(
        log.matches("serving from memory only").count(),
        1,
        "one warning: {log}"
    );
    assert_eq!(m.stats()["errors"], 0);
    drop(m);
    assert!(
        !fs::read_dir(cache.path()).unwrap().any(|e| e
            .unwrap()
            .path()
            .extension()
            .is_some_and(|x| x == "tmp")),
        "no temp files left behind"
    );
}

/// A broken image is EIO every time but decoded once (until the file changes); the daemon
/// keeps serving the others, and a repaired file renders.
#[test]
fn broken_image_fails_once_until_repaired() {
    let src = small_tree();
    let broken = src.path().join("broken.png");
    fs::copy(corpus("pngsuite/corrupt/xcsn0g01.png"), &broken).unwrap();
    let m = Mount::new(src.path(), &[]);
    let p = m.path("w32/broken.png");
    for _ in 0..3 {
        let e = fs::metadata(&p).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EIO));
        let e = fs::read(&p).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EIO));
    }
    let st = m.stats();
    assert_eq!(
        (st["renders"], st["errors"]),
        (1, 1),
        "decoded once: {st:?}"
    );
    let errors = fs::read_to_string(m.path(".thumbfs/errors")).unwrap();
    let first = errors.lines().next().unwrap();
    assert!(
        first.contains("broken.png") && first.contains("w32"),
        "{errors}"
    );
    assert!(
        m.log_text().contains("broken.png"),
        "a warning names the file"
    );
    assert!(
        fs::read(m.path("w32/a.jpg")).unwrap() == engine(&src.path().join("a.jpg"), "w32").unwrap()
    );
    // Repaired: a new source identity renders again.
    let tmp = src.path().join("fixed.tmp");
    fs::copy(corpus("pngsuite/primary/basn2c08.png"), &tmp).unwrap();
    fs::rename(&tmp, &broken).unwrap();
    assert!(fs::read(&p).unwrap() == engine(&broken, "w32").unwrap());
}

const OLD: &str = "jpeg/flower.png.im_q85_420.jpg";

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
            // Opens reach the daemon: each probe below is a request it must answer.
            "--open-mode",
            "per-open",
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
