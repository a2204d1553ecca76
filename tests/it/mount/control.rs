//! `thumbfs ctl` (issue 27 item 2): a running mount forgets missing names (--negative-ttl)
//! and cached S3 listings (--list-ttl) on request, prints its counters, and obeys only the
//! user who mounted it, or root.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common;
use common::mount::{cli, small_tree, Mount};
use common::s3::{bucket, server};

/// `thumbfs ctl MNT ARGS...`: (exit code, stdout, stderr).
fn ctl(m: &Mount, args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec![OsStr::new("ctl"), m.dir.path().as_os_str()];
    all.extend(args.iter().map(OsStr::new));
    let (code, out, err) = cli(&all);
    (code, String::from_utf8(out).unwrap(), err)
}

/// Runs `thumbfs ctl` and asserts it succeeded; its output.
fn ctl_ok(m: &Mount, args: &[&str]) -> String {
    let (code, out, err) = ctl(m, args);
    assert_eq!(code, Some(0), "ctl {args:?}: {err}");
    out
}

fn missing(p: &Path) -> bool {
    match fs::metadata(p) {
        Err(e) => {
            assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{}", p.display());
            true
        }
        Ok(_) => false,
    }
}

/// The width of the image at `p`, as ImageMagick reads it.
fn width(p: &Path) -> u32 {
    let out = common::run(Command::new("identify").args(["-format", "%w"]).arg(p));
    String::from_utf8(out).unwrap().trim().parse().unwrap()
}

#[test]
fn missing_names_are_kept_until_forgotten() {
    let src = small_tree();
    for d in ["d1", "d2"] {
        fs::create_dir(src.path().join(d)).unwrap();
    }
    let jpg = src.path().join("a.jpg");
    let m = Mount::new(src.path(), &["--negative-ttl", "60"]);
    let names = ["w64/new.jpg", "w64/d1/x.jpg", "w64/d2/y.jpg"];
    for n in names {
        assert!(missing(&m.path(n)), "{n} does not exist yet");
    }
    for n in names {
        fs::copy(&jpg, src.path().join(n.strip_prefix("w64/").unwrap())).unwrap();
    }
    // Longer than every other lifetime the mount gives the kernel (1 s for entries): what
    // keeps the names missing now is the negative entry alone.
    std::thread::sleep(Duration::from_millis(1500));
    for n in names {
        assert!(missing(&m.path(n)), "{n}: the miss is remembered");
    }

    // A PATH forgets there (and in the directories above), not in other directories.
    let out = ctl_ok(&m, &["forget", "d1"]);
    assert!(out.contains("forgot"), "{out}");
    assert_eq!(width(&m.path("w64/d1/x.jpg")), 64, "appears at once");
    assert!(missing(&m.path("w64/d2/y.jpg")), "another directory");

    ctl_ok(&m, &["forget"]);
    for n in names {
        assert_eq!(width(&m.path(n)), 64, "{n}: the whole mount forgot");
    }

    // Without --negative-ttl nothing is remembered: a new file shows at once (as before).
    let plain = Mount::new(src.path(), &[]);
    assert!(missing(&plain.path("w64/late.jpg")));
    fs::copy(&jpg, src.path().join("late.jpg")).unwrap();
    assert_eq!(width(&plain.path("w64/late.jpg")), 64);
}

#[test]
fn stats_print_the_counters() {
    let src = small_tree();
    let m = Mount::new(src.path(), &[]);
    fs::read(m.path("w64/a.jpg")).unwrap();
    let renders = m.stats()["renders"];
    assert!(renders >= 1);

    let table = ctl_ok(&m, &["stats"]);
    let row = table
        .lines()
        .find(|l| l.split_whitespace().next() == Some("renders"))
        .unwrap_or_else(|| panic!("no renders row in\n{table}"));
    assert_eq!(row.split_whitespace().nth(1), Some(&*renders.to_string()));
    assert!(table.lines().any(|l| l.starts_with("cache_mem_bytes")));

    // --json is indented JSON that Python's parser reads, with the same counters.
    let json = ctl_ok(&m, &["stats", "--json"]);
    assert!(json.lines().count() > 5, "indented: {json}");
    let mut py = Command::new("python3")
        .args([
            "-c",
            "import json,sys; print(json.load(sys.stdin)['renders'])",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    py.stdin.take().unwrap().write_all(json.as_bytes()).unwrap();
    let out = py.wait_with_output().unwrap();
    assert!(out.status.success(), "not JSON: {json}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        renders.to_string()
    );
}

#[test]
fn only_the_owner_or_root_may_control_a_mount() {
    let src = small_tree();
    let m = Mount::new(src.path(), &["--negative-ttl", "60"]);
    for args in [&["stats"][..], &["forget"][..]] {
        let out = Command::new("setpriv")
            .args(common::NOBODY)
            .arg(common::thumbfs_bin())
            .arg("ctl")
            .arg(m.dir.path())
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "nobody {args:?}: {err}");
        assert!(err.contains("permission denied"), "{err}");
        assert!(out.stdout.is_empty());
    }
    assert!(m.log_text().contains("refused"), "the daemon says so too");
    // Root (the owner here) still may; a path out of the source is refused.
    ctl_ok(&m, &["stats"]);
    let (code, _, err) = ctl(&m, &["forget", "../etc"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("out of the source"), "{err}");

    // The socket, named after the mount point, goes with the mount.
    let canon = fs::canonicalize(m.dir.path()).unwrap();
    let hash = xxhash_rust::xxh3::xxh3_64(canon.as_os_str().as_encoded_bytes());
    let sock = Path::new("/run/thumbfs").join(format!("{hash:016x}.sock"));
    assert!(sock.exists(), "{}", sock.display());
    let mut m = m;
    m.stop(None);
    assert!(!sock.exists(), "removed at unmount");
}

#[test]
fn an_upload_appears_when_its_listing_is_forgotten() {
    let (name, c) = bucket("ctl");
    let jpg = fs::read(common::corpus("jpeg/video-001.jpeg")).unwrap();
    c.put("lib/a.jpg", &jpg).unwrap();
    c.put("lib/sub/x.jpg", &jpg).unwrap();
    let url = format!("s3://{name}/lib");
    let m = Mount::new(
        Path::new(&url),
        &["--s3-endpoint", &server(), "--list-ttl", "3600"],
    );
    let ls = |d: &str| -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(m.path(d))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(ls("w64"), ["a.jpg", "sub"]);
    assert_eq!(ls("w64/sub"), ["x.jpg"]);

    c.put("lib/sub/y.jpg", &jpg).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        ls("w64/sub"),
        ["x.jpg"],
        "the listing is cached for an hour"
    );
    assert!(missing(&m.path("w64/sub/y.jpg")));
    // A path inside the mount names the source path under its spec directory.
    let inside = m.path("w64/sub/y.jpg");
    ctl_ok(&m, &["forget", inside.to_str().unwrap()]);
    assert_eq!(ls("w64/sub"), ["x.jpg", "y.jpg"]);
    assert_eq!(width(&m.path("w64/sub/y.jpg")), 64);

    c.put("lib/b.jpg", &jpg).unwrap();
    assert!(missing(&m.path("w64/b.jpg")));
    ctl_ok(&m, &["forget"]);
    assert_eq!(ls("w64"), ["a.jpg", "b.jpg", "sub"]);
    assert_eq!(width(&m.path("w64/b.jpg")), 64);
}
