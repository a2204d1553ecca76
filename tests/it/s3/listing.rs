//! Store I/O off the FUSE threads and bounded maps (issue 22): reads of a cached thumbnail
//! answer while cold S3 listings are held, and a walk of 100k names leaves memory flat.

use std::fs;
use std::path::Path;
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use crate::common;
use common::mount::{small_tree, Mount};
use common::s3::{bucket, server, ListHold};

/// With two FUSE threads, four readdirs of distinct cold prefixes whose listings the proxy
/// holds, and reads of an already cached thumbnail from other threads: every read completes
/// while the listings are still held (the proxy lets them go only afterwards; a read stuck
/// behind them fails the test after a generous timeout instead of hanging it).
#[test]
fn cached_reads_answer_while_four_cold_listings_are_held() {
    let (name, c) = bucket("held-listings");
    let photo = fs::read(common::corpus("jpeg/video-001.jpeg")).unwrap();
    c.put("hot/a.jpg", &photo).unwrap();
    for d in 1..=4 {
        for i in 0..3 {
            c.put(&format!("cold-{d}/{i}.jpg"), &photo).unwrap();
        }
    }
    let proxy = ListHold::new(&server(), "cold-");
    let m = Mount::new(
        Path::new(&format!("s3://{name}")),
        &[
            "--s3-endpoint",
            &proxy.endpoint,
            "--fuse-threads",
            "2",
            // Nothing expires while the test runs, however slow the machine.
            "--list-ttl",
            "3600",
        ],
    );
    let hot = m.path("w64/hot/a.jpg");
    let expected = fs::read(&hot).unwrap();
    assert_eq!(&expected[..2], &[0xFF, 0xD8]);

    let listers: Vec<_> = (1..=4)
        .map(|d| {
            let dir = m.path(&format!("w64/cold-{d}"));
            std::thread::spawn(move || fs::read_dir(dir).map(Iterator::count))
        })
        .collect();
    let held = proxy.wait_held(4, Duration::from_secs(120));
    assert_eq!(
        held.into_iter().collect::<Vec<_>>(),
        ["cold-1/", "cold-2/", "cold-3/", "cold-4/"]
    );

    let (readers, each) = (4, 25);
    let (tx, rx) = channel();
    for _ in 0..readers {
        let (hot, tx) = (hot.clone(), tx.clone());
        std::thread::spawn(move || {
            for _ in 0..each {
                if tx.send(fs::read(&hot)).is_err() {
                    return;
                }
            }
        });
    }
    drop(tx);
    for done in 0..readers * each {
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(Ok(got)) if got == expected => {}
            other => {
                proxy.release();
                panic!(
                    "read {done} of {} while the listings were held: {:?}",
                    readers * each,
                    other.map(|r| r.map(|b| b.len()))
                );
            }
        }
    }
    assert!(
        !proxy.state.0.lock().unwrap().released,
        "the listings were held throughout"
    );
    proxy.release();
    for l in listers {
        // Held past the client's timeout on a slow machine, a listing may have failed:
        // what counts is what the directories show now.
        let _ = l.join().unwrap();
    }
    for d in 1..=4 {
        let mut shown: Vec<String> = fs::read_dir(m.path(&format!("w64/cold-{d}")))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        shown.sort();
        assert_eq!(shown, ["0.jpg", "1.jpg", "2.jpg"], "cold-{d}");
    }
}

/// Drops the kernel's dentries and inodes (FORGETs follow) and waits until the daemon's
/// inode table is back near `base`, so only what the daemon keeps by itself stays.
fn forget_all(m: &Mount, base: u64) {
    let t0 = Instant::now();
    loop {
        fs::write("/proc/sys/vm/drop_caches", "2\n").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let now = m.stats()["inodes"];
        if now <= base + 100 {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "still {now} inodes (base {base})"
        );
    }
}

/// 100k distinct spec directories looked up, each with a missing file beneath: the daemon's
/// memory after 100k is within 16 MiB of its memory after 10k (the kernel's inodes dropped
/// each time, so what is left is what the daemon remembers by name).
#[test]
fn memory_stays_flat_over_a_walk_of_100k_names() {
    let src = small_tree();
    let m = Mount::new(src.path(), &["--list-cache", "1M"]);
    let base = m.stats()["inodes"];
    let mut rss_10k = 0;
    let t0 = Instant::now();
    for n in 1..=100_000u32 {
        let dir = m.path(&format!("w{n}"));
        assert!(fs::metadata(&dir).unwrap().is_dir(), "w{n}");
        assert!(fs::metadata(dir.join(format!("missing-{n}.jpg"))).is_err());
        if n % 5000 == 0 {
            forget_all(&m, base);
            if n == 10_000 {
                rss_10k = m.status_kib("VmRSS");
            }
        }
    }
    let rss_100k = m.status_kib("VmRSS");
    eprintln!(
        "walk of 100k names: {:?}; VmRSS after 10k {rss_10k} KiB, after 100k {rss_100k} KiB",
        t0.elapsed()
    );
    assert!(
        rss_100k <= rss_10k + 16 * 1024,
        "VmRSS grew from {rss_10k} KiB to {rss_100k} KiB"
    );
}
