//! `thumbfs convert` to `s3://`: one object (a single PUT when small, a multipart upload whose
//! parts leave while encoding when large), byte-identical to the local CLI; the prefix-to-prefix
//! batch (skips up-to-date outputs by source ETag, redoes changed ones, shards); and a cut
//! connection or an unfinished target leaving neither an object nor an open multipart upload.

use crate::common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use common::s3::{content_length, proxy, Plain};
use common::{corpus, p, s3, thumbfs, thumbfs_bin};
use thumbfs::io::Target;
use thumbfs::s3::{Client, S3Error, S3Target, PART_SIZE};

/// The thumbfs binary with the AWS_* variables pointing at `endpoint`.
fn thumbfs_s3(endpoint: &str, args: &[&str]) -> Output {
    Command::new(thumbfs_bin())
        .env("AWS_ENDPOINT_URL", endpoint)
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "thumbfs failed: {err}");
    err
}

/// What the local CLI writes for `spec` and `src`, to a file named `name`.
fn local(spec: &str, src: &Path, name: &str) -> Vec<u8> {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join(name);
    thumbfs(&["convert", spec, p(src), p(&out)]);
    std::fs::read(out).unwrap()
}

fn upload(c: &Client, key: &str, file: &Path) {
    c.put(key, &std::fs::read(file).unwrap()).unwrap();
}

fn no_open_uploads(c: &Client) {
    assert_eq!(
        c.list_multipart_uploads("").unwrap(),
        Vec::<(String, String)>::new(),
        "unfinished multipart uploads left"
    );
}

#[test]
fn small_output_is_one_put_identical_to_the_local_cli() {
    let (b, c) = s3::bucket("up-small");
    let photo = corpus("photos/sunset_by_Aitzol_Berasategi.jpg");
    upload(&c, "photos/a.jpg", &photo);
    ok(thumbfs_s3(
        &s3::server(),
        &[
            "convert",
            "w256",
            &format!("s3://{b}/photos/a.jpg"),
            &format!("s3://{b}/thumbs/w256/a.jpg"),
        ],
    ));
    let (meta, got) = c.get("thumbs/w256/a.jpg").unwrap();
    assert_eq!(got, local("w256", &photo, "a.jpg"));
    assert!(got.len() < PART_SIZE);
    assert!(
        !meta.etag.contains('-'),
        "one PUT, not parts: {}",
        meta.etag
    );
    no_open_uploads(&c);
}

#[test]
fn large_output_is_uploaded_in_parts_identical_to_the_local_cli() {
    let (b, c) = s3::bucket("up-large");
    let photo = corpus("photos/seeding_by_Clements_Engelhardt.jpg");
    upload(&c, "big.jpg", &photo);
    ok(thumbfs_s3(
        &s3::server(),
        &[
            "convert",
            "png",
            &format!("s3://{b}/big.jpg"),
            &format!("s3://{b}/out/big.png"),
        ],
    ));
    let want = local("png", &photo, "big.png");
    assert!(want.len() > 3 * PART_SIZE, "{} bytes", want.len());
    let (meta, got) = c.get("out/big.png").unwrap();
    assert!(got == want, "{} bytes, local {}", got.len(), want.len());
    // A multipart object's ETag ends in the number of parts.
    let parts = want.len().div_ceil(PART_SIZE);
    assert!(
        meta.etag.ends_with(&format!("-{parts}")),
        "{} parts expected: {}",
        parts,
        meta.etag
    );
    no_open_uploads(&c);
}

/// The batch's one-line summary, from its stderr.
fn summary(err: &str) -> &str {
    err.lines()
        .find_map(|l| l.strip_prefix("thumbfs convert: "))
        .unwrap_or_else(|| panic!("no summary in {err:?}"))
}

#[test]
fn batch_converts_a_prefix_skips_what_is_done_and_redoes_changes() {
    let (b, c) = s3::bucket("up-batch");
    let jpegs = common::corpus_files("jpeg", &["jpg"]);
    let srcs = [
        ("lib/a.jpg", jpegs[0].clone()),
        ("lib/2024/b.jpg", jpegs[1].clone()),
        (
            "lib/2024/deep/c.png",
            corpus("pngsuite/primary/basn2c08.png"),
        ),
    ];
    for (k, f) in &srcs {
        upload(&c, k, f);
    }
    c.put("lib/notes.txt", b"not an image").unwrap();
    let (from, to) = (format!("s3://{b}/lib/"), format!("s3://{b}/w64/"));
    let run = |extra: &[&str]| {
        let mut args = vec!["convert", "w64_webp", from.as_str(), to.as_str()];
        args.extend_from_slice(extra);
        ok(thumbfs_s3(&s3::server(), &args))
    };
    let err = run(&[]);
    assert!(
        summary(&err).starts_with("4 objects: 3 converted, 0 up to date, 1 not images, 0 failed"),
        "{err}"
    );
    for (k, f) in &srcs {
        let out = k.replacen("lib/", "w64/", 1);
        let out = format!("{}.webp", out.rsplit_once('.').unwrap().0);
        let (_, got) = c.get(&out).unwrap();
        assert_eq!(got, local("w64_webp", f, "x.webp"), "{out}");
        let (_, meta) = c.head_with_metadata(&out).unwrap();
        let etag = c.head(k).unwrap().etag;
        assert!(meta.contains(&("source-etag".into(), etag)), "{meta:?}");
    }
    // Nothing changed: every output is up to date.
    let err = run(&[]);
    assert!(
        summary(&err).starts_with("4 objects: 0 converted, 3 up to date, 1 not images"),
        "{err}"
    );
    // A new version of one source (new ETag) is rendered again, and only that one.
    upload(&c, "lib/2024/b.jpg", &jpegs[2]);
    let err = run(&["-j", "1"]);
    assert!(
        summary(&err).starts_with("4 objects: 1 converted, 2 up to date"),
        "{err}"
    );
    let (_, got) = c.get("w64/2024/b.webp").unwrap();
    assert_eq!(got, local("w64_webp", &jpegs[2], "x.webp"));
    no_open_uploads(&c);
}

