//! `thumbfs warm --shard I/N`: two real mounts of one source, standing for two hosts with a
//! shared render cache on SeaweedFS, each warm one shard; a third host then renders nothing.

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use common::mount::{engine, Mount};
use common::s3;
use common::thumbfs_bin;
use xxhash_rust::xxh3::xxh3_64;

const SPEC: &str = "w40_png";

/// Sixteen distinct small images (PPM, each its own colours) in nested directories, so the
/// shards hash paths with directories in them.
fn tree() -> tempfile::TempDir {
    let src = tempfile::tempdir().unwrap();
    for i in 0..16u8 {
        let dir = src.path().join(["a", "b/c", "d"][usize::from(i % 3)]);
        fs::create_dir_all(&dir).unwrap();
        let (w, h) = (64u32, 48u32);
        let mut ppm = format!("P6\n{w} {h}\n255\n").into_bytes();
        for y in 0..h {
            for x in 0..w {
                ppm.extend([
                    (x * 4) as u8 ^ i,
                    (y * 5) as u8,
                    i.wrapping_mul(16) ^ (x + y) as u8,
                ]);
            }
        }
        fs::write(dir.join(format!("p{i:02}.ppm")), ppm).unwrap();
    }
    src
}

/// Every output under SPEC: path relative to the mount (`w40_png/a/p00.png`) → the bytes the
/// engine makes for it.
fn outputs(src: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p.strip_prefix(src).unwrap().with_extension("png");
            let rel = format!("{SPEC}/{}", rel.to_str().unwrap());
            out.insert(rel, engine(&p, SPEC).unwrap());
        }
    }
    out
}

/// The shard of `rel` out of `n`, computed here as the README defines it.
fn shard_of(rel: &str, n: u64) -> u64 {
    xxh3_64(rel.as_bytes()) % n
}

fn mount(src: &Path, url: &str) -> Mount {
    Mount::with_env(
        src,
        &["--cache-url", url],
        &[("AWS_ENDPOINT_URL", s3::server().as_str())],
    )
}

/// `thumbfs warm -q --shard SHARD DIR`: exit code and stderr.
fn warm(shard: &str, dir: &Path) -> (Option<i32>, String) {
    let out = Command::new(thumbfs_bin())
        .args(["warm", "-q", "--shard", shard])
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The payloads of the cache objects once there are `n` (uploads are asynchronous), sorted.
fn cached(c: &thumbfs::s3::Client, prefix: &str, n: usize) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = super::cache::objects(c, prefix, n)
        .into_iter()
        .map(|(k, b)| {
            super::cache::payload(&b)
                .unwrap_or_else(|| panic!("{k}: damaged object"))
                .to_vec()
        })
        .collect();
    v.sort();
    v
}

#[test]
fn two_hosts_warm_disjoint_shards_that_cover_the_library() {
    let src = tree();
    let want = outputs(src.path());
    assert_eq!(want.len(), 16);
    let (bucket, c) = s3::bucket("shard");
    let url = format!("s3://{bucket}/c/");
    // Each host's shard, worked out independently of thumbfs.
    let shard: [Vec<&String>; 2] =
        [0, 1].map(|i| want.keys().filter(|r| shard_of(r, 2) == i).collect());
    assert!(!shard[0].is_empty() && !shard[1].is_empty(), "{shard:?}");
    // Two hosts; their mount points have different names, as on real hosts.
    let hosts = [mount(src.path(), &url), mount(src.path(), &url)];
    let mut so_far: Vec<Vec<u8>> = Vec::new();
    for (i, m) in hosts.iter().enumerate() {
        let (code, err) = warm(&format!("{i}/2"), &m.path(SPEC));
        let n = shard[i].len();
        assert_eq!(code, Some(0), "{err}");
        assert!(err.contains(&format!("warmed {n} of {n} files")), "{err}");
        let st = m.stats();
        assert_eq!(st["renders"], n as u64, "host {i}: {st:?}");
        assert_eq!(st["errors"], 0, "host {i}: {st:?}");
        // What this host rendered is exactly its shard's outputs: the objects it added to the
        // shared cache are those, and nothing of the other shard.
        so_far.extend(shard[i].iter().map(|r| want[*r].clone()));
        so_far.sort();
        assert!(
            cached(&c, "c/", so_far.len()) == so_far,
            "host {i}: the shared cache does not hold exactly shards 0..={i}"
        );
    }
    // Disjoint and whole: every output once in the cache, the render counts add up.
    let renders: u64 = hosts.iter().map(|m| m.stats()["renders"]).sum();
    assert_eq!(renders, want.len() as u64);
    let mut all: Vec<Vec<u8>> = want.values().cloned().collect();
    all.sort();
    assert!(cached(&c, "c/", want.len()) == all);

    // A third host reads everything, renders nothing.
    let third = mount(src.path(), &url);
    for (rel, bytes) in &want {
        assert!(&fs::read(third.path(rel)).unwrap() == bytes, "{rel}");
    }
    let st = third.stats();
    assert_eq!(st["renders"], 0, "{st:?}");
    assert!(st["cache_hits"] >= want.len() as u64, "{st:?}");
}

#[test]
fn bad_shards_are_refused_before_reading() {
    let d = tempfile::tempdir().unwrap();
    for (arg, msg) in [
        ("2/2", "I must be below N"),
        ("0/0", "N must be at least 1"),
        ("1", "expected I/N"),
        ("x/3", "expected I/N"),
    ] {
        let (code, err) = warm(arg, d.path());
        assert_eq!(code, Some(2), "{arg}: {err}");
        assert!(err.contains("--shard") && err.contains(msg), "{arg}: {err}");
    }
}
