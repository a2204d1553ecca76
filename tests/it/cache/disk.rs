//! The mount's cache, streaming and lifecycle, for real: disk cache across mounts (damaged
//! files re-rendered, a full disk tolerated), `--stat estimate`, reads racing the producer,
//! render timeouts, sources replaced while open, SIGTERM and daemon mode.

use crate::common;

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::mount::{engine, is_mounted, small_tree, Mount};
use common::*;

fn wait_for(mut ok: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

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

/// `--stat estimate`: `ls -l` renders nothing; after open, fstat is exact; reads at random
/// offsets from several threads while the render is still producing get the right bytes.
#[test]
fn estimate_mode_and_reads_racing_the_producer() {
    let photo = corpus("photos/seeding_by_Clements_Engelhardt.jpg");
    let m = Mount::new(&corpus("photos"), &["--stat", "estimate"]);
    let listed = fs::read_dir(m.path("png")).unwrap().count();
    assert_eq!(listed, 2);
    let lstat = fs::metadata(m.path("png/seeding_by_Clements_Engelhardt.png")).unwrap();
    assert_eq!(lstat.len(), fs::metadata(&photo).unwrap().len(), "estimate");
    assert_eq!(m.stats()["renders"], 0, "listing and stat rendered nothing");

    let want = Arc::new(engine(&photo, "png").unwrap());
    let f = Arc::new(fs::File::open(m.path("png/seeding_by_Clements_Engelhardt.png")).unwrap());
    // Eight threads read 64 KiB blocks at scattered offsets, highest first, so most wait
    // for bytes the producer has not written yet.
    let n = want.len() as u64;
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let (f, want) = (f.clone(), want.clone());
            std::thread::spawn(move || {
                for k in (0..16u64).rev() {
                    let off = (n / 16) * k + t * 7919;
                    let mut buf = vec![0u8; 65536];
                    let got = f.read_at(&mut buf, off).unwrap();
                    let end = (off + 65536).min(n) as usize;
                    assert!(
                        buf[..got] == want[off as usize..end],
                        "offset {off}: {got} bytes differ"
                    );
                }
                // Past EOF: nothing.
                assert_eq!(f.read_at(&mut [0u8; 16], n + 100).unwrap(), 0);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(f.metadata().unwrap().len(), n, "fstat after open is exact");
    assert_eq!(m.stats()["renders"], 1);
}

/// A slow render streams its first bytes long before it ends, and one over
/// `--render-timeout` fails with EIO while the daemon keeps serving.
#[test]
fn first_bytes_stream_early_and_slow_renders_time_out() {
    // The timeout (8 s) leaves room for the first bytes on a loaded machine (a few hundred ms
    // of CPU), while the render needs far more CPU than that: maximum zlib effort on the photo
    // enlarged to 81 megapixels (over a minute of work), so it can never finish in time.
    let m = Mount::new(
        &corpus("photos"),
        &["--stat", "estimate", "--render-timeout", "8"],
    );
    let p = m.path("w12000_up_png_c9/seeding_by_Clements_Engelhardt.png");
    let t = Instant::now();
    let f = fs::File::open(&p).unwrap();
    let mut buf = vec![0u8; 65536];
    let got = f.read_at(&mut buf, 0).unwrap();
    let first = t.elapsed();
    assert_eq!(got, 65536);
    assert_eq!(&buf[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(m.stats()["in_flight"], 1, "first bytes arrived mid-render");
    // Reading on hits the timeout.
    let mut off = 65536u64;
    let err = loop {
        match f.read_at(&mut buf, off) {
            Ok(0) => panic!("render finished before the timeout"),
            Ok(n) => off += n as u64,
            Err(e) => break e,
        }
    };
    let failed = t.elapsed();
    assert_eq!(err.raw_os_error(), Some(libc::EIO));
    assert!(failed >= Duration::from_secs(7), "{failed:?}");
    let errors = fs::read_to_string(m.path(".thumbfs/errors")).unwrap();
    assert!(
        errors.lines().next().unwrap().contains("timed out"),
        "{errors}"
    );
    assert!(m.log_text().contains("timed out"));
    // Still serving.
    let small = fs::read(m.path("w64/sunset_by_Aitzol_Berasategi.jpg")).unwrap();
    assert_eq!(
        small,
        engine(&corpus("photos/sunset_by_Aitzol_Berasategi.jpg"), "w64").unwrap()
    );
    eprintln!("first 64 KiB after {first:?}; EIO after {failed:?} at offset {off}");
}

/// A reader that has a file open keeps the bytes it started with when the source is
/// replaced; a new open sees the new image.
#[test]
fn replaced_source_open_reader_keeps_its_version() {
    let src = small_tree();
    let m = Mount::new(src.path(), &[]);
    let path = m.path("w48/a.jpg");
    let old = engine(&src.path().join("a.jpg"), "w48").unwrap();
    let f = fs::File::open(&path).unwrap();
    let mut head = vec![0u8; 100];
    assert_eq!(f.read_at(&mut head, 0).unwrap(), 100);
    // Replace the source with a different JPEG (new inode, new size).
    let tmp = src.path().join("a.jpg.new");
    fs::copy(corpus("jpeg/video-005.gray.jpeg"), &tmp).unwrap();
    fs::rename(&tmp, src.path().join("a.jpg")).unwrap();
    let new = engine(&src.path().join("a.jpg"), "w48").unwrap();
    assert_ne!(old, new);
    let mut rest = vec![0u8; old.len() + 10];
    let n = f.read_at(&mut rest, 0).unwrap();
    assert!(rest[..n] == old[..], "open reader saw a mix");
    drop(f);
    // The kernel keeps attributes for the 1 s TTL; after that a new open is the new image.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(fs::metadata(&path).unwrap().len(), new.len() as u64);
    assert!(
        fs::read(&path).unwrap() == new,
        "new open sees the new source"
    );
}

/// SIGTERM and SIGINT unmount and exit 0; without `-f` the command returns once mounted and
/// the daemon exits on `fusermount3 -u`.
#[test]
fn signals_and_daemon_mode_unmount_cleanly() {
    let src = small_tree();
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let mut m = Mount::new(src.path(), &[]);
        assert!(fs::read(m.path("w32/a.jpg")).is_ok());
        let mnt = m.dir.path().to_path_buf();
        let st = m.stop(Some(sig));
        assert!(st.success(), "signal {sig}: {st:?}");
        assert!(!is_mounted(&mnt), "signal {sig}: still mounted");
    }
    // Daemon mode.
    let mnt = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let st = Command::new(thumbfs_bin())
        .arg("mount")
        .arg(src.path())
        .arg(mnt.path())
        .status()
        .unwrap();
    assert!(st.success());
    assert!(is_mounted(mnt.path()), "mounted when the command returns");
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(fs::read(mnt.path().join("w32/b.png")).is_ok());
    let daemon = daemon_pid(mnt.path()).expect("daemon process");
    let st = Command::new("fusermount3")
        .arg("-u")
        .arg(mnt.path())
        .status()
        .unwrap();
    assert!(st.success());
    wait_for(
        || !Path::new(&format!("/proc/{daemon}")).exists() || is_zombie(daemon),
        "daemon did not exit after fusermount3 -u",
    );
    assert!(!is_mounted(mnt.path()));
}

/// The pid of the `thumbfs mount` daemon serving `mnt` (found by its command line).
fn daemon_pid(mnt: &Path) -> Option<u32> {
    let want = mnt.to_str()?;
    fs::read_dir("/proc").ok()?.find_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let cmd = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<&[u8]> = cmd.split(|&b| b == 0).collect();
        (args.first()?.ends_with(b"thumbfs") && args.contains(&want.as_bytes())).then_some(pid)
    })
}

fn is_zombie(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(true)
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

/// SIGTERM while a reader holds a file open mid-read: the mountpoint is freed at once, the
/// daemon exits 0 shortly after, and a second mount on the same directory works.
#[test]
fn sigterm_with_a_file_open_frees_the_mountpoint_and_exits() {
    let src = small_tree();
    // Open files get render-timeout + 1 s of grace after the mount is detached.
    let mut m = Mount::new(src.path(), &["--render-timeout", "2"]);
    let p = m.path("png/a.png");
    let f = fs::File::open(&p).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(f.read_at(&mut buf, 0).unwrap(), 16);
    let mnt = m.dir.path().to_path_buf();
    let t = Instant::now();
    let st = m.stop(Some(libc::SIGTERM));
    assert!(st.success(), "{st:?}");
    assert!(t.elapsed() < Duration::from_secs(6), "{:?}", t.elapsed());
    assert!(!is_mounted(&mnt), "still mounted");
    // The open file answers (from the page cache or with an error) instead of hanging.
    let _ = f.read_at(&mut buf, 1 << 20);
    drop(f);
    assert!(!is_mounted(&mnt));
    let again = Mount::new(src.path(), &[]);
    assert!(fs::read(again.path("w32/a.jpg")).is_ok());
}