#[test]
fn batch_shards_split_the_keys_by_relative_path() {
    let (b, c) = s3::bucket("up-shard");
    let src = corpus("pngsuite/primary/basn2c08.png");
    let rels: Vec<String> = (0..8).map(|i| format!("d{}/p{i}.png", i % 3)).collect();
    for r in &rels {
        upload(&c, &format!("in/{r}"), &src);
    }
    let mut union = Vec::new();
    for i in 0..2u64 {
        let shard = format!("{i}/2");
        let err = ok(thumbfs_s3(
            &s3::server(),
            &[
                "convert",
                "w16",
                &format!("s3://{b}/in/"),
                &format!("s3://{b}/out/"),
                "--shard",
                &shard,
            ],
        ));
        let mine: Vec<&String> = rels
            .iter()
            .filter(|r| xxhash_rust::xxh3::xxh3_64(r.as_bytes()) % 2 == i)
            .collect();
        assert!(
            summary(&err).starts_with(&format!("{n} objects: {n} converted", n = mine.len())),
            "{err}"
        );
        union.extend(mine);
    }
    union.sort();
    let mut all: Vec<&String> = rels.iter().collect();
    all.sort();
    assert_eq!(union, all);
    for r in &rels {
        c.head(&format!("out/{r}")).unwrap();
    }
}

/// A TCP proxy that closes both ends of any connection on which a request whose request line
/// contains `cut` arrives (before forwarding it): a network failure at a chosen request.
struct Cut {
    endpoint: String,
    cuts: Arc<AtomicU64>,
    closed: Arc<AtomicBool>,
    port: u16,
}

impl Cut {
    fn new(server: &str, cut: &str) -> Cut {
        let (cuts, closed) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (n, stop, cut) = (cuts.clone(), closed.clone(), cut.to_string());
        let port = proxy(
            server,
            Plain::Down,
            move || stop.load(Ordering::Relaxed),
            move |client, server| Cut::up(client, server, &cut, &n),
        );
        Cut {
            endpoint: format!("http://127.0.0.1:{port}"),
            cuts,
            closed,
            port,
        }
    }

    /// Forwards requests one at a time (head, then a Content-Length body) until one to cut.
    fn up(mut client: TcpStream, mut server: TcpStream, cut: &str, cuts: &AtomicU64) {
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let head_end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                match client.read(&mut chunk) {
                    Ok(0) | Err(_) => {
                        let _ = server.shutdown(Shutdown::Write);
                        return;
                    }
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
            if head.lines().next().unwrap_or("").contains(cut) {
                cuts.fetch_add(1, Ordering::Relaxed);
                let _ = client.shutdown(Shutdown::Both);
                let _ = server.shutdown(Shutdown::Both);
                return;
            }
            let body_len = content_length(&head);
            while buf.len() < head_end + body_len {
                match client.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let request: Vec<u8> = buf.drain(..head_end + body_len).collect();
            if server.write_all(&request).is_err() {
                return;
            }
        }
    }
}

impl Drop for Cut {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

#[test]
fn a_cut_connection_mid_upload_leaves_no_object_and_no_open_upload() {
    let (b, c) = s3::bucket("up-cut");
    upload(
        &c,
        "big.jpg",
        &corpus("photos/seeding_by_Clements_Engelhardt.jpg"),
    );
    // Part 1 goes through; every attempt at part 2 loses its connection.
    let cut = Cut::new(&s3::server(), "partNumber=2&");
    let out = thumbfs_s3(
        &cut.endpoint,
        &[
            "convert",
            "png",
            &format!("s3://{b}/big.jpg"),
            &format!("s3://{b}/out/big.png"),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("out/big.png"), "{err}");
    assert!(cut.cuts.load(Ordering::Relaxed) >= 1);
    assert!(matches!(
        c.head("out/big.png"),
        Err(S3Error::NotFound { .. })
    ));
    no_open_uploads(&c);
}

#[test]
fn a_target_dropped_unfinished_aborts_its_upload() {
    let (_b, c) = s3::bucket("up-drop");
    let mut t = S3Target::new(c.clone(), "half.bin", Vec::new());
    let chunk = vec![7u8; 1 << 20];
    for _ in 0..(PART_SIZE >> 20) * 2 + 1 {
        t.write_all(&chunk).unwrap();
    }
    // Parts are leaving (the upload is created by the uploader thread, so wait for it); the
    // upload is open until the target goes.
    let t0 = std::time::Instant::now();
    while c.list_multipart_uploads("").unwrap().is_empty() {
        assert!(t0.elapsed().as_secs() < 10, "no multipart upload started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(t);
    assert!(matches!(c.head("half.bin"), Err(S3Error::NotFound { .. })));
    no_open_uploads(&c);
    // Finished, the same writes make the object, in parts.
    let mut t = S3Target::new(c.clone(), "whole.bin", Vec::new());
    for _ in 0..(PART_SIZE >> 20) * 2 + 1 {
        t.write_all(&chunk).unwrap();
    }
    t.finish().unwrap();
    t.finish().unwrap();
    let (meta, got) = c.get("whole.bin").unwrap();
    assert_eq!(got.len(), 2 * PART_SIZE + (1 << 20));
    assert!(got.iter().all(|&x| x == 7));
    assert!(meta.etag.ends_with("-3"), "{}", meta.etag);
    no_open_uploads(&c);
}
