//! `--metrics ADDR`: `/metrics` in the Prometheus text format, served by a thread of its own
//! until unmount. The counters are the ones `.thumbfs/stats` shows ([`Stats`]), read at each
//! scrape; only the histograms and the S3 request counts live here.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{prometheus_text, DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::scheduler::Scheduler;
use crate::stats::{Cause, Stats};

/// Label sets: few, small and built per observation.
type Labels = Vec<(&'static str, String)>;
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

/// 1 ms to about 33 s, doubling: thumbnails take milliseconds, huge PNGs seconds.
fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Render and first-byte times by output format.
#[derive(Debug, Clone)]
pub struct Timings {
    render: Histograms,
    first_byte: Histograms,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            render: Family::new_with_constructor(seconds_histogram),
            first_byte: Family::new_with_constructor(seconds_histogram),
        }
    }
}

impl Timings {
    /// One finished render of `format`: how long it ran, and how long after it was asked for
    /// its first byte existed.
    pub fn observe(&self, format: &str, render: Duration, first_byte: Option<Duration>) {
        let labels = vec![("format", format.to_string())];
        self.render
            .get_or_create(&labels)
            .observe(render.as_secs_f64());
        if let Some(t) = first_byte {
            self.first_byte
                .get_or_create(&labels)
                .observe(t.as_secs_f64());
        }
    }
}

/// S3 requests by operation and status, fed by the store's observer hook.
#[derive(Debug, Clone)]
struct S3Requests {
    count: Family<Labels, Counter>,
    latency: Histograms,
}

impl thumbfs_store::s3::Observer for S3Requests {
    fn request(&self, operation: &'static str, status: u16, elapsed: Duration) {
        let status = match status {
            0 => "error".to_string(),
            s => s.to_string(),
        };
        let labels = vec![("operation", operation.to_string()), ("status", status)];
        self.count.get_or_create(&labels).inc();
        self.latency
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }
}

/// The counters of [`Stats`] and the cache's occupancy, read at each scrape.
#[derive(Debug)]
struct StatsCollector {
    sched: Weak<Scheduler>,
}

fn load(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let g = ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX));
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

/// One metric with a value per label value.
fn labelled(
    e: &mut DescriptorEncoder,
    (name, help, kind): (&str, &str, MetricType),
    label: &str,
    values: &[(&str, u64)],
) -> std::fmt::Result {
    let mut family = e.encode_descriptor(name, help, None, kind)?;
    for &(value, v) in values {
        let labels = [(label, value)];
        let m = family.encode_family(&labels)?;
        match kind {
            MetricType::Counter => ConstCounter::new(v).encode(m)?,
            _ => ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX)).encode(m)?,
        }
    }
    Ok(())
}

impl Collector for StatsCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let Some(sched) = self.sched.upgrade() else {
            return Ok(());
        };
        let s: &Stats = &sched.stats;
        counter(&mut e, "renders", "Renders started", load(&s.renders))?;
        labelled(
            &mut e,
            (
                "cache_hits",
                "Outputs served from a cache tier without rendering",
                MetricType::Counter,
            ),
            "tier",
            &[
                ("memory", load(&s.memory_hits)),
                ("disk", load(&s.disk_hits)),
                ("remote", load(&s.remote_hits)),
            ],
        )?;
        let causes: Vec<(&str, u64)> = Cause::ALL
            .iter()
            .zip(&s.errors_by_cause)
            .map(|(c, n)| (c.label(), load(n)))
            .collect();
        labelled(
            &mut e,
            ("render_errors", "Failed renders", MetricType::Counter),
            "cause",
            &causes,
        )?;
        counter(
            &mut e,
            "bytes_served",
            "Bytes returned by read()",
            load(&s.bytes_served),
        )?;
        let in_flight = load(&s.in_flight);
        gauge(
            &mut e,
            "renders_in_flight",
            "Renders and cache loads running or queued",
            in_flight,
        )?;
        gauge(
            &mut e,
            "renders_queued",
            "Renders and cache loads waiting for a render thread",
            load(&s.queued).min(in_flight),
        )?;
        counter(
            &mut e,
            "worker_restarts",
            "Render worker processes replaced after a crash, a timeout or running out of memory",
            load(&s.worker_restarts),
        )?;
        let (memory, evictions) = sched.cache.occupancy();
        let tiers = sched.cache.tier_occupancy();
        let mut bytes = vec![("memory", memory.bytes)];
        let mut entries = vec![("memory", memory.entries)];
        for (tier, held) in tiers {
            bytes.push((tier, held.bytes));
            entries.push((tier, held.entries));
        }
        labelled(
            &mut e,
            (
                "cache_bytes",
                "Bytes held by a cache tier",
                MetricType::Gauge,
            ),
            "tier",
            &bytes,
        )?;
        labelled(
            &mut e,
            (
                "cache_entries",
                "Outputs held by a cache tier",
                MetricType::Gauge,
            ),
            "tier",
            &entries,
        )?;
        counter(
            &mut e,
            "cache_evictions",
            "Outputs evicted from memory or never admitted",
            evictions,
        )
    }
}

