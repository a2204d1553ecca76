//! `store::open` and `store::open_file`, the one way from a path or URL to a store or a file:
//! `s3://` with the endpoint option against a real SeaweedFS, and beside it the factory's other
//! arms: `file://` through the mount and the CLI, unknown schemes refused in one line.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use crate::common;
use common::mount::{cli, Mount};
use common::s3::{bucket, server, unique_name};
use thumbfs::store::{self, OpenError, OpenOptions};

const PNG: &str = "pngsuite/primary/basn6a08.png";

fn s3_options(endpoint: &str) -> OpenOptions {
    OpenOptions {
        s3_endpoint: Some(endpoint.to_string()),
        list_ttl: Duration::from_secs(5),
        list_cache: 1 << 20,
    }
}

fn read_all(mut src: thumbfs::Source<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    src.read_to_end(&mut out).unwrap();
    out
}

/// `file://` and the path, percent-escaped as RFC 8089 asks.
fn file_url(path: &Path) -> String {
    let mut url = String::from("file://");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

#[test]
fn s3_urls_open_a_bucket_and_one_object_at_the_given_endpoint() {
    let (name, c) = bucket("open");
    let png = fs::read(common::corpus(PNG)).unwrap();
    c.put("lib/a b.png", &png).unwrap();
    c.put("lib/sub/c.png", &png).unwrap();
    let opts = s3_options(&server());

    let s = store::open(format!("s3://{name}/lib"), &opts).unwrap();
    assert!(s.is_remote());
    assert_eq!(s.local_root(), None);
    assert_eq!(s.describe(), format!("s3://{name}/lib/"));
    let mut listed: Vec<_> = s
        .list(Path::new(""))
        .unwrap()
        .into_iter()
        .map(|(n, m)| (n.into_string().unwrap(), m.is_dir()))
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [("a b.png".to_string(), false), ("sub".to_string(), true)]
    );
    let meta = s.stat(Path::new("sub/c.png")).unwrap();
    assert_eq!(meta.len, png.len() as u64);
    let opened = s.open(Path::new("sub/c.png"), &meta.id).unwrap();
    assert_eq!(read_all(thumbfs::Source::new(opened.conn, "c.png")), png);

    let url = format!("s3://{name}/lib/a b.png");
    let file = store::open_file(&url, &opts).unwrap();
    assert_eq!(file.name(), url);
    assert_eq!(read_all(file), png);

    let e = store::open_file(format!("s3://{name}/lib/nope.png"), &opts)
        .err()
        .unwrap();
    assert!(matches!(e, OpenError::S3 { .. }), "{e}");
    assert!(e.to_string().contains("lib/nope.png"), "{e}");
    assert_eq!(e.into_io().kind(), io::ErrorKind::NotFound);

    let missing = unique_name("missing");
    let e = store::open(format!("s3://{missing}/p"), &opts)
        .err()
        .unwrap();
    assert!(
        e.to_string().starts_with(&format!("s3://{missing}/p: ")),
        "{e}"
    );
    assert!(e.to_string().contains("no such bucket"), "{e}");
}

/// The endpoint option is what is dialled (it wins over AWS_ENDPOINT_URL): nothing listens on
/// port 9 of this host, so the same bucket fails there.
#[test]
fn the_endpoint_option_is_the_server_asked() {
    let (name, c) = bucket("endpoint");
    c.put("k.png", &fs::read(common::corpus(PNG)).unwrap())
        .unwrap();
    let nowhere = s3_options("http://127.0.0.1:9");
    let url = format!("s3://{name}/k.png");
    for e in [
        store::open(format!("s3://{name}"), &nowhere).map(drop),
        store::open_file(&url, &nowhere).map(drop),
    ] {
        let e = e.unwrap_err();
        assert!(matches!(e, OpenError::S3 { .. }), "{e}");
        assert!(e.to_string().contains(&name), "{e}");
    }
    store::open_file(&url, &s3_options(&server())).unwrap();
}

#[test]
fn file_urls_work_wherever_a_path_does() {
    let src = tempfile::tempdir().unwrap();
    fs::create_dir(src.path().join("a dir")).unwrap();
    let png = src.path().join("a dir/p.png");
    fs::copy(common::corpus(PNG), &png).unwrap();

    // `info` prints the name as given, then the same description.
    let (code, by_path, err) = cli(&[OsStr::new("info"), png.as_os_str()]);
    assert_eq!(code, Some(0), "{err}");
    let url = file_url(&png);
    assert!(url.contains("a%20dir"), "{url}");
    let (code, by_url, err) = cli(&[OsStr::new("info"), OsStr::new(&url)]);
    assert_eq!(code, Some(0), "{err}");
    let tail = |b: &[u8]| {
        let s = String::from_utf8_lossy(b).to_string();
        s.rsplit_once(": ").map(|(_, t)| t.to_string()).unwrap()
    };
    assert_eq!(tail(&by_url), tail(&by_path));

    let out = src.path().join("out.png");
    let (code, _, err) = cli(&[
        OsStr::new("convert"),
        OsStr::new("w8"),
        OsStr::new(&url),
        out.as_os_str(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let by_path_out = src.path().join("out2.png");
    let (code, _, err) = cli(&[
        OsStr::new("convert"),
        OsStr::new("w8"),
        png.as_os_str(),
        by_path_out.as_os_str(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(fs::read(&out).unwrap(), fs::read(&by_path_out).unwrap());
    fs::remove_file(&out).unwrap();
    fs::remove_file(&by_path_out).unwrap();

    // The mount serves a file:// source as it serves the directory.
    let m = Mount::new(Path::new(&file_url(src.path())), &[]);
    let served = fs::read(m.path("w8/a dir/p.png")).unwrap();
    assert_eq!(served, common::mount::engine(&png, "w8").unwrap());
}

#[test]
fn unknown_schemes_are_refused_in_one_line() {
    let (code, _, err) = cli(&[OsStr::new("info"), OsStr::new("gs://bucket/a.png")]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("unknown scheme gs://"), "{err}");

    let mnt = tempfile::tempdir().unwrap();
    let (code, _, err) = cli(&[
        OsStr::new("mount"),
        OsStr::new("-f"),
        OsStr::new("gs://bucket/p"),
        mnt.path().as_os_str(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("gs://bucket/p: unknown scheme gs:// (known: file://, s3://"),
        "{err}"
    );
    assert!(!common::mount::is_mounted(mnt.path()));
}
