//! The S3 client against a real SeaweedFS (scripts/test.sh starts it): pagination, awkward
//! keys, ranges and If-Match, credential and bucket errors, counters, a stopped server.

use crate::common;
use common::s3;
use thumbfs::s3::{Client, Counters, S3Config, S3Error};

/// Deterministic bytes, different per `seed`.
fn body(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn listing_follows_every_page() {
    let (_name, c) = s3::bucket("pages");
    // 1,050 keys: more than one 1,000-key page. Written by 4 threads to keep the test short.
    let keys: Vec<String> = (0..1050).map(|i| format!("many/k{i:05}.bin")).collect();
    std::thread::scope(|s| {
        for part in keys.chunks(263) {
            let c = c.clone();
            s.spawn(move || {
                for k in part {
                    c.put(k, k.as_bytes()).unwrap();
                }
            });
        }
    });
    c.put("many/sub/deep.bin", b"x").unwrap();
    c.put("other.bin", b"y").unwrap();
    let l = c.list("many/").unwrap();
    let got: Vec<&str> = l.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(got, keys.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(l.prefixes, vec!["many/sub/".to_string()]);
    for o in &l.objects {
        assert_eq!(o.size, o.key.len() as u64);
        assert!(!o.etag.is_empty() && !o.etag.contains('"'), "{o:?}");
        assert!(o.last_modified_ns > 0 && o.last_modified_ns % 1_000_000_000 == 0);
    }
    // A listing entry and a HEAD of the same version agree (the source identity uses both).
    assert_eq!(c.head(&l.objects[7].key).unwrap(), l.objects[7]);
    let root = c.list("").unwrap();
    assert_eq!(
        root.objects.iter().map(|o| &o.key).collect::<Vec<_>>(),
        ["other.bin"]
    );
    assert_eq!(root.prefixes, ["many/"]);
}

#[test]
fn awkward_keys_round_trip() {
    let (_name, c) = s3::bucket("keys");
    let keys = [
        "sp ace/ünï cödé.jpg",
        "plus+and%25percent.png",
        "/lead",
        "//double",
        "a//b",
        "a..b/..c../x..",
        "%2e%2e/x",
        "q?x#y&z=1;b=[2]",
        "日本/写真 1.jpg",
        "tab\there",
    ];
    for (i, k) in keys.iter().enumerate() {
        c.put(k, &body(i as u64, 100 + i)).unwrap();
    }
    for (i, k) in keys.iter().enumerate() {
        let (meta, bytes) = c.get(k).unwrap();
        assert_eq!(bytes, body(i as u64, 100 + i), "{k:?}");
        assert_eq!(meta.key, *k);
        assert_eq!(c.head(k).unwrap().size, 100 + i as u64, "{k:?}");
    }
    // Listings give the keys back decoded, at the right level, and every listed key reads
    // back the object it names.
    let listed = walk(&c, "");
    let find = |k: &str| {
        listed
            .iter()
            .find(|(lk, _)| lk == k)
            .map(|(_, b)| b.clone())
    };
    for (i, k) in keys.iter().enumerate() {
        let want = body(i as u64, 100 + i);
        match find(k) {
            Some(b) => assert_eq!(b, want, "{k:?}"),
            None => {
                // SeaweedFS stores objects as filer paths: leading and doubled slashes collapse
                // ("/lead" is listed as "lead"). The GET by the original key above worked; the
                // listed form must name the same object.
                assert!(
                    k.contains("//") || k.starts_with('/'),
                    "{k:?} not listed: {listed:?}"
                );
                let norm = k
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join("/");
                assert_eq!(find(&norm), Some(want), "{k:?} listed as {norm:?}");
            }
        }
    }
    assert_eq!(listed.len(), keys.len());
    assert_eq!(
        c.list("a..b/..c../").unwrap().objects[0].key,
        "a..b/..c../x.."
    );
    assert_eq!(
        c.list("sp ace/").unwrap().objects[0].key,
        "sp ace/ünï cödé.jpg"
    );
    // Keys a URL cannot carry are refused before any request (`p/../x` would address `x`).
    let before = c.counters();
    for bad in ["", ".", "..", "a/../b", "a/./b", "x/.."] {
        let e = c.get(bad).unwrap_err();
        assert!(matches!(e, S3Error::BadKey { .. }), "{bad:?}: {e}");
        assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        assert!(matches!(c.put(bad, b"x"), Err(S3Error::BadKey { .. })));
    }
    assert_eq!(c.counters(), before);
    // Deleting is idempotent.
    c.delete("a..b/..c../x..").unwrap();
    c.delete("a..b/..c../x..").unwrap();
    assert!(matches!(
        c.head("a..b/..c../x.."),
        Err(S3Error::NotFound { .. })
    ));
}

/// Every (key, bytes) under `prefix`, descending through the common prefixes.
fn walk(c: &Client, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let l = c.list(prefix).unwrap();
    let mut out: Vec<(String, Vec<u8>)> = l
        .objects
        .iter()
        .map(|o| {
            assert!(o.key.starts_with(prefix), "{o:?} outside {prefix:?}");
            (o.key.clone(), c.get(&o.key).unwrap().1)
        })
        .collect();
    for p in &l.prefixes {
        assert!(p.starts_with(prefix) && p.ends_with('/') && p.len() > prefix.len());
        out.extend(walk(c, p));
    }
    out
}

#[test]
fn ranges_and_if_match() {
    let (_name, c) = s3::bucket("ranges");
    let v1 = body(1, 200_000);
    c.put("img.bin", &v1).unwrap();
    let meta = c.head("img.bin").unwrap();
    assert_eq!(meta.size, 200_000);
    assert_eq!(c.get_range("img.bin", 0, 10, None).unwrap(), &v1[..10]);
    assert_eq!(
        c.get_range("img.bin", 1000, 70_000, Some(&meta.etag))
            .unwrap(),
        &v1[1000..70_000]
    );
    // Quoted or not, the ETag is the same one.
    let quoted = format!("\"{}\"", meta.etag);
    assert_eq!(
        c.get_range("img.bin", 5, 6, Some(&quoted)).unwrap(),
        &v1[5..6]
    );
    // Clipped at the end; nothing past it; nothing for an empty range (and no request).
    assert_eq!(
        c.get_range("img.bin", 199_990, 300_000, None).unwrap(),
        &v1[199_990..]
    );
    assert!(c
        .get_range("img.bin", 200_000, 200_010, None)
        .unwrap()
        .is_empty());
    let n = c.counters().requests;
    assert!(c.get_range("img.bin", 7, 7, None).unwrap().is_empty());
    assert_eq!(c.counters().requests, n);

    // Replaced: a reader holding the old ETag gets Changed, never new bytes.
    let v2 = body(2, 150_000);
    c.put("img.bin", &v2).unwrap();
    let e = c
        .get_range("img.bin", 0, 100, Some(&meta.etag))
        .unwrap_err();
    assert!(matches!(e, S3Error::Changed { .. }), "{e}");
    assert!(e.to_string().contains("img.bin"), "{e}");
    assert_eq!(e.errno(), libc::EIO);
    let (m2, all) = c.get("img.bin").unwrap();
    assert_eq!(all, v2);
    assert_eq!(m2.size, 150_000);
    assert_ne!(m2.etag, meta.etag);
    assert_eq!(
        c.get_range("img.bin", 0, 100, Some(&m2.etag)).unwrap(),
        &v2[..100]
    );

    let e = c.get_range("nope.bin", 0, 10, None).unwrap_err();
    assert!(matches!(e, S3Error::NotFound { .. }), "{e}");
    assert_eq!(e.errno(), libc::ENOENT);
    assert!(e.to_string().contains("nope.bin"));
    assert!(matches!(c.head("nope.bin"), Err(S3Error::NotFound { .. })));
}

#[test]
fn wrong_secret_is_denied_without_echoing_it() {
    let (name, good) = s3::bucket("denied");
    good.put("k.bin", b"abc").unwrap();
    let key = std::env::var("AWS_ACCESS_KEY_ID").unwrap();
    let secret = "wrong-secret-value-1234";
    let cfg = S3Config::with_credentials(Some(&s3::server()), "us-east-1", &key, secret).unwrap();
    assert!(!format!("{cfg:?}").contains(secret));
    let bad = Client::new(&cfg, &name).unwrap();
    let e = bad.check_bucket().unwrap_err();
    assert!(matches!(e, S3Error::Denied { .. }), "{e}");
    assert_eq!(e.errno(), libc::EACCES);
    let msg = e.to_string();
    assert!(!msg.contains(secret) && msg.contains(&name), "{msg}");
    for e in [
        bad.get("k.bin").unwrap_err(),
        bad.head("k.bin").unwrap_err(),
    ] {
        assert!(matches!(e, S3Error::Denied { .. }), "{e}");
        assert!(e.to_string().contains("k.bin") && !e.to_string().contains(secret));
    }
    // Refused requests are not retried: one request each.
    let before = bad.counters().requests;
    let _ = bad.put("k.bin", b"zzz");
    assert_eq!(bad.counters().requests, before + 1);
    assert_eq!(good.get("k.bin").unwrap().1, b"abc");
}

#[test]
fn missing_bucket_is_named() {
    let name = s3::unique_name("absent");
    let c = Client::new(&s3::config_for(&s3::server()), &name).unwrap();
    let e = c.check_bucket().unwrap_err();
    assert!(matches!(e, S3Error::NoBucket { .. }), "{e}");
    assert!(e.to_string().contains(&name), "{e}");
    assert!(matches!(c.get("x"), Err(S3Error::NoBucket { .. })));
    assert!(matches!(c.list("p/"), Err(S3Error::NoBucket { .. })));
}

#[test]
fn counters_count_requests_and_body_bytes() {
    let (_name, c) = s3::bucket("counters");
    let data = body(3, 12_345);
    c.put("c.bin", &data).unwrap();
    let since = |before: Counters| {
        let now = c.counters();
        (
            now.requests - before.requests,
            now.bytes_in - before.bytes_in,
        )
    };
    let c0 = c.counters();
    c.get("c.bin").unwrap();
    assert_eq!(since(c0), (1, 12_345));
    let c1 = c.counters();
    c.get_range("c.bin", 100, 1100, None).unwrap();
    assert_eq!(since(c1), (1, 1000));
    // Clones share the counters.
    let c2 = c.counters();
    c.clone().head("c.bin").unwrap();
    assert_eq!(since(c2), (1, 0));
}

#[test]
fn stopped_server_fails_then_recovers() {
    let mut w = s3::Weed::spawn();
    let c = w.client("faults");
    c.create_bucket().unwrap();
    c.put("a.bin", &body(4, 5000)).unwrap();
    w.stop();
    let before = c.counters().requests;
    let e = c.get("a.bin").unwrap_err();
    assert!(matches!(e, S3Error::Transport { .. }), "{e}");
    assert!(e.to_string().contains("a.bin"), "{e}");
    assert_eq!(e.errno(), libc::EIO);
    // Transport errors are retried a bounded number of times (4 attempts).
    assert_eq!(c.counters().requests - before, 4);
    w.start();
    assert_eq!(c.get("a.bin").unwrap().1, body(4, 5000));
}