/// The address `--metrics` binds: `HOST:PORT` as given, and loopback (127.0.0.1) for a bare
/// `PORT` or `:PORT`, so the listener is never public unless a host says so.
pub fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    let t = text.trim();
    if let Ok(port) = t.strip_prefix(':').unwrap_or(t).parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    t.to_socket_addrs()
        .map_err(|e| format!("--metrics {text}: {e} (expected HOST:PORT or PORT)"))?
        .next()
        .ok_or_else(|| format!("--metrics {text}: no address"))
}

/// The `/metrics` listener; dropping it stops its thread.
pub struct MetricsServer {
    server: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Binds `addr` and serves the metrics of `sched` (and of every S3 client of this process)
/// on a thread of its own.
pub fn start(addr: &str, sched: &Arc<Scheduler>) -> Result<MetricsServer, String> {
    let at = parse_addr(addr)?;
    let server = tiny_http::Server::http(at).map_err(|e| format!("--metrics {at}: {e}"))?;
    let server = Arc::new(server);
    let mut registry = Registry::with_prefix("thumbfs");
    registry.register_collector(Box::new(StatsCollector {
        sched: Arc::downgrade(sched),
    }));
    let t = &sched.stats.timings;
    registry.register(
        "render_seconds",
        "Time a render ran, from a render thread taking it to its last byte, by output format",
        t.render.clone(),
    );
    registry.register(
        "first_byte_seconds",
        "Time from a render being asked for to its first output byte, by output format",
        t.first_byte.clone(),
    );
    let s3 = S3Requests {
        count: Family::default(),
        latency: Family::new_with_constructor(seconds_histogram),
    };
    registry.register(
        "s3_requests",
        "S3 requests sent (each retry counts), by operation and HTTP status",
        s3.count.clone(),
    );
    registry.register(
        "s3_request_seconds",
        "S3 request latency to the end of the response body, by operation and HTTP status",
        s3.latency.clone(),
    );
    // One mount per process: the first observer set is this one.
    thumbfs_store::s3::set_observer(Arc::new(s3));
    let stop = Arc::new(AtomicBool::new(false));
    let (srv, flag) = (server.clone(), stop.clone());
    let thread = std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || serve(&srv, &registry, &flag))
        .map_err(|e| format!("--metrics: starting its thread: {e}"))?;
    tracing::info!("metrics on http://{at}/metrics");
    Ok(MetricsServer {
        server,
        stop,
        thread: Some(thread),
    })
}

/// Answers scrapes until `stop` is set.
fn serve(server: &tiny_http::Server, registry: &Registry, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        let req = match server.recv_timeout(Duration::from_millis(500)) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(_) => break,
        };
        let path = req.url().split('?').next().unwrap_or("");
        let reply = if path == "/metrics" {
            let mut body = String::new();
            match prometheus_text::encode(&mut body, registry) {
                Ok(()) => {
                    let reply = tiny_http::Response::from_string(body);
                    // A constant, valid header: the Err arm never runs.
                    match tiny_http::Header::from_bytes(
                        "Content-Type",
                        prometheus_text::CONTENT_TYPE,
                    ) {
                        Ok(h) => reply.with_header(h),
                        Err(()) => reply,
                    }
                }
                Err(_) => {
                    tiny_http::Response::from_string("encoding failed\n").with_status_code(500)
                }
            }
        } else {
            tiny_http::Response::from_string("not found: try /metrics\n").with_status_code(404)
        };
        if let Err(e) = req.respond(reply) {
            tracing::debug!("metrics: answering a scrape: {e}");
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_without_a_host_are_loopback() {
        let lo = |p| SocketAddr::from(([127, 0, 0, 1], p));
        assert_eq!(parse_addr("9100"), Ok(lo(9100)));
        assert_eq!(parse_addr(":9100"), Ok(lo(9100)));
        assert_eq!(
            parse_addr("0.0.0.0:9100"),
            Ok(SocketAddr::from(([0, 0, 0, 0], 9100)))
        );
        assert_eq!(
            parse_addr("[::1]:9100").map(|a| a.ip().is_loopback()),
            Ok(true)
        );
        assert!(parse_addr("nonsense").is_err());
    }

    #[test]
    fn timings_are_encoded_per_format() {
        let t = Timings::default();
        t.observe(
            "jpg",
            Duration::from_millis(20),
            Some(Duration::from_millis(5)),
        );
        t.observe("png", Duration::from_millis(3), None);
        let mut r = Registry::with_prefix("thumbfs");
        r.register("render_seconds", "r", t.render.clone());
        let mut out = String::new();
        prometheus_text::encode(&mut out, &r).unwrap();
        assert!(
            out.contains("thumbfs_render_seconds_count{format=\"jpg\"} 1"),
            "{out}"
        );
        assert!(
            out.contains("thumbfs_render_seconds_count{format=\"png\"} 1"),
            "{out}"
        );
    }
}
