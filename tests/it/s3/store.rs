//! `s3://` sources against a real SeaweedFS (started by scripts/test.sh, or a private one for
//! the fault tests): the mount, `convert` and `info` serve a bucket exactly like a directory.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common;
use common::mount::{cli, Mount};
use common::s3::{bucket, server, Gate, Weed};
use thumbfs::io::source::Connection;
use thumbfs::s3::Client;
use thumbfs::store::{ObjectStore, Opened, Store};

const PHOTO: &str = "photos/sunset_by_Aitzol_Berasategi.jpg";
const PHOTO2: &str = "photos/seeding_by_Clements_Engelhardt.jpg";
const PNG: &str = "pngsuite/primary/basn6a08.png";

fn put_file(c: &Client, key: &str, file: &Path) {
    c.put(key, &fs::read(file).unwrap())
        .unwrap_or_else(|e| panic!("put {key}: {e}"));
}

/// Every key in the bucket with its ETag: what "never written" is checked against.
fn manifest(c: &Client) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![String::new()];
    while let Some(p) = todo.pop() {
        let l = c.list(&p).unwrap();
        out.extend(l.objects.into_iter().map(|o| (o.key, o.etag)));
        todo.extend(l.prefixes);
    }
    out
}

/// The same source as a local file, rendered by the CLI to JPEG: the bytes the mount serves.
fn local_render(spec: &str, file: &Path) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.jpg");
    let (code, _, err) = cli(&[
        OsStr::new("convert"),
        OsStr::new(spec),
        file.as_os_str(),
        target.as_os_str(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    fs::read(target).unwrap()
}

fn s3_mount(url: &str, endpoint: &str, extra: &[&str]) -> Mount {
    let mut opts = vec!["--s3-endpoint", endpoint];
    opts.extend_from_slice(extra);
    Mount::new(Path::new(url), &opts)
}

#[test]
fn a_bucket_prefix_mounts_like_a_directory() {
    let (name, c) = bucket("mount");
    put_file(&c, "lib/holiday/photo.jpg", &common::corpus(PHOTO));
    put_file(&c, "lib/a b/ünï cödé.png", &common::corpus(PNG));
    c.put("lib/notes.txt", b"not an image").unwrap();
    put_file(&c, "outside/secret.jpg", &common::corpus(PHOTO2));
    put_file(&c, "library-not-lib/x.jpg", &common::corpus(PHOTO2));
    let before = manifest(&c);

    let m = s3_mount(&format!("s3://{name}/lib"), &server(), &[]);
    let mut top: Vec<String> = fs::read_dir(m.path("w256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    top.sort();
    assert_eq!(
        top,
        ["a b", "holiday"],
        "non-images hidden, nothing outside the prefix"
    );
    assert!(fs::metadata(m.path("w256/outside")).is_err());
    assert!(fs::metadata(m.path("w256/../outside/secret.jpg")).is_err());

    // Byte-identical to the same file rendered from local disk by the CLI.
    let got = fs::read(m.path("w256/holiday/photo.jpg")).unwrap();
    assert_eq!(got, local_render("w256", &common::corpus(PHOTO)));
    let meta = fs::metadata(m.path("w256/holiday/photo.jpg")).unwrap();
    assert_eq!(meta.len(), got.len() as u64, "exact size in stat");

    // Renamed extension, unicode and spaces in names.
    let png = m.path("w16_jpg/a b/ünï cödé.jpg");
    let bytes = fs::read(&png).unwrap();
    assert_eq!(&bytes[..2], &[0xFF, 0xD8]);
    let dims = common::run(
        std::process::Command::new("identify")
            .arg("-format")
            .arg("%wx%h")
            .arg(&png),
    );
    assert_eq!(String::from_utf8_lossy(&dims), "16x16");

    m.assert_stats_json();
    assert!(m.stats()["renders"] >= 2);
    assert_eq!(manifest(&c), before, "the source bucket is never written");
}

#[test]
fn convert_and_info_read_objects() {
    let (name, c) = bucket("cli");
    put_file(&c, "p/photo one.jpg", &common::corpus(PHOTO));
    let url = format!("s3://{name}/p/photo one.jpg");
    let endpoint = server();
    std::env::set_var("AWS_ENDPOINT_URL", &endpoint);

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.jpg");
    let (code, _, err) = cli(&[
        OsStr::new("convert"),
        OsStr::new("w256"),
        OsStr::new(&url),
        out.as_os_str(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        fs::read(&out).unwrap(),
        local_render("w256", &common::corpus(PHOTO))
    );

    let (code, text, err) = cli(&[OsStr::new("info"), OsStr::new(&url)]);
    assert_eq!(code, Some(0), "{err}");
    let (_, local, _) = cli(&[OsStr::new("info"), common::corpus(PHOTO).as_os_str()]);
    let tail = |b: &[u8]| {
        let s = String::from_utf8_lossy(b).to_string();
        s.rsplit_once(": ").map(|(_, t)| t.to_string()).unwrap()
    };
    assert_eq!(tail(&text), tail(&local));

    let missing = format!("s3://{name}/p/nope.jpg");
    let (code, _, err) = cli(&[
        OsStr::new("convert"),
        OsStr::new("w256"),
        OsStr::new(&missing),
        out.as_os_str(),
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("p/nope.jpg"), "names the key: {err}");
}

#[test]
fn wrong_credentials_or_missing_bucket_fail_before_mounting() {
    let (name, _c) = bucket("creds");
    let mnt = tempfile::tempdir().unwrap();
    let run = |src: &str, secret: &str| {
        let out = std::process::Command::new(common::thumbfs_bin())
            .args(["mount", "-f", "--s3-endpoint", &server(), src])
            .arg(mnt.path())
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = run(&format!("s3://{name}"), "definitely-wrong-secret");
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one clear line: {err}");
    assert!(!err.contains("definitely-wrong-secret"), "{err}");
    let good = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap();
    let (code, err) = run(&format!("s3://{name}-missing/x"), &good);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("no such bucket") || err.contains("NoSuchBucket"),
        "{err}"
    );
    assert!(!common::mount::is_mounted(mnt.path()));
}

#[test]
fn awkward_keys_and_more_than_a_page_of_keys() {
    let (name, c) = bucket("keys");
    let png = fs::read(common::corpus("pngsuite/primary/basn0g01.png")).unwrap();
    // More keys than one ListObjectsV2 page (1,000).
    for i in 0..1100 {
        c.put(&format!("many/img{i:04}.png"), &png).unwrap();
    }
    let odd = ["odd/with space.png", "odd/ünicode ✓.png", "odd/a+b=c&d.png"];
    // Keys no path can name: hidden, never an error for the rest. (Some servers refuse to
    // store them at all; then there is nothing to show either.)
    let unnamable = [
        "odd//double.png",
        "odd/./dot.png",
        "odd/../up.png",
        "/lead.png",
    ];
    for k in odd.iter().chain(unnamable.iter()) {
        let _ = c.put(k, &png);
    }
    let mut m = s3_mount(&format!("s3://{name}"), &server(), &[]);
    let n = fs::read_dir(m.path("png/many")).unwrap().count();
    assert_eq!(n, 1100, "every page of the listing");
    let mut shown: Vec<String> = fs::read_dir(m.path("png/odd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    shown.sort();
    // What the server kept (SeaweedFS folds `//` into `/` and refuses `.`/`..` segments).
    let mut want: Vec<String> = c
        .list("odd/")
        .unwrap()
        .objects
        .into_iter()
        .map(|o| o.key["odd/".len()..].to_string())
        .filter(|n| !n.is_empty() && n != "." && n != "..")
        .collect();
    want.sort();
    assert_eq!(shown, want);
    for k in odd {
        assert!(shown.iter().any(|n| k.ends_with(n.as_str())), "{k} shown");
    }
    for k in &shown {
        let k = format!("odd/{k}");
        let bytes = fs::read(m.path(&format!("png/{k}"))).unwrap();
        assert_eq!(&bytes[1..4], b"PNG", "{k}");
    }
    // The root still lists (a "/lead.png" key makes an empty-named prefix there).
    assert!(fs::read_dir(m.path("png")).unwrap().count() >= 2);
    assert!(m.alive());
}

/// A new bucket holding `key`: `mib` MiB of patterned bytes (`shift` picks the pattern), put
/// and then opened through an ObjectStore. Returns the client, the bytes and the open object.
fn put_and_open(hint: &str, key: &str, mib: u32, shift: u32) -> (Client, Vec<u8>, Opened) {
    let (name, c) = bucket(hint);
    let data: Vec<u8> = (0..mib << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> shift) as u8)
        .collect();
    c.put(key, &data).unwrap();
    let store = ObjectStore::with_client(
        c.clone(),
        format!("s3://{name}").parse().unwrap(),
        Duration::from_secs(60),
    );
    let meta = store.stat(Path::new(key)).unwrap();
    let opened = store.open(Path::new(key), &meta.id).unwrap();
    (c, data, opened)
}

#[test]
fn a_replaced_object_reads_all_old_bytes_or_fails() {
    // Big enough that the read-ahead cannot have fetched it all before the swap.
    let (c, old, mut opened) = put_and_open("replace", "big.bin", 12, 13);
    let mut got = vec![0u8; 100_000];
    let mut n = 0;
    while n < got.len() {
        n += opened.conn.read(&mut got[n..]).unwrap();
    }
    c.put("big.bin", &vec![7u8; old.len()]).unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let err = loop {
        match opened.conn.read(&mut buf) {
            Ok(0) => break None,
            Ok(k) => got.extend_from_slice(&buf[..k]),
            Err(e) => break Some(e),
        }
    };
    assert_eq!(
        &got[..],
        &old[..got.len()],
        "never a mix of old and new bytes"
    );
    let e = err.expect("the rest of a replaced object must fail, not come from the new one");
    assert!(e.to_string().contains("changed"), "{e}");
}

/// Reads at random offsets and lengths, some near the end, some long, and a whole pass front
/// to back return the object's bytes: the head, the tail fetched with the first seek, growing
/// seek windows, remembered windows and a read-ahead that stops where the tail begins.
#[test]
fn reads_anywhere_return_the_objects_bytes() {
    let (_, data, opened) = put_and_open("seeks", "o.bin", 5, 11);
    let mut conn = opened.conn;
    let len = data.len() as u64;
    let check = |conn: &mut Box<dyn Connection>, at: u64, want: u64| {
        conn.seek_to(at).unwrap();
        let end = (at + want).min(len);
        let mut got = vec![0; (end - at) as usize];
        let mut n = 0;
        while n < got.len() {
            let k = conn.read(&mut got[n..]).unwrap();
            assert!(k > 0, "early end at {}", at + n as u64);
            n += k;
        }
        assert!(got == data[at as usize..end as usize], "bytes {at}..{end}");
    };
    let mut seed = 1u64;
    let mut rand = |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    for i in 0..150 {
        let at = if i % 4 == 0 {
            len - 1 - rand(len / 6)
        } else {
            rand(len)
        };
        let want = if i % 10 == 0 {
            1 << 20
        } else {
            1 + rand(40_000)
        };
        check(&mut conn, at, want);
    }
    check(&mut conn, 0, len);
    conn.seek_to(len - 10).unwrap();
    let mut buf = [0u8; 64];
    let mut n = 0;
    loop {
        match conn.read(&mut buf[n..]).unwrap() {
            0 => break,
            k => n += k,
        }
    }
    assert_eq!(&buf[..n], &data[data.len() - 10..], "then the end");
}

/// A tiled pyramid TIFF as libvips writes it (each level's tiles, then its directory, the
/// small levels last): a thumbnail takes two rounds of GETs (the head; then the first
/// directory and, in parallel, the object's tail), one after a format sniff (as the mount
/// does, which keeps the head), fetches a small part of the object, and equals the render of
/// the same file on disk.
#[test]
fn a_pyramid_tiff_thumbnail_takes_two_rounds_of_gets() {
    let (name, c) = bucket("pyramid");
    let dir = tempfile::tempdir().unwrap();
    let tif = dir.path().join("pyr.tif");
    common::run(
        std::process::Command::new("vips")
            .arg("tiffsave")
            .arg(common::corpus(PHOTO))
            .arg(&tif)
            .args(["--tile", "--pyramid", "--compression", "jpeg", "--Q", "90"])
            .args(["--tile-width", "256", "--tile-height", "256"]),
    );
    put_file(&c, "pyr.tif", &tif);
    let len = fs::metadata(&tif).unwrap().len();
    let want = local_render("w256_jpg", &tif);
    let store = ObjectStore::with_client(
        c.clone(),
        format!("s3://{name}").parse().unwrap(),
        Duration::from_secs(60),
    );
    let rel = Path::new("pyr.tif");
    let meta = store.stat(rel).unwrap();
    for (sniffed, most) in [(false, 3), (true, 2)] {
        if sniffed {
            store.head(rel, &meta.id, 64).unwrap();
        }
        let opened = store.open(rel, &meta.id).unwrap();
        let before = c.counters();
        let out = thumbfs::io::target::MemoryTarget::new();
        let spec: thumbfs::Spec = "w256_jpg".parse().unwrap();
        thumbfs::render(
            thumbfs::Source::new(opened.conn, "pyr.tif"),
            &spec,
            &mut out.clone(),
            &Default::default(),
        )
        .unwrap();
        let after = c.counters();
        let requests = after.requests - before.requests;
        let bytes = after.bytes_in - before.bytes_in;
        eprintln!("pyramid w256, sniffed {sniffed}: {requests} GETs, {bytes} of {len} bytes");
        assert!(requests <= most, "{requests} GETs");
        assert!(bytes * 4 < len, "fetched {bytes} of {len} bytes");
        assert!(out.take() == want, "same as from disk");
    }
}

#[test]
fn a_changed_object_gives_a_new_output_after_the_list_ttl() {
    let (name, c) = bucket("ttl");
    put_file(&c, "p.jpg", &common::corpus(PHOTO));
    let m = s3_mount(&format!("s3://{name}"), &server(), &["--list-ttl", "1"]);
    let first = fs::read(m.path("w128/p.jpg")).unwrap();
    assert_eq!(first, local_render("w128", &common::corpus(PHOTO)));
    put_file(&c, "p.jpg", &common::corpus(PHOTO2));
    let want = local_render("w128", &common::corpus(PHOTO2));
    let t0 = Instant::now();
    loop {
        // Entry and attribute caches of the kernel last 1 s; the listing --list-ttl.
        std::thread::sleep(Duration::from_millis(500));
        if fs::read(m.path("w128/p.jpg")).ok().as_ref() == Some(&want) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "new version never shown"
        );
    }
}

#[test]
fn a_stopped_server_gives_eio_and_the_mount_recovers() {
    let mut weed = Weed::spawn();
    let c = weed.client("faults");
    c.create_bucket().unwrap();
    put_file(&c, "a.jpg", &common::corpus(PHOTO));
    put_file(&c, "b.jpg", &common::corpus(PHOTO2));
    let mut m = s3_mount(
        "s3://faults",
        &weed.endpoint,
        &["--render-timeout", "20", "--list-ttl", "3600"],
    );
    // The listing is fetched and cached; a.jpg renders.
    assert!(!fs::read(m.path("w128/a.jpg")).unwrap().is_empty());
    weed.stop();
    let t0 = Instant::now();
    let mut f = fs::File::open(m.path("w200/b.jpg"));
    let read = f.as_mut().map(|f| {
        let mut v = Vec::new();
        f.read_to_end(&mut v).map(|_| v)
    });
    let failed = match read {
        Err(e) => e.raw_os_error(),
        Ok(Err(e)) => e.raw_os_error(),
        Ok(Ok(_)) => None,
    };
    assert_eq!(
        failed,
        Some(libc::EIO),
        "a read without the server fails with EIO"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(25),
        "within the render timeout"
    );
    assert!(m.alive(), "the daemon stays up");
    let errors = m.errors().join("\n");
    assert!(errors.contains("b.jpg"), "errors name the key: {errors}");
    weed.start();
    let t0 = Instant::now();
    loop {
        if let Ok(bytes) = fs::read(m.path("w200/b.jpg")) {
            assert_eq!(bytes, local_render("w200", &common::corpus(PHOTO2)));
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "serves again after the restart"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A `w`x`h` RGB PPM with varied content (so its JPEG is not trivial), as bytes.
fn big_ppm(w: usize, h: usize) -> Vec<u8> {
    let mut out = format!("P6\n{w} {h}\n255\n").into_bytes();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for y in 0..h {
        for x in 0..w {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let noise = (seed >> 56) as u8;
            out.extend_from_slice(&[(x / 8) as u8 ^ (noise >> 3), noise, ((x + y) / 16) as u8]);
        }
    }
    out
}

/// The server stopped while a large object is being rendered and read: a gate in front of
/// the server holds most of the object back, so the render is under way and cannot have
/// finished when the server stops. The reader gets a correct prefix, then EIO within the
/// render timeout; the daemon stays up, `.thumbfs/errors` names the key, and once the server
/// is back the same file reads byte-identical to the CLI render.
#[test]
fn a_server_stopped_mid_render_fails_the_read_and_the_mount_recovers() {
    let mut weed = Weed::spawn();
    let c = weed.client("midrender");
    c.create_bucket().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ppm = dir.path().join("big.ppm");
    // 2400x1800 RGB: 13 MB, against 6 MiB let through before the stop. The read-ahead asks
    // for windows in pairs, and the pair after the first 1.5 MB (2 + 4 MB) never completes
    // behind the gate, so the decoder gets about 219 rows: hundreds of KB of output, which
    // reach the reader while the worker's decoder waits for the source.
    fs::write(&ppm, big_ppm(2400, 1800)).unwrap();
    let size = fs::metadata(&ppm).unwrap().len();
    put_file(&c, "big.ppm", &ppm);
    let gate = Gate::new(&weed.endpoint, 6 << 20);
    // Estimated sizes: the open does not wait for the render, the read streams it.
    let mut m = s3_mount(
        "s3://midrender",
        &gate.endpoint,
        &[
            "--stat",
            "estimate",
            "--render-timeout",
            "20",
            "--list-ttl",
            "3600",
        ],
    );
    let mut f = fs::File::open(m.path("jpg/big.jpg")).unwrap();
    // The first byte arrives while the gate holds the rest of the object back.
    let mut got = vec![0; 1];
    f.read_exact(&mut got).unwrap();
    let mut buf = vec![0; 1 << 16];
    assert_eq!(m.stats()["in_flight"], 1, "the render is under way");
    assert!(
        gate.passed() < size,
        "the daemon cannot hold the whole object yet"
    );
    weed.stop();
    gate.open();
    let t0 = Instant::now();
    let err = loop {
        match f.read(&mut buf) {
            Ok(0) => panic!("a short file of {} bytes instead of EIO", got.len()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => break e,
        }
    };
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    eprintln!(
        "EIO {:?} after the stop, {} bytes before it",
        t0.elapsed(),
        got.len()
    );
    assert!(
        t0.elapsed() < Duration::from_secs(25),
        "EIO within the render timeout, not after {:?}",
        t0.elapsed()
    );
    drop(f);
    assert!(m.alive(), "the daemon stays up");
    let errors = m.errors().join("\n");
    assert!(errors.contains("big.ppm"), "errors name the key: {errors}");
    let want = local_render("jpg", &ppm);
    assert!(
        got.len() < want.len() && want.starts_with(&got),
        "what arrived before the EIO is a prefix of the output ({} of {} bytes)",
        got.len(),
        want.len()
    );
    weed.start();
    let t0 = Instant::now();
    loop {
        match fs::read(m.path("jpg/big.jpg")) {
            Ok(bytes) => {
                assert!(
                    bytes == want,
                    "byte-identical to the CLI render after the restart"
                );
                break;
            }
            Err(e) => assert!(
                t0.elapsed() < Duration::from_secs(60),
                "serves again after the restart: {e}"
            ),
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Two hosts (two mounts) serving one bucket with one `--cache-url`: the source identity is
/// the same on both (key, ETag, size, last-modified), so the second serves the first's
/// output without rendering, byte-identical; the source bucket is still never written.
#[test]
fn two_hosts_on_one_bucket_share_renders_through_the_cache_url() {
    let (name, c) = bucket("shared-src");
    put_file(&c, "p/a.jpg", &common::corpus(PHOTO));
    let (cache, cc) = bucket("shared-cache");
    let before = manifest(&c);
    let url = format!("s3://{name}/p");
    let cache_url = format!("s3://{cache}/outputs");
    let one = s3_mount(&url, &server(), &["--cache-url", &cache_url]);
    let first = fs::read(one.path("w200/a.jpg")).unwrap();
    assert_eq!(first, local_render("w200", &common::corpus(PHOTO)));
    // The upload runs on its own thread: wait for the object to appear.
    let t0 = Instant::now();
    while cc.list("outputs/").unwrap().objects.is_empty() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "output never uploaded"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let two = s3_mount(&url, &server(), &["--cache-url", &cache_url]);
    let second = fs::read(two.path("w200/a.jpg")).unwrap();
    assert!(second == first, "byte-identical on the second host");
    assert_eq!(two.stats()["renders"], 0, "{:?}", two.stats());
    assert_eq!(manifest(&c), before, "the source bucket is never written");
}
