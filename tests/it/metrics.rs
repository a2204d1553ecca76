//! `--metrics`: `/metrics` scraped over HTTP and parsed by the Prometheus project's own
//! Python parser (`prometheus_client.parser`), whose counters must move as reads happen; the
//! listener is on loopback and goes away at unmount.

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::mount::{small_tree, Mount};
use common::*;

/// The venv's Python with `prometheus_client` (scripts/test.sh installs it).
fn python() -> PathBuf {
    let p = std::env::var_os("THUMBFS_TEST_PROM_PYTHON").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/metrics-venv/bin/python"),
        PathBuf::from,
    );
    assert!(
        p.exists(),
        "{}: missing; scripts/test.sh installs prometheus-client into target/metrics-venv",
        p.display()
    );
    p
}

/// Prints each sample as `TYPE<TAB>name{labels}<TAB>value`, labels sorted.
const PARSE: &str = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        print(f"{fam.type}\t{s.name}{{{labels}}}\t{s.value!r}")
"#;

/// A scrape: sample (`name{labels}`) → (metric type, value).
type Samples = BTreeMap<String, (String, f64)>;

/// GET /metrics, checked to be the Prometheus text format, parsed by the real parser.
fn scrape(port: u16) -> Samples {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").expect("an HTTP reply");
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let mut child = Command::new(python())
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parser refused it: {}\n{body}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let mut f = l.split('\t');
            let (kind, name, value) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
            (name.to_string(), (kind.to_string(), value.parse().unwrap()))
        })
        .collect()
}

fn get(s: &Samples, name: &str) -> f64 {
    s.get(name)
        .unwrap_or_else(|| panic!("{name} missing from {:#?}", s.keys()))
        .1
}

/// The only listening socket on `port` is 127.0.0.1's.
fn assert_listens_on_loopback_only(port: u16) {
    let listening: Vec<String> = sockets_on(port)
        .into_iter()
        .filter(|(_, state)| state == "0A")
        .map(|(local, _)| local)
        .collect();
    assert_eq!(
        listening,
        [format!("0100007F:{port:04X}")],
        "127.0.0.1 only"
    );
}

/// The state of the TCP sockets bound to `port` (from /proc/net/tcp{,6}), as
/// (local address in hex, state).
fn sockets_on(port: u16) -> Vec<(String, String)> {
    let want = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| fs::read_to_string(p).ok())
        .flat_map(|t| {
            t.lines()
                .skip(1)
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    f[1].ends_with(&want)
                        .then(|| (f[1].to_string(), f[3].to_string()))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn counters_move_as_reads_happen() {
    let src = small_tree();
    fs::copy(
        corpus("pngsuite/corrupt/xcsn0g01.png"),
        src.path().join("bad.png"),
    )
    .unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    // per-open: every open reaches the daemon, so the second read below is a memory hit
    // (in the default mode it would come from the page cache unseen).
    let m = Mount::new(src.path(), &["--metrics", &addr, "--open-mode", "per-open"]);

    // Listening on loopback only.
    assert_listens_on_loopback_only(port);

    let s0 = scrape(port);
    assert_eq!(s0["thumbfs_renders_total{}"].0, "counter");
    assert_eq!(get(&s0, "thumbfs_renders_total{}"), 0.0);
    assert_eq!(get(&s0, "thumbfs_renders_in_flight{}"), 0.0);
    assert_eq!(get(&s0, "thumbfs_renders_queued{}"), 0.0);
    for tier in ["memory", "disk", "remote"] {
        get(&s0, &format!("thumbfs_cache_hits_total{{tier=\"{tier}\"}}"));
    }
    assert!(!s0.contains_key("thumbfs_render_seconds_count{format=\"png\"}"));

    // The first read renders.
    let first = fs::read(m.path("w64_png/a.png")).unwrap();
    let s1 = scrape(port);
    assert_eq!(get(&s1, "thumbfs_renders_total{}"), 1.0);
    assert_eq!(get(&s1, "thumbfs_bytes_served_total{}"), first.len() as f64);
    assert_eq!(
        get(&s1, "thumbfs_render_seconds_count{format=\"png\"}"),
        1.0
    );
    assert_eq!(
        s1["thumbfs_render_seconds_count{format=\"png\"}"].0,
        "histogram"
    );
    assert!(get(&s1, "thumbfs_render_seconds_sum{format=\"png\"}") > 0.0);
    assert_eq!(
        get(&s1, "thumbfs_first_byte_seconds_count{format=\"png\"}"),
        1.0
    );
    assert_eq!(
        get(
            &s1,
            "thumbfs_render_seconds_bucket{format=\"png\",le=\"+Inf\"}"
        ),
        1.0
    );
    assert!(get(&s1, "thumbfs_cache_bytes{tier=\"memory\"}") >= first.len() as f64);
    assert_eq!(get(&s1, "thumbfs_cache_entries{tier=\"memory\"}"), 1.0);

    // The second read is served from memory: a memory hit, no render.
    let hits = "thumbfs_cache_hits_total{tier=\"memory\"}";
    let second = fs::read(m.path("w64_png/a.png")).unwrap();
    assert_eq!(second, first);
    let s2 = scrape(port);
    assert_eq!(get(&s2, "thumbfs_renders_total{}"), 1.0);
    assert!(
        get(&s2, hits) > get(&s1, hits),
        "{} -> {}",
        get(&s1, hits),
        get(&s2, hits)
    );
    // (Its bytes may come from the kernel's page cache, without a read() reaching us.)
    assert!(get(&s2, "thumbfs_bytes_served_total{}") >= first.len() as f64);
    assert_eq!(
        get(&s2, "thumbfs_render_seconds_count{format=\"png\"}"),
        1.0
    );

    // A corrupt file: an error whose cause is the image.
    let image = "thumbfs_render_errors_total{cause=\"image\"}";
    assert_eq!(get(&s2, image), 0.0);
    assert!(fs::read(m.path("w64_png/bad.png")).is_err());
    let s3 = scrape(port);
    assert_eq!(get(&s3, image), 1.0);
    assert_eq!(get(&s3, "thumbfs_renders_in_flight{}"), 0.0);
    // The same counters as .thumbfs/stats.
    let stats = m.stats();
    assert_eq!(stats["renders"] as f64, get(&s3, "thumbfs_renders_total{}"));
    assert_eq!(stats["errors"], 1);

    // Other paths are not served.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(
        reply.starts_with("HTTP/1.0 404") || reply.starts_with("HTTP/1.1 404"),
        "{reply}"
    );

    // Stopped at unmount.
    drop(m);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still listening after unmount"
    );
}

