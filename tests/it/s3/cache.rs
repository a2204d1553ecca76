//! `--cache-url`: two real mounts of one source directory stand for two hosts sharing a render
//! cache in a real S3 server (SeaweedFS, started by scripts/test.sh).

use crate::common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::mount::{engine, small_tree, tree_manifest, Mount};
use common::s3;
use thumbfs::s3::Client;
use xxhash_rust::xxh3::xxh3_64;

const SPEC: &str = "w40_png";
const SOURCES: [(&str, &str); 3] = [("a.jpg", "a.png"), ("b.png", "b.png"), ("c.ppm", "c.png")];

/// Environment for a mount daemon: the test credentials are inherited, the endpoint is the
/// shared server.
fn env() -> [(&'static str, String); 1] {
    [("AWS_ENDPOINT_URL", s3::server())]
}

fn mount(src: &Path, url: &str) -> Mount {
    let e = env();
    let env: Vec<(&str, &str)> = e.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Mount::with_env(src, &["--cache-url", url], &env)
}

/// The outputs the engine makes for the small tree, in SOURCES order.
fn expected(src: &Path) -> Vec<Vec<u8>> {
    SOURCES
        .iter()
        .map(|(s, _)| engine(&src.join(s), SPEC).unwrap())
        .collect()
}

/// Objects under `prefix` with their bytes, once there are `n` of them (uploads are
/// asynchronous), at most 20 s.
pub(crate) fn objects(c: &Client, prefix: &str, n: usize) -> Vec<(String, Vec<u8>)> {
    let t = Instant::now();
    loop {
        let l = c.list(prefix).unwrap();
        if l.objects.len() >= n {
            assert_eq!(l.objects.len(), n, "{:?}", l.objects);
            return l
                .objects
                .iter()
                .map(|o| (o.key.clone(), c.get(&o.key).unwrap().1))
                .collect();
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{} of {n} objects after 20 s",
            l.objects.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The payload of a cache object when its length and checksum trailer are intact.
pub(crate) fn payload(obj: &[u8]) -> Option<&[u8]> {
    let n = obj.len().checked_sub(16)?;
    let len = u64::from_le_bytes(obj[n..n + 8].try_into().unwrap());
    let sum = u64::from_le_bytes(obj[n + 8..].try_into().unwrap());
    (len == n as u64 && xxh3_64(&obj[..n]) == sum).then(|| &obj[..n])
}

/// Every object is intact and holds one of the expected outputs, each output exactly once.
fn assert_objects_hold(objs: &[(String, Vec<u8>)], want: &[Vec<u8>]) {
    let mut got: Vec<&[u8]> = objs
        .iter()
        .map(|(k, b)| payload(b).unwrap_or_else(|| panic!("{k}: damaged object")))
        .collect();
    got.sort();
    let mut want: Vec<&[u8]> = want.iter().map(Vec::as_slice).collect();
    want.sort();
    assert!(got == want, "objects do not hold the expected outputs");
}

#[test]
fn second_host_serves_what_the_first_rendered() {
    let src = small_tree();
    let before = tree_manifest(src.path());
    let (bucket, c) = s3::bucket("shared");
    let url = format!("s3://{bucket}/cache/v1");
    let want = expected(src.path());

    let m1 = mount(src.path(), &url);
    for (i, (_, out)) in SOURCES.iter().enumerate() {
        assert_eq!(
            fs::read(m1.path(&format!("{SPEC}/{out}"))).unwrap(),
            want[i]
        );
    }
    assert_eq!(m1.stats()["renders"], 3);
    // Prefix "cache/v1" is normalised to "cache/v1/"; nothing is written elsewhere.
    let objs = objects(&c, "cache/v1/", 3);
    assert_objects_hold(&objs, &want);
    let all = c.list("").unwrap();
    assert!(
        all.objects.is_empty() && all.prefixes == ["cache/"],
        "{all:?}"
    );

    // The second host, with the -o form: exact sizes at the first stat and the same bytes,
    // without rendering anything.
    let e = env();
    let m2 = Mount::with_env(
        src.path(),
        &["-o", &format!("cache_url={url}")],
        &[(e[0].0, e[0].1.as_str())],
    );
    for (i, (_, out)) in SOURCES.iter().enumerate() {
        let p = m2.path(&format!("{SPEC}/{out}"));
        assert_eq!(
            fs::metadata(&p).unwrap().len(),
            want[i].len() as u64,
            "{out}"
        );
        assert_eq!(fs::read(&p).unwrap(), want[i], "{out}");
    }
    m2.assert_stats_json();
    let st = m2.stats();
    assert_eq!(st["renders"], 0, "{st:?}");
    assert!(st["cache_hits"] >= 3, "{st:?}");
    // It served from the shared tier; it uploaded nothing new.
    assert_eq!(objects(&c, "cache/v1/", 3), objs);
    drop((m1, m2));
    assert_eq!(
        tree_manifest(src.path()),
        before,
        "the source is never written"
    );
}

#[test]
fn simultaneous_first_reads_render_once_per_host() {
    let src = small_tree();
    let (bucket, c) = s3::bucket("race");
    let url = format!("s3://{bucket}/c/");
    let want = expected(src.path());
    let hosts = [mount(src.path(), &url), mount(src.path(), &url)];
    // Two readers per host per file, all at once.
    std::thread::scope(|s| {
        for m in &hosts {
            for (i, (_, out)) in SOURCES.iter().enumerate() {
                for _ in 0..2 {
                    let (p, w) = (m.path(&format!("{SPEC}/{out}")), &want[i]);
                    s.spawn(move || assert_eq!(&fs::read(p).unwrap(), w));
                }
            }
        }
    });
    for m in &hosts {
        let st = m.stats();
        // Each host renders a file at most once; a file one host found in the shared tier
        // is a hit there instead.
        assert!(st["renders"] <= 3, "{st:?}");
        assert!(st["renders"] + st["cache_hits"] >= 3, "{st:?}");
    }
    // Both hosts' uploads of one output land on one object: once the queued uploads are
    // done (unmounting waits for them), one intact object per output.
    drop(hosts);
    assert_objects_hold(&objects(&c, "c/", 3), &want);
}

#[test]
fn damaged_objects_are_ignored_and_replaced() {
    let src = small_tree();
    let (bucket, c) = s3::bucket("damage");
    let url = format!("s3://{bucket}/d/");
    let want = expected(src.path());
    {
        let m = mount(src.path(), &url);
        for (_, out) in SOURCES {
            fs::read(m.path(&format!("{SPEC}/{out}"))).unwrap();
        }
    }
    let objs = objects(&c, "d/", 3);
    // Truncate one, flip a byte in the next, leave the third.
    let (k0, b0) = &objs[0];
    c.put(k0, &b0[..b0.len() - 5]).unwrap();
    let (k1, b1) = &objs[1];
    let mut flipped = b1.clone();
    flipped[3] ^= 0x40;
    c.put(k1, &flipped).unwrap();

    let m = mount(src.path(), &url);
    for (i, (_, out)) in SOURCES.iter().enumerate() {
        assert_eq!(fs::read(m.path(&format!("{SPEC}/{out}"))).unwrap(), want[i]);
    }
    let st = m.stats();
    assert_eq!(st["renders"], 2, "{st:?}");
    assert!(st["cache_hits"] >= 1, "{st:?}");
    assert!(m.log_text().contains("damaged"), "{}", m.log_text());
    // Re-rendered outputs replace the damaged objects.
    let t = Instant::now();
    loop {
        let now = objects(&c, "d/", 3);
        if now.iter().all(|(_, b)| payload(b).is_some()) {
            assert_objects_hold(&now, &want);
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "damaged objects not replaced"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn unusable_cache_url_fails_before_mounting() {
    let src = small_tree();
    let mnt = tempfile::tempdir().unwrap();
    let run = |url: &str, env: &[(&str, &str)]| {
        let out = std::process::Command::new(common::thumbfs_bin())
            .args(["mount", "-f", "--cache-url", url])
            .arg(src.path())
            .arg(mnt.path())
            .env("AWS_ENDPOINT_URL", s3::server())
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{url}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(!common::mount::is_mounted(mnt.path()));
        err
    };
    let missing = s3::unique_name("missing");
    let err = run(&format!("s3://{missing}/p"), &[]);
    assert!(
        err.contains(&missing) && err.contains("no such bucket"),
        "{err}"
    );
    let (bucket, _c) = s3::bucket("creds");
    let secret = "not-the-secret-42";
    let err = run(
        &format!("s3://{bucket}/"),
        &[("AWS_SECRET_ACCESS_KEY", secret)],
    );
    assert!(
        err.contains("access denied") && !err.contains(secret),
        "{err}"
    );
    let err = run("http://example/x", &[]);
    assert!(err.contains("not an s3:// URL"), "{err}");
}

#[test]
fn a_stopped_cache_server_only_costs_sharing() {
    let src = small_tree();
    let want = expected(src.path());
    let mut w = s3::Weed::spawn();
    let c = w.client("cache");
    c.create_bucket().unwrap();
    let m = Mount::with_env(
        src.path(),
        &["--cache-url", "s3://cache/x/"],
        &[("AWS_ENDPOINT_URL", w.endpoint.as_str())],
    );
    w.stop();
    // Reads still work: the outputs are rendered here, with the server gone.
    for (i, (_, out)) in SOURCES.iter().enumerate() {
        assert_eq!(fs::read(m.path(&format!("{SPEC}/{out}"))).unwrap(), want[i]);
    }
    assert_eq!(m.stats()["renders"], 3);
    assert!(m.log_text().contains("shared cache"), "{}", m.log_text());
    w.start();
    // Uploads resume with the server: a new output reaches the bucket.
    let p = m.path("w30_png/a.png");
    let w30 = engine(&src.path().join("a.jpg"), "w30_png").unwrap();
    assert_eq!(fs::read(&p).unwrap(), w30);
    let t = Instant::now();
    while !c
        .list("x/")
        .unwrap()
        .objects
        .iter()
        .any(|o| payload(&c.get(&o.key).unwrap().1) == Some(w30.as_slice()))
    {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "upload did not resume"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
