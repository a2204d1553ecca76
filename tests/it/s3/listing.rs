//! Store I/O off the FUSE threads and bounded maps (issue 22): reads of a cached thumbnail
//! answer while cold S3 listings are held, and a walk of 100k names leaves memory flat.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::mpsc::channel;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::common;
use common::mount::{small_tree, Mount};
use common::s3::{bucket, server};

/// What a [`ListHold`] has held, and whether it lets them go.
#[derive(Default)]
struct HoldState {
    released: bool,
    closed: bool,
    /// Prefixes whose listing requests were held.
    held: BTreeSet<String>,
}

/// A TCP proxy in front of an S3 endpoint that holds every ListObjectsV2 request for a
/// prefix starting with `hold` until [`ListHold::release`]: the client waits for their
/// responses for as long as the test says, however fast or slow the machine is.
struct ListHold {
    /// `http://127.0.0.1:PORT` of the proxy.
    endpoint: String,
    port: u16,
    state: Arc<(Mutex<HoldState>, Condvar)>,
}

impl ListHold {
    fn new(endpoint: &str, hold: &str) -> ListHold {
        let target: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state: Arc<(Mutex<HoldState>, Condvar)> = Arc::default();
        let (st, hold) = (state.clone(), hold.to_string());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if st.0.lock().unwrap().closed {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let (mut s_in, mut c_out) =
                    (server.try_clone().unwrap(), client.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s_in, &mut c_out);
                    let _ = c_out.shutdown(Shutdown::Both);
                });
                let (st, hold) = (st.clone(), hold.clone());
                std::thread::spawn(move || ListHold::up(client, server, &hold, &st));
            }
        });
        ListHold {
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            state,
        }
    }

    /// Forwards requests from the client one at a time (head, then a Content-Length body),
    /// holding listings of held prefixes.
    fn up(
        mut client: TcpStream,
        mut server: TcpStream,
        hold: &str,
        st: &(Mutex<HoldState>, Condvar),
    ) {
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 16 * 1024];
        let mut fill = |buf: &mut Vec<u8>| -> bool {
            match client.read(&mut chunk) {
                Ok(0) | Err(_) => false,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    true
                }
            }
        };
        loop {
            let head_end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                if !fill(&mut buf) {
                    let _ = server.shutdown(Shutdown::Write);
                    return;
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
            let body_len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < head_end + body_len {
                if !fill(&mut buf) {
                    return;
                }
            }
            let request: Vec<u8> = buf.drain(..head_end + body_len).collect();
            if let Some(prefix) = held_prefix(head.lines().next().unwrap_or(""), hold) {
                let mut g = st.0.lock().unwrap();
                g.held.insert(prefix);
                st.1.notify_all();
                while !g.released {
                    g = st.1.wait(g).unwrap();
                }
            }
            if server.write_all(&request).is_err() {
                return;
            }
        }
    }

    /// Waits until listings of `n` distinct prefixes are held (panics after `limit`).
    fn wait_held(&self, n: usize, limit: Duration) -> BTreeSet<String> {
        let t0 = Instant::now();
        let mut g = self.state.0.lock().unwrap();
        while g.held.len() < n {
            assert!(
                t0.elapsed() < limit,
                "only {:?} held after {limit:?}",
                g.held
            );
            g = self
                .state
                .1
                .wait_timeout(g, Duration::from_millis(100))
                .unwrap()
                .0;
        }
        g.held.clone()
    }

    /// Lets every held and later request through.
    fn release(&self) {
        self.state.0.lock().unwrap().released = true;
        self.state.1.notify_all();
    }
}

impl Drop for ListHold {
    fn drop(&mut self) {
        self.state.0.lock().unwrap().closed = true;
        self.release();
        // Wakes the accepting thread so it sees `closed`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// The prefix of a ListObjectsV2 request line (`GET /bucket?list-type=2&prefix=... HTTP/1.1`)
/// when it starts with `hold`.
fn held_prefix(line: &str, hold: &str) -> Option<String> {
    let target = line.split(' ').nth(1)?;
    let query = target.split_once('?')?.1;
    let params: Vec<(&str, &str)> = query.split('&').filter_map(|p| p.split_once('=')).collect();
    if !params.iter().any(|&(k, v)| k == "list-type" && v == "2") {
        return None;
    }
    let prefix = params.iter().find(|&&(k, _)| k == "prefix")?.1;
    let prefix = prefix.replace("%2F", "/").replace("%2f", "/");
    prefix.starts_with(hold).then_some(prefix)
}

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