/// Port of a loopback listener that is free now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The sum of the samples named `name` whose labels include every one of `with`.
fn sum(s: &Samples, name: &str, with: &[&str]) -> f64 {
    s.iter()
        .filter(|(k, _)| {
            k.split_once('{')
                .is_some_and(|(n, l)| n == name && with.iter().all(|w| l.contains(w)))
        })
        .map(|(_, (_, v))| v)
        .sum()
}

/// An `s3://` source: its requests are counted and timed by operation and status, and a
/// bare `:PORT` (here in the `-o` form) listens on loopback.
#[test]
fn s3_requests_are_counted_by_operation_and_status() {
    use common::s3::{bucket, server};
    let (name, c) = bucket("metrics");
    c.put(
        "lib/a.jpg",
        &fs::read(corpus("jpeg/video-001.jpeg")).unwrap(),
    )
    .unwrap();
    let port = free_port();
    let m = Mount::new(
        std::path::Path::new(&format!("s3://{name}/lib")),
        &[
            "--s3-endpoint",
            &server(),
            "-o",
            &format!("metrics=:{port}"),
        ],
    );
    assert_listens_on_loopback_only(port);
    let out = fs::read(m.path("w64_png/a.png")).unwrap();
    assert!(!out.is_empty());
    let s = scrape(port);
    let requests = "thumbfs_s3_requests_total";
    assert!(sum(&s, requests, &["operation=\"list\"", "status=\"200\""]) >= 1.0);
    let gets = sum(&s, requests, &["operation=\"get\""]);
    assert!(gets >= 1.0, "{s:#?}");
    assert_eq!(
        sum(
            &s,
            "thumbfs_s3_request_seconds_count",
            &["operation=\"get\""]
        ),
        gets,
        "one latency per request"
    );
    assert_eq!(sum(&s, requests, &["status=\"error\""]), 0.0);
    assert_eq!(get(&s, "thumbfs_renders_total{}"), 1.0);
}

/// Every metric the Grafana dashboard queries is one the mount exports (S3's only with an
/// `s3://` source or `--cache-url`, checked above).
#[test]
fn the_dashboard_queries_exported_metrics() {
    let dash = fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("contrib/grafana-thumbfs.json"),
    )
    .unwrap();
    let src = small_tree();
    let port = free_port();
    let m = Mount::new(src.path(), &["--metrics", &port.to_string()]);
    fs::read(m.path("w64_png/a.png")).unwrap();
    let s = scrape(port);
    let mut names: Vec<&str> = dash
        .match_indices("thumbfs_")
        .map(|(i, _)| {
            let rest = &dash[i..];
            let end = rest
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect();
    names.sort();
    names.dedup();
    assert!(names.len() >= 10, "{names:?}");
    for n in names {
        let exported =
            s.keys().any(|k| k.split('{').next() == Some(n)) || n.starts_with("thumbfs_s3_");
        assert!(exported, "{n}: queried by the dashboard, not exported");
    }
}
